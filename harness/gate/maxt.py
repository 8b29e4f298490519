"""Max-T within a group of metrics that share counts: one per-member level for a group-sequential family.

Westfall–Young max-T uses the joint distribution of the statistics instead of Bonferroni's worst case. Metrics of
one protocol are computed from the same counts, and their bootstrap replicates are joint (replicate i of every
metric comes from the same resampled counts), so the correlation of their differences is known. Holm would test m
such metrics at level/m each; max-T finds the largest per-member level a* at which the chance that ANY member
crosses its boundaries at ANY look, under the joint null, is still at most the group's level.

The joint null is simulated, not approximated at a single look (a single-look calibration lets the group's error
creep up to ~7 % above its level over a few looks): each member's z path has the canonical distribution over its own
information fractions, with increments correlated as the replicates say. Paths come from one fixed-seed stream
(the same numbers every run, so verdicts are reproducible). a* is taken from a grid between level/m (Bonferroni,
always valid) and the level; a grid value is accepted only when the simulated error plus 1.645 of its Monte Carlo
standard errors stays at or below the level, and correlations are floored to a 0.02 grid first, which can only
lower a* (Slepian: the chance that some member crosses grows as correlations fall).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from harness.gate.design import look_bounds
from harness.stats.sequential import Spending

PATHS = 50_000
GRID = 9
_SEED = 20240611


@lru_cache(maxsize=32)
def _normals(looks: int, members: int) -> np.ndarray:
    """Return fixed-seed standard normals of shape (PATHS, looks, members)."""
    return np.random.default_rng(_SEED).standard_normal((PATHS, looks, members))


def floored(corr: np.ndarray) -> np.ndarray | None:
    """Return the correlation matrix floored to a 0.02 grid, or None when that is not positive definite."""
    r = np.floor(np.asarray(corr, dtype=float) / 0.02) * 0.02
    np.fill_diagonal(r, 1.0)
    r = np.minimum(r, 1.0)
    try:
        np.linalg.cholesky(r)
    except np.linalg.LinAlgError:
        return None
    return r


@lru_cache(maxsize=4096)
def _calibrate(
    level: float, corr: tuple[tuple[float, ...], ...], fractions: tuple[tuple[float, ...], ...], final: bool, spending
) -> float:
    m, k = len(fractions), len(fractions[0])
    chol = np.linalg.cholesky(np.asarray(corr))
    e = _normals(k, m) @ chol.T
    t = np.asarray(fractions).T  # looks x members
    inc = np.diff(np.vstack([np.zeros(m), t]), axis=0)
    z = np.cumsum(e * np.sqrt(inc)[None], axis=1) / np.sqrt(t)[None]
    best = level / m
    for a in level / m * m ** (np.arange(1, GRID) / (GRID - 1)):
        c = np.asarray([look_bounds(f, float(a), spending, final, True) for f in fractions]).T
        p = float(np.mean(np.any(z >= c[None], axis=(1, 2))))
        if p + 1.645 * np.sqrt(max(p, 1.0 / PATHS) * (1.0 - p) / PATHS) > level:
            break
        best = float(a)
    return best


def member_level(
    level: float, corr: np.ndarray | None, fractions: Sequence[tuple[float, ...]], final: bool, spending: Spending
) -> float:
    """Return the per-member level of a group tested at `level` (Bonferroni level/m when no correlation is known)."""
    m = len(fractions)
    if m <= 1 or level <= 0.0:
        return level
    r = None if corr is None else floored(corr)
    if r is None or len({len(f) for f in fractions}) != 1:
        return level / m
    key = tuple(tuple(float(x) for x in row) for row in r)
    return _calibrate(float(level), key, tuple(tuple(f) for f in fractions), bool(final), Spending(spending))
