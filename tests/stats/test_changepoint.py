"""Tests of change points across builds: the calibration's exact search, the false rate, and what PELT finds."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from harness.stats import changepoint as cp


def _brute_force_p_star(z: np.ndarray) -> float:
    """P* by enumerating every segmentation with segments of at least MIN_SIZE (ground truth for small n)."""
    n = z.size

    def cost(segs: list[tuple[int, int]]) -> float:
        return sum(float(np.sum((z[a:b] - z[a:b].mean()) ** 2)) for a, b in segs)

    c0 = cost([(0, n)])
    best = 0.0
    for m in range(1, n // cp.MIN_SIZE):
        for cuts in itertools.combinations(range(cp.MIN_SIZE, n - cp.MIN_SIZE + 1), m):
            bounds = [0, *cuts, n]
            segs = list(itertools.pairwise(bounds))
            if all(b - a >= cp.MIN_SIZE for a, b in segs):
                best = max(best, (c0 - cost(segs)) / m)
    return best


def test_the_calibration_search_is_exact_against_enumeration() -> None:
    z = np.random.default_rng(3).standard_normal((6, 9))
    z[2, 5:] += 3.0  # one clear step
    z[4] = np.r_[0, 0, 4, 4, 0, 0, 4, 4, 0]  # several
    found = cp.break_even_penalty(z)
    assert found == pytest.approx([_brute_force_p_star(row) for row in z], rel=1e-10)


def test_pelt_agrees_with_the_break_even_penalty() -> None:
    z = np.random.default_rng(5).standard_normal(10)
    p_star = float(cp.break_even_penalty(z)[0])
    assert cp.detect(z, sigma=1.0, penalty=p_star * 0.999).count >= 1
    assert cp.detect(z, sigma=1.0, penalty=p_star * 1.001).count == 0


@pytest.mark.parametrize("known", [False, True])
@pytest.mark.parametrize("n", [5, 8, 15])
def test_unchanged_histories_are_flagged_at_the_calibrated_rate(n: int, known: bool) -> None:
    # Fresh seeds (not the calibration's): 1500 drifting histories of one metric, sigma 0.004 around 0.94.
    rng = np.random.default_rng(100 + n)
    runs, sigma = 1500, 0.004
    y = 0.94 + sigma * rng.standard_normal((runs, n))
    rate = np.mean([cp.detect(row, sigma=sigma if known else None).count > 0 for row in y])
    se = math.sqrt(0.05 * 0.95 / runs)
    assert 0.05 - 3.5 * se <= rate <= 0.05 + 3 * se


def test_a_step_is_found_where_it_is_with_the_segment_means() -> None:
    rng = np.random.default_rng(11)
    y = np.r_[np.full(6, 0.95), np.full(5, 0.93)] + 0.002 * rng.standard_normal(11)
    for sigma in (None, 0.002):
        found = cp.detect(y, sigma=sigma)
        assert found.indices == (6,)
        assert found.means == pytest.approx((y[:6].mean(), y[6:].mean()))
        assert found.sigma_known is (sigma is not None)


def test_a_steady_creep_is_found_in_a_long_history() -> None:
    y = 0.95 - 0.003 * np.arange(12) + 0.002 * np.random.default_rng(2).standard_normal(12)
    assert cp.detect(y).count >= 1


def test_short_flat_and_bad_histories() -> None:
    assert cp.detect([0.9, 0.8, 0.7]).count == 0  # no room for two segments of two
    assert math.isinf(cp.calibrated_penalty(3))
    assert cp.detect([0.9] * 10).count == 0  # a flat history has no noise and no change
    with pytest.raises(ValueError, match="finite values"):
        cp.detect([0.9, math.nan, 0.9, 0.9])
    with pytest.raises(ValueError, match="sigma must be"):
        cp.detect([0.9, 0.8, 0.9, 0.8], sigma=0.0)
    with pytest.raises(ValueError, match="false_rate"):
        cp.calibrated_penalty(8, 1.5)


def test_a_long_history_is_cut_to_its_newest_builds_and_indexed_in_full() -> None:
    n = cp.MAX_LENGTH + 30
    y = np.zeros(n)
    y[-10:] = -1.0
    y += 0.01 * np.random.default_rng(4).standard_normal(n)
    found = cp.detect(y)
    assert found.n == cp.MAX_LENGTH and found.indices == (n - 10,)
