"""Confidence intervals: Wilson and Clopper-Pearson for proportions, Garwood for Poisson counts, percentiles."""

from __future__ import annotations

import numpy as np
from scipy import stats

from harness.analysis.validation import AnalysisError, check_confidence
from harness.metrics import Direction, Estimate, metric_spec


def _as_float_array(name: str, value: float | np.ndarray) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    if not np.all(np.isfinite(arr)):
        raise AnalysisError(f"{name}: must be finite, got NaN or infinity")
    if np.any(arr < 0):
        raise AnalysisError(f"{name}: must be >= 0, got {arr.min()}")
    return arr


def wilson_interval(k: float | np.ndarray, n: float | np.ndarray, confidence: float = 0.95) -> tuple:
    """Return the Wilson score interval (low, high) of a proportion k/n (dimensionless)."""
    c = check_confidence(confidence)
    k, n = _as_float_array("k", k), _as_float_array("n", n)
    if np.any(n <= 0) or np.any(k > n):
        raise AnalysisError("Wilson interval needs n > 0 and 0 <= k <= n")
    z = stats.norm.ppf(0.5 + c / 2)
    p = k / n
    denom = 1 + z**2 / n
    centre = (p + z**2 / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


def clopper_pearson_interval(k: int | np.ndarray, n: int | np.ndarray, confidence: float = 0.95) -> tuple:
    """Return the exact (Clopper-Pearson) interval (low, high) of a binomial proportion k/n."""
    c = check_confidence(confidence)
    k, n = _as_float_array("k", k), _as_float_array("n", n)
    if np.any(n <= 0) or np.any(k > n):
        raise AnalysisError("Clopper-Pearson interval needs n > 0 and 0 <= k <= n")
    a = (1 - c) / 2
    low = np.where(k > 0, stats.beta.ppf(a, np.maximum(k, 1e-300), n - k + 1), 0.0)
    high = np.where(k < n, stats.beta.ppf(1 - a, k + 1, np.maximum(n - k, 1e-300)), 1.0)
    return low, high


def weighted_proportions_interval(
    k: np.ndarray, n: np.ndarray, weights: np.ndarray, confidence: float = 0.95
) -> tuple[float, float]:
    """Return the score interval (low, high) of theta = sum_s w_s p_s from independent binomial counts k_s of n_s.

    The bounds solve (theta - theta_hat)^2 = z^2 sum_s w_s^2 p_s(1 - p_s)/n_s with every proportion moved by the
    same amount, p_s = clip(k_s/n_s + (theta - theta_hat)/sum_s w_s, 0, 1): one proportion gives the Wilson
    interval, and near 0 the interval stays skewed as the counts are (a normal interval would cross 0 there).
    """
    c = check_confidence(confidence)
    k, n, w = (np.asarray(a, dtype=float).ravel() for a in (k, n, weights))
    if not (k.shape == n.shape == w.shape) or np.any(n <= 0) or np.any(k < 0) or np.any(k > n) or np.any(w < 0):
        raise AnalysisError("weighted proportions need matching k, n, weights with 0 <= k <= n, n > 0, weights >= 0")
    z2 = float(stats.norm.ppf(0.5 + c / 2)) ** 2
    p_hat = k / n
    theta_hat, w_sum = float(w @ p_hat), float(w.sum())

    def excess(theta: np.ndarray) -> np.ndarray:
        p = np.clip(p_hat[None] + (theta[:, None] - theta_hat) / w_sum, 0.0, 1.0)
        return (theta - theta_hat) ** 2 - z2 * np.sum(w**2 * p * (1 - p) / n, axis=1)

    # excess <= 0 at theta_hat and > 0 at the ends of [0, sum w] (unless theta_hat sits there): bisect each side.
    lo = np.array([0.0, theta_hat])
    hi = np.array([theta_hat, w_sum])
    for _ in range(60):
        mid = (lo + hi) / 2
        out = excess(mid) > 0
        # Lower side: a point outside the interval lies below the bound; upper side: above it.
        lo = np.where([out[0], not out[1]], mid, lo)
        hi = np.where([not out[0], out[1]], mid, hi)
    inner = (lo + hi) / 2
    return float(min(inner[0], theta_hat)), float(max(inner[1], theta_hat))


def affine_proportions_estimate(
    name: str,
    offset: float,
    sign: float,
    weights: np.ndarray,
    counts: tuple[np.ndarray, np.ndarray],
    confidence: float = 0.95,
    samples: np.ndarray | None = None,
    n_total: int | None = None,
) -> Estimate:
    """Return the Estimate of offset + sign * sum_s w_s k_s/n_s, counts = (k, n), with the score interval.

    Linear in the counts, so the value is unbiased; the interval is `weighted_proportions_interval` mapped
    through the affine map. The Estimate's `n` is `n_total` (default: the counts of the settings with weight).
    """
    k, n = (np.asarray(a, dtype=float).ravel() for a in counts)
    w = np.asarray(weights, dtype=float).ravel()
    low, high = weighted_proportions_interval(k, n, w, confidence)
    ends = sorted((offset + sign * low, offset + sign * high))
    value = offset + sign * float(w @ (k / n))
    size = int(n[w > 0].sum()) if n_total is None else int(n_total)
    return make_estimate(name, value, ends[0], ends[1], size, confidence, samples)


def poisson_interval(k: int | np.ndarray, confidence: float = 0.95) -> tuple:
    """Return the exact Poisson (Garwood) interval (low, high) for the mean of an observed count k."""
    c = check_confidence(confidence)
    k = _as_float_array("count", k)
    a = (1 - c) / 2
    low = np.where(k > 0, stats.chi2.ppf(a, 2 * np.maximum(k, 1e-300)) / 2, 0.0)
    high = stats.chi2.ppf(1 - a, 2 * k + 2) / 2
    return low, high


def rate_interval(k: int | np.ndarray, duration_s: float, confidence: float = 0.95) -> tuple:
    """Return the Garwood interval (low, high) of a rate in Hz from k events over `duration_s` seconds."""
    if not np.isfinite(duration_s) or duration_s <= 0:
        raise AnalysisError(f"duration_s must be > 0, got {duration_s}")
    low, high = poisson_interval(k, confidence)
    return low / duration_s, high / duration_s


def percentile_interval(
    samples: np.ndarray, point: float, confidence: float = 0.95, bias_correct: bool = True
) -> tuple[float, float]:
    """Return the bootstrap percentile interval of `samples`, widened to the normal interval and to `point`.

    With `bias_correct` (default) the quantile levels are shifted by the median bias of the
    replicates relative to the point estimate (Efron's bias-corrected percentile interval); the
    band is still read off the replicates' own quantiles.
    """
    c = check_confidence(confidence)
    s = np.asarray(samples, dtype=float)
    s = s[np.isfinite(s)]
    if s.size == 0:
        return float("nan"), float("nan")
    levels = np.array([(1 - c) / 2, (1 + c) / 2])
    if bias_correct and np.isfinite(point):
        below = (np.sum(s < point) + 0.5 * np.sum(s == point)) / s.size
        z0 = stats.norm.ppf(np.clip(below, 0.5 / s.size, 1 - 0.5 / s.size))
        levels = stats.norm.cdf(2 * z0 + stats.norm.ppf(levels))
    low, high = np.quantile(s, levels)
    if np.isfinite(point) and s.size > 1:
        # Tail quantiles of a few hundred replicates are noisy (they cost ~1% coverage): never report
        # less than the normal interval with the bootstrap standard error.
        half = float(stats.norm.ppf((1 + c) / 2)) * float(np.std(s, ddof=1))
        low, high = min(low, point - half), max(high, point + half)
    # A biased estimator can leave the point outside its own percentile band; an Estimate must contain it.
    return float(min(low, point)), float(max(high, point))


def make_estimate(
    name: str,
    value: float,
    low: float,
    high: float,
    n: int,
    confidence: float,
    samples: np.ndarray | None = None,
    unit: str | None = None,
    direction: Direction | None = None,
) -> Estimate:
    """Build an Estimate with the unit and direction of the registered metric `name` (or the ones given)."""
    if unit is None or direction is None:
        spec = metric_spec(name)
        unit = spec.unit if unit is None else unit
        direction = spec.direction if direction is None else direction
    value, low, high = float(value), float(low), float(high)
    if np.isfinite(value):
        low, high = min(low, value), max(high, value)
    return Estimate(
        value=value,
        ci_low=low,
        ci_high=high,
        n=int(n),
        unit=unit,
        direction=direction,
        confidence=float(confidence),
        samples=None if samples is None else tuple(float(x) for x in np.asarray(samples, dtype=float)),
    )


def proportion_estimate(
    name: str, k: int, n: int, confidence: float = 0.95, method: str = "wilson", samples: np.ndarray | None = None
) -> Estimate:
    """Return an Estimate of the proportion k/n with a Wilson or Clopper-Pearson interval."""
    if method not in ("wilson", "clopper-pearson"):
        raise AnalysisError(f"method must be 'wilson' or 'clopper-pearson', got {method!r}")
    fn = wilson_interval if method == "wilson" else clopper_pearson_interval
    low, high = fn(k, n, confidence)
    return make_estimate(name, k / n, float(low), float(high), int(n), confidence, samples)
