"""Operating characteristics of one metric gated alone, by simulation through the real `SequentialGate`.

Each run measures both builds at the budget's first scale and, while the gate keeps the metric pending, doubles
both builds' total scale up to the cap, pooling the counts: the estimate of a build at total scale s is the
scale-weighted mean of its increments, so its standard error is `se_unit / sqrt(s)` and the looks have the joint
distribution of a real session's pooled re-measurement. Estimates carry a 95 % normal interval (no replicates:
the gate reads their one-sided halves). Used by the tests of the boundaries and by benchmarks/gate_boundary.py.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
from scipy.special import ndtri

from harness.gate.design import GateDesign, doubling_scales
from harness.gate.looks import MetricPlan, SequentialGate
from harness.metrics import Direction, Estimate, Tolerance, Verdict

NAME = "metric"


def _estimate(value: float, se: float, n: int) -> Estimate:
    q = float(ndtri(0.975))
    return Estimate(value, value - q * se, value + q * se, n, "", Direction.HIGHER)


def pooled_paths(
    worse: float, *, first: float, cap: float, runs: int, seed: int, se_unit: float = 1.0
) -> tuple[tuple[float, ...], np.ndarray, np.ndarray, np.ndarray]:
    """Return the look scales, both builds' pooled estimates (runs x looks; the baseline's truth is 0, the
    candidate's -worse) and one build's standard error at each look."""
    scales = doubling_scales(first, cap)
    steps = np.diff(np.concatenate([[0.0], scales]))
    rng = np.random.default_rng(seed)
    # Increments of both builds: mean of the look's new counts, variance se_unit^2 / step.
    inc_c = -worse + rng.standard_normal((runs, steps.size)) * se_unit / np.sqrt(steps)
    inc_b = rng.standard_normal((runs, steps.size)) * se_unit / np.sqrt(steps)
    pooled_c = np.cumsum(inc_c * steps, axis=1) / scales
    pooled_b = np.cumsum(inc_b * steps, axis=1) / scales
    return scales, pooled_c, pooled_b, se_unit / np.sqrt(np.asarray(scales))


def alone(
    worse: float,
    tolerance: float,
    *,
    first: float,
    cap: float,
    runs: int,
    seed: int,
    se_unit: float = 1.0,
    design: GateDesign | None = None,
) -> list[Verdict]:
    """Return the verdicts of `runs` runs of one metric whose candidate is truly `worse` than the baseline.

    `first` and `cap` are the budget's first and largest total scale; `se_unit` is one build's standard error at
    scale 1. The tolerance is absolute, in the metric's unit (`pooled_paths` gives the numbers).
    """
    design = design or GateDesign()
    scales, pooled_c, pooled_b, se = pooled_paths(worse, first=first, cap=cap, runs=runs, seed=seed, se_unit=se_unit)
    plan = MetricPlan(tolerance=Tolerance(absolute=tolerance), max_scale=cap, primary=True)
    out = []
    for r in range(runs):
        gate = SequentialGate(design, {NAME: plan})
        for k, s in enumerate(scales):
            comp = gate.look(
                {NAME: _estimate(float(pooled_c[r, k]), float(se[k]), int(1000 * s))},
                {NAME: _estimate(float(pooled_b[r, k]), float(se[k]), int(1000 * s))},
                {NAME: (s, s)},
                final=k == len(scales) - 1,
            )[NAME]
            if NAME not in gate.pending():
                break
        out.append(comp.verdict)
    return out


def error_rates(verdicts: list[Verdict]) -> tuple[float, float]:
    """Return the shares of REGRESSION and of PASS (IMPROVED counts as PASS) among the runs."""
    counts = Counter(verdicts)
    total = len(verdicts)
    passed = counts[Verdict.PASS] + counts[Verdict.IMPROVED]
    return counts[Verdict.REGRESSION] / total, passed / total
