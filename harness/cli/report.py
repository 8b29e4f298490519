"""`qharness report`: write a release's index.html, summary.md and summary.json from the results store."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from harness.cli.app import DEFAULT_DB, DbOption, app, fail, open_db


@app.command("report")
def report(
    release: Annotated[
        str,
        typer.Option(
            "--release",
            "-r",
            help="the release's build (only profiles with a run of it; trends end there), or 'latest' for every "
            "profile's newest run",
        ),
    ] = "latest",
    db: DbOption = DEFAULT_DB,
    profile: Annotated[
        list[str] | None, typer.Option("--profile", "-p", help="profile to include (repeatable; default: all)")
    ] = None,
    builds: Annotated[
        str | None,
        typer.Option("--builds", help="comma-separated builds in trend order; the last is the release build"),
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="output folder (default: reports/RELEASE/)")] = None,
) -> None:
    """Write index.html (self-contained), summary.md and summary.json of a release; print the headline."""
    from harness.report.build import MAX_HTML_BYTES, build_report
    from harness.report.data import ReportError

    build_list = [b.strip() for b in builds.split(",") if b.strip()] if builds is not None else None
    if builds is not None and not build_list:
        fail("report", "--builds is empty; pass builds separated by commas, e.g. --builds 2.3.0,2.4.0")
    if not release.strip() or release in (".", ".."):
        fail("report", f"--release {release!r} must name the release build, e.g. 2.5.0-rc1, or latest")
    target = out if out is not None else Path("reports") / release
    store = open_db("report", db)
    try:
        with store:
            result = build_report(store, release, target, profiles=profile or None, builds=build_list)
    except ReportError as exc:
        fail("report", str(exc))
    size = os.path.getsize(result.index_html)
    print(f"release {release}: {result.verdict}  " + "  ".join(f"{k} {v}" for k, v in result.counts.items()))
    for line in result.regressions:
        print(f"  {line}")
    for s in result.skipped:
        print(f"  skipped: {s}")
    print(
        f"wrote {result.index_html} ({size / 1024:.0f} KiB), {result.summary_md}, {result.summary_json} "
        f"in {result.seconds:.2f} s"
    )
    if size > MAX_HTML_BYTES:
        print(f"warning: {result.index_html} is larger than {MAX_HTML_BYTES // 1024 // 1024} MiB")
