"""Operating characteristics of the gate: false-alarm rate and power, simulated at the metric level.

Running the whole suite hundreds of times is too slow for a test run, so a study measures each
build's metric family once with the real protocols and estimators (on the Aer stand-in), takes
each metric's mean and standard error from that, and then replays many seeded runs of the gate
(the same `harness.gate.evaluate`, Holm across the family, and the same doubling re-measurement
of INCONCLUSIVE metrics up to the budget's cap) with metric values drawn from those normals.
Metrics are drawn independently; the real ones are positively correlated, under which Holm's
family-wise error is lower still, so the simulated false-alarm rate is an upper bound.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from harness.gate import Verdict, evaluate
from harness.metrics import Estimate, Tolerance
from harness.profiles import BUDGET_CAPS, BUDGETS, Profile
from harness.protocols import MeasureContext, protocols_for


@dataclass(frozen=True)
class MetricModel:
    """A metric's sampling distribution at the budget's base scale: mean, standard error, and its Estimate."""

    mean: float
    se: float
    template: Estimate


def measure_family(profile: Profile, build: str, metrics: Iterable[str], *, scale: float, seed: int) -> dict:
    """Measure the protocols behind `metrics` once on the Aer stand-in; return metric -> Estimate."""
    from harness.devices.aer import AerDevice

    metrics = set(metrics)
    device = AerDevice(profile, build=build, seed=seed)
    device.open()
    raws: dict[str, object] = {}
    out: dict[str, Estimate] = {}
    try:
        for call, proto in enumerate(protocols_for(metrics)):
            ctx = MeasureContext(profile, scale, seed, profile.measurement.bootstrap, build=build, call=call)
            raws[proto.name] = proto.measure(device, ctx)
            found = proto.estimate(raws[proto.name], ctx, {d: raws[d] for d in proto.requires})
            out.update({k: v for k, v in found.items() if k in metrics})
    finally:
        device.close()
    return out


def model_family(
    profile: Profile, build: str, metrics: Iterable[str], *, budget: str, seed: int, mean_scale: float = 16.0
) -> dict[str, MetricModel]:
    """Each metric's mean (from a long measurement) and standard error (at the budget's scale)."""
    metrics = list(metrics)
    at_budget = measure_family(profile, build, metrics, scale=BUDGETS[budget], seed=seed)
    long = measure_family(profile, build, metrics, scale=BUDGETS[budget] * mean_scale, seed=seed + 1)
    return {m: MetricModel(long[m].value, at_budget[m].standard_error, at_budget[m]) for m in metrics}


def _draw(model: MetricModel, rng: np.random.Generator, se: float) -> Estimate:
    value = float(model.mean + se * rng.standard_normal())
    half = float(norm.ppf(0.5 + model.template.confidence / 2)) * se
    t = model.template
    return Estimate(value, value - half, value + half, t.n, t.unit, t.direction, t.confidence)


@dataclass(frozen=True)
class StudyResult:
    """Outcome of many simulated gate runs: how often the run failed, per-metric regression counts."""

    runs: int
    failed_runs: int
    regressions: dict[str, int]
    inconclusive_runs: int
    mean_scale: float  # average final budget scale (1 = the budget's base) after re-measurement

    @property
    def rate(self) -> float:
        """Share of runs with at least one REGRESSION."""
        return self.failed_runs / self.runs

    def interval(self, confidence: float = 0.95) -> tuple[float, float]:
        """Wilson interval of the rate."""
        from harness.analysis.intervals import wilson_interval

        low, high = wilson_interval(self.failed_runs, self.runs, confidence)
        return float(low), float(high)


def simulate_gate(
    candidate: dict[str, MetricModel],
    baseline: dict[str, MetricModel],
    tolerances: dict[str, Tolerance],
    *,
    runs: int,
    budget: str,
    alpha: float = 0.05,
    seed: int = 0,
) -> StudyResult:
    """Replay `runs` seeded gate runs; INCONCLUSIVE metrics are re-measured (pooled doubling) up to the cap."""
    rng = np.random.default_rng(seed)
    cap = BUDGET_CAPS[budget]
    failed, inconclusive, total_scale = 0, 0, 0.0
    regressions = dict.fromkeys(candidate, 0)
    for _ in range(runs):
        scale = dict.fromkeys(candidate, 1.0)
        cand = {m: _draw(candidate[m], rng, candidate[m].se) for m in candidate}
        base = {m: _draw(baseline[m], rng, baseline[m].se) for m in baseline}
        while True:
            comps = evaluate(cand, base, tolerances, alpha=alpha)
            retry = [m for m, c in comps.items() if c.verdict is Verdict.INCONCLUSIVE and 2 * scale[m] <= cap]
            if not retry:
                break
            for m in retry:
                # Pooling an equal amount of new data halves the variance of both sides.
                for side, models in ((cand, candidate), (base, baseline)):
                    se_new = models[m].se / np.sqrt(scale[m])
                    fresh = _draw(models[m], rng, se_new)
                    pooled = 0.5 * (side[m].value + fresh.value)
                    half = 0.5 * (side[m].ci_high - side[m].ci_low) / np.sqrt(2)
                    t = side[m]
                    side[m] = Estimate(pooled, pooled - half, pooled + half, t.n * 2, t.unit, t.direction, t.confidence)
                scale[m] *= 2
        verdicts = {m: c.verdict for m, c in comps.items()}
        for m, v in verdicts.items():
            regressions[m] += v is Verdict.REGRESSION
        failed += any(v is Verdict.REGRESSION for v in verdicts.values())
        inconclusive += any(v is Verdict.INCONCLUSIVE for v in verdicts.values())
        total_scale += float(np.mean(list(scale.values())))
    return StudyResult(runs, failed, regressions, inconclusive, total_scale / runs)
