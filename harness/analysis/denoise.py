"""Denoised tomography estimates, at which the bias of a nonlinear metric is estimated by a parametric bootstrap.

The linear estimate (the linear inversion of a Bell tomography, or the least-squares Choi matrix of a link, over
2) is written in the Bell basis. Its Bell populations are linear in the counts and unbiased and are kept. Its
coherences near a Bell state or the identity channel are set by correlators that are fair coins there, so they carry
noise of order 1/sqrt(counts) whatever their true size; each coherence x is shrunk by its exact multinomial variance,
x -> x max(0, 1 - z^2 var / x^2) with z = 1.96 (real and imaginary parts apart), so it survives only where it stands
out from its noise at the 95% level. (With plain James-Stein shrinkage, z = 1, the spurious coherences left in a
Bell-diagonal state keep about a third of the bias of the entropic metrics.) The result is projected to a density
matrix (or a CPTP Choi matrix). Counts drawn from it with the data's totals per setting (`draw_counts`) show the
bias of an estimator at a state close to the truth rather than at the noisy estimate itself, where a plain bootstrap
bias correction removes only about half of it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from harness.analysis.schemes import pauli_scheme
from harness.analysis.tomography import pauli_duals, project_to_cptp, project_to_density_matrix, ptm_to_choi
from harness.physics.channels import X, Y, Z
from harness.records import INPUT_BLOCH

_S = 1 / np.sqrt(2)
# Rows: |Phi+>, |Phi->, |Psi+>, |Psi-> in the computational basis (qubit A, or the channel's input, first).
BELL_BASIS = np.array([[_S, 0, 0, _S], [_S, 0, 0, -_S], [0, _S, _S, 0], [0, _S, -_S, 0]], dtype=complex)
_OFF_DIAGONAL = ~np.eye(4, dtype=bool)
_Z2 = 1.959963984540054**2
_STATE_DUALS = np.einsum("ia,soab,jb->soij", BELL_BASIS.conj(), pauli_duals(2), BELL_BASIS)
_PROJECTORS = pauli_scheme().projectors()  # (9, 4, 4, 4) in BELL_SETTINGS order, outcomes ++, +-, -+, --
_SIGMA = {"X": X, "Y": Y, "Z": Z}


def _to_bell(m: np.ndarray) -> np.ndarray:
    return np.einsum("ia,...ab,jb->...ij", BELL_BASIS.conj(), m, BELL_BASIS)


def _from_bell(m: np.ndarray) -> np.ndarray:
    return np.einsum("ia,...ij,jb->...ab", BELL_BASIS, m, BELL_BASIS.conj())


def _shrunk_part(freqs: np.ndarray, totals: np.ndarray, duals: np.ndarray, const: np.ndarray) -> np.ndarray:
    """const + sum_so f_so A_so for real `duals` A (settings, outcomes, 4, 4), off-diagonal entries shrunk."""
    value = const + np.einsum("...so,soij->...ij", freqs, duals)
    # Multinomial variance of a linear statistic, setting by setting: (E[A^2] - E[A]^2) / n_s.
    mean_s = np.einsum("...so,soij->...sij", freqs, duals)
    second = np.einsum("...so,soij->...sij", freqs, duals**2)
    var = np.sum((second - mean_s**2) / totals[..., None, None], axis=-3)
    shrink = np.clip(1 - _Z2 * var / np.maximum(value**2, 1e-300), 0.0, 1.0)
    return np.where(_OFF_DIAGONAL, value * shrink, value)


def _denoised_bell(tables: np.ndarray, duals: np.ndarray, const: np.ndarray) -> np.ndarray:
    """The Bell-basis linear estimate of count tables (..., settings, outcomes) with shrunk coherences."""
    totals = tables.sum(axis=-1)
    freqs = tables / totals[..., None]
    real = _shrunk_part(freqs, totals, duals.real, const.real)
    imag = _shrunk_part(freqs, totals, duals.imag, const.imag)
    return _from_bell(real + 1j * imag)


def denoised_state(tables: np.ndarray) -> np.ndarray:
    """Return denoised density matrices (..., 4, 4) of Bell-tomography count tables (..., 9, 4)."""
    tables = np.asarray(tables, dtype=float)
    return project_to_density_matrix(_denoised_bell(tables, _STATE_DUALS, np.zeros((4, 4), dtype=complex)))


def state_outcome_probabilities(rho: np.ndarray) -> np.ndarray:
    """Return the outcome probabilities (..., 9, 4) of the Pauli settings for states rho (..., 4, 4)."""
    p = np.clip(np.real(np.einsum("soab,...ba->...so", _PROJECTORS, rho)), 0.0, None)
    return p / p.sum(axis=-1, keepdims=True)


def _process_duals(inputs: Sequence[str], bases: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Bell-basis matrices of J/2 per (input x basis, outcome), and its constant part, for the least-squares fit."""
    design = np.array([[1.0, *INPUT_BLOCH[s]] for s in inputs])
    pinv = np.linalg.pinv(design)  # ptm[1 + b, c] = sum_k pinv[c, k] <sigma_b>_k
    unit = np.eye(16).reshape(16, 4, 4)
    basis = ptm_to_choi(unit).reshape(4, 4, 4, 4)  # basis[i, c] = Choi of the PTM with a single 1 at (i, c)
    g = np.array(
        [[np.einsum("c,cab->ab", pinv[:, k], basis[1 + "XYZ".index(b)]) for b in bases] for k in range(len(inputs))]
    )
    g = _to_bell(g / 2).reshape(len(inputs) * len(bases), 4, 4)
    # <sigma> = f_+ - f_-: outcome "+" carries +G, "-" carries -G.
    return np.stack([g, -g], axis=1), _to_bell(basis[0, 0] / 2)


def denoised_choi(tables: np.ndarray, inputs: Sequence[str], bases: Sequence[str]) -> np.ndarray:
    """Return denoised CPTP Choi matrices (..., 4, 4), trace 2, of link-tomography tables (..., n_in, 3, 2)."""
    tables = np.asarray(tables, dtype=float)
    duals, const = _process_duals(tuple(inputs), tuple(bases))
    flat = tables.reshape(*tables.shape[:-3], -1, 2)
    return project_to_cptp(2 * _denoised_bell(flat, duals, const))


def process_outcome_probabilities(choi: np.ndarray, inputs: Sequence[str], bases: Sequence[str]) -> np.ndarray:
    """Return the outcome probabilities (..., n_in, 3, 2) of link tomography for Choi matrices (..., 4, 4)."""
    ops = []
    for s in inputs:
        r = INPUT_BLOCH[s]
        rho_t = ((np.eye(2) + r[0] * X + r[1] * Y + r[2] * Z) / 2).T
        ops.append([[np.kron(rho_t, (np.eye(2) + sign * _SIGMA[b]) / 2) for sign in (1, -1)] for b in bases])
    p = np.clip(np.real(np.einsum("kbocd,...dc->...kbo", np.array(ops), choi)), 0.0, None)
    return p / p.sum(axis=-1, keepdims=True)


def draw_counts(probs: np.ndarray, totals: np.ndarray, rng: np.random.Generator, n_draw: int) -> np.ndarray:
    """Return n_draw multinomial count tables per row set: shape (..., n_draw, *probs.shape[-2:]), given totals."""
    n = np.broadcast_to(totals[..., None, :], (*totals.shape[:-1], n_draw, totals.shape[-1]))
    return rng.multinomial(n, np.broadcast_to(probs[..., None, :, :], (*n.shape, probs.shape[-1])))
