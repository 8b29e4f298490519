"""Closed-form intervals, resampling and the percentile bootstrap."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from harness.analysis import (
    AnalysisError,
    bootstrap_estimate,
    clopper_pearson_interval,
    percentile_interval,
    poisson_interval,
    proportion_estimate,
    rate_interval,
    resample_coincidences,
    resample_multinomial,
    weighted_proportions_interval,
    wilson_interval,
)
from harness.metrics import Direction


def test_wilson_reference_values():
    low, high = wilson_interval(5, 10)
    assert (float(low), float(high)) == pytest.approx((0.236593, 0.763407), abs=1e-6)


@pytest.mark.parametrize(("k", "n"), [(0, 20), (3, 20), (20, 20), (517, 1000)])
def test_clopper_pearson_matches_scipy(k, n):
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    low, high = clopper_pearson_interval(k, n)
    assert (float(low), float(high)) == pytest.approx((ci.low, ci.high), abs=1e-9)


def test_garwood_reference_values():
    assert tuple(map(float, poisson_interval(0))) == pytest.approx((0.0, 3.688879), abs=1e-5)
    assert tuple(map(float, poisson_interval(10))) == pytest.approx((4.795389, 18.390356), abs=1e-5)
    _, high = rate_interval(10, 2.0)
    assert float(high) == pytest.approx(18.390356 / 2, abs=1e-5)


def test_percentile_interval_is_widened_to_contain_point():
    samples = np.linspace(0, 1, 1001)
    # A uniform spread: the normal interval (+-1.96 sd = +-0.566) is wider than the percentile band, so it wins.
    half = 1.959963984540054 * np.std(samples, ddof=1)
    assert percentile_interval(samples, 0.5) == pytest.approx((0.5 - half, 0.5 + half))
    low, high = percentile_interval(samples, 1.5)  # a biased point: the interval still contains it
    assert low <= 1.5 <= high and high == pytest.approx(1.5 + half)


def test_percentile_interval_keeps_a_wider_percentile_band():
    rng = np.random.default_rng(3)
    samples = rng.standard_t(df=2, size=20_000)  # heavy tails
    low, high = percentile_interval(samples, 0.0, bias_correct=False)
    q_low, q_high = np.quantile(samples, [0.025, 0.975])
    half = 1.959963984540054 * np.std(samples, ddof=1)
    assert low == pytest.approx(min(q_low, -half)) and high == pytest.approx(max(q_high, half))


def test_multinomial_resampling_keeps_row_totals():
    rng = np.random.default_rng(0)
    counts = np.array([[10, 0, 5, 5], [1, 2, 3, 4], [100, 0, 0, 0]])
    reps = resample_multinomial(counts, rng, 50)
    assert reps.shape == (50, 3, 4)
    np.testing.assert_array_equal(reps.sum(axis=-1), np.broadcast_to(counts.sum(axis=-1), (50, 3)))
    assert np.all(reps[:, 0, 1] == 0)  # zero-probability outcomes stay zero


def test_bootstrap_estimate_of_a_proportion_covers_and_labels():
    rng = np.random.default_rng(1)
    counts = np.array([[300, 700]])
    est = bootstrap_estimate(lambda c: c[:, 0, 0] / c[:, 0].sum(-1), counts, name="qber_z", rng=rng, n_boot=400)
    assert est.value == pytest.approx(0.3)
    assert est.ci_low < 0.3 < est.ci_high
    assert est.ci_high - est.ci_low == pytest.approx(2 * 1.96 * np.sqrt(0.21 / 1000), rel=0.2)
    assert est.unit == "" and est.direction is Direction.LOWER and est.n == 1000 and len(est.samples) == 400
    loop = bootstrap_estimate(lambda c: c[0, 0] / c[0].sum(), counts, name="qber_z", rng=rng, n_boot=50, batched=False)
    assert loop.value == pytest.approx(0.3)


def test_proportion_estimate_methods():
    w = proportion_estimate("qber_x", 5, 100)
    cp = proportion_estimate("qber_x", 5, 100, method="clopper-pearson")
    assert cp.ci_high > w.ci_high > 0.05
    with pytest.raises(AnalysisError, match="method"):
        proportion_estimate("qber_x", 5, 100, method="wald")


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: wilson_interval(5, 0), "n > 0"),
        (lambda: wilson_interval(-1, 10), ">= 0"),
        (lambda: clopper_pearson_interval(11, 10), "k <= n"),
        (lambda: poisson_interval(float("nan")), "finite"),
        (lambda: rate_interval(3, 0.0), "duration_s"),
        (lambda: wilson_interval(1, 2, confidence=1.5), "confidence"),
        (lambda: resample_multinomial(np.ones((2, 2)), "seed", 20), "Generator"),
        (lambda: resample_multinomial(np.ones((2, 2)), np.random.default_rng(), 3), "n_boot"),
        (lambda: resample_multinomial(np.array([[1, -1]]), np.random.default_rng(), 20), ">= 0"),
    ],
)
def test_bad_interval_input(call, match):
    with pytest.raises(AnalysisError, match=match):
        call()


@pytest.mark.parametrize(("k", "n"), [(0, 20), (3, 20), (20, 20), (517, 1000), (1, 1000)])
def test_weighted_proportions_interval_of_one_share_is_wilson(k, n):
    low, high = wilson_interval(k, n)
    assert weighted_proportions_interval([k], [n], [1.0]) == pytest.approx((float(low), float(high)), abs=1e-12)


def test_weighted_proportions_interval_is_skewed_near_zero_and_covers():
    # Three settings with 1-2 errors each: a normal interval would reach below 0, the score interval does not.
    low, high = weighted_proportions_interval([1, 2, 0], [1000, 1010, 990], [0.5, 0.5, 0.5])
    assert 0 < low < 0.0015 < high
    assert high - 0.0015 > 0.0015 - low
    # Coverage of a sum of three small shares at ~4 expected errors in all (the fidelity 0.998 corner).
    rng = np.random.default_rng(4)
    p = np.array([0.0013, 0.0013, 0.0014])
    n = np.array([1000, 1000, 1000])
    k = rng.binomial(n, p, size=(2000, 3))
    hits = [lo <= p.sum() <= hi for lo, hi in (weighted_proportions_interval(row, n, [1, 1, 1]) for row in k)]
    assert 0.93 <= np.mean(hits) <= 0.98


def test_weighted_proportions_interval_rejects_bad_input():
    with pytest.raises(AnalysisError, match="weighted proportions"):
        weighted_proportions_interval([5], [3], [1.0])
    with pytest.raises(AnalysisError, match="weighted proportions"):
        weighted_proportions_interval([1, 2], [10], [1.0])
    with pytest.raises(AnalysisError, match="weighted proportions"):
        weighted_proportions_interval([1], [10], [-1.0])


def test_coincidences_are_resampled_with_the_singles_that_contain_them():
    draws = resample_coincidences(20_000, 80_000, 40_000, np.random.default_rng(1), 4000)
    c, n_a, n_b = draws.T
    assert np.all(n_a >= c) and np.all(n_b >= c)
    # Cov(C, N_B) = Var(C): the share C/N_B is binomial given N_B, with sd sqrt(p(1-p)/N_B).
    assert np.cov(c, n_b)[0, 1] == pytest.approx(np.var(c, ddof=1), rel=0.1)
    assert np.std(c / n_b) == pytest.approx(np.sqrt(0.5 * 0.5 / 40_000), rel=0.1)
    with pytest.raises(AnalysisError, match="exceed"):
        resample_coincidences(10, 5, 20, np.random.default_rng(1), 10)
