"""Interleaved A/B sessions in ABBA blocks: paired block differences that cancel a slow linear drift.

A bench drifts (alignment, temperature, detector efficiency), so measuring all of build A and then all of build B
confounds the drift with the builds. Interleaving in blocks A B B A, each run the same length and equally spaced,
makes the block difference d = (B1 + B2 - A1 - A2) / 2 free of any drift that is linear within the block: the
mean times of the two A runs and of the two B runs coincide (t0 + t3 = t1 + t2). Blocks repeat (ABBA ABBA ...),
and the block differences are tested with Student's t on blocks - 1 degrees of freedom, so whatever the drift
leaves over (curvature, a random walk) and the shot noise both enter through the spread between blocks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

BLOCK = ("A", "B", "B", "A")


def abba_order(blocks: int) -> tuple[str, ...]:
    """Return the run order of an interleaved session: 'A', 'B', 'B', 'A' repeated `blocks` times."""
    if blocks < 1:
        raise ValueError(f"an interleaved session needs at least one block, got {blocks}")
    return BLOCK * blocks


def block_differences(values: Sequence[float], order: Sequence[str] | None = None) -> np.ndarray:
    """Return per block mean(B runs) - mean(A runs) for values in run order (ABBA blocks unless `order` is given)."""
    x = np.asarray(values, dtype=float)
    if x.ndim != 1 or x.size == 0 or x.size % 4:
        raise ValueError(f"an interleaved session has 4 runs per block, got {x.size} values")
    labels = np.asarray(abba_order(x.size // 4) if order is None else tuple(order))
    if labels.shape != x.shape:
        raise ValueError(f"{x.size} values but {labels.size} labels")
    blocks = labels.reshape(-1, 4)
    if not np.all((blocks == "A").sum(axis=1) == 2) or not np.all((blocks == "B").sum(axis=1) == 2):
        raise ValueError("each block of 4 runs must hold two 'A' and two 'B' runs (ABBA or BAAB)")
    if not np.all(blocks[:, 0] == blocks[:, 3]):
        raise ValueError("a block must be ABBA or BAAB: a linear drift cancels only when the ends match")
    runs = x.reshape(-1, 4)
    return np.where(blocks == "B", runs, 0.0).sum(axis=1) / 2.0 - np.where(blocks == "A", runs, 0.0).sum(axis=1) / 2.0


@dataclass(frozen=True)
class PairedTest:
    """A one-sample t test of block differences (B - A) against `shift`."""

    mean: float
    se: float
    df: int
    statistic: float
    p_greater: float  # H0: mean difference <= shift
    p_less: float  # H0: mean difference >= shift
    blocks: int
    variance_model: str


def paired_test(differences: Sequence[float], shift: float = 0.0) -> PairedTest:
    """Return the t test (df = blocks - 1) of the mean block difference against `shift`."""
    d = np.asarray(differences, dtype=float)
    if d.ndim != 1 or d.size < 2 or not np.all(np.isfinite(d)):
        raise ValueError(f"a paired test needs at least 2 finite block differences, got {d.size}")
    mean = float(d.mean())
    se = float(d.std(ddof=1) / math.sqrt(d.size))
    df = d.size - 1
    if se > 0:
        t = (mean - shift) / se
        p_greater, p_less = float(stats.t.sf(t, df)), float(stats.t.cdf(t, df))
    else:
        t = math.copysign(math.inf, mean - shift) if mean != shift else 0.0
        p_greater, p_less = float(t <= 0), float(t >= 0)
    model = f"interleaved pairs ({d.size} ABBA blocks; t with {df} df)"
    return PairedTest(mean, se, df, t, p_greater, p_less, d.size, model)
