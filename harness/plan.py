"""The planner: what a budget can resolve per metric, and the tolerances that make a decisive canary.

Standard errors come from measurements: for a simulated profile (kind aer), the stand-in is measured at the
budget's base scale with the real estimators (`harness.study`, `runs` independent draws, variances averaged); for
a bench, from the newest completed runs of the profile in the results store (each metric's interval, scaled by the
budget scale its protocol was measured at). Variances scale as 1 / budget scale. The baseline is measured in the
same session (both builds re-measured at the same looks) or stored (fixed, at a stored scale).

Per metric, at the budget's looks (base doubling to its cap) and the gate's design:
- `standard_error`: the SE of one build's estimate at the budget's base scale;
- `min_detectable_regression`: the smallest true worsening (from the baseline, in the metric's unit) the gate
  flags as REGRESSION with probability `power` by the cap, with the profile's tolerance, at the level the family
  design gives the metric first (its node's share, Bonferroni within the node); null when the metric is not gated
  at this budget;
- `budget_to_pass`: the budget, as a multiple of the standard budget, at which an unchanged build PASSes the
  metric, gated alone at alpha, with probability `power` (the gate's rule for NOT_GATED);
- `recommended_tolerance`: the smallest margin with which an unchanged build's whole gated family PASSes with
  probability at least `power` at this budget: every gated metric PASSes with probability power^(1/m) (m gated
  metrics; exact for independent metrics, conservative under the positive correlation of shared counts) at the
  level gatekeeping gives it first.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from harness.gate import GateDesign
from harness.gate.design import (
    crossing_probability,
    doubling_scales,
    drift_for,
    information_fractions,
    needed_scale,
    pass_drift,
)
from harness.gate.family import Track, build_nodes, find_aliases, pass_weighting, regression_weighting
from harness.metrics import Estimate, Tolerance, metric_spec
from harness.profiles import BUDGET_CAPS, BUDGETS, LoadedProfile, Profile
from harness.session import gate_plans


class PlanError(ValueError):
    """The planner has nothing to plan from (e.g. a bench profile without stored runs); the message says why."""


@dataclass(frozen=True)
class MetricRow:
    """The planner's figures for one metric (units: the metric's own; budgets: multiples of the standard)."""

    name: str
    unit: str
    standard_error: float | None
    min_detectable_regression: float | None
    budget_to_pass: float | None
    recommended_tolerance: float | None
    tolerance: float | None
    gated: bool
    note: str = ""


@dataclass(frozen=True)
class Plan:
    """A profile's plan at one budget."""

    profile: str
    budget: str
    power: float
    baseline: str
    source: str
    metrics: list[MetricRow]

    def to_dict(self) -> dict:
        """JSON-ready form (`qharness plan --json`)."""
        return {
            **{k: v for k, v in asdict(self).items() if k != "metrics"},
            "metrics": [asdict(m) for m in self.metrics],
        }


def suite_family(profile: Profile) -> list[str]:
    """The metrics the product's suites gate for a profile: Bell, link, rates, logical success (simulated links)
    and decoder-in-the-loop (a bench with a decoder)."""
    from harness.protocols import BELL_METRICS, DECODER_METRICS, LINK_METRICS, RATE_METRICS

    names = [*BELL_METRICS, *LINK_METRICS, *RATE_METRICS]
    if profile.kind == "aer" and profile.link is not None:
        names += [f"logical_success_{c}" for c in profile.qec.codes]
    if profile.kind != "aer" and profile.bench is not None and profile.bench.decoder is not None:
        names += list(DECODER_METRICS)
    return names


def _variance(e: Estimate) -> float:
    """One estimate's variance: from its replicates, else from its interval's half-widths."""
    if e.samples is not None and len(e.samples) > 1:
        return float(np.var(np.asarray(e.samples, dtype=float), ddof=1))
    z = float(math.sqrt(2.0) * 1.3859) if e.confidence == 0.95 else None  # placeholder, replaced below
    del z
    from scipy.special import ndtri

    q = float(ndtri(0.5 + e.confidence / 2.0))
    return ((e.ci_high - e.ci_low) / (2.0 * q)) ** 2


def simulated_variances(
    profile: Profile, build: str, family: list[str], scale: float, *, runs: int = 2, seed: int = 1
) -> tuple[dict[str, float], dict[str, Estimate], dict[str, np.ndarray]]:
    """Per metric, the variance of one build's estimate at `scale` on the stand-in (mean of `runs` draws), the first
    draw's estimates and its replicates."""
    from harness.study import Side, model

    m = model(profile, build)
    draws = [Side(m, family, scale, seed, run).estimates() for run in range(runs)]
    variances = {n: float(np.mean([_variance(d[n]) for d in draws])) for n in draws[0] if n in family}
    reps = {n: np.asarray(e.samples) for n, e in draws[0].items() if e.samples is not None and n in family}
    return variances, draws[0], reps


def stored_variances(store: object, profile: str, family: list[str], scale: float) -> tuple[dict, dict, dict]:
    """Per metric, the variance at `scale` from the newest completed runs in the store (interval half-widths)."""
    from harness.protocols import protocol_for

    runs = [r for r in store.runs(profile) if r.status.completed]  # type: ignore[attr-defined]
    if not runs:
        raise PlanError(
            f"the results store has no completed run of profile {profile}: run the suites once (for example "
            "`pytest test_suites --device-profile ... --budget standard`) so the planner has standard errors"
        )
    per_unit: dict[str, list[float]] = {}
    latest: dict[str, Estimate] = {}
    for run in runs[-3:]:
        scales: dict[str, float] = {}
        for rec in store.raw_records(run.id):  # type: ignore[attr-defined]
            scales[rec["protocol"]] = scales.get(rec["protocol"], 0.0) + float(rec["payload"].get("budget_scale", 0))
        for name, (est, _, _) in store.metrics(run.id).items():  # type: ignore[attr-defined]
            proto = protocol_for(name).name if name in family else None
            if proto is None or est.n <= 0 or not scales.get(proto):
                continue
            per_unit.setdefault(name, []).append(_variance(est) * scales[proto])
            latest[name] = est
    return {n: float(np.median(v)) / scale for n, v in per_unit.items()}, latest, {}
