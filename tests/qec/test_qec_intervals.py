"""Intervals of the logical metrics: coverage of the surface headline's sum interval, and the decode-time interval."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from harness.analysis.intervals import poisson_interval
from harness.qec.intervals import DecodeTiming, sum_interval, wilson_interval

NOMINAL = 0.95
# Expected failures per basis, from "almost always zero" (P(k = 0) = 95 % at 0.05) to well-measured.
MEANS = (0.05, 0.3, 1.0, 3.0, 10.0, 40.0, 200.0)


def _support(n: int, p: float) -> tuple[np.ndarray, np.ndarray]:
    """Binomial outcomes k of n shots at p with their probabilities, tails below 1e-10 dropped."""
    lo, hi = int(stats.binom.ppf(1e-10, n, p)), int(stats.binom.isf(1e-10, n, p)) + 1
    k = np.arange(max(lo, 0), min(hi, n) + 1)
    return k, stats.binom.pmf(k, n, p)


def exact_coverage(n1: int, p1: float, n2: int, p2: float) -> float:
    """Probability that sum_interval covers p1 + p2, summed over every binomial outcome (k1, k2)."""
    k1, w1 = _support(n1, p1)
    k2, w2 = _support(n2, p2)
    low, high = sum_interval(k1[:, None], n1, k2[None, :], n2)
    covered = (low <= p1 + p2) & (p1 + p2 <= high)
    return float(w1 @ covered @ w2)


@pytest.mark.parametrize("n1", [2_000, 200_000])
@pytest.mark.parametrize("ratio", [1, 3])
def test_sum_interval_covers_at_the_nominal_rate(n1: int, ratio: int) -> None:
    # Exact coverage (the limit of infinitely many simulated runs) on a grid of expected failure counts per basis,
    # equal and unequal shot counts (memories stopping on max_errors end with different shots).
    n2 = n1 // ratio
    cov = np.array([[exact_coverage(n1, m1 / n1, n2, m2 / n2) for m2 in MEANS] for m1 in MEANS])
    assert cov.min() >= NOMINAL - 1e-3, f"coverage {cov.min():.4f} below nominal:\n{np.round(cov, 4)}"
    # Not an interval that covers by being huge: on average within 3 points of the nominal level.
    assert cov.mean() <= NOMINAL + 0.03, f"mean coverage {cov.mean():.4f}"


def test_sum_interval_covers_with_zero_failures_on_one_basis_by_simulation() -> None:
    # Seeded simulation of the headline's situation at the standard budget: the X memory sees no failure in 95 % of
    # runs (0.05 expected), the Z memory a few. 20000 runs; the binomial tolerance is 3 standard errors.
    rng = np.random.default_rng(20240611)
    runs, n = 20_000, 200_000
    p1, p2 = 3.0 / n, 0.05 / n
    k1, k2 = rng.binomial(n, p1, runs), rng.binomial(n, p2, runs)
    assert np.mean(k2 == 0) > 0.94
    low, high = sum_interval(k1, n, k2, n)
    covered = np.mean((low <= p1 + p2) & (p1 + p2 <= high))
    se = math.sqrt(NOMINAL * (1 - NOMINAL) / runs)
    assert covered >= NOMINAL - 3 * se, f"simulated coverage {covered:.4f}"


def test_sum_interval_is_garwood_for_equal_shots_and_defined_at_zero() -> None:
    # Equal weights: the sum (k1 + k2) / n is an exact Poisson rate, and Fay-Feuer reduces to Garwood.
    for k1, k2 in [(0, 0), (0, 3), (2, 5), (40, 160)]:
        low, high = sum_interval(k1, 10_000, k2, 10_000)
        g_low, g_high = poisson_interval(k1 + k2)
        assert (low, high) == pytest.approx((float(g_low) / 10_000, float(g_high) / 10_000), rel=1e-9)
    # Zero failures on both bases: the upper bound is the Garwood bound of the smaller memory.
    low, high = sum_interval(0, 300_000, 0, 100_000)
    assert low == 0.0 and high == pytest.approx(-math.log(0.025) / 100_000, rel=1e-9)
    with pytest.raises(ValueError, match="shots on both"):
        sum_interval(0, 0, 1, 10)


def test_sum_interval_is_narrower_than_adding_two_wilson_intervals_at_many_errors() -> None:
    # The variance of a sum adds, the half-widths do not: at 200 + 200 errors the combined half-width is about
    # sqrt(2) times one basis', well below the sum of two Bonferroni (97.5 %) Wilson half-widths.
    low, high = sum_interval(200, 10**6, 200, 10**6)
    w_low, w_high = wilson_interval(200, 10**6, 0.975)
    assert (high - low) < 0.8 * 2 * (w_high - w_low)
    assert low < 400 / 10**6 < high


def test_decode_timing_interval_is_student_t_of_the_chunk_means() -> None:
    x = np.array([1.10, 0.95, 1.30, 1.02, 0.98, 1.21, 1.05])
    t = DecodeTiming(len(x), float(x.sum()), float((x * x).sum()))
    low, high = t.interval(0.95)
    ref = stats.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
    assert t.mean_us == pytest.approx(x.mean()) and (low, high) == pytest.approx(ref, rel=1e-9)
    # Timing sums add (pooling runs, or a resumed run's rows): the same as timing all chunks at once.
    a = DecodeTiming(3, float(x[:3].sum()), float((x[:3] ** 2).sum()))
    b = DecodeTiming(4, float(x[3:].sum()), float((x[3:] ** 2).sum()))
    assert (a + b).interval(0.95) == pytest.approx((low, high), rel=1e-9)
    assert a + DecodeTiming() == a
    assert all(math.isnan(v) for v in DecodeTiming(1, 1.0, 1.0).interval())
    with pytest.raises(ValueError, match=">= 0"):
        DecodeTiming(-1)
