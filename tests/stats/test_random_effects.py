"""Between-session variance: DL by hand, REML against a published example and brute force, size of the test."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from harness.stats.random_effects import (
    _reml_scalar,
    compare_to_pooled,
    dersimonian_laird,
    pool,
    pool_many,
    reml,
    restricted_loglik,
)

# BCG vaccine trials (Colditz et al. 1994; metafor's dat.bcg): TB cases and non-cases, vaccinated and control arms.
TPOS = np.array([4, 6, 3, 62, 33, 180, 8, 505, 29, 17, 186, 5, 27])
TNEG = np.array([119, 300, 228, 13536, 5036, 1361, 2537, 87886, 7470, 1699, 50448, 2493, 16886])
CPOS = np.array([11, 29, 11, 248, 47, 372, 10, 499, 45, 65, 141, 3, 29])
CNEG = np.array([128, 274, 209, 12619, 5761, 1079, 619, 87892, 7232, 1600, 27197, 2338, 17825])
BCG_Y = np.log(TPOS / (TPOS + TNEG)) - np.log(CPOS / (CPOS + CNEG))
BCG_V = 1 / TPOS - 1 / (TPOS + TNEG) + 1 / CPOS - 1 / (CPOS + CNEG)


def test_dersimonian_laird_by_hand_balanced() -> None:
    """y = (0, 1, 3), v = 1: mu_FE = 4/3, Q = 42/9, c = 3 - 1 = 2, tau^2 = (42/9 - 2) / 2 = 4/3."""
    fit = pool([0, 1, 3], [1, 1, 1], "DL")
    assert fit.tau2 == pytest.approx(4 / 3, abs=1e-12)
    assert fit.q == pytest.approx(42 / 9, abs=1e-12)
    assert fit.mu == pytest.approx(4 / 3, abs=1e-12)
    # w* = 3/7 each: var(mu) = 7/9; the Hartung-Knapp factor is exactly 1 here.
    assert fit.var_mu == pytest.approx(7 / 9, abs=1e-12)


def test_dersimonian_laird_by_hand_unbalanced_and_truncated() -> None:
    """y = (0, 4), v = (1, 3): Q = 4, c = 1/2, tau^2 = 6, mu_RE = 1.75, var = 63/16; y = (0, 2): tau^2 = 0."""
    fit = pool([0, 4], [1, 3], "DL")
    assert fit.tau2 == pytest.approx(6.0, abs=1e-12)
    assert fit.mu == pytest.approx(1.75, abs=1e-12)
    assert fit.var_mu == pytest.approx(63 / 16, abs=1e-12)
    assert float(dersimonian_laird([0, 2], [1, 3])) == 0.0


def test_published_bcg_example() -> None:
    """metafor's rma() on dat.bcg: REML tau^2 0.3132 (SE 0.1664), mu -0.7145 (SE 0.1798; Knapp-Hartung 0.1808);
    DL tau^2 0.3088, mu -0.7141 (SE 0.1787)."""
    fit = pool(BCG_Y, BCG_V)
    assert (fit.tau2, fit.tau2_se, fit.mu) == pytest.approx((0.3132, 0.1664, -0.7145), abs=1e-4)
    assert math.sqrt(fit.var_mu) == pytest.approx(0.1808, abs=1e-4)
    w = 1 / (BCG_V + fit.tau2)
    assert math.sqrt(1 / w.sum()) == pytest.approx(0.1798, abs=1e-4)
    dl = pool(BCG_Y, BCG_V, "DL")
    w = 1 / (BCG_V + dl.tau2)
    assert (dl.tau2, dl.mu, math.sqrt(1 / w.sum())) == pytest.approx((0.3088, -0.7141, 0.1787), abs=1e-4)


def brute_force_loglik(grid: np.ndarray, y: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The restricted log-likelihood on a grid of tau^2, written out independently of the module."""
    s = v[None, :] + grid[:, None]
    w = 1.0 / s
    mu = (w * y).sum(axis=1) / w.sum(axis=1)
    return -0.5 * (np.log(s).sum(axis=1) + np.log(w.sum(axis=1)) + (w * (y - mu[:, None]) ** 2).sum(axis=1))


def test_reml_is_the_brute_force_maximum_of_the_restricted_likelihood() -> None:
    """On 60 random data sets REML (Fisher scoring) matches a dense-grid maximisation of the likelihood."""
    rng = np.random.default_rng(20)
    for _ in range(60):
        k = int(rng.integers(3, 9))
        v = rng.uniform(0.05, 3.0, size=k)
        y = rng.normal(0, np.sqrt(v + rng.choice([0.0, 0.2, 2.0])))
        got = float(reml(y, v))
        grid = np.concatenate([[0.0], np.linspace(1e-6, 4.0 * (np.var(y) + v.max()), 20_001)])
        ll = brute_force_loglik(grid, y, v)
        at = brute_force_loglik(np.array([got, 0.0]), y, v)
        assert restricted_loglik(got, y, v) - restricted_loglik(0.0, y, v) == pytest.approx(at[0] - at[1], abs=1e-9)
        assert at[0] >= ll.max() - 1e-9
        assert got == pytest.approx(grid[np.argmax(ll)], abs=grid[2] - grid[1])
        assert got == pytest.approx(_reml_scalar(y, v), abs=1e-6 * (1 + got))


def size(y_sessions: np.ndarray, v: np.ndarray, y_new: np.ndarray, v_new: float, floor: bool = True) -> float:
    """Return P(p_greater <= 0.05) of the candidate test (or of its unfloored, unscaled variant) over rows."""
    pooled = pool_many(y_sessions, np.broadcast_to(v, y_sessions.shape))
    unfloored = (y_new - pooled.mu) / np.sqrt(pooled.tau2 + pooled.var_mu + v_new)
    t = pooled.statistic(y_new, v_new) if floor else unfloored
    return float(np.mean(stats.t.sf(t, y_sessions.shape[1] - 1) <= 0.05))


