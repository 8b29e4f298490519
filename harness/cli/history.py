"""`qharness history` (with change points across builds), `compare` and `export`: read the results store."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from harness.cli.app import DEFAULT_DB, DbOption, app, console, fail, open_db

# Imported for its commands too: `qharness baseline set|show|measure` register on import.
from harness.cli.baseline import baseline_app, check_build, check_profile

_VERDICT_STYLE = {
    "PASS": "green",
    "REGRESSION": "bold red",
    "IMPROVED": "blue",
    "INCONCLUSIVE": "yellow",
    "ERROR": "magenta",
    "NO_BASELINE": "dim",
}


def _verdict(v: str | None) -> str:
    """Return a verdict as rich markup (text and colour)."""
    v = v or "-"
    style = _VERDICT_STYLE.get(v)
    return f"[{style}]{v}[/{style}]" if style else v


# -- history ----------------------------------------------------------------------------------------------


@app.command("history")
def history(
    profile: Annotated[str, typer.Option("--profile", "-p", help="device profile name as stored")],
    metric: Annotated[str | None, typer.Option("--metric", "-m", help="only this metric")] = None,
    db: DbOption = DEFAULT_DB,
) -> None:
    """Table of a profile's stored metrics per build and run, oldest first."""
    from harness.baselines import metric_histories
    from harness.report.text import interval_text

    store = open_db("history", db)
    with store:
        check_profile("history", store, profile)
        rows = store.history(profile, metric)
        if metric is not None and not rows:
            names = sorted({r["name"] for r in store.history(profile)})
            fail("history", f"--metric {metric!r} was never measured for {profile} (known: {', '.join(names)})")
        roles = {r.id: r.provenance.get("role", "") for r in store.runs(profile)}
        table = Table(title=f"history of {profile}" + (f" / {metric}" if metric else ""))
        for col in ("build", "run", "role", "started", "status", "metric", "value [95% interval]", "unit", "verdict"):
            table.add_column(col, overflow="fold")
        for r in rows:
            table.add_row(
                r["build"],
                str(r["run_id"]),
                roles.get(r["run_id"], ""),
                r["started_at"][:19],
                r["status"],
                r["name"],
                interval_text(r["value"], r["ci_low"], r["ci_high"]),
                r["unit"],
                _verdict(r["verdict"]),
            )
        histories = metric_histories(store, profile, [metric] if metric else None)
    term = console()
    term.print(table)
    term.print(_changes_table(profile, histories))


def _changes_table(profile: str, histories: dict) -> Table:
    """Return the table of each metric's change points across builds (PELT, 5% false rate per history)."""
    from harness.report.text import fmt_number

    table = Table(title=f"change points across builds of {profile} (PELT; an unchanged history: 5% false rate)")
    for col in ("metric", "builds", "change points: first build of a new segment (segment means)", "noise SD"):
        table.add_column(col, overflow="fold")
    for name, h in histories.items():
        cp = h.changes
        if cp.count:
            means = [fmt_number(m) for m in cp.means]
            steps = zip(h.change_builds(), means[:-1], means[1:], strict=True)
            found = "; ".join(f"at {b}: {a} -> {c}" for b, a, c in steps)
        else:
            found = "none" if cp.n >= 4 else "none (fewer than 4 builds)"
        table.add_row(name, str(len(h.builds)), found, f"{cp.sigma:.3g}" if cp.n >= 4 else "-")
    return table


# -- compare ----------------------------------------------------------------------------------------------


def _tolerances(profile: str, build: str) -> tuple[dict, str | None]:
    """Return the profile's tolerances for `build` as gate Tolerances, and a note when they could not be loaded."""
    try:
        from harness.profiles import ProfileError, load_profile

        loaded = load_profile(profile)
    except Exception as exc:  # any unloadable profile means zero tolerances, which is stated, never hidden
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return {}, f"profile {profile!r} could not be loaded ({first}); comparing with zero tolerances"
    try:
        eff = loaded.effective(build)
    except ProfileError:
        # A build the profile file does not list (an old release) still gets the profile's own margins.
        eff = loaded.base
    return eff.gate_tolerances(), None


