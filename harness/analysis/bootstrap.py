"""Vectorised resampling of count tables and percentile-bootstrap Estimates."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from harness.analysis.intervals import make_estimate, percentile_interval
from harness.analysis.validation import (
    AnalysisError,
    as_counts,
    check_confidence,
    check_n_boot,
    check_rng,
    require_row_totals,
)
from harness.metrics import Direction, Estimate


def resample_multinomial(counts: np.ndarray, rng: np.random.Generator, n_boot: int) -> np.ndarray:
    """Return n_boot multinomial resamples of every row (last axis = outcomes), shape (n_boot, *counts.shape)."""
    counts = as_counts(counts)
    if counts.ndim < 1:
        raise AnalysisError("counts: need at least one axis of outcomes")
    check_rng(rng)
    n_boot = check_n_boot(n_boot)
    rows = counts.reshape(-1, counts.shape[-1])
    totals = require_row_totals(rows)
    # One call resamples all rows and replicates at once; each row keeps its own total.
    out = rng.multinomial(totals, rows / totals[:, None], size=(n_boot, rows.shape[0]))
    return out.reshape((n_boot, *counts.shape))


def resample_poisson(counts: np.ndarray, rng: np.random.Generator, n_boot: int) -> np.ndarray:
    """Return n_boot parametric Poisson resamples of independent counts, shape (n_boot, *counts.shape)."""
    counts = as_counts(counts)
    check_rng(rng)
    n_boot = check_n_boot(n_boot)
    return rng.poisson(counts, size=(n_boot, *counts.shape))


def resample_coincidences(
    coincidences: int, singles_a: int, singles_b: int, rng: np.random.Generator, n_boot: int
) -> np.ndarray:
    """Return n_boot joint Poisson resamples (C, N_A, N_B) of coincidences and the singles that contain them.

    Every coincidence is also a single on both arms, so C and the events seen by one arm only (N_A - C, N_B - C)
    are the independent counts: each is resampled and the singles are rebuilt as C + only. Resampling the singles
    independently of C would overstate the spread of C/N and of the accidentals N_A N_B tau / T.
    """
    c, n_a, n_b = (int(x) for x in as_counts([coincidences, singles_a, singles_b], "coincidence counts"))
    if c > min(n_a, n_b):
        raise AnalysisError(f"coincidences {c} exceed the singles ({n_a}, {n_b}); every coincidence is a single")
    check_rng(rng)
    n_boot = check_n_boot(n_boot)
    c_star = rng.poisson(c, size=n_boot)
    only = rng.poisson([n_a - c, n_b - c], size=(n_boot, 2))
    return np.column_stack([c_star, c_star + only[:, 0], c_star + only[:, 1]])


def calibrated_replicates(samples: np.ndarray, centre: float, spread_at: np.ndarray) -> np.ndarray:
    """Return `samples` centred on `centre` with the standard deviation of `spread_at` (only centred if they have none).

    Near the edge of a metric's range (a pure state, the identity channel) the nonlinear metrics of resamples of
    the noisy observed counts spread 1.2-1.4 times wider than the estimator does at the truth: the resamples add
    their noise to the data's. The metric of counts drawn at the denoised estimate (`spread_at`) shows the spread at
    a point close to the truth. Scaling keeps each replicate's rank and its correlation with the other metrics of
    the same resample, which the gate's max-T uses.
    """
    samples = np.asarray(samples, dtype=float)
    here = float(np.std(samples))
    ratio = float(np.std(spread_at)) / here if here > 0 else 1.0
    return centre + (samples - np.mean(samples)) * ratio


def bootstrap_estimate(
    estimator: Callable[[np.ndarray], np.ndarray],
    counts: np.ndarray,
    *,
    name: str,
    rng: np.random.Generator,
    n_boot: int = 200,
    confidence: float = 0.95,
    batched: bool = True,
    unit: str | None = None,
    direction: Direction | None = None,
) -> Estimate:
    """Return an Estimate of estimator(counts) with a multinomial-bootstrap percentile interval.

    With `batched=True` the estimator maps counts with a leading batch axis to one value per
    batch element; otherwise it is called once per replicate.
    """
    counts = as_counts(counts)
    confidence = check_confidence(confidence)
    reps = resample_multinomial(counts, rng, n_boot)
    if batched:
        point = float(np.asarray(estimator(counts[None]))[0])
        samples = np.asarray(estimator(reps), dtype=float).reshape(n_boot)
    else:
        point = float(estimator(counts))
        samples = np.array([float(estimator(r)) for r in reps])
    low, high = percentile_interval(samples, point, confidence)
    return make_estimate(name, point, low, high, int(counts.sum()), confidence, samples, unit, direction)
