"""The gate's sequential design: alpha, spending, look boundaries (cached), and the power figures built on them.

Each gated metric is tested by two one-sided group-sequential tests (see `harness.stats.sequential`): REGRESSION
rejects H0: worse <= tol when z_reg = (worse - tol) / se crosses its boundary, PASS rejects H0: worse >= tol when
z_pass = (tol - worse) / se does. Looks come from re-measurement; their information fractions come from the
standard errors (`information_fractions`). Two kinds of looks:

- cumulative: each look pools the counts of the earlier ones, so the z statistics have the canonical joint
  distribution and the exact Lan–DeMets boundaries apply;
- independent: each look is a new measurement (a protocol whose re-measurement supersedes the last, or an exact
  test, whose p-values are not normal): look k is tested at the fixed-sample level of its spending increment
  alpha(t_k) - alpha(t_{k-1}) (Bonferroni over looks), which is valid under any dependence.

Pocock-type spending is the default (the reasons, with numbers, are in `harness.stats.sequential` and
docs/baselines.md): the gate is a canary whose unchanged metrics should stop at the first look.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.optimize import brentq
from scipy.special import ndtr, ndtri

from harness.stats.sequential import Spending, boundaries, exit_probabilities, spent_alpha

# Levels are capped here: a one-sided sequential test needs alpha < 1/2 (its boundaries stay positive).
_MAX_LEVEL = 0.4999


@dataclass(frozen=True)
class GateDesign:
    """Family-wise alpha, spending function, the delta's confidence, and the power of the reported figures."""

    alpha: float = 0.05
    spending: Spending = Spending.POCOCK
    confidence: float = 0.95
    power: float = 0.95
    # A binomial metric is tested exactly when either build has fewer failures (or successes) than this.
    exact_below: int = 100

    def __post_init__(self) -> None:
        """Validate alpha (a sequential one-sided test needs alpha < 1/2), confidence and power."""
        object.__setattr__(self, "spending", Spending(self.spending))
        if not 0.0 < self.alpha < 0.5:
            raise ValueError(f"alpha must be in (0, 0.5) for the gate's one-sided sequential tests, got {self.alpha}")
        if not 0.0 < self.confidence < 1.0:
            raise ValueError(f"confidence must be in (0, 1), got {self.confidence}")
        if not 0.5 < self.power < 1.0:
            raise ValueError(f"power must be in (0.5, 1), got {self.power}")


def information_fractions(
    first: tuple[float, float], scales: Sequence[tuple[float, float]], last: tuple[float, float]
) -> tuple[float, ...]:
    """Return t_k = V(last) / V(look k), V(s_c, s_b) = v_c s_c1 / s_c + v_b s_b1 / s_b from the first look's variances.

    `first` is (v_c, v_b), the variances of the candidate and baseline estimates at the first look's scales
    `scales[0]`; `last` is the scales of the largest look (the cap; a stored baseline keeps its own scale). The
    first look's standard errors are carried by the scales, so the fractions are monotone and not noisy.
    """
    v_c, v_b = first
    (c1, b1) = scales[0]

    def variance(s: tuple[float, float]) -> float:
        return v_c * c1 / s[0] + v_b * b1 / s[1]

    if v_c + v_b <= 0.0:
        return tuple(round(min(1.0, s[0] / last[0]), 4) for s in scales)
    v_last = variance(last)
    return tuple(round(min(1.0, v_last / variance(s)), 4) for s in scales)


@lru_cache(maxsize=16384)
def look_bounds(
    fractions: tuple[float, ...], level: float, spending: Spending, final: bool, cumulative: bool
) -> tuple[float, ...]:
    """Return the z boundary of each look at `level` (inf where nothing is spent); see the module docstring."""
    if level <= 0.0:
        return (math.inf,) * len(fractions)
    level = min(level, _MAX_LEVEL)
    if cumulative:
        return boundaries(fractions, level, spending, final=final)
    cum = np.asarray(spent_alpha(np.asarray(fractions), level, spending), dtype=float)
    if final or fractions[-1] >= 1.0:
        cum[-1] = level
    inc = np.diff(np.concatenate([[0.0], cum]))
    return tuple(float(ndtri(1.0 - x)) if x > 1e-15 else math.inf for x in inc)


