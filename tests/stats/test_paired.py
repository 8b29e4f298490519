"""ABBA interleaving: exact cancellation of a linear drift and the size of the paired t test."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from harness.stats.paired import abba_order, block_differences, paired_test


def test_abba_order() -> None:
    """Two blocks run A B B A A B B A."""
    assert "".join(abba_order(2)) == "ABBAABBA"
    with pytest.raises(ValueError):
        abba_order(0)


def test_linear_drift_cancels_exactly_without_noise() -> None:
    """A steep drift of 5 units per run and an effect of 0.3: every ABBA block difference is 0.3 to 1e-12."""
    t = np.arange(24, dtype=float)
    is_b = np.array([c == "B" for c in abba_order(6)])
    values = 100.0 + 5.0 * t + 0.3 * is_b
    assert block_differences(values) == pytest.approx(np.full(6, 0.3), abs=1e-12)
    baab = np.array(list("BAAB" * 6))
    values_baab = 100.0 + 5.0 * t + 0.3 * (baab == "B")
    assert block_differences(values_baab, baab) == pytest.approx(np.full(6, 0.3), abs=1e-12)
    # Alternating AB AB leaves the drift in: each B run comes one step later than its A run.
    abab = np.array(list("ABAB" * 6))
    with pytest.raises(ValueError, match="ends match"):
        block_differences(100.0 + 5.0 * t + 0.3 * (abab == "B"), abab)


def test_linear_drift_plus_noise_leaves_only_noise() -> None:
    """With drift and noise the block differences equal those of the noise alone (drift removed exactly)."""
    rng = np.random.default_rng(30)
    t = np.arange(32, dtype=float)
    is_b = np.array([c == "B" for c in abba_order(8)])
    noise = rng.normal(0, 0.05, size=32)
    with_drift = block_differences(3.0 - 0.7 * t + 0.1 * is_b + noise)
    without = block_differences(0.1 * is_b + noise)
    assert with_drift == pytest.approx(without, abs=1e-12)
    got = paired_test(with_drift, shift=0.0)
    assert got.df == 7 and got.blocks == 8
    assert got.mean == pytest.approx(0.1, abs=4 * 0.05 / math.sqrt(8))


def test_paired_t_test_size_under_drift_by_simulation() -> None:
    """20k sessions of 6 blocks, random linear drifts and noise, no effect: size of the 5% test within MC error."""
    rng = np.random.default_rng(31)
    n, blocks = 20_000, 6
    t = np.arange(4 * blocks, dtype=float)
    slopes = rng.normal(0, 2.0, size=(n, 1))
    values = slopes * t + rng.normal(0, 1.0, size=(n, 4 * blocks))
    d = values.reshape(n, blocks, 4) @ np.array([-0.5, 0.5, 0.5, -0.5])
    p = np.array([paired_test(row).p_greater for row in d[:2000]])
    mean, se = d.mean(axis=1), d.std(axis=1, ddof=1) / math.sqrt(blocks)
    p_all = stats.t.sf(mean / se, blocks - 1)
    assert p == pytest.approx(p_all[:2000], abs=1e-12)
    tol = 3.0 * math.sqrt(0.05 * 0.95 / n)
    assert np.mean(p_all <= 0.05) == pytest.approx(0.05, abs=tol)


def test_paired_test_p_values_and_errors() -> None:
    """Known t statistic; identical differences; too few blocks or bad labels are refused."""
    got = paired_test([0.1, 0.3, 0.2, 0.4], shift=0.1)
    assert got.statistic == pytest.approx((0.25 - 0.1) / (np.std([0.1, 0.3, 0.2, 0.4], ddof=1) / 2))
    assert got.p_greater + got.p_less == pytest.approx(1.0)
    assert paired_test([0.2, 0.2]).p_greater == 0.0
    assert "3 df" in got.variance_model
    with pytest.raises(ValueError, match="at least 2"):
        paired_test([0.1])
    with pytest.raises(ValueError, match="4 runs per block"):
        block_differences([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="two 'A' and two 'B'"):
        block_differences([1, 2, 3, 4], list("AAAB"))
