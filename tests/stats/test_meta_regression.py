"""Sessions of several builds under one between-session variance: closed forms, size under drift, power, trends."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from harness.stats.meta_regression import compare_groups, reml_tau2, trend_change


def _groups(ka: int, kb: int) -> np.ndarray:
    return np.column_stack([np.ones(ka + kb), np.r_[np.zeros(ka), np.ones(kb)]])


def test_equal_sessions_give_student_two_sample_t() -> None:
    # Spread well above the shot noise: REML tau^2 + v = the pooled within-group variance, exactly Student's t.
    a = np.array([0.951, 0.957, 0.944, 0.962, 0.949])
    b = np.array([0.941, 0.930, 0.947])
    v = 1e-6
    res = compare_groups(a, [v] * 5, b, [v] * 3, shift=-0.002)
    ref = stats.ttest_ind(b + 0.002, a, equal_var=True, alternative="less")
    assert res.statistic == pytest.approx(float(ref.statistic), rel=1e-6)
    assert res.p_less == pytest.approx(float(ref.pvalue), rel=1e-6)
    assert res.df == 6 and res.difference == pytest.approx(b.mean() - a.mean(), rel=1e-9)
    sp2 = (np.var(a, ddof=1) * 4 + np.var(b, ddof=1) * 2) / 6
    assert reml_tau2(np.r_[a, b], np.full(8, v), _groups(5, 3)) == pytest.approx(sp2 - v, rel=1e-6)
    assert res.variance_model == "REML over 5 baseline + 3 candidate sessions, HKSJ t with 6 df"


def test_sessions_tighter_than_their_shot_noise_are_not_trusted() -> None:
    # Spread below the shot noise: tau^2 = 0 and the shot noise, not the small spread, sets the standard error.
    a, b = np.array([0.950, 0.9501, 0.9499]), np.array([0.9500, 0.9502])
    v = 1e-4
    res = compare_groups(a, [v] * 3, b, [v] * 2)
    assert reml_tau2(np.r_[a, b], np.full(5, v), _groups(3, 2)) == 0.0
    assert res.se == pytest.approx(math.sqrt(v * (1 / 3 + 1 / 2)), rel=1e-9)


def test_size_at_most_alpha_under_drift_and_power_of_three_candidate_sessions() -> None:
    # Ground truth: session SD 4x the shot noise (a drifting bench); 5 baseline and 3 candidate sessions; seeded.
    rng = np.random.default_rng(11)
    runs, tau, se = 1000, 0.004, 0.001
    rates = {}
    for drop in (0.0, 0.012):
        y_a = rng.normal(0, tau, (runs, 5)) + rng.normal(0, se, (runs, 5))
        y_b = -drop + rng.normal(0, tau, (runs, 3)) + rng.normal(0, se, (runs, 3))
        hits = sum(compare_groups(y_a[i], [se**2] * 5, y_b[i], [se**2] * 3).p_less <= 0.05 for i in range(runs))
        rates[drop] = hits / runs
    assert rates[0.0] <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / runs)
    # A drop of 3 session SDs: the power of Student's two-sample t with 6 df (exact here up to tau^2 truncation).
    sd = math.hypot(tau, se)
    expected = float(stats.nct.sf(stats.t.ppf(0.95, 6), 6, 0.012 / (sd * math.sqrt(1 / 5 + 1 / 3))))
    assert rates[0.012] == pytest.approx(expected, abs=0.04)
    assert rates[0.012] > 0.9


def test_a_trend_over_equal_sessions_is_ordinary_regression() -> None:
    # Releases 0..5, three sessions each, declining 0.002 per release with a session SD of 0.004.
    rng = np.random.default_rng(2)
    x = np.repeat(np.arange(6), 3).astype(float)
    y = 0.9 - 0.002 * x + rng.normal(0, 0.004, x.size)
    res = trend_change(x, y, [1e-8] * x.size, at=5, shift=-0.0036)
    fit = stats.linregress(x, y)
    assert res.difference == pytest.approx(5 * fit.slope, rel=1e-6)
    assert res.se == pytest.approx(5 * fit.stderr, rel=1e-6) and res.df == 16
    assert res.p_less == pytest.approx(float(stats.t.cdf((5 * fit.slope + 0.0036) / (5 * fit.stderr), 16)), rel=1e-6)
    assert res.variance_model == "REML trend over 18 sessions, HKSJ t with 16 df"


def test_too_few_sessions_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 3 in all"):
        compare_groups([1.0], [0.1], [1.0], [0.1])
    with pytest.raises(ValueError, match="cannot fit 2 coefficients"):
        trend_change([0.0, 0.0, 0.0], [1.0, 1.1, 0.9], [0.1] * 3, at=1)
