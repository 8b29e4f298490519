"""Input checks shared by the estimators: one exception type, messages that say what to fix."""

from __future__ import annotations

from typing import Any

import numpy as np


class AnalysisError(ValueError):
    """Input to an estimator is malformed or unphysical; the message names the input and the fix."""


def as_counts(counts: Any, name: str = "counts", shape: tuple[int | None, ...] | None = None) -> np.ndarray:
    """Return `counts` as an int64 array after checking it is finite, integral, non-negative and of `shape`."""
    try:
        arr = np.asarray(counts)
    except (TypeError, ValueError) as exc:
        raise AnalysisError(f"{name}: not an array of counts ({exc})") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise AnalysisError(f"{name}: counts must be numeric, got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise AnalysisError(f"{name}: counts must be real, got complex values")
    if shape is not None:
        ok = arr.ndim == len(shape) and all(s is None or s == a for s, a in zip(shape, arr.shape, strict=False))
        if not ok:
            want = "(" + ", ".join("n" if s is None else str(s) for s in shape) + ")"
            raise AnalysisError(f"{name}: wrong shape {arr.shape}, expected {want}")
    if arr.size and not np.all(np.isfinite(arr)):
        raise AnalysisError(f"{name}: counts contain NaN or infinity; pass raw integer counts")
    if arr.size and np.any(arr < 0):
        raise AnalysisError(f"{name}: counts must be >= 0, found {arr.min()}")
    if arr.size and np.any(arr != np.round(arr)):
        raise AnalysisError(f"{name}: counts must be whole numbers")
    return arr.astype(np.int64)


def require_row_totals(counts: np.ndarray, name: str = "counts") -> np.ndarray:
    """Return the per-row totals (sum over the last axis), raising if any row is empty."""
    totals = counts.sum(axis=-1)
    if np.any(totals <= 0):
        bad = np.argwhere(totals <= 0)[0].tolist()
        raise AnalysisError(f"{name}: row {bad} has no counts; every setting needs at least one event")
    return totals


def check_confidence(confidence: float) -> float:
    """Return `confidence` as a float in (0, 1) or raise AnalysisError."""
    try:
        c = float(confidence)
    except (TypeError, ValueError):
        raise AnalysisError(f"confidence must be a number in (0, 1), got {confidence!r}") from None
    if not 0.0 < c < 1.0:
        raise AnalysisError(f"confidence must be in (0, 1), got {confidence!r}")
    return c


def check_n_boot(n_boot: int) -> int:
    """Return `n_boot` as an int >= 10 or raise AnalysisError."""
    if isinstance(n_boot, bool) or not isinstance(n_boot, int | np.integer) or n_boot < 10:
        raise AnalysisError(f"n_boot must be an integer >= 10, got {n_boot!r}")
    return int(n_boot)


def check_rng(rng: Any) -> np.random.Generator:
    """Return `rng` if it is a numpy Generator, else raise AnalysisError."""
    if not isinstance(rng, np.random.Generator):
        raise AnalysisError(
            f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), not {type(rng).__name__}"
        )
    return rng


def as_matrix(value: Any, name: str, square: bool = True) -> np.ndarray:
    """Return `value` as a finite complex array with at least 2 axes (square in the last two if asked)."""
    try:
        arr = np.asarray(value, dtype=complex)
    except (TypeError, ValueError) as exc:
        raise AnalysisError(f"{name}: not a numeric matrix ({exc})") from None
    if arr.ndim < 2 or (square and arr.shape[-1] != arr.shape[-2]):
        raise AnalysisError(f"{name}: wrong shape {arr.shape}, expected square matrices in the last two axes")
    if not np.all(np.isfinite(arr)):
        raise AnalysisError(f"{name}: contains NaN or infinite entries")
    return arr


def check_density_matrix(rho: Any, name: str = "rho", dim: int | None = None, atol: float = 1e-6) -> np.ndarray:
    """Return `rho` (batched over leading axes) if Hermitian, PSD and of unit trace within `atol`."""
    arr = as_matrix(rho, name)
    if dim is not None and arr.shape[-1] != dim:
        raise AnalysisError(f"{name}: wrong shape {arr.shape}, expected {dim}x{dim} density matrices")
    herm = arr.conj().swapaxes(-1, -2)
    if not np.allclose(arr, herm, atol=atol):
        raise AnalysisError(f"{name}: not Hermitian")
    tr = np.trace(arr, axis1=-2, axis2=-1).real
    if np.any(np.abs(tr - 1) > atol):
        raise AnalysisError(f"{name}: trace must be 1, got {np.ravel(tr)[np.argmax(np.abs(np.ravel(tr) - 1))]:.6g}")
    lam = np.linalg.eigvalsh((arr + herm) / 2)[..., 0]
    if np.any(lam < -atol):
        raise AnalysisError(f"{name}: not PSD, smallest eigenvalue {lam.min():.3g}")
    return arr
