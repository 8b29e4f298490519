"""Figures of merit of states and channels, batched over leading axes; entropies in bits."""

from __future__ import annotations

import numpy as np
from scipy.special import xlogy

from harness.analysis.validation import AnalysisError, as_matrix, check_density_matrix
from harness.physics.channels import X, Y, Z, validate_choi

PHI_PLUS = np.array([1, 0, 0, 1], dtype=complex) / np.sqrt(2)
_LN2 = np.log(2.0)


def entropy_from_eigenvalues(lam: np.ndarray) -> np.ndarray:
    """Return the Shannon entropy in bits of eigenvalue spectra along the last axis (negatives clipped)."""
    w = np.clip(np.real(lam), 0.0, None)
    return -np.sum(xlogy(w, w), axis=-1) / _LN2


def binary_entropy(p: np.ndarray | float) -> np.ndarray:
    """Return h(p) = -p log2 p - (1-p) log2 (1-p) in bits, elementwise, for p clipped to [0, 1]."""
    q = np.clip(np.asarray(p, dtype=float), 0.0, 1.0)
    return -(xlogy(q, q) + xlogy(1 - q, 1 - q)) / _LN2


def von_neumann_entropy(rho: np.ndarray) -> np.ndarray:
    """Return S(rho) in bits, batched over leading axes."""
    m = as_matrix(rho, "rho")
    return entropy_from_eigenvalues(np.linalg.eigvalsh((m + m.conj().swapaxes(-1, -2)) / 2))


def _sqrtm_psd(m: np.ndarray) -> np.ndarray:
    lam, v = np.linalg.eigh((m + m.conj().swapaxes(-1, -2)) / 2)
    return (v * np.sqrt(np.clip(lam, 0, None))[..., None, :]) @ v.conj().swapaxes(-1, -2)


def state_fidelity(rho: np.ndarray, target: np.ndarray = PHI_PLUS) -> np.ndarray:
    """Return the (squared, Uhlmann) fidelity of rho to a pure target vector or a density matrix; batched in rho."""
    r = as_matrix(rho, "rho")
    t = np.asarray(target, dtype=complex)
    if not np.all(np.isfinite(t)):
        raise AnalysisError("target: contains NaN or infinite entries")
    d = r.shape[-1]
    if t.ndim == 1:
        if t.shape[0] != d or np.linalg.norm(t) == 0:
            raise AnalysisError(f"target: state vector of length {t.shape[0]} does not match {d}x{d} rho")
        t = t / np.linalg.norm(t)
        return np.real(np.einsum("a,...ab,b->...", t.conj(), r, t))
    check_density_matrix(t, "target", dim=d)
    st = _sqrtm_psd(t)
    inner = st @ r @ st
    lam = np.clip(np.linalg.eigvalsh((inner + inner.conj().swapaxes(-1, -2)) / 2), 0, None)
    return np.sum(np.sqrt(lam), axis=-1) ** 2


def _check_two_qubit(rho: np.ndarray) -> np.ndarray:
    r = as_matrix(rho, "rho")
    if r.shape[-1] != 4:
        raise AnalysisError(f"rho: wrong shape {r.shape}, expected 4x4 two-qubit density matrices")
    return r


def concurrence(rho: np.ndarray) -> np.ndarray:
    """Return the Wootters concurrence of two-qubit states (dimensionless, in [0, 1])."""
    r = _check_two_qubit(rho)
    yy = np.kron(Y, Y)
    tilde = yy @ r.conj() @ yy
    s = _sqrtm_psd(r)
    lam = np.sqrt(np.clip(np.linalg.eigvalsh(s @ tilde @ s), 0, None))[..., ::-1]
    return np.maximum(0.0, lam[..., 0] - lam[..., 1] - lam[..., 2] - lam[..., 3])


def correlation_matrix(rho: np.ndarray) -> np.ndarray:
    """Return T_ij = Tr(rho σ_i ⊗ σ_j) for i, j in x, y, z (shape (..., 3, 3))."""
    r = _check_two_qubit(rho)
    ops = np.array([[np.kron(a, b) for b in (X, Y, Z)] for a in (X, Y, Z)])
    return np.real(np.einsum("ijab,...ba->...ij", ops, r))


