"""The summary JSON contract, built from the results store so every writer (pytest, xdist, report) agrees.

Schema: {"profile", "build", "baseline_build", "seed", "budget", "status", "verdict", "headline",
         "metrics": [{"name", "value", "ci_low", "ci_high", "n", "unit", "direction",
                      "baseline": {...} | null, "delta": {...} | null, "verdict", "error"}]}
"""

from __future__ import annotations

import math

from harness.gate import Verdict, overall_verdict
from harness.metrics import Estimate
from harness.store import RunRow, RunStatus, Store

_METRIC_KEYS = ("name", "value", "ci_low", "ci_high", "n", "unit", "direction", "baseline", "delta", "verdict", "error")
# Bulky evidence (density matrices, memory counts) kept in a metric's stored detail for the report; not the contract.
_NOT_SUMMARISED = frozenset({"artifacts"})


def _number(x: float) -> float | None:
    """A stored number for JSON: an unmeasured metric's NaN becomes null."""
    return None if math.isnan(x) else x


def _metric_entry(name: str, est: Estimate, verdict: str | None, detail: dict | None) -> dict:
    """One metric of the summary: the contract's keys first, then the rest of its stored detail."""
    entry = {k: v for k, v in (detail or {}).items() if k not in _NOT_SUMMARISED}
    entry.update(
        name=name,
        value=_number(est.value),
        ci_low=_number(est.ci_low),
        ci_high=_number(est.ci_high),
        n=est.n,
        unit=est.unit,
        direction=str(est.direction),
        verdict=verdict or str(Verdict.NO_BASELINE),
    )
    entry.setdefault("baseline", None)
    entry.setdefault("delta", None)
    entry.setdefault("error", None)
    return {k: entry[k] for k in _METRIC_KEYS} | {k: v for k, v in entry.items() if k not in _METRIC_KEYS}


def run_verdict(run: RunRow, verdicts: list[Verdict]) -> Verdict:
    """A run's overall verdict: NO_BASELINE when nothing was compared; ERROR for a run that ended in error."""
    top = overall_verdict(verdicts) if verdicts else Verdict.ERROR
    if run.status in (RunStatus.ERROR, RunStatus.ABORTED, RunStatus.RUNNING) and top is not Verdict.REGRESSION:
        return Verdict.ERROR
    return top


def headline(summary: dict) -> str:
    """The one line that states a run's outcome, e.g. "build 2.4.0 vs 2.3.0: PASS"."""
    build, baseline, verdict = summary["build"], summary["baseline_build"], summary["verdict"]
    if summary["status"] == RunStatus.ABORTED:
        return f"build {build} vs {baseline}: aborted (interrupted; raw records kept)"
    if build == baseline:
        # The baseline build measured as the build under test is never compared with itself.
        done = "nothing compared" if verdict == Verdict.NO_BASELINE else str(verdict)
        return f"measured baseline {build}; {done}"
    if verdict == Verdict.NO_BASELINE:
        missing = "no baseline build" if baseline is None else f"no measurement of baseline {baseline}"
        return f"build {build}: NO_BASELINE ({missing} to compare with)"
    return f"build {build} vs {baseline}: {verdict}"


def run_summary(store: Store, run: RunRow) -> dict:
    """The summary object of one candidate run."""
    metrics = [_metric_entry(name, *row) for name, row in sorted(store.metrics(run.id).items())]
    obj = {
        "profile": run.profile,
        "build": run.build,
        "baseline_build": run.baseline_build,
        "seed": run.seed,
        "budget": run.budget,
        "status": str(run.status),
        "verdict": str(run_verdict(run, [Verdict(m["verdict"]) for m in metrics])),
        "metrics": metrics,
    }
    obj["headline"] = headline(obj)
    return obj


def candidate_runs(store: Store, session_id: str) -> list[RunRow]:
    """The newest candidate run of each profile in a pytest session (xdist workers share the session id)."""
    latest: dict[str, RunRow] = {}
    for run in store.runs():
        if run.session_id == session_id and run.provenance.get("role") == "candidate":
            latest[run.profile] = run
    return list(latest.values())


def session_summary(store: Store, session_id: str) -> dict | list[dict]:
    """One summary object for one profile, a list for several."""
    from harness.baselines import change_point_count

    objs = [run_summary(store, r) for r in candidate_runs(store, session_id)]
    for obj in objs:
        # Creep shows as change points in each metric's history across builds (harness.stats.changepoint).
        obj["change_points"] = change_point_count(store, obj["profile"])
    return objs[0] if len(objs) == 1 else objs
