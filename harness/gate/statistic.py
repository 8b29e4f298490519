"""The test statistic of one metric at one look: how much worse the candidate is, and its standard errors.

Standard errors never come from an interval's width / 3.92. In order of preference:
- both builds carry bootstrap replicates (`Estimate.samples`): the SD of their paired differences (the two sets
  are independent, so this is the SD of the difference);
- otherwise each build on its own: the SD of its replicates, else the one-sided half of its interval on the side
  that matters, divided by the normal quantile of the interval's confidence. For the REGRESSION test that is the
  side that could make the candidate look worse than it is (a higher-is-better candidate's upper half, its
  baseline's lower half); for the PASS test the other side. A stored baseline has no replicates (none are
  persisted), so its halves are used.
A binomial metric (`Estimate.binomial` on both builds) with few failures is tested exactly instead
(`harness.stats.exact.two_sample_test`, valid at zero failures); its p-values are turned into z values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri

from harness.metrics import Direction, Estimate
from harness.stats.exact import two_sample_test

NORMAL_METHOD = "normal, bootstrap replicates"
HALVES_METHOD = "normal, one-sided interval halves"
EXACT_METHOD = "exact binomial (unconditional)"


@dataclass(frozen=True)
class LookStat:
    """One look at one metric: the worsening, its standard errors per side, z values, and the delta to report."""

    worse: float  # candidate worse than the baseline by this much, in the metric's unit (negative: better)
    se_reg: float  # SE of `worse` on the side the REGRESSION test needs
    se_pass: float  # SE of `worse` on the side the PASS test needs
    tol: float
    delta: Estimate  # candidate - baseline with its interval at the design's confidence
    method: str
    p_reg: float | None = None  # exact tests only
    p_pass: float | None = None
    p_sup: float | None = None  # exact test of "better than the baseline" (IMPROVED)

    @property
    def se(self) -> float:
        """The larger of the two one-sided standard errors (for reports and minimum detectable effects)."""
        return max(self.se_reg, self.se_pass)

    @property
    def z_reg(self) -> float:
        """z of H0: worse <= tol (large: regressed)."""
        if self.p_reg is not None:
            return _z_of_p(self.p_reg)
        return _ratio(self.worse - self.tol, self.se_reg)

    @property
    def z_pass(self) -> float:
        """z of H0: worse >= tol (large: within the tolerance)."""
        if self.p_pass is not None:
            return _z_of_p(self.p_pass)
        return _ratio(self.tol - self.worse, self.se_pass, tie=True)

    @property
    def z_sup(self) -> float:
        """z of H0: worse >= 0 (large: better than the baseline)."""
        if self.p_sup is not None:
            return _z_of_p(self.p_sup)
        return _ratio(-self.worse, self.se_pass)


def _z_of_p(p: float) -> float:
    """Return the z value of a one-sided p-value (inf at 0, -inf at 1)."""
    return float(ndtri(1.0 - min(max(p, 0.0), 1.0)))


def _ratio(x: float, se: float, *, tie: bool = False) -> float:
    """Return x / se; exact numbers (se = 0) decide on the sign of x, x = 0 counting as crossed when `tie`."""
    if se > 0.0:
        return x / se
    return math.inf if x > 0 or (tie and x == 0) else -math.inf


def _quantile(confidence: float) -> float:
    return float(ndtri(0.5 + confidence / 2.0))


def _halves(e: Estimate) -> tuple[float, float]:
    """Return the (lower, upper) one-sided standard errors of an estimate from its interval halves."""
    z = _quantile(e.confidence)
    return (e.value - e.ci_low) / z, (e.ci_high - e.value) / z


def _sd(samples: tuple[float, ...] | None) -> float | None:
    if samples is None or len(samples) < 2:
        return None
    s = np.asarray(samples, dtype=float)
    s = s[np.isfinite(s)]
    return float(np.std(s, ddof=1)) if s.size > 1 else None


def side_errors(candidate: Estimate, baseline: Estimate) -> tuple[float, float, float, float, str]:
    """Return (candidate SE for REGRESSION, baseline's, candidate SE for PASS, baseline's, method).

    See the module docstring for the order of preference; sides are oriented by the metric's direction.
    """
    c_low, c_high = _halves(candidate)
    b_low, b_high = _halves(baseline)
    higher = candidate.direction == Direction.HIGHER
    # REGRESSION: worse could be smaller than measured; for higher-is-better that is a higher candidate or a lower
    # baseline.
    c_reg, c_pass = (c_high, c_low) if higher else (c_low, c_high)
    b_reg, b_pass = (b_low, b_high) if higher else (b_high, b_low)
    method = HALVES_METHOD
    sc, sb = _sd(candidate.samples), _sd(baseline.samples)
    if sc is not None:
        c_reg = c_pass = sc
        method = NORMAL_METHOD
    if sb is not None:
        b_reg = b_pass = sb
    return c_reg, b_reg, c_pass, b_pass, method


def _paired_sd(candidate: Estimate, baseline: Estimate) -> float | None:
    cs, bs = candidate.samples, baseline.samples
    if cs is None or bs is None or len(cs) != len(bs) or len(cs) < 2:
        return None
    d = np.asarray(cs, dtype=float) - np.asarray(bs, dtype=float)
    d = d[np.isfinite(d)]
    return float(np.std(d, ddof=1)) if d.size > 1 else None


def _delta(candidate: Estimate, baseline: Estimate, se_reg: float, se_pass: float, confidence: float) -> Estimate:
    """Return candidate - baseline with a one-sided-halves interval at `confidence`."""
    d = candidate.value - baseline.value
    z = _quantile(confidence)
    # worse = -d for higher-is-better: the REGRESSION side bounds d from above.
    up, down = (se_reg, se_pass) if candidate.direction == Direction.HIGHER else (se_pass, se_reg)
    return Estimate(
        value=d,
        ci_low=d - z * down,
        ci_high=d + z * up,
        n=min(candidate.n, baseline.n),
        unit=candidate.unit,
        direction=candidate.direction,
        confidence=confidence,
    )


def is_exact(candidate: Estimate, baseline: Estimate, tol: float, below: int) -> bool:
    """True when both builds carry binomial counts and one has fewer than `below` failures or successes."""
    if candidate.binomial is None or baseline.binomial is None or not -1.0 < tol < 1.0:
        return False
    (x1, n1), (x0, n0) = candidate.binomial, baseline.binomial
    return min(x1, x0, n1 - x1, n0 - x0) < below


def _exact(candidate: Estimate, baseline: Estimate, tol: float, below: int) -> tuple[float, float, float] | None:
    """Return exact (p_reg, p_pass, p_sup) of two binomial estimates with few failures or successes, else None."""
    if not is_exact(candidate, baseline, tol, below):
        return None
    (x1, n1), (x0, n0) = candidate.binomial, baseline.binomial  # type: ignore[misc]
    test = two_sample_test(x1, n1, x0, n0, tol)
    sup = two_sample_test(x1, n1, x0, n0, 0.0).p_pass if tol > 0.0 else test.p_pass
    return test.p_regression, test.p_pass, sup


def look_stat(candidate: Estimate, baseline: Estimate, tol: float, confidence: float, exact_below: int) -> LookStat:
    """Return the test statistic of one metric at one look (the tolerance `tol` in the metric's unit)."""
    d = candidate.value - baseline.value
    worse = -d if candidate.direction == Direction.HIGHER else d
    paired = _paired_sd(candidate, baseline)
    if paired is not None:
        se_reg = se_pass = paired
        method = NORMAL_METHOD
    else:
        c_reg, b_reg, c_pass, b_pass, method = side_errors(candidate, baseline)
        se_reg, se_pass = math.hypot(c_reg, b_reg), math.hypot(c_pass, b_pass)
    delta = _delta(candidate, baseline, se_reg, se_pass, confidence)
    exact = _exact(candidate, baseline, tol, exact_below)
    if exact is not None:
        return LookStat(worse, se_reg, se_pass, tol, delta, EXACT_METHOD, *exact)
    return LookStat(worse, se_reg, se_pass, tol, delta, method)
