"""The summary JSON contract, built from the results store so every writer (pytest, xdist, report) agrees.

Schema: {"profile", "build", "baseline_build", "seed", "budget", "verdict",
         "metrics": [{"name", "value", "ci_low", "ci_high", "n", "unit", "direction",
                      "baseline": {...} | null, "delta": {...} | null, "verdict"}]}
"""

from __future__ import annotations

from harness.gate import Verdict, overall_verdict
from harness.store import RunRow, Store

_METRIC_KEYS = ("name", "value", "ci_low", "ci_high", "n", "unit", "direction", "baseline", "delta", "verdict")
# Bulky evidence (density matrices, memory counts) kept in a metric's stored detail for the report; not the contract.
_NOT_SUMMARISED = frozenset({"artifacts"})


def run_summary(store: Store, run: RunRow) -> dict:
    """The summary object of one candidate run."""
    metrics = []
    for name, (est, verdict, detail) in sorted(store.metrics(run.id).items()):
        entry = {k: v for k, v in (detail or {}).items() if k not in _NOT_SUMMARISED}
        entry.update(
            name=name,
            value=est.value,
            ci_low=est.ci_low,
            ci_high=est.ci_high,
            n=est.n,
            unit=est.unit,
            direction=str(est.direction),
            verdict=verdict or str(Verdict.NO_BASELINE),
        )
        entry.setdefault("baseline", None)
        entry.setdefault("delta", None)
        metrics.append({k: entry[k] for k in _METRIC_KEYS} | {k: v for k, v in entry.items() if k not in _METRIC_KEYS})
    verdicts = [Verdict(m["verdict"]) for m in metrics]
    top = overall_verdict(verdicts) if verdicts else Verdict.ERROR
    if run.status == "error" and top is not Verdict.REGRESSION:
        top = Verdict.ERROR
    return {
        "profile": run.profile,
        "build": run.build,
        "baseline_build": run.baseline_build,
        "seed": run.seed,
        "budget": run.budget,
        "verdict": str(top),
        "metrics": metrics,
    }


def candidate_runs(store: Store, session_id: str) -> list[RunRow]:
    """The newest candidate run of each profile in a pytest session (xdist workers share the session id)."""
    latest: dict[str, RunRow] = {}
    for run in store.runs():
        if run.session_id == session_id and run.provenance.get("role") == "candidate":
            latest[run.profile] = run
    return list(latest.values())


def session_summary(store: Store, session_id: str) -> dict | list[dict]:
    """One summary object for one profile, a list for several."""
    objs = [run_summary(store, r) for r in candidate_runs(store, session_id)]
    return objs[0] if len(objs) == 1 else objs
