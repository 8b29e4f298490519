"""Exact failure-rate tests: size <= alpha by exact enumeration and by simulation at zero or few failures."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from harness.stats.exact import (
    _restricted_mle,
    _restricted_mle_bisection,
    binomial_test,
    clopper_pearson_lower,
    clopper_pearson_upper,
    fm_statistic,
    rate_upper_bound,
    two_sample_test,
    zero_failure_shots,
)

ALPHA = 0.05


def test_clopper_pearson_closed_forms_at_the_ends() -> None:
    """Zero failures: upper bound 1 - alpha^(1/n) (about 3/n); all failures: lower bound alpha^(1/n)."""
    for n in (1, 10, 1000, 200_000):
        assert clopper_pearson_upper(0, n) == pytest.approx(1 - 0.05 ** (1 / n), rel=1e-9)
        assert clopper_pearson_lower(n, n) == pytest.approx(0.05 ** (1 / n), rel=1e-9)
        assert clopper_pearson_lower(0, n) == 0.0 and clopper_pearson_upper(n, n) == 1.0
    assert rate_upper_bound(0, 200_000) == pytest.approx(3 / 200_000, rel=0.01)
    assert zero_failure_shots(1.5e-5) == math.ceil(math.log(0.05) / math.log1p(-1.5e-5))


@pytest.mark.parametrize("n", [1, 5, 20, 60])
def test_one_sample_size_by_exact_enumeration(n: int) -> None:
    """For every p0 on a grid, P(p_regression <= alpha | p0) <= alpha and P(p_pass <= alpha | p0) <= alpha."""
    x = np.arange(n + 1)
    for p0 in np.linspace(0.001, 0.999, 67):
        tests = [binomial_test(int(k), n, float(p0)) for k in x]
        pmf = stats.binom.pmf(x, n, p0)
        assert pmf[[t.p_regression <= ALPHA for t in tests]].sum() <= ALPHA + 1e-12
        assert pmf[[t.p_pass <= ALPHA for t in tests]].sum() <= ALPHA + 1e-12


def test_one_sample_pass_is_the_clopper_pearson_bound_below_p0() -> None:
    """PASS at alpha iff the 1 - alpha Clopper-Pearson upper bound is below p0; zero failures never REGRESS."""
    n = 40
    for p0 in (0.01, 0.07, 0.2):
        for k in range(n + 1):
            assert (binomial_test(k, n, p0).p_pass <= ALPHA) == (rate_upper_bound(k, n) < p0)
    zero = binomial_test(0, 200_000, 1e-4)
    assert zero.p_regression == 1.0
    assert zero.p_pass == pytest.approx((1 - 1e-4) ** 200_000)


def test_inverse_sampling_size_by_exact_enumeration() -> None:
    """Shots stopped at the r-th failure: under p = p0 both tests keep size <= alpha (negative binomial sum)."""
    for r, p0 in ((1, 0.03), (3, 0.02), (10, 0.1)):
        shots = np.arange(r, int(stats.nbinom.isf(1e-12, r, p0)) + r + 1)
        pmf = stats.nbinom.pmf(shots - r, r, p0)  # shots - r successes before the r-th failure
        tests = [binomial_test(r, int(s), p0, stopped_on_failures=True) for s in shots]
        assert pmf[[t.p_regression <= ALPHA for t in tests]].sum() <= ALPHA + 1e-9
        assert pmf[[t.p_pass <= ALPHA for t in tests]].sum() <= ALPHA + 1e-9
        assert pmf.sum() > 1 - 1e-10


def test_farrington_manning_closed_form_matches_bisection() -> None:
    """The closed-form restricted MLE is the maximiser found by bisection on the score (500 random tables)."""
    rng = np.random.default_rng(40)
    for _ in range(500):
        n1, n0 = (int(v) for v in rng.integers(1, 400, size=2))
        x1, x0 = int(rng.integers(0, n1 + 1)), int(rng.integers(0, n0 + 1))
        d = float(rng.uniform(-0.5, 0.5) * rng.choice([0.0, 1.0, 0.01]))
        fast = _restricted_mle(np.array(x1), n1, np.array(x0), n0, d)
        slow = _restricted_mle_bisection(np.array(x1, float), n1, np.array(x0, float), n0, d)
        assert float(fast) == pytest.approx(float(slow), abs=1e-9)


@pytest.mark.parametrize("margin", [-0.2, 0.0, 0.05, 0.2])
def test_farrington_manning_statistic_is_monotone(margin: float) -> None:
    """T grows with candidate failures and falls with baseline failures (the region's bisection relies on it)."""
    for n1, n0 in ((30, 30), (25, 12), (7, 40)):
        t = fm_statistic(np.arange(n1 + 1)[:, None], n1, np.arange(n0 + 1)[None, :], n0, margin)
        assert np.all(np.diff(t, axis=0) >= -1e-12)
        assert np.all(np.diff(t, axis=1) <= 1e-12)


def exact_size(n1: int, n0: int, margin: float, direction: str) -> float:
    """Return the largest rejection probability at alpha over the null boundary p1 = p0 + margin (enumeration)."""
    x1, x0 = np.arange(n1 + 1), np.arange(n0 + 1)
    reject = np.zeros((n1 + 1, n0 + 1), dtype=bool)
    for i in x1:
        for j in x0:
            t = two_sample_test(int(i), n1, int(j), n0, margin)
            reject[i, j] = (t.p_regression if direction == "regression" else t.p_pass) <= ALPHA
    worst = 0.0
    for p0 in np.linspace(max(0.0, -margin), min(1.0, 1.0 - margin), 201):
        joint = np.outer(stats.binom.pmf(x1, n1, p0 + margin), stats.binom.pmf(x0, n0, p0))
        worst = max(worst, float(joint[reject].sum()))
    return worst


@pytest.mark.parametrize(
    ("n1", "n0", "margin", "direction"),
    [(9, 9, 0.1, "regression"), (9, 9, 0.1, "pass"), (10, 6, 0.0, "regression")],
)
def test_two_sample_size_by_exact_enumeration(n1: int, n0: int, margin: float, direction: str) -> None:
    """Every outcome's p-value, then the exact size over the whole null boundary: at most alpha."""
    size = exact_size(n1, n0, margin, direction)
    assert size <= ALPHA + 1e-12
    assert size > 0.01  # not vacuous: the test does reject


@pytest.mark.slow
@pytest.mark.parametrize(
    ("n1", "n0", "margin", "direction"),
    [(20, 20, 0.0, "regression"), (20, 20, 0.05, "pass"), (25, 15, 0.1, "regression"), (15, 25, 0.02, "pass")],
)
def test_two_sample_size_by_exact_enumeration_slow(n1: int, n0: int, margin: float, direction: str) -> None:
    """Larger tables, same exact check."""
    assert exact_size(n1, n0, margin, direction) <= ALPHA + 1e-12


def simulated_size(n: int, p0: float, margin: float, direction: str, sims: int, seed: int) -> tuple[float, float]:
    """Return (rejection rate, its MC tolerance) at the null boundary p1 = p0 + margin, caching repeated tables."""
    rng = np.random.default_rng(seed)
    x1 = rng.binomial(n, p0 + margin, size=sims)
    x0 = rng.binomial(n, p0, size=sims)
    tables, counts = np.unique(np.stack([x1, x0], axis=1), axis=0, return_counts=True)
    hits = 0
    for (a, b), c in zip(tables, counts, strict=True):
        t = two_sample_test(int(a), n, int(b), n, margin)
        hits += c * ((t.p_regression if direction == "regression" else t.p_pass) <= ALPHA)
    return hits / sims, 3.0 * math.sqrt(ALPHA * (1 - ALPHA) / sims)


def test_zero_failure_baseline_false_pass_by_simulation() -> None:
    """Baseline rate 0 (always 0 failures), candidate exactly at the tolerance 1e-3, 5000 shots: false PASS <= 5%."""
    rate, tol = simulated_size(5000, 0.0, 1e-3, "pass", 100_000, seed=41)
    assert rate <= ALPHA + tol


def test_few_failures_false_regression_by_simulation() -> None:
    """Baseline 2e-4 (about 1 failure), candidate at baseline + 1e-3, 5000 shots: false REGRESSION <= 5%."""
    rate, tol = simulated_size(5000, 2e-4, 1e-3, "regression", 100_000, seed=42)
    assert rate <= ALPHA + tol


@pytest.mark.slow
@pytest.mark.parametrize("direction", ["regression", "pass"])
def test_logical_rates_at_200k_shots_by_simulation(direction: str) -> None:
    """200k shots, baseline 1e-5 (0-2 failures), tolerance 1e-4: both errors <= 5% by simulation."""
    rate, tol = simulated_size(200_000, 1e-5, 1e-4, direction, 100_000, seed=43)
    assert rate <= ALPHA + tol


def test_zero_failures_on_both_sides() -> None:
    """0 of 200k against 0 of 200k: never a REGRESSION; PASS when the tolerance is well above 3/n, not below it."""
    wide = two_sample_test(0, 200_000, 0, 200_000, 1e-4)
    assert wide.p_regression == 1.0
    assert wide.p_pass <= ALPHA
    narrow = two_sample_test(0, 200_000, 0, 200_000, 5e-6)
    assert narrow.p_pass > ALPHA
    assert narrow.method.startswith("exact unconditional")


def test_clear_regression_and_symmetry() -> None:
    """30 failures against 2 in 200k with tolerance 1e-4 is not yet a REGRESSION at 5%; 60 is. Mirror tables agree."""
    assert two_sample_test(30, 200_000, 2, 200_000, 1e-4).p_regression > ALPHA
    assert two_sample_test(60, 200_000, 2, 200_000, 1e-4).p_regression < 1e-3
    same = two_sample_test(3, 10, 3, 10, 0.0)
    assert same.p_regression == pytest.approx(same.p_pass, abs=1e-9)


def test_bad_counts_are_rejected() -> None:
    """Counts outside 0..n, a margin outside (-1, 1) or a stopped run without failures are refused."""
    with pytest.raises(ValueError, match="failures"):
        binomial_test(5, 4, 0.1)
    with pytest.raises(ValueError, match="margin"):
        two_sample_test(1, 10, 1, 10, 1.5)
    with pytest.raises(ValueError, match="stopped on failures"):
        binomial_test(0, 10, 0.1, stopped_on_failures=True)
