"""Concurrence and coherent information of a Bell tomography, corrected for their bias by a parametric bootstrap.

Both are nonlinear functions of the physical state (the projection of the linear inversion to a density matrix),
and both are biased: near the top (fidelity 0.998) the projection clips sampling noise, and at small budgets the
noise of the coherences between Bell states spreads the small eigenvalues and lowers the entropy. The bias is
estimated by drawing counts from the denoised state of `harness.analysis.denoise` (close to the truth, unlike the
noisy estimate a plain bootstrap bias correction starts from); the value is the plug-in minus that bias. Each
bootstrap replicate gets the same treatment (its own denoised state and `n_inner` draws), so replicate i is the
corrected estimator applied to resample i; the replicates are then centred on the value.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from harness.analysis.denoise import denoised_state, draw_counts, state_outcome_probabilities
from harness.analysis.measures import coherent_information, concurrence
from harness.analysis.tomography import state_tomography

MEASURES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "concurrence": concurrence,
    "coherent_information": coherent_information,
}


def corrected_measures(tables: np.ndarray, rng: np.random.Generator, n_draw: int) -> dict[str, np.ndarray]:
    """Return every measure of `tables` (..., 9, 4): plug-in minus its parametric bias at the denoised state."""
    tables = np.asarray(tables)
    rho_tilde = denoised_state(tables)
    probs = state_outcome_probabilities(rho_tilde)
    draws = state_tomography(draw_counts(probs, tables.sum(axis=-1), rng, n_draw))
    rho_hat = state_tomography(tables)
    out = {}
    for name, fn in MEASURES.items():
        bias = np.mean(fn(draws), axis=-1) - fn(rho_tilde)
        out[name] = fn(rho_hat) - bias
    return out


def entanglement_replicates(
    table: np.ndarray, reps: np.ndarray, rng: np.random.Generator, n_inner: int = 25
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Return the corrected measures of a (9, 4) table and of its resamples `reps` (n_boot, 9, 4), centred on them.

    The point's bias uses as many parametric draws as there are resamples; each resample's uses `n_inner`.
    """
    point = {k: float(v) for k, v in corrected_measures(table, rng, len(reps)).items()}
    found = corrected_measures(reps, rng, n_inner)
    samples = {k: v - np.mean(v) + point[k] for k, v in found.items()}
    return point, samples
