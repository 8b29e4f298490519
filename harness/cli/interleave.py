"""`qharness interleave`: baseline and candidate alternate on one flashable device in ABBA blocks."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from harness.cli.app import DbOption, app, console, fail
from harness.errors import DeviceError, ExitCode, NotSupportedError


def _protocols(names: list[str]) -> list:
    from harness.interleave import INTERLEAVED_PROTOCOLS
    from harness.protocols import PROTOCOLS as KNOWN

    bad = [n for n in names if n not in INTERLEAVED_PROTOCOLS]
    if bad:
        fail("interleave", f"--protocol {bad[0]}: unknown; choose from {', '.join(INTERLEAVED_PROTOCOLS)}")
    # The order of the registry is the dependency order (a protocol after those it requires).
    wanted = {dep for n in names for dep in (n, *KNOWN[n].requires)}
    return [p for name, p in KNOWN.items() if name in wanted]


def _table(results: dict, verdict: str, run_ids: list[int]) -> None:
    from rich.table import Table

    table = Table("metric", "A (baseline) mean", "B (candidate) mean", "B - A (better +) ± SE", "margin", "verdict")
    for m in results.values():
        a, b = (f"{sum(m.values[k]) / len(m.values[k]):.4g} ({len(m.values[k])} runs)" for k in "AB")
        diff = f"{m.test.mean:+.4g} ± {m.test.se:.2g}" if m.test else "-"
        table.add_row(m.name, a, b, diff, f"{m.margin:.4g}", m.verdict)
    console().print(table)
    model = next((m.variance_model for m in results.values() if m.test), "none")
    print(f"variance: {model}; runs stored: {run_ids[0]}..{run_ids[-1]}")
    print(f"interleaved: {verdict}")


def _writable_store(db: str | None) -> object:
    """The store the runs go to, created if missing (as `qharness run` does); exit 4 when it is unusable."""
    from harness.store import Store, StoreError, check_store, default_store_url

    try:
        return Store(check_store(db or default_store_url()))
    except StoreError as exc:
        fail("interleave", str(exc))


def _as_json(session: object, results: dict, verdict: str) -> dict:
    """The result of `--json`: the order, the stored runs and, per metric, its paired test."""
    return {
        "verdict": verdict,
        "order": "".join(session.order),
        "run_ids": session.run_ids,
        "metrics": [
            {
                "name": m.name,
                "verdict": m.verdict,
                "margin": m.margin,
                "difference": m.test.mean if m.test else None,
                "standard_error": m.test.se if m.test else None,
                "df": m.test.df if m.test else None,
                "unit": m.unit,
                "variance_model": m.variance_model,
                "baseline_runs": m.values["A"],
                "candidate_runs": m.values["B"],
            }
            for m in results.values()
        ],
    }


@app.command("interleave")
def interleave(
    profile: Annotated[str, typer.Option("--profile", help="profile of a device that can flash (name or path)")],
    build: Annotated[str, typer.Option("--build", help="candidate build (B)")],
    baseline_build: Annotated[str, typer.Option("--baseline-build", help="baseline build (A)")],
    blocks: Annotated[int, typer.Option("--blocks", help="ABBA blocks (t test on blocks - 1 df)", min=2)] = 6,
    budget: Annotated[str, typer.Option("--budget", help="quick | standard | release; a run is 1/4 of it")] = (
        "standard"
    ),
    protocol: Annotated[list[str], typer.Option("--protocol", help="repeatable; default bell and rates")] = [],  # noqa: B006
    seed: Annotated[int, typer.Option("--seed")] = 1,
    alpha: Annotated[float, typer.Option("--alpha", help="family-wise error of each verdict family (Holm)")] = 0.05,
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
) -> None:
    """Measure BUILD and BASELINE_BUILD alternately (ABBA) on one device, flashing between runs; gate the pairs."""
    from harness.devices import open_device
    from harness.interleave import InterleavedSession, flash_problem, measure_interleaved, overall, verdicts
    from harness.profiles import BUDGETS, ProfileError, load_profile

    if budget not in BUDGETS:
        fail("interleave", f"--budget {budget}: choose one of {', '.join(BUDGETS)}")
    if not 0.0 < alpha < 1.0:
        fail("interleave", f"--alpha must be in (0, 1), got {alpha}")
    protocols = _protocols(protocol or ["bell", "rates"])
    try:
        loaded = load_profile(profile)
        tolerances = loaded.effective(build).gate_tolerances()
        loaded.effective(baseline_build)
    except ProfileError as exc:
        fail("interleave", str(exc).splitlines()[0])
    problem = flash_problem(loaded.effective(baseline_build), "--profile")
    if problem is not None:
        fail("interleave", problem)
    store = _writable_store(db)
    session = InterleavedSession(loaded, baseline_build, build, blocks)
    device = open_device(loaded.effective(baseline_build), baseline_build, seed)
    with store:
        try:
            device.open()
            measure_interleaved(session, device, protocols, store, seed=seed, budget=budget)
        except NotSupportedError as exc:
            fail("interleave", f"{exc}")
        except DeviceError as exc:
            # A fault of the bench or a flash that did not take: an ERROR, never a verdict.
            print(f"interleaved: ERROR: {exc}", file=sys.stderr)
            raise typer.Exit(ExitCode.REGRESSION) from None
        finally:
            device.close()
    for name, why in session.unsupported.items():
        print(f"interleaved: {name} not measured: {why}", file=sys.stderr)
    results = verdicts(session, tolerances, alpha)
    verdict = overall(results)
    if as_json:
        out = _as_json(session, results, verdict)
        print(json.dumps(out, indent=1))
    else:
        _table(results, verdict, session.run_ids)
    if verdict == "REGRESSION":
        raise typer.Exit(ExitCode.REGRESSION)
