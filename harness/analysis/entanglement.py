"""Concurrence and coherent information of a Bell tomography, corrected for their bias by a parametric bootstrap.

Both are nonlinear functions of the physical state (the projection of the linear inversion to a density matrix),
and both are biased: near the top (fidelity 0.998) the projection clips sampling noise, and at small budgets the
noise of the coherences between Bell states spreads the small eigenvalues and lowers the entropy. The bias is
estimated by drawing counts from the denoised state of `harness.analysis.denoise` (close to the truth, unlike the
noisy estimate a plain bootstrap bias correction starts from); the value is the plug-in minus that bias. Each
bootstrap replicate gets the same treatment (its own denoised state and `n_inner` draws), so replicate i is the
corrected estimator applied to resample i; the replicates are then centred on the value, and their spread is
calibrated to that of the draws at the denoised state (near a pure state resamples of the noisy counts spread 1.3-1.4
times wider than the estimator does: `harness.analysis.bootstrap.calibrated_replicates`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from harness.analysis.bootstrap import calibrated_replicates
from harness.analysis.denoise import denoised_state, draw_counts, state_outcome_probabilities
from harness.analysis.measures import coherent_information, concurrence
from harness.analysis.tomography import state_tomography

MEASURES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "concurrence": concurrence,
    "coherent_information": coherent_information,
}


def corrected_measures(tables: np.ndarray, rng: np.random.Generator, n_draw: int) -> tuple[dict, dict, dict]:
    """Return every measure of `tables` (..., 9, 4), plug-in minus its parametric bias at the denoised state;
    the plug-in measures; and those of the `n_draw` draws at the denoised state (..., n_draw)."""
    tables = np.asarray(tables)
    rho_tilde = denoised_state(tables)
    probs = state_outcome_probabilities(rho_tilde)
    draws = state_tomography(draw_counts(probs, tables.sum(axis=-1), rng, n_draw))
    rho_hat = state_tomography(tables)
    corrected, plug, at = {}, {}, {}
    for name, fn in MEASURES.items():
        at[name] = fn(draws)
        plug[name] = fn(rho_hat)
        corrected[name] = plug[name] - (np.mean(at[name], axis=-1) - fn(rho_tilde))
    return corrected, plug, at


def entanglement_replicates(
    table: np.ndarray, reps: np.ndarray, rng: np.random.Generator, n_inner: int = 25
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Return the corrected measures of a (9, 4) table and of its resamples `reps` (n_boot, 9, 4), centred on them.

    The point's bias uses as many parametric draws as there are resamples; each resample's uses `n_inner`. The
    replicates' spread is calibrated to that of the draws at the denoised state (`calibrated_replicates`).
    """
    value, _, at = corrected_measures(table, rng, len(reps))
    found = corrected_measures(reps, rng, n_inner)[0]
    point = {k: float(v) for k, v in value.items()}
    samples = {k: calibrated_replicates(v, point[k], at[k]) for k, v in found.items()}
    return point, samples
