"""Between-session variance of a metric and a test of a new session against the pooled baseline.

Model. Session i of the baseline build measures y_i = mu + u_i + e_i with a session effect u_i ~ N(0, tau^2)
(alignment, temperature, calibration drift between sessions) and shot noise e_i ~ N(0, v_i) of known variance.
tau^2 is estimated by DerSimonian–Laird (moments, closed form) or REML (Fisher scoring from the DL start, with a
bounded one-dimensional search as a fallback; tau^2 >= 0). REML is the default: it is less biased than DL when
sessions differ in length, which is the usual case on a bench.

Test of a new session. A candidate session is itself a session: y_new = mu_c + u_new + e_new. Against the
baseline's pooled mean, y_new - mu_hat has variance tau^2 + v_new + var(mu_hat) under H0 (mu_c = mu + shift):

    T = (y_new - mu_hat - shift) / sqrt(max(1, q) * (tau_hat^2 + max(v_new, v_h) + 1 / sum(w*))),  t with k - 1 df,

with w*_i = 1 / (v_i + tau_hat^2), q = sum w*_i (y_i - mu_hat)^2 / (k - 1) the Hartung–Knapp–Sidik–Jonkman
factor (floored at 1, the "modified" HKSJ of Röver et al. 2015), and v_h = k / sum(w*) - tau_hat^2 the baseline
sessions' typical (harmonic) within-session variance. Why each piece:
- t with k - 1 df carries the uncertainty of tau_hat^2 into the test. With equal sessions and v_new = v the test is
  exact: tau_hat^2 + v = s^2 (the sample variance of the k sessions) whenever tau_hat^2 > 0, q = 1, and
  T = (y_new - y_bar) / (s sqrt(1 + 1/k)) is Student's t with k - 1 df; truncating tau_hat^2 at 0 only widens it.
- The floor max(v_new, v_h): tau^2 is only known relative to the baseline sessions' own shot noise (the spread of
  the sessions estimates tau^2 + v, and tau^2 = spread - v). A candidate measured longer than a baseline session
  (v_new < v, as after the gate's re-measurement) would otherwise subtract a constant from a chi-square and lose
  degrees of freedom: with k - 1 df the size reaches 7-9% at alpha = 5% (k = 5, tau^2 ~ v, v_new = v / 10). With
  the floor, equal sessions give V_hat >= s^2 (1 + 1/k) for every v_new <= v, so T is stochastically smaller than
  t with k - 1 df: the test is provably at or below alpha. (A Satterthwaite df is the other fix: valid too, but
  far more conservative; in the equal-session simulations its power was 0.02-0.45 where this test's is 0.18-0.58.)
- The HKSJ factor scales the whole predictive variance, not only var(mu_hat): with very unequal sessions the REML
  tau_hat^2 alone under-covers (size up to 5.6%); with the factor the worst size measured over tau^2 from 0 to
  100 v and v_new from v/100 to 10 v, with sessions 100 times apart, is 5.08% (200k runs per cell, MC SE 0.05%).
The tests measure the size at k = 5 over equal and unequal sessions. DL is available, but with very unequal
sessions its tau^2 is noisier, so REML is the default.

With fewer sessions than `min_sessions` (default 2), tau^2 is unknown: the pooled mean is the inverse-variance
(shot-noise) mean, the reference is normal, and `variance_model` says that the between-session variance is unknown.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats
from scipy.optimize import minimize_scalar

_ITERATIONS = 200
_TOL = 1e-12


def _arrays(y: Sequence[float] | np.ndarray, v: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return y and v as float arrays of one shape (sessions on the last axis); raise ValueError when invalid."""
    ya, va = np.asarray(y, dtype=float), np.asarray(v, dtype=float)
    if ya.shape != va.shape or ya.ndim == 0 or ya.shape[-1] == 0:
        raise ValueError(f"one value and one variance per session are needed, got shapes {ya.shape}, {va.shape}")
    if not (np.all(np.isfinite(ya)) and np.all(np.isfinite(va)) and np.all(va > 0)):
        raise ValueError("session values must be finite and within-session variances finite and > 0")
    return ya, va


