"""Sessions of several builds under one between-session variance: two builds compared, and a trend across releases.

On a drifting bench one candidate session carries a whole session's offset, so no number of baseline sessions can
make its comparison sharper than that offset's SD. Measuring the candidate in several sessions is the remedy, and
then both builds are pooled; a release history measured that way shows a slow decline (creep) as a trend.

Model. Session i measures y_i = x_i' beta + u_i + e_i: x_i says which build it is (a group indicator, or a
release's position for a trend), u_i ~ N(0, tau^2) is the session effect common to all builds (the drift is the
bench's, not the firmware's), e_i ~ N(0, v_i) the shot noise of known variance. tau^2 is the REML estimate of this
meta-regression:

    l_R(tau^2) = -1/2 [ sum_i log(v_i + tau^2) + log det(X' W X) + (y - X beta)' W (y - X beta) ],

with W = diag(1 / (v_i + tau^2)) and beta the weighted least-squares fit. A contrast c' beta has variance
q c' (X' W X)^-1 c with the Hartung–Knapp factor q = (y - X beta)' W (y - X beta) / (k - p), floored at 1 (the
"modified" HKSJ), and the reference is t with k - p degrees of freedom (k sessions, p coefficients).

Why it is valid: with equal within-session variances v, REML gives tau^2 + v = s^2, the residual mean square of
ordinary least squares, whenever that exceeds v; then q = 1 and the statistic is exactly the t statistic of the
ordinary regression (for two builds: Student's two-sample t with k - 2 df). When s^2 < v, tau^2 = 0, q < 1 is
floored at 1 and the variance used (from v) is larger than s^2: the test only gets more conservative. Unequal
sessions are weighted by REML and scaled by the HKSJ factor, as in the one-sample test
(`harness.stats.random_effects`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats
from scipy.optimize import minimize_scalar

from harness.stats.random_effects import PooledComparison, _arrays


def _wls(y: np.ndarray, v: np.ndarray, x: np.ndarray, tau2: np.ndarray) -> tuple[np.ndarray, ...]:
    """At each tau^2 of an array: beta, X'WX, the weighted residual sum of squares and sum log(v + tau^2)."""
    w = 1.0 / (v + np.asarray(tau2, dtype=float)[..., None])
    xtwx = np.einsum("...k,ki,kj->...ij", w, x, x)
    beta = np.linalg.solve(xtwx, np.einsum("...k,ki,k->...i", w, x, y)[..., None])[..., 0]
    resid = y - np.einsum("ki,...i->...k", x, beta)
    return beta, xtwx, np.sum(w * resid**2, axis=-1), np.sum(np.log(1.0 / w), axis=-1)


def restricted_loglik(tau2: float | np.ndarray, y: np.ndarray, v: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The REML log-likelihood of tau^2 (a value or an array of them), up to a constant."""
    _, xtwx, ss, logdet = _wls(y, v, x, tau2)
    return -0.5 * (logdet + np.linalg.slogdet(xtwx)[1] + ss)


def reml_tau2(y: np.ndarray, v: np.ndarray, x: np.ndarray) -> float:
    """REML tau^2 >= 0 of the meta-regression: a log-grid scan refined by a bounded Brent search."""
    _, _, ss0, _ = _wls(y, np.ones_like(v), x, np.float64(0.0))
    scale = float(ss0) / max(y.size - x.shape[1], 1) + float(np.max(v)) + 1e-300
    grid = np.concatenate([[0.0], scale * np.logspace(-8, 2, 61)])
    ll = restricted_loglik(grid, y, v, x)
    best = int(np.argmax(ll))
    lo, hi = grid[max(best - 1, 0)], grid[min(best + 1, grid.size - 1)]
    res = minimize_scalar(
        lambda t: -float(restricted_loglik(t, y, v, x)),
        bounds=(lo, hi),
        method="bounded",
        options={"xatol": 1e-14 * scale},
    )
    return float(res.x) if -res.fun >= ll[best] else float(grid[best])


def contrast_test(
    y: Sequence[float], v: Sequence[float], x: np.ndarray, contrast: Sequence[float], shift: float, model: str
) -> PooledComparison:
    """Test c' beta against `shift` in the meta-regression of sessions y (variances v) on design x (k x p)."""
    ya, va = _arrays(y, v)
    xa = np.asarray(x, dtype=float)
    k, p = xa.shape
    if ya.shape != (k,) or k <= p or np.linalg.matrix_rank(xa) < p:
        raise ValueError(f"{k} sessions cannot fit {p} coefficients with degrees of freedom left")
    tau2 = reml_tau2(ya, va, xa)
    beta, xtwx, ss, _ = _wls(ya, va, xa, np.float64(tau2))
    c = np.asarray(contrast, dtype=float)
    hk = max(1.0, float(ss) / (k - p))
    se = math.sqrt(hk * float(c @ np.linalg.solve(xtwx, c)))
    estimate = float(c @ beta)
    t = (estimate - shift) / se
    ref = stats.t(k - p)
    return PooledComparison(estimate, se, t, float(k - p), float(ref.sf(t)), float(ref.cdf(t)), model)


def compare_groups(
    y_a: Sequence[float],
    v_a: Sequence[float],
    y_b: Sequence[float],
    v_b: Sequence[float],
    shift: float = 0.0,
) -> PooledComparison:
    """Test mu_b against mu_a + shift, each build pooled over its sessions (REML tau^2, HKSJ t with k - 2 df)."""
    ka, kb = len(y_a), len(y_b)
    if ka < 1 or kb < 1 or ka + kb < 3:
        raise ValueError(f"two groups of sessions with at least 3 in all are needed, got {ka} and {kb}")
    x = np.column_stack([np.ones(ka + kb), np.r_[np.zeros(ka), np.ones(kb)]])
    model = f"REML over {ka} baseline + {kb} candidate sessions, HKSJ t with {ka + kb - 2} df"
    return contrast_test([*y_a, *y_b], [*v_a, *v_b], x, [0.0, 1.0], shift, model)


def trend_change(
    positions: Sequence[float], y: Sequence[float], v: Sequence[float], at: float, shift: float = 0.0
) -> PooledComparison:
    """Test the fitted linear change from position 0 to `at` (slope x at) against `shift`; sessions at `positions`."""
    pos = np.asarray(positions, dtype=float)
    x = np.column_stack([np.ones(pos.size), pos])
    model = f"REML trend over {pos.size} sessions, HKSJ t with {pos.size - 2} df"
    return contrast_test(y, v, x, [0.0, at], shift, model)