def simulate(rng, n: int, v: np.ndarray, tau2: float, v_new: float) -> tuple[np.ndarray, np.ndarray]:
    """Return n rows of k baseline sessions and n candidate sessions of the same mean (H0 at its boundary)."""
    y = rng.standard_normal((n, v.size)) * np.sqrt(tau2 + v)
    return y, rng.standard_normal(n) * math.sqrt(tau2 + v_new)


N_SIM = 20_000
MC = 3.0 * math.sqrt(0.05 * 0.95 / N_SIM)


def test_size_is_exact_with_equal_sessions() -> None:
    """k = 5 equal sessions, candidate like a baseline session, tau^2 = 10 v: size within MC error of 5%."""
    rng = np.random.default_rng(21)
    v = np.ones(5)
    y, y_new = simulate(rng, N_SIM, v, 10.0, 1.0)
    assert size(y, v, y_new, 1.0) == pytest.approx(0.05, abs=MC)
    assert size(-y, v, -y_new, 1.0) == pytest.approx(0.05, abs=MC)


def test_a_precise_candidate_needs_the_floor() -> None:
    """Why v_new is floored at the sessions' own: tau^2 = v, v_new = v/10 gives ~7% without it, <= 5% with it."""
    rng = np.random.default_rng(22)
    v = np.ones(5)
    y, y_new = simulate(rng, N_SIM, v, 1.0, 0.1)
    assert size(y, v, y_new, 0.1, floor=False) > 0.06
    assert size(y, v, y_new, 0.1) <= 0.05 + MC


SCENARIOS = [
    (np.ones(5), 1.0, 1.0),
    (np.ones(5), 1.0, 0.1),
    (np.array([0.1, 0.3, 1, 3, 10]), 3.0, 0.25),
    (np.array([0.1, 0.3, 1, 3, 10]), 10.0, 1.0),
    (np.array([0.05, 0.05, 0.05, 0.05, 5]), 10.0, 0.1),
    (np.array([1, 1, 1, 1, 10]), 0.3, 1.0),
]


@pytest.mark.parametrize(("v", "tau2", "v_new"), SCENARIOS)
def test_size_at_most_alpha_over_scenarios(v: np.ndarray, tau2: float, v_new: float) -> None:
    """k = 5, REML: size <= alpha + 3 MC SE with equal sessions and with sessions 10 and 100 times apart."""
    rng = np.random.default_rng(23)
    y, y_new = simulate(rng, N_SIM, v, tau2, v_new)
    assert size(y, v, y_new, v_new) <= 0.05 + MC


@pytest.mark.slow
@pytest.mark.parametrize("v", [np.ones(5), np.array([0.1, 0.3, 1, 3, 10]), np.array([0.05] * 4 + [5.0])], ids=str)
def test_size_grid_slow(v: np.ndarray) -> None:
    """200k rows per cell, tau^2 from 0 to 100 v, v_new from v/100 to 10 v: size <= alpha + 3 MC SE."""
    rng = np.random.default_rng(24)
    worst = 0.0
    for tau2 in (0.0, 0.1, 0.3, 1.0, 3.0, 10.0, 100.0):
        for v_new in (0.01, 0.1, 1.0, 10.0):
            y, y_new = simulate(rng, 200_000, v, tau2, v_new)
            worst = max(worst, size(y, v, y_new, v_new))
    assert worst <= 0.05 + 3.0 * math.sqrt(0.05 * 0.95 / 200_000)


def test_vectorised_and_single_comparisons_agree() -> None:
    """compare_to_pooled on one metric gives the statistic, df and p-value of the vectorised pool."""
    rng = np.random.default_rng(25)
    v = rng.uniform(0.1, 1.0, size=6)
    y = rng.normal(0, np.sqrt(v + 0.5))
    fit = pool(y, v)
    got = compare_to_pooled(fit, 1.2, 0.3, shift=0.1)
    many = pool_many(y[None], v[None])
    assert got.statistic == pytest.approx(float(many.statistic(1.2, 0.3, 0.1)[0]))
    assert got.df == 5
    assert got.p_greater == pytest.approx(stats.t.sf(got.statistic, got.df))
    assert got.p_greater + got.p_less == pytest.approx(1.0)
    assert "REML tau^2 from 6 sessions" in got.variance_model and "df" in got.variance_model


def test_too_few_sessions_say_the_between_session_variance_is_unknown() -> None:
    """One session (or fewer than asked for): shot noise only, a normal reference, and the verdict says so."""
    fit = pool([0.3], [0.01])
    assert fit.tau2 is None and fit.variance_model == "shot noise only (between-session variance unknown: 1 session)"
    got = compare_to_pooled(fit, 0.5, 0.01)
    assert math.isinf(got.df)
    assert got.p_greater == pytest.approx(stats.norm.sf(0.2 / math.sqrt(0.02)))
    two = pool([0.3, 0.4], [0.01, 0.01], min_sessions=3)
    assert two.variance_model == "shot noise only (between-session variance unknown: 2 sessions)"
    assert two.mu == pytest.approx(0.35)


def test_bad_inputs_are_rejected() -> None:
    """Variances must be positive and one per session; the method must be known."""
    with pytest.raises(ValueError, match="variances"):
        pool([1.0, 2.0], [1.0, 0.0])
    with pytest.raises(ValueError, match="one value and one variance"):
        pool([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="method"):
        pool([1.0, 2.0], [1.0, 1.0], "ML")
