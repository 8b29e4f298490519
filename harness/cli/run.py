"""`qharness run`: run the regression suites on one or more device profiles."""

from __future__ import annotations

import subprocess
import sys
from importlib.resources import files
from pathlib import Path
from typing import Annotated

import typer

from harness.cli.app import DEFAULT_DB, DbOption, app
from harness.profiles import ProfileError, load_profile


def suites_dir() -> Path:
    """The suites to run: ./test_suites when present, else the copy packaged with harness."""
    local = Path("test_suites")
    if local.is_dir():
        return local
    return Path(str(files("harness") / "test_suites"))


def pytest_command(
    profiles: list[str],
    *,
    build: str | None,
    baseline: str | None,
    db: str,
    seed: int,
    budget: str,
    alpha: float,
    summary: str | None,
    strict: bool,
    extra: list[str],
) -> list[str]:
    """The pytest command line that `qharness run` executes."""
    cmd = [sys.executable, "-m", "pytest", str(suites_dir()), "-p", "no:cacheprovider", "-q", "--strict-markers"]
    for p in profiles:
        cmd += ["--device-profile", p]
    if build:
        cmd += ["--firmware-build", build]
    if baseline:
        cmd += ["--baseline-build", baseline]
    cmd += ["--results-db", db, "--harness-seed", str(seed), "--budget", budget, "--alpha", str(alpha)]
    if summary:
        cmd += ["--harness-summary", summary]
    if strict:
        cmd.append("--strict")
    return cmd + list(extra)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def run(
    ctx: typer.Context,
    profile: Annotated[list[str], typer.Option("--profile", "-p", help="device profile name or path (repeatable)")],
    build: Annotated[str | None, typer.Option("--build", "--firmware-build", help="build under test")] = None,
    baseline: Annotated[str | None, typer.Option("--baseline", "--baseline-build", help="baseline build")] = None,
    db: DbOption = DEFAULT_DB,
    seed: Annotated[int, typer.Option("--seed", "--harness-seed", help="seed of the simulated streams")] = 1,
    budget: Annotated[str, typer.Option(help="quick | standard | release")] = "standard",
    alpha: Annotated[float, typer.Option(help="family-wise false-alarm rate per profile")] = 0.05,
    summary: Annotated[
        str | None, typer.Option("--summary", "--harness-summary", help="JSON summary path")
    ] = "reports/summary.json",
    strict: Annotated[bool, typer.Option(help="INCONCLUSIVE fails the run")] = False,
    report: Annotated[
        str | None, typer.Option(help="after the run, write the HTML/Markdown/JSON report into this directory")
    ] = None,
) -> None:
    """Run the regression suites (./test_suites, else the packaged ones); exit codes follow pytest."""
    cmd = pytest_command(
        profile,
        build=build,
        baseline=baseline,
        db=db,
        seed=seed,
        budget=budget,
        alpha=alpha,
        summary=summary,
        strict=strict,
        extra=ctx.args,
    )
    typer.echo("$ " + " ".join(cmd[2:]), err=True)
    code = subprocess.call(cmd)
    if report and Path(db).exists():
        from harness.report import ReportError, build_report, open_store

        try:
            with open_store(db) as store:
                names = [load_profile(p).name for p in profile]
                result = build_report(store, release=build or "latest", out_dir=report, profiles=names)
            typer.echo(f"report: {result.index_html} ({result.verdict})", err=True)
        except (ReportError, ProfileError) as exc:
            typer.echo(f"qharness run: no report written: {exc}", err=True)
    raise typer.Exit(code)
