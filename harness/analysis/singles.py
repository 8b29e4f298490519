"""Singles bookkeeping for coincidence tomography: expected accidentals and relative source intensities per setting."""

from __future__ import annotations

import numpy as np

from harness.analysis.schemes import Scheme
from harness.analysis.validation import AnalysisError


def accidentals_from_singles(scheme: Scheme, singles: object, window_s: float, duration_s: object) -> np.ndarray:
    """Return expected accidentals S_A S_B window / duration per count from singles (..., settings, 2, detectors)."""
    s = np.asarray(singles, dtype=float)
    want = (scheme.n_settings, 2, scheme.detectors_per_arm)
    if scheme.is_process or s.shape[-3:] != want or np.any(s < 0):
        raise AnalysisError(f"singles: need two-arm singles >= 0 of shape (..., {', '.join(map(str, want))})")
    dur = np.asarray(duration_s, dtype=float)
    if not (window_s > 0 and np.all(dur > 0)):
        raise AnalysisError("window_s and duration_s must be > 0 (seconds)")
    pair = s[..., 0, :, None] * s[..., 1, None, :]  # (..., settings, detA, detB): outcome 2a + b, A first
    return pair.reshape(*s.shape[:-2], -1) * window_s / np.asarray(dur)[..., None]


def intensities_from_singles(singles: object) -> np.ndarray:
    """Return relative intensities per setting (mean 1): geometric mean over arms of each arm's summed singles.

    With one detector per arm the singles also follow the local projection; use this only when the reduced
    states are close to maximally mixed (as for a near-Bell source).
    """
    s = np.asarray(singles, dtype=float).sum(axis=-1)
    if np.any(s <= 0):
        raise AnalysisError("singles: every setting needs singles > 0 on every arm to estimate its intensity")
    g = np.exp(np.log(s).mean(axis=-1))
    return g / g.mean(axis=-1, keepdims=True)
