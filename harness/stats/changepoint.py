"""Change points in a metric's history across builds: PELT (ruptures) with a penalty calibrated to a false rate.

Model. The history y_1..y_n (one value per build, oldest first) is piecewise constant plus noise: between-session
drift and shot noise, together roughly Gaussian with one SD sigma. PELT (Killick et al. 2012, `ruptures.Pelt`,
cost "l2", every position a candidate: jump 1) finds the segmentation minimising the within-segment sum of squares
of z = (y - mean) / sigma plus `penalty` per change point, exactly.

Penalty. An unchanged history has at least one change point exactly when `penalty` < P* = max over m >= 1 of
(C_0 - C_m) / m, with C_m the least cost with m change points. `calibrated_penalty(n)` is the (1 - false_rate)
quantile of P* over seeded i.i.d. standard normal histories of length n (C_m by dynamic programming, vectorised),
so an unchanged history of length n is flagged with probability `false_rate` (the Monte Carlo quantile's own
error is about 0.3% in rate at the default 4000 histories).

Sigma. Given (say, from the pooled baseline's between-session variance plus a session's shot noise), or else
estimated from the history itself as sqrt(var(diff(y)) / 2): unbiased under no change, insensitive to a constant
drift per build, and only inflated by steps. The detector with an estimated sigma is free of location and scale,
so its calibration on standard normals is exact for Gaussian noise; it is calibrated separately from the known-sigma
case, whose penalty is lower (more power) but which is only honest when sigma really is known.

Why ruptures: maintained, BSD, numpy >= 2 compatible; MongoDB's signal-processing-algorithms (E-Divisive means)
pins numpy < 2, which this project's other dependencies have left behind.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

MIN_SIZE = 2  # a change needs two builds on each side: one odd session is the gate's business, not a change point
MAX_CHANGES = 8  # change points searched by the calibration (P* is reached at 1 or 2 in practice)
MAX_LENGTH = 100  # longer histories are cut to their newest builds (bounds the calibration's memory)
CALIBRATION_RUNS = 4000
_CHUNK = 250  # calibration histories per dynamic-programming pass (memory ~ chunk x n^2)


@dataclass(frozen=True)
class ChangePoints:
    """Change points of one history: indices where a new segment starts, with the segment means."""

    indices: tuple[int, ...]  # index (into the history given) of the first build of each new segment
    means: tuple[float, ...]  # mean of each segment, oldest first (len(indices) + 1 of them)
    sigma: float
    sigma_known: bool
    penalty: float
    n: int

    @property
    def count(self) -> int:
        """The number of change points."""
        return len(self.indices)


def _segment_costs(z: np.ndarray) -> np.ndarray:
    """Return cost[..., i, j] = sum of squares of z[..., i:j] about its mean (inf where j - i < MIN_SIZE)."""
    n = z.shape[-1]
    zero = np.zeros((*z.shape[:-1], 1))
    s1 = np.concatenate([zero, np.cumsum(z, axis=-1)], axis=-1)
    s2 = np.concatenate([zero, np.cumsum(z * z, axis=-1)], axis=-1)
    i, j = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
    length = np.where(j - i > 0, j - i, 1)
    d1 = s1[..., None, :] - s1[..., :, None]
    cost = (s2[..., None, :] - s2[..., :, None]) - d1 * d1 / length
    return np.where(j - i >= MIN_SIZE, cost, np.inf)


def break_even_penalty(z: np.ndarray) -> np.ndarray:
    """Return P* per row of z (rows x n): the largest penalty at which the optimal segmentation still has a change."""
    z = np.atleast_2d(np.asarray(z, dtype=float))
    n = z.shape[-1]
    cost = _segment_costs(z)
    best = cost[:, 0, :]  # best[:, j]: least cost of z[:j] with m change points (m = 0 here)
    c0 = best[:, n]
    p_star = np.zeros(z.shape[0])
    for m in range(1, min(MAX_CHANGES, n // MIN_SIZE - 1) + 1):
        new = np.full_like(best, np.inf)
        for j in range((m + 1) * MIN_SIZE, n + 1):
            i = np.arange(m * MIN_SIZE, j - MIN_SIZE + 1)
            new[:, j] = np.min(best[:, i] + cost[:, i, j], axis=-1)
        best = new
        p_star = np.maximum(p_star, (c0 - best[:, n]) / m)
    return p_star


@lru_cache(maxsize=256)
def calibrated_penalty(n: int, false_rate: float = 0.05, sigma_known: bool = False, seed: int = 20_151) -> float:
    """Return the penalty at which an unchanged history of n builds shows a change point with prob. `false_rate`."""
    if n < 2 * MIN_SIZE:
        return math.inf  # no change point fits
    if not 0.0 < false_rate < 1.0:
        raise ValueError(f"false_rate must be in (0, 1), got {false_rate}")
    y = np.random.default_rng([seed, n]).standard_normal((CALIBRATION_RUNS, n))
    z = y if sigma_known else _standardise(y)
    p_star = np.concatenate([break_even_penalty(z[i : i + _CHUNK]) for i in range(0, CALIBRATION_RUNS, _CHUNK)])
    return float(np.quantile(p_star, 1.0 - false_rate))


def history_sigma(y: np.ndarray) -> np.ndarray:
    """Return sqrt(var(diff(y)) / 2) over the last axis: the noise SD of a history, blind to a constant drift."""
    d = np.diff(y, axis=-1)
    return np.sqrt(np.var(d, axis=-1, ddof=1) / 2.0)


def _standardise(y: np.ndarray, sigma: float | np.ndarray | None = None) -> np.ndarray:
    """Return (y - mean) / sigma over the last axis, sigma estimated from the history when not given."""
    s = history_sigma(y) if sigma is None else np.asarray(sigma, dtype=float)
    s = np.where(s > 0, s, np.inf)  # a flat history has no change
    return (y - y.mean(axis=-1, keepdims=True)) / np.asarray(s)[..., None]


def detect(
    values: Sequence[float], *, sigma: float | None = None, false_rate: float = 0.05, penalty: float | None = None
) -> ChangePoints:
    """Return the change points of one metric's history (oldest first), PELT at the calibrated penalty."""
    import ruptures

    y = np.asarray(values, dtype=float)
    if y.ndim != 1 or not np.all(np.isfinite(y)):
        raise ValueError("a history is a 1-d sequence of finite values, oldest first")
    if sigma is not None and not (math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be a finite number > 0, got {sigma}")
    offset = max(0, y.size - MAX_LENGTH)
    y = y[offset:]
    n = y.size
    pen = calibrated_penalty(n, false_rate, sigma is not None) if penalty is None else float(penalty)
    s = float(history_sigma(y)) if sigma is None and n > 2 else (sigma or 0.0)
    if n < 2 * MIN_SIZE or not s > 0 or not math.isfinite(pen):
        return ChangePoints((), (float(y.mean()) if n else math.nan,), s, sigma is not None, pen, n)
    z = (y - y.mean()) / s
    ends = ruptures.Pelt(model="l2", min_size=MIN_SIZE, jump=1).fit(z).predict(pen=pen)
    starts = [0, *ends[:-1]]
    means = tuple(float(y[a:b].mean()) for a, b in zip(starts, ends, strict=True))
    return ChangePoints(tuple(offset + e for e in ends[:-1]), means, s, sigma is not None, pen, n)