@app.command("compare")
def compare(
    build_a: Annotated[str, typer.Argument(help="baseline build")],
    build_b: Annotated[str, typer.Argument(help="candidate build")],
    profile: Annotated[str, typer.Option("--profile", "-p", help="device profile name as stored")],
    db: DbOption = DEFAULT_DB,
    fail_on_regression: Annotated[
        bool, typer.Option("--fail-on-regression", help="exit 1 when any metric is a REGRESSION")
    ] = False,
    alpha: Annotated[float, typer.Option("--alpha", help="family-wise false-alarm rate of the gate")] = 0.05,
) -> None:
    """Gate BUILD_B (candidate) against BUILD_A (baseline) from their latest completed runs in the store."""
    from harness.gate import evaluate

    if not 0.0 < alpha < 1.0:
        fail("compare", f"--alpha must be in (0, 1), got {alpha}")
    store = open_db("compare", db)
    with store:
        check_profile("compare", store, profile)
        for b in (build_a, build_b):
            check_build("compare", store, profile, b, "build")
        base = store.latest_metrics(profile, build_a)
        cand = store.latest_metrics(profile, build_b)
    tolerances, note = _tolerances(profile, build_b)
    if note:
        print(f"note: {note}", file=sys.stderr)
    comparisons = evaluate(dict(cand), base, tolerances, alpha=alpha)
    title = f"{profile}: {build_b} (candidate) vs {build_a} (baseline), alpha {alpha:g}"
    _print_comparisons(comparisons, title, build_a, build_b, fail_on_regression)


def _print_comparisons(comparisons: dict, title: str, build_a: str, build_b: str, fail_on_regression: bool) -> None:
    """Print the comparison table, each REGRESSION's one-line message and the overall verdict; exit 1 if asked."""
    from harness.gate import Verdict, overall_verdict
    from harness.report.text import interval_text

    table = Table(title=title)
    for col in ("metric", f"{build_a}", f"{build_b}", "delta [interval]", "tolerance", "adjusted p", "verdict"):
        table.add_column(col, overflow="fold")
    for name, c in sorted(comparisons.items()):
        b, k, d = c.baseline, c.candidate, c.delta
        table.add_row(
            name,
            interval_text(b.value, b.ci_low, b.ci_high) if b else "-",
            interval_text(k.value, k.ci_low, k.ci_high) if k else "-",
            interval_text(d.value, d.ci_low, d.ci_high) if d else "-",
            f"{c.tolerance:g}",
            "-" if c.p_regression_adjusted is None else f"{c.p_regression_adjusted:.2g}",
            _verdict(str(c.verdict)),
        )
    term = console()
    term.print(table)
    top = overall_verdict(c.verdict for c in comparisons.values()) if comparisons else Verdict.ERROR
    for c in comparisons.values():
        if c.verdict is Verdict.REGRESSION:
            term.print(c.message(build_b, build_a), markup=False, highlight=False)
    term.print(f"overall: {_verdict(str(top))}")
    if fail_on_regression and any(c.verdict is Verdict.REGRESSION for c in comparisons.values()):
        raise typer.Exit(1)


@baseline_app.command("check")
def baseline_check(
    profile: Annotated[str, typer.Option("--profile", "-p", help="device profile name as stored")],
    build: Annotated[str, typer.Option("--build", "-b", help="release to compare with the pinned reference")],
    db: DbOption = DEFAULT_DB,
    fail_on_regression: Annotated[
        bool, typer.Option("--fail-on-regression", help="exit 1 when any metric is a REGRESSION")
    ] = False,
    alpha: Annotated[float, typer.Option("--alpha", help="family-wise false-alarm rate of the gate")] = 0.05,
) -> None:
    """Compare BUILD with the pinned reference build and test the trend of every release since it (creep)."""
    from harness.baselines import compare_with_reference
    from harness.creep import creep_family

    if not 0.0 < alpha < 1.0:
        fail("baseline check", f"--alpha must be in (0, 1), got {alpha}")
    store = open_db("baseline check", db)
    with store:
        check_profile("baseline check", store, profile)
        check_build("baseline check", store, profile, build, "--build")
        tolerances, note = _tolerances(profile, build)
        try:
            found = compare_with_reference(store, profile, build, tolerances, alpha)
        except LookupError as exc:
            fail("baseline check", str(exc))
        try:
            trend = creep_family(store, profile, found.reference, build, tolerances, found.comparisons, alpha)
        except LookupError as exc:
            trend, note = {}, "; ".join(filter(None, (note, f"no trend: {exc}")))
    if note:
        print(f"note: {note}", file=sys.stderr)
    models = sorted({c.variance_model or "" for c in found.comparisons.values()} - {""})
    title = f"{profile}: {build} vs reference {found.reference} ({'; '.join(models) or 'no pooled metric'})"
    _print_comparisons(found.comparisons, title, f"reference {found.reference}", build, False)
    _print_trend(trend, found.reference, build)
    regressed = any(str(c.verdict) == "REGRESSION" for c in found.comparisons.values())
    if fail_on_regression and (regressed or any(t.flagged for t in trend.values())):
        raise typer.Exit(1)