def chsh_max(rho: np.ndarray) -> np.ndarray:
    """Return CHSH S maximised over settings, 2 sqrt(u1 + u2) from T^T T (Horodecki), dimensionless."""
    t = correlation_matrix(rho)
    u = np.linalg.eigvalsh(np.swapaxes(t, -1, -2) @ t)
    return 2 * np.sqrt(np.clip(u[..., -1] + u[..., -2], 0, None))


def chsh_phi_plus(rho: np.ndarray) -> np.ndarray:
    """Return CHSH S at the settings optimal for |Phi+> (A: Z, X; B: (Z +- X)/sqrt2), sqrt2 (T_xx + T_zz)."""
    t = correlation_matrix(rho)
    return np.sqrt(2.0) * (t[..., 0, 0] + t[..., 2, 2])


def qber(rho: np.ndarray, basis: str = "Z") -> np.ndarray:
    """Return P(outcomes differ) when both qubits are measured in `basis` ("Z" or "X"), dimensionless."""
    if basis not in ("X", "Z"):
        raise AnalysisError(f"basis must be 'X' or 'Z', got {basis!r}")
    t = correlation_matrix(rho)
    k = 0 if basis == "X" else 2
    return (1 - t[..., k, k]) / 2


def partial_trace(rho: np.ndarray, dims: tuple[int, int], keep: int) -> np.ndarray:
    """Return the reduced state of subsystem `keep` (0 = A, 1 = B) of a bipartite rho, batched."""
    da, db = dims
    r = rho.reshape((*rho.shape[:-2], da, db, da, db))
    return np.einsum("...iaja->...ij", r) if keep == 0 else np.einsum("...iaib->...ab", r)


def coherent_information(rho: np.ndarray, dims: tuple[int, int] = (2, 2)) -> np.ndarray:
    """Return I(A>B) = S(B) - S(AB) in bits of bipartite states (qubit A first)."""
    r = as_matrix(rho, "rho")
    if r.shape[-1] != dims[0] * dims[1]:
        raise AnalysisError(f"rho: wrong shape {r.shape} for subsystem dimensions {dims}")
    return von_neumann_entropy(partial_trace(r, dims, 1)) - von_neumann_entropy(r)


def _choi_batch(choi: np.ndarray) -> np.ndarray:
    j = as_matrix(choi, "Choi matrix")
    for m in j.reshape(-1, *j.shape[-2:]):
        validate_choi(m)
    return j


def process_fidelity(choi: np.ndarray, target: np.ndarray | None = None) -> np.ndarray:
    """Return the process fidelity of a channel to a target unitary (d x d) or Choi matrix (default identity).

    Both Choi matrices are normalised to unit trace; for a unitary target this is Tr(J J_U)/d².
    """
    j = _choi_batch(choi)
    d_in = 2
    d_out = j.shape[-1] // d_in
    if target is None:
        target = np.eye(d_in, dtype=complex)
    t = np.asarray(target, dtype=complex)
    if not np.all(np.isfinite(t)):
        raise AnalysisError("target: contains NaN or infinite entries")
    if t.shape == (d_out, d_in):
        if not np.allclose(t.conj().T @ t, np.eye(d_in), atol=1e-8):
            raise AnalysisError("target: a 2-D target of the channel's in/out size must be unitary (an isometry)")
        vec = t.T.reshape(-1)  # |Φ_U> = Σ_i |i> ⊗ U|i>
        return np.real(np.einsum("a,...ab,b->...", vec.conj(), j, vec)) / d_in**2
    if t.shape != j.shape[-2:]:
        raise AnalysisError(f"target: shape {t.shape} is neither a {d_out}x{d_in} unitary nor a {j.shape[-2:]} Choi")
    validate_choi(t)
    return state_fidelity(j / d_in, t / d_in)


def average_gate_fidelity(choi: np.ndarray, target: np.ndarray | None = None) -> np.ndarray:
    """Return the average gate fidelity (d F_pro + 1)/(d + 1) with d = 2, dimensionless."""
    return (2 * process_fidelity(choi, target) + 1) / 3