def _weighted_mean(y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Return the weighted mean over the last axis."""
    return np.sum(w * y, axis=-1) / np.sum(w, axis=-1)


def dersimonian_laird(y: Sequence[float] | np.ndarray, v: Sequence[float] | np.ndarray) -> np.ndarray:
    """Return the DerSimonian–Laird tau^2 (>= 0) over the last axis of y and v."""
    ya, va = _arrays(y, v)
    w = 1.0 / va
    mu = _weighted_mean(ya, w)
    q = np.sum(w * (ya - mu[..., None]) ** 2, axis=-1)
    c = np.sum(w, axis=-1) - np.sum(w * w, axis=-1) / np.sum(w, axis=-1)
    k = ya.shape[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(c > 0, np.maximum(0.0, (q - (k - 1)) / c), 0.0)


def restricted_loglik(tau2: float, y: Sequence[float], v: Sequence[float]) -> float:
    """Return the restricted (REML) log-likelihood of tau^2, up to a constant."""
    ya, va = _arrays(y, v)
    w = 1.0 / (va + tau2)
    mu = _weighted_mean(ya, w)
    return float(-0.5 * (np.sum(np.log(va + tau2)) + math.log(np.sum(w)) + np.sum(w * (ya - mu) ** 2)))


def _fisher_terms(y: np.ndarray, v: np.ndarray, tau2: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return y'PPy - tr(P) (twice the REML score), tr(PP) (twice the information) and w* for each row."""
    w = 1.0 / (v + tau2[..., None])
    sw, sw2, sw3 = (np.sum(w**p, axis=-1) for p in (1, 2, 3))
    mu = np.sum(w * y, axis=-1) / sw
    score = np.sum(w * w * (y - mu[..., None]) ** 2, axis=-1) - (sw - sw2 / sw)
    info = sw2 - 2.0 * sw3 / sw + (sw2 / sw) ** 2
    return score, info, w


def _reml_scalar(y: np.ndarray, v: np.ndarray) -> float:
    """Return REML tau^2 of one metric by a log-grid scan and a bounded Brent search (the robust fallback)."""
    scale = float(np.var(y) + np.max(v)) + 1e-300
    grid = np.concatenate([[0.0], scale * np.logspace(-8, 2, 61)])
    ll = [restricted_loglik(float(g), y, v) for g in grid]
    best = int(np.argmax(ll))
    lo, hi = grid[max(best - 1, 0)], grid[min(best + 1, grid.size - 1)]
    res = minimize_scalar(
        lambda x: -restricted_loglik(x, y, v), bounds=(lo, hi), method="bounded", options={"xatol": 1e-14 * scale}
    )
    return float(res.x) if -res.fun >= ll[best] else float(grid[best])


def reml(y: Sequence[float] | np.ndarray, v: Sequence[float] | np.ndarray) -> np.ndarray:
    """Return the REML tau^2 (>= 0) over the last axis of y and v (Fisher scoring, fallback to a bounded search)."""
    ya, va = _arrays(y, v)
    if ya.shape[-1] < 2:
        return np.zeros(ya.shape[:-1])
    flat_y, flat_v = ya.reshape(-1, ya.shape[-1]), va.reshape(-1, va.shape[-1])
    flat = dersimonian_laird(flat_y, flat_v)
    active = np.arange(flat.size)
    for _ in range(_ITERATIONS):
        score, info, _ = _fisher_terms(flat_y[active], flat_v[active], flat[active])
        new = np.maximum(0.0, flat[active] + score / info)
        moving = np.abs(new - flat[active]) > _TOL * (1.0 + flat[active])
        flat[active] = new
        active = active[moving]
        if active.size == 0:
            break
    for i in active:
        flat[i] = _reml_scalar(flat_y[i], flat_v[i])
    return flat.reshape(ya.shape[:-1])


@dataclass(frozen=True, eq=False)
class Pooled:
    """Pooled means of many metrics or simulations at once (arrays over the leading axes)."""

    mu: np.ndarray  # pooled mean
    tau2: np.ndarray  # between-session variance
    tau2_var: np.ndarray  # large-sample variance of tau2: 2 / tr(P^2)
    sum_w: np.ndarray  # sum of the random-effects weights 1 / (v_i + tau^2)
    hk: np.ndarray  # Hartung–Knapp factor max(1, q)
    k: int

    @property
    def var_mu(self) -> np.ndarray:
        """Return the Hartung–Knapp variance of the pooled mean, max(1, q) / sum(w*)."""
        return self.hk / self.sum_w

    @property
    def typical_v(self) -> np.ndarray:
        """Return the baseline sessions' harmonic within-session variance k / sum(w*) - tau^2."""
        return np.maximum(self.k / self.sum_w - self.tau2, 0.0)

    def predictive_var(self, v_new: float | np.ndarray) -> np.ndarray:
        """Return the variance of y_new - mu used by the test: max(1, q) (tau^2 + max(v_new, v_h) + 1 / sum(w*))."""
        return self.hk * (self.tau2 + np.maximum(v_new, self.typical_v) + 1.0 / self.sum_w)

    def statistic(self, y_new: float | np.ndarray, v_new: float | np.ndarray, shift: float = 0.0) -> np.ndarray:
        """Return T = (y_new - mu - shift) / sqrt(predictive variance), referred to t with k - 1 df."""
        return (np.asarray(y_new) - self.mu - shift) / np.sqrt(self.predictive_var(v_new))


def pool_many(y: np.ndarray, v: np.ndarray, method: str = "REML") -> Pooled:
    """Return the random-effects pools of many rows of k >= 2 sessions (rows x k), vectorised."""
    ya, va = _arrays(y, v)
    k = ya.shape[-1]
    if k < 2:
        raise ValueError("a between-session variance needs at least 2 sessions")
    m = method.upper()
    if m not in ("REML", "DL"):
        raise ValueError(f"method must be 'REML' or 'DL', got {method!r}")
    tau2 = reml(ya, va) if m == "REML" else dersimonian_laird(ya, va)
    _, info, ws = _fisher_terms(ya, va, tau2)
    sw = np.sum(ws, axis=-1)
    mu = np.sum(ws * ya, axis=-1) / sw
    q = np.sum(ws * (ya - mu[..., None]) ** 2, axis=-1) / (k - 1)
    return Pooled(mu, tau2, 2.0 / info, sw, np.maximum(1.0, q), k)


@dataclass(frozen=True)
class RandomEffectsFit:
    """The pooled baseline of one metric over its stored sessions."""

    mu: float  # pooled mean
    var_mu: float  # variance of the pooled mean used by the test
    tau2: float | None  # between-session variance; None when unknown (too few sessions)
    tau2_se: float | None  # its large-sample standard error (inverse REML information)
    k: int  # sessions
    method: str  # "REML", "DL" or "shot noise"
    q: float  # Cochran's Q of the sessions (nan with one session)
    variance_model: str
    pooled: Pooled | None = field(default=None, compare=False, repr=False)

    @property
    def i2(self) -> float:
        """Return Higgins' I^2 = (Q - (k-1)) / Q: the share of the sessions' spread between sessions."""
        if self.k < 2 or not math.isfinite(self.q) or self.q <= 0:
            return math.nan
        return max(0.0, (self.q - (self.k - 1)) / self.q)


def pool(y: Sequence[float], v: Sequence[float], method: str = "REML", *, min_sessions: int = 2) -> RandomEffectsFit:
    """Return the random-effects pool of k session values y with within-session variances v."""
    ya, va = _arrays(y, v)
    if ya.ndim != 1:
        raise ValueError("pool() takes one metric: 1-d session values and variances")
    k = ya.size
    w = 1.0 / va
    mu_fe = float(_weighted_mean(ya, w))
    q = float(np.sum(w * (ya - mu_fe) ** 2)) if k > 1 else math.nan
    if k < max(2, min_sessions):
        label = f"shot noise only (between-session variance unknown: {k} session{'s' if k != 1 else ''})"
        return RandomEffectsFit(mu_fe, float(1.0 / w.sum()), None, None, k, "shot noise", q, label)
    p = pool_many(ya[None], va[None], method)
    label = f"shot noise + between-session ({method.upper()} tau^2 from {k} sessions)"
    tau2 = float(p.tau2[0])
    return RandomEffectsFit(
        float(p.mu[0]), float(p.var_mu[0]), tau2, math.sqrt(float(p.tau2_var[0])), k, method.upper(), q, label, p
    )


@dataclass(frozen=True)
class PooledComparison:
    """A new session compared with the pooled baseline: difference, its predictive SE and one-sided p-values."""

    difference: float  # y_new - mu
    se: float  # sqrt of the predictive variance of y_new - mu
    statistic: float  # (difference - shift) / se
    df: float  # inf: normal reference
    p_greater: float  # H0: the new session's mean <= mu + shift
    p_less: float  # H0: the new session's mean >= mu + shift
    variance_model: str


def with_shift(comparison: PooledComparison, shift: float) -> PooledComparison:
    """The same comparison tested against `shift` instead (its difference, SE and reference stay as they are)."""
    ref = stats.norm if math.isinf(comparison.df) else stats.t(comparison.df)
    t = (comparison.difference - shift) / comparison.se
    return PooledComparison(
        comparison.difference,
        comparison.se,
        t,
        comparison.df,
        float(ref.sf(t)),
        float(ref.cdf(t)),
        comparison.variance_model,
    )


def compare_to_pooled(fit: RandomEffectsFit, y_new: float, v_new: float, shift: float = 0.0) -> PooledComparison:
    """Return the test of a new session (value, within-session variance) against the pooled mean plus `shift`."""
    if not (math.isfinite(y_new) and math.isfinite(v_new) and v_new >= 0):
        raise ValueError(f"the new session needs a finite value and a variance >= 0, got {y_new}, {v_new}")
    if fit.pooled is None:
        se, df, ref = math.sqrt(fit.var_mu + v_new), math.inf, stats.norm
        model = fit.variance_model
    else:
        se, df = math.sqrt(float(fit.pooled.predictive_var(v_new)[0])), float(fit.k - 1)
        ref, model = stats.t(df), f"{fit.variance_model}; t with {fit.k - 1} df"
    t = (y_new - fit.mu - shift) / se
    return PooledComparison(y_new - fit.mu, se, t, df, float(ref.sf(t)), float(ref.cdf(t)), model)
