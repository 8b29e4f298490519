"""`qharness plan`: per metric, what a budget resolves and the tolerances that make a decisive canary."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer

from harness.cli.app import DbOption, app, console, fail


def _num(x: float | None) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x:.4g}"


def _write_tolerances(loaded: object, plan: object, path: Path) -> None:
    """Write a copy of the profile file whose tolerances are the recommended ones (relative where it was)."""
    import yaml

    raw = yaml.safe_load(Path(loaded.path).read_text(encoding="utf-8"))  # type: ignore[attr-defined]
    old = raw.get("tolerances") or {}
    values = {m.name: m for m in plan.metrics}  # type: ignore[attr-defined]
    for name, row in values.items():
        if row.recommended_tolerance is None or row.tolerance is None:
            continue
        spec = old.get(name) or {}
        rec = float(f"{row.recommended_tolerance:.2g}")
        if "relative" in spec and row.tolerance > 0:
            # The profile gave a share of the baseline: keep that form (the margin scales with the baseline).
            rec = float(f"{spec['relative'] * row.recommended_tolerance / row.tolerance:.2g}")
            old[name] = {"relative": rec}
        else:
            old[name] = {"absolute": rec}
    raw["tolerances"] = old
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")


def _store(kind: str, db: str | None) -> object | None:
    """The results store: a bench always needs it; a simulated profile reads it when named or when it exists."""
    from harness.cli.app import open_db
    from harness.store import default_store_url, parse_store_url

    if kind == "aer" and db is None and not parse_store_url(default_store_url()).exists():
        return None
    return open_db("plan", db)


def _print_table(plan: Any) -> None:
    """The plan as a text table: the shot-noise figures, then the between-session SD and the pooled test's."""
    out = console()
    out.print(f"qharness plan {plan.profile} at budget {plan.budget}, power {plan.power:g}; baseline {plan.baseline}")
    out.print(
        f"between sessions: {plan.between_session_source}; pooled test over {plan.sessions} baseline "
        f"session(s) and {plan.candidate_sessions} candidate session(s)",
        highlight=False,
    )
    out.print(
        f"{'metric':<40} {'SE':>10} {'tolerance':>10} {'detectable':>11} {'budget to PASS':>15} {'recommended':>12}"
        f" {'session SD':>11} {'pooled det.':>11} {'sessions':>8}"
    )
    for m in plan.metrics:
        b2p = "-" if m.budget_to_pass is None else f"{m.budget_to_pass:.3g}x std"
        mdr = _num(m.min_detectable_regression)
        k = "-" if m.sessions_to_detect is None else str(m.sessions_to_detect)
        out.print(
            f"{m.name:<40} {_num(m.standard_error):>10} {_num(m.tolerance):>10} {mdr:>11} "
            f"{b2p:>15} {_num(m.recommended_tolerance):>12} {_num(m.between_session_sd):>11} "
            f"{_num(m.min_detectable_regression_pooled):>11} {k:>8} {m.note}",
            highlight=False,
        )


@app.command("plan")
def plan_command(
    profile: Annotated[str, typer.Option("--profile", "-p", metavar="NAME|PATH", help="device profile")],
    budget: Annotated[str, typer.Option("--budget", metavar="quick|standard|release", help="budget")] = "standard",
    power: Annotated[float, typer.Option("--power", metavar="P", help="power of the figures")] = 0.95,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    write_tolerances: Annotated[
        Path | None,
        typer.Option("--write-tolerances", metavar="PATH", help="write a profile copy with the recommended tolerances"),
    ] = None,
    sessions: Annotated[
        int | None,
        typer.Option("--sessions", metavar="K", help="baseline sessions of the pooled test (default: stored, else 5)"),
    ] = None,
    candidate_sessions: Annotated[
        int, typer.Option("--candidate-sessions", metavar="M", help="candidate sessions pooled (default 1)")
    ] = 1,
    db: DbOption = None,
) -> None:
    """Per metric: standard error, minimum detectable regression, budget to PASS and recommended tolerance, and
    with the between-session variance the pooled (stored-baseline) test's figures."""
    from harness.plan import PlanError, plan_profile
    from harness.profiles import ProfileError, load_profile

    try:
        loaded = load_profile(profile)
    except ProfileError as exc:
        fail("plan", f"--profile {profile}: {str(exc).splitlines()[0]}")
    store = _store(loaded.kind, db)
    try:
        plan = plan_profile(
            loaded, budget=budget, power=power, store=store, sessions=sessions, candidate_sessions=candidate_sessions
        )
    except PlanError as exc:
        fail("plan", str(exc))
    if write_tolerances is not None:
        try:
            _write_tolerances(loaded, plan, write_tolerances)
        except OSError as exc:
            fail("plan", f"--write-tolerances {write_tolerances}: cannot write ({exc.strerror or exc})")
    if as_json:
        print(json.dumps(plan.to_dict(), indent=2))
        return
    _print_table(plan)