def first_crossing(z: Sequence[float], bounds: Sequence[float]) -> int | None:
    """Return the 0-based first look whose z reaches its boundary, or None."""
    for k, (x, c) in enumerate(zip(z, bounds, strict=True)):
        if x >= c:
            return k
    return None


def _independent_exits(
    fractions: tuple[float, ...], upper: tuple[float, ...], lower: tuple[float, ...], drift: float
) -> tuple[np.ndarray, np.ndarray]:
    """Return per-look first-exit probabilities of independent looks with z_k ~ N(drift sqrt(t_k), 1)."""
    alive, up, down = 1.0, np.zeros(len(fractions)), np.zeros(len(fractions))
    for k, t in enumerate(fractions):
        mean = drift * math.sqrt(t)
        up[k] = alive * float(ndtr(mean - upper[k]))
        down[k] = alive * float(ndtr(-lower[k] - mean))
        alive -= up[k] + down[k]
    return up, down


def crossing_probability(
    drift: float,
    fractions: tuple[float, ...],
    level: float,
    other_level: float,
    spending: Spending,
    cumulative: bool = True,
) -> float:
    """Return P(a test at `level` crosses first, before the opposite test at `other_level`), E[Z at t=1] = drift."""
    up = look_bounds(fractions, level, spending, True, cumulative)
    other = look_bounds(fractions, other_level, spending, True, cumulative)
    up_c = tuple(min(c, 40.0) for c in up)
    low_c = tuple(-min(c, 40.0) for c in other)
    if cumulative:
        hit, _ = exit_probabilities(fractions, up_c, low_c, drift)
    else:
        hit, _ = _independent_exits(fractions, up_c, tuple(-x for x in low_c), drift)
    return float(np.sum(hit))


def drift_for(
    probability: float,
    fractions: tuple[float, ...],
    level: float,
    other_level: float,
    spending: Spending,
    cumulative: bool = True,
) -> float:
    """Return the drift (true distance from the tolerance in final standard errors) crossed with `probability`."""
    if level <= 0.0:
        return math.inf

    def gap(theta: float) -> float:
        return crossing_probability(theta, fractions, level, other_level, spending, cumulative) - probability

    return float(brentq(gap, -2.0, 40.0, xtol=1e-6))


def min_detectable(tol: float, se: float, level: float, bounds: Sequence[float], power: float) -> float | None:
    """Return the smallest true worsening flagged with `power` at the last look: tol + (c_K + z_power) se."""
    if level <= 0.0 or not math.isfinite(se) or not bounds or not math.isfinite(bounds[-1]):
        return None
    return tol + (bounds[-1] + float(ndtri(power))) * se


@lru_cache(maxsize=1024)
def pass_drift(
    power: float, fractions: tuple[float, ...], alpha: float, spending: Spending, cumulative: bool = True
) -> float:
    """Return the distance from the tolerance, in final standard errors, at which a metric tested alone at `alpha`
    PASSes with probability `power` by its last look (cached: it depends only on the design)."""
    return drift_for(power, fractions, alpha, alpha, spending, cumulative)


def doubling_scales(first: float, cap: float) -> tuple[float, ...]:
    """Return the total scales of looks that double from `first` up to `cap` (the last look at the cap)."""
    out = [first]
    while out[-1] * 2.0 <= cap * (1.0 + 1e-9):
        out.append(out[-1] * 2.0)
    if out[-1] < cap * (1.0 - 1e-9):
        out.append(cap)
    return tuple(out)


def needed_scale(
    tol: float, variances: tuple[float, float], scales: tuple[float, float], fixed_baseline: bool, se_needed: float
) -> float | None:
    """Return the candidate scale at which the SE of the difference falls to `se_needed` (None: unreachable).

    Both builds re-measured: variances scale as 1/scale; a stored baseline keeps its own variance, so no candidate
    scale helps once that variance alone is too large.
    """
    v_c, v_b = variances
    s_c, s_b = scales
    target = se_needed * se_needed
    if tol <= 0.0 or target <= 0.0:
        return None
    if not fixed_baseline:
        return s_c * (v_c + v_b * s_b / s_c) / target if v_c + v_b > 0 else s_c
    room = target - v_b
    return None if room <= 0.0 else s_c * v_c / room