def _print_trend(trend: dict, reference: str, build: str) -> None:
    """The creep table: per metric the fitted change from the reference to BUILD over every release between."""
    if not trend:
        return
    first = next(iter(trend.values()))
    table = Table(title=f"trend since {reference}")
    for col in ("metric", "fitted change ± SE", "tolerance", "adjusted p", "creep"):
        table.add_column(col, overflow="fold")
    for name, t in trend.items():
        flag = "[bold red]FLAGGED[/]" if t.flagged else "no"
        table.add_row(name, f"{t.change:+.4g} ± {t.se:.2g}", f"{t.tol:g}", f"{t.p_adjusted:.2g}", flag)
    term = console()
    term.print(table)
    flagged = [n for n, t in trend.items() if t.flagged]
    span = f"{first.releases} release{'s' * (first.releases != 1)}"
    # Plain print: one unwrapped line that scripts and logs can grep.
    print(
        f"creep: {'FLAGGED: ' + ', '.join(flagged) if flagged else 'none found'} "
        f"(trend from {reference} to {build} over {span}; {first.variance_model})"
    )


# -- export -----------------------------------------------------------------------------------------------

EXPORT_FIELDS = (
    "profile",
    "build",
    "run_id",
    "role",
    "status",
    "name",
    "value",
    "ci_low",
    "ci_high",
    "confidence",
    "n",
    "unit",
    "direction",
    "verdict",
    "baseline_build",
    "profile_hash",
    "seed",
    "budget",
    "host",
    "git_sha",
    "started_at",
    "ended_at",
    "session_id",
    "harness_version",
    "qiskit_version",
    "qiskit_aer_version",
    "stim_version",
    "numpy_version",
    "provenance",
)


def export_rows(store: Any, profile: str | None = None) -> list[dict]:
    """Return every metric row (optionally of one profile) joined with its run's provenance, oldest first."""
    rows = []
    for p in [profile] if profile else store.profiles():
        runs = {r.id: r for r in store.runs(p)}
        for m in store.history(p):
            run = runs[m["run_id"]]
            row = {
                "profile": p,
                "build": m["build"],
                "run_id": m["run_id"],
                "role": run.provenance.get("role"),
                "status": m["status"],
                "name": m["name"],
                "value": m["value"],
                "ci_low": m["ci_low"],
                "ci_high": m["ci_high"],
                "confidence": m["confidence"],
                "n": m["n"],
                "unit": m["unit"],
                "direction": m["direction"],
                "verdict": m["verdict"],
                "baseline_build": run.baseline_build,
                "profile_hash": run.profile_hash,
                "seed": run.seed,
                "budget": run.budget,
                "host": run.host,
                "git_sha": run.git_sha,
                "started_at": run.started_at,
                "ended_at": run.ended_at,
                "session_id": run.session_id,
                **run.versions,
                "provenance": run.provenance,
            }
            rows.append({k: row.get(k) for k in EXPORT_FIELDS})
    return rows


@app.command("export")
def export(
    fmt: Annotated[str, typer.Option("--format", "-f", help="csv | json")] = "csv",
    db: DbOption = DEFAULT_DB,
    profile: Annotated[str | None, typer.Option("--profile", "-p", help="only this profile")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="output file (default: stdout)")] = None,
) -> None:
    """Write every metric row with its run's provenance as CSV or JSON."""
    if fmt not in ("csv", "json"):
        fail("export", f"--format must be 'csv' or 'json', got {fmt!r}")
    store = open_db("export", db)
    with store:
        if profile is not None:
            check_profile("export", store, profile)
        rows = export_rows(store, profile)
    if fmt == "json":
        from harness.report.build import json_ready

        text = json.dumps(json_ready(rows), indent=2) + "\n"
    else:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=EXPORT_FIELDS, lineterminator="\n")
        writer.writeheader()
        for r in rows:
            writer.writerow({**r, "provenance": json.dumps(r["provenance"], sort_keys=True)})
        text = buf.getvalue()
    if out is None:
        sys.stdout.write(text)
        return
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail("export", f"--out {out}: cannot write ({exc.strerror or exc})")
    print(f"wrote {len(rows)} metric rows to {out}", file=sys.stderr)
