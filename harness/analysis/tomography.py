"""State and process tomography of qubits from Pauli-basis counts.

State tomography: linear inversion with the canonical dual of the Pauli measurement frame
(equal weight per setting, frequencies normalised per setting), then the eigenvalue projection of
Smolin, Gambetta and Smith (PRL 108, 070502, 2012), which gives the closest density matrix in
the 2-norm. Everything is batched over leading axes.

Process tomography: the output Bloch vector is affine in the input Bloch vector, r' = T r + t; a
least-squares fit over the inputs gives (T, t) and hence a trace-preserving Choi matrix. If it is
not positive semidefinite, Dykstra's alternating projections between the PSD cone and the affine
trace-preserving set converge to the Frobenius-nearest CPTP Choi matrix (a convex problem, so
the limit is the unique projection).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from harness.analysis.validation import AnalysisError, as_counts, as_matrix, require_row_totals
from harness.physics.channels import I2, PAULIS, X, Y, Z
from harness.records import INPUT_BLOCH

_BASIS_OPS = {"X": X, "Y": Y, "Z": Z}
# How `state_tomography` turns counts into a state, in words for reports.
STATE_TOMOGRAPHY_METHOD = "linear inversion with projection to the nearest density matrix"


def pauli_settings(n_qubits: int) -> tuple[str, ...]:
    """Return the 3^n setting labels in the order itertools.product("XYZ", repeat=n) (qubit A first)."""
    return tuple("".join(s) for s in itertools.product("XYZ", repeat=n_qubits))


def _dual_operators(n_qubits: int) -> np.ndarray:
    # Single-qubit canonical dual of the 6 Pauli projectors: D_b^± = I/6 ± σ_b/2.
    single = np.array([[I2 / 6 + s * _BASIS_OPS[b] / 2 for s in (1, -1)] for b in "XYZ"])  # (3, 2, 2, 2)
    duals = single
    for _ in range(n_qubits - 1):
        # Qubit A is the left kron factor and the most significant outcome bit.
        duals = np.einsum("soab,tpcd->stopacbd", duals, single)
        s, t, o, p, a, c, b, d = duals.shape
        duals = duals.reshape(s * t, o * p, a * c, b * d)
    return duals


_DUALS = {1: _dual_operators(1), 2: _dual_operators(2)}


def pauli_duals(n_qubits: int) -> np.ndarray:
    """Return the canonical duals D (3^n, 2^n, 2^n, 2^n) of the Pauli projectors: rho_LI = sum_so f_so D_so."""
    if n_qubits not in _DUALS:
        raise AnalysisError(f"n_qubits must be 1 or 2, got {n_qubits!r}")
    return _DUALS[n_qubits].copy()


def _check_state_counts(counts: np.ndarray) -> tuple[np.ndarray, int]:
    arr = as_counts(counts, "tomography counts")
    if arr.ndim < 2:
        raise AnalysisError(f"tomography counts: wrong shape {arr.shape}, expected (3, 2) or (9, 4)")
    shape = arr.shape[-2:]
    n_qubits = {(3, 2): 1, (9, 4): 2}.get(shape)
    if n_qubits is None:
        raise AnalysisError(f"tomography counts: wrong shape {arr.shape}, expected (..., 3, 2) or (..., 9, 4)")
    require_row_totals(arr, "tomography counts")
    return arr, n_qubits


def linear_inversion_state(counts: np.ndarray) -> np.ndarray:
    """Return the (possibly unphysical) linear-inversion density matrix, batched over leading axes."""
    arr, n_qubits = _check_state_counts(counts)
    freqs = arr / arr.sum(axis=-1, keepdims=True)
    duals = _DUALS[n_qubits]
    d = duals.shape[-1]
    # One matrix product over the flattened (setting, outcome) axis: much faster than einsum on big batches.
    flat = freqs.reshape(*freqs.shape[:-2], -1) @ duals.reshape(-1, d * d)
    return flat.reshape(*freqs.shape[:-2], d, d)


def project_to_density_matrix(rho: np.ndarray) -> np.ndarray:
    """Return the closest density matrix (2-norm) to Hermitian `rho`: Smolin-Gambetta-Smith, batched."""
    mat = as_matrix(rho, "rho")
    mat = (mat + mat.conj().swapaxes(-1, -2)) / 2
    lam, vecs = np.linalg.eigh(mat)
    # SGS's sequential redistribution of negative weight equals Euclidean projection of the
    # spectrum onto the probability simplex, which vectorises via sorted cumulative sums.
    u = lam[..., ::-1]
    css = np.cumsum(u, axis=-1)
    k = np.arange(1, u.shape[-1] + 1)
    cond = u - (css - 1) / k > 0
    rank = np.sum(cond, axis=-1, keepdims=True)
    theta = (np.take_along_axis(css, rank - 1, axis=-1) - 1) / rank
    new = np.maximum(lam - theta, 0.0)
    return (vecs * new[..., None, :]) @ vecs.conj().swapaxes(-1, -2)


def state_tomography(counts: np.ndarray) -> np.ndarray:
    """Return the physical density matrix of 1 or 2 qubits from Pauli counts (qubit A = left kron factor)."""
    return project_to_density_matrix(linear_inversion_state(counts))


def _check_process_counts(counts: np.ndarray, inputs: Sequence[str], bases: Sequence[str]) -> np.ndarray:
    inputs, bases = tuple(inputs), tuple(bases)
    unknown = [s for s in inputs if s not in INPUT_BLOCH]
    if unknown or len(set(inputs)) != len(inputs):
        raise AnalysisError(f"process inputs: {list(inputs)} must be distinct labels from {list(INPUT_BLOCH)}")
    if sorted(bases) != ["X", "Y", "Z"]:
        raise AnalysisError(f"process bases: {list(bases)} must be X, Y and Z once each")
    arr = as_counts(counts, "process counts")
    if arr.ndim < 3 or arr.shape[-3:] != (len(inputs), 3, 2):
        raise AnalysisError(f"process counts: wrong shape {arr.shape}, expected (..., {len(inputs)}, 3, 2)")
    require_row_totals(arr, "process counts")
    design = np.array([[1.0, *INPUT_BLOCH[s]] for s in inputs])
    if np.linalg.matrix_rank(design) < 4:
        raise AnalysisError(f"process inputs: {list(inputs)} do not span the Bloch ball; use 0, 1, +, +i")
    return arr


def ptm_to_choi(ptm: np.ndarray) -> np.ndarray:
    """Return the Choi matrix (input first, trace 2) of qubit channels given by Pauli transfer matrices (..., 4, 4)."""
    sig = np.array(PAULIS)
    # N(σ_j) = Σ_i R_ij σ_i and |i><k| = ½ Σ_j (σ_j)_ki σ_j, so J[i,a,k,b] = ½ Σ_j (σ_j)_ki N(σ_j)_ab.
    n_sig = np.einsum("...ij,iab->...jab", ptm.astype(complex), sig)
    j = 0.5 * np.einsum("jki,...jab->...iakb", sig, n_sig)
    return j.reshape((*ptm.shape[:-2], 4, 4))


def linear_inversion_process(
    counts: np.ndarray, inputs: Sequence[str] = ("0", "1", "+", "+i"), bases: Sequence[str] = ("X", "Y", "Z")
) -> np.ndarray:
    """Return the trace-preserving least-squares Choi matrix (maybe not CP), batched over leading axes."""
    arr = _check_process_counts(counts, inputs, bases).astype(float)
    order = [tuple(bases).index(b) for b in "XYZ"]
    arr = arr[..., order, :]
    expect = (arr[..., 0] - arr[..., 1]) / arr.sum(axis=-1)  # (..., n_in, 3) Bloch components of outputs
    design = np.array([[1.0, *INPUT_BLOCH[s]] for s in inputs])
    coef = np.einsum("ck,...kb->...cb", np.linalg.pinv(design), expect)  # rows: t, then T^T
    ptm = np.zeros((*arr.shape[:-3], 4, 4))
    ptm[..., 0, 0] = 1.0
    ptm[..., 1:, :] = np.swapaxes(coef, -1, -2)
    return ptm_to_choi(ptm)


def _project_tp(j: np.ndarray, d_out: int) -> np.ndarray:
    b = j.reshape((*j.shape[:-2], 2, d_out, 2, d_out))
    excess = np.einsum("...iaka->...ik", b) - np.eye(2)
    fix = np.einsum("...ik,ab->...iakb", excess, np.eye(d_out)) / d_out
    return (b - fix).reshape(j.shape)


def _project_psd(j: np.ndarray) -> np.ndarray:
    lam, v = np.linalg.eigh((j + j.conj().swapaxes(-1, -2)) / 2)
    return (v * np.maximum(lam, 0.0)[..., None, :]) @ v.conj().swapaxes(-1, -2)


def project_to_cptp(choi: np.ndarray, tol: float = 1e-12, max_iter: int = 5000) -> np.ndarray:
    """Return the Frobenius-nearest CPTP Choi matrix (Dykstra's projections), batched over leading axes."""
    j = as_matrix(choi, "Choi matrix")
    if j.shape[-1] % 2 or j.shape[-1] < 4:
        raise AnalysisError(f"Choi matrix: wrong shape {j.shape}, expected (2*d_out)x(2*d_out) with d_out >= 2")
    d_out = j.shape[-1] // 2
    flat = j.reshape(-1, *j.shape[-2:])
    flat = _project_tp((flat + flat.conj().swapaxes(-1, -2)) / 2, d_out)
    out = flat.copy()
    bad = np.linalg.eigvalsh(flat)[:, 0] < -tol
    if np.any(bad):
        x = flat[bad]
        p = np.zeros_like(x)
        q = np.zeros_like(x)
        for _ in range(max_iter):
            y = _project_tp(x + p, d_out)
            p = x + p - y
            x_new = _project_psd(y + q)
            q = y + q - x_new
            delta = np.max(np.abs(x_new - x))
            x = x_new
            if delta < tol and np.max(np.abs(_project_tp(x, d_out) - x)) < 10 * tol:
                break
        out[bad] = x
    return out.reshape(j.shape)


def process_tomography(
    counts: np.ndarray, inputs: Sequence[str] = ("0", "1", "+", "+i"), bases: Sequence[str] = ("X", "Y", "Z")
) -> np.ndarray:
    """Return the CPTP Choi matrix (input first, trace 2) of a qubit channel from process-tomography counts."""
    return project_to_cptp(linear_inversion_process(counts, inputs, bases))
