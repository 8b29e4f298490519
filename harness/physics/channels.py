"""Qubit-input channels: Kraus constructors, Choi matrices and their validation.

Choi convention (used everywhere in qharness): J = sum_ij |i><j| ⊗ N(|i><j|), input factor
first, so Tr J = d_in = 2 and Tr_out J = I for a trace-preserving channel.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

I2 = np.eye(2, dtype=complex)
X = np.array([[0, 1], [1, 0]], dtype=complex)
Y = np.array([[0, -1j], [1j, 0]], dtype=complex)
Z = np.array([[1, 0], [0, -1]], dtype=complex)
PAULIS = (I2, X, Y, Z)


class ChannelError(ValueError):
    """A matrix or parameter does not describe a valid channel; the message says why."""


def _check_range(name: str, value: float, low: float, high: float) -> float:
    value = float(value)
    if not low <= value <= high or np.isnan(value):
        raise ChannelError(f"{name} must be in [{low}, {high}], got {value}")
    return value


def depolarizing_kraus(p: float) -> list[np.ndarray]:
    """Kraus operators of rho -> (1-p) rho + p I/2, p in [0, 4/3]."""
    p = _check_range("depolarizing p", p, 0.0, 4.0 / 3.0)
    return [np.sqrt(1 - 3 * p / 4) * I2] + [np.sqrt(p / 4) * P for P in (X, Y, Z)]


def dephasing_kraus(p: float) -> list[np.ndarray]:
    """Kraus operators of rho -> (1-p) rho + p Z rho Z, p the flip probability."""
    p = _check_range("dephasing p", p, 0.0, 1.0)
    return [np.sqrt(1 - p) * I2, np.sqrt(p) * Z]


def amplitude_damping_kraus(gamma: float) -> list[np.ndarray]:
    """Kraus operators [[1,0],[0,sqrt(1-gamma)]] and [[0,sqrt(gamma)],[0,0]]."""
    g = _check_range("amplitude damping gamma", gamma, 0.0, 1.0)
    return [
        np.array([[1, 0], [0, np.sqrt(1 - g)]], dtype=complex),
        np.array([[0, np.sqrt(g)], [0, 0]], dtype=complex),
    ]


def erasure_kraus(epsilon: float) -> list[np.ndarray]:
    """Qubit-to-qutrit erasure: rho -> (1-eps) rho ⊕ eps |2><2|."""
    e = _check_range("erasure epsilon", epsilon, 0.0, 1.0)
    k0 = np.zeros((3, 2), dtype=complex)
    k0[0, 0] = k0[1, 1] = np.sqrt(1 - e)
    k1 = np.zeros((3, 2), dtype=complex)
    k1[2, 0] = np.sqrt(e)
    k2 = np.zeros((3, 2), dtype=complex)
    k2[2, 1] = np.sqrt(e)
    return [k0, k1, k2]


def compose_kraus(first: Sequence[np.ndarray], then: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Kraus operators of `then ∘ first` (apply `first`, then `then`)."""
    return [b @ a for b in then for a in first]


def choi_from_kraus(kraus: Sequence[np.ndarray]) -> np.ndarray:
    """Choi matrix J = sum_ij |i><j| ⊗ N(|i><j|) of a channel given by Kraus operators."""
    ks = np.asarray(kraus, dtype=complex)
    if ks.ndim != 3:
        raise ChannelError(f"Kraus list must be a sequence of matrices, got shape {ks.shape}")
    d_in = ks.shape[2]
    # |N> = sum_i |i> ⊗ K|i>, so J = sum_k vec_k vec_k^† with vec_k[i*d_out + a] = K[a, i].
    vecs = np.transpose(ks, (0, 2, 1)).reshape(ks.shape[0], d_in * ks.shape[1])
    return np.einsum("ka,kb->ab", vecs, vecs.conj())


def output_dim(choi: np.ndarray, d_in: int = 2) -> int:
    """Output dimension of a Choi matrix with the given input dimension."""
    return choi.shape[0] // d_in


def apply_choi(choi: np.ndarray, rho: np.ndarray, d_in: int = 2) -> np.ndarray:
    """Apply the channel with Choi matrix `choi` to `rho` (batched over leading axes of rho)."""
    d_out = output_dim(choi, d_in)
    j = choi.reshape(d_in, d_out, d_in, d_out)
    # N(rho) = sum_ij rho_ij N(|i><j|) and N(|i><j|) = J[i,:,j,:].
    return np.einsum("...ij,iajb->...ab", rho, j)


def validate_choi(choi: np.ndarray, d_in: int = 2, atol: float = 1e-6) -> np.ndarray:
    """Return `choi` as a complex array if it is CPTP within `atol`; raise ChannelError saying why not."""
    try:
        j = np.asarray(choi, dtype=complex)
    except (TypeError, ValueError) as exc:
        raise ChannelError(f"Choi matrix is not numeric: {exc}") from None
    if j.ndim != 2 or j.shape[0] != j.shape[1]:
        raise ChannelError(f"wrong shape: Choi matrix must be square, got {j.shape}")
    if j.shape[0] % d_in or j.shape[0] < 2 * d_in:
        raise ChannelError(
            f"wrong shape: Choi matrix of a qubit-input channel is (2*d_out)x(2*d_out) with d_out >= 2, got {j.shape}"
        )
    if not np.all(np.isfinite(j)):
        raise ChannelError("Choi matrix has NaN or infinite entries")
    if not np.allclose(j, j.conj().T, atol=atol):
        raise ChannelError("not Hermitian: Choi matrix differs from its conjugate transpose")
    lam_min = float(np.linalg.eigvalsh((j + j.conj().T) / 2)[0])
    if lam_min < -atol:
        raise ChannelError(f"not PSD: smallest eigenvalue {lam_min:.3g} < 0 (not completely positive)")
    d_out = j.shape[0] // d_in
    ptr = np.einsum("iaja->ij", j.reshape(d_in, d_out, d_in, d_out))
    dev = float(np.max(np.abs(ptr - np.eye(d_in))))
    if dev > atol:
        raise ChannelError(f"partial trace not identity: Tr_out J deviates by {dev:.3g} (not trace preserving)")
    return j


def to_choi(channel: np.ndarray | Sequence[np.ndarray], atol: float = 1e-6) -> np.ndarray:
    """Accept a Choi matrix or a Kraus list and return a validated Choi matrix."""
    arr = np.asarray(channel, dtype=complex)
    if arr.ndim == 3:
        arr = choi_from_kraus(arr)
    return validate_choi(arr, atol=atol)
