"""Exact outcome probabilities and sampled counts for known states and channels."""

from __future__ import annotations

import numpy as np

from harness.analysis.tomography import pauli_settings
from harness.physics.channels import X, Y, Z, apply_choi

_OPS = {"X": X, "Y": Y, "Z": Z}
INPUT_KETS = {
    "0": np.array([1, 0]),
    "1": np.array([0, 1]),
    "+": np.array([1, 1]) / np.sqrt(2),
    "-": np.array([1, -1]) / np.sqrt(2),
    "+i": np.array([1, 1j]) / np.sqrt(2),
    "-i": np.array([1, -1j]) / np.sqrt(2),
}


def projectors(basis: str) -> list[np.ndarray]:
    """[P_+, P_-] of a Pauli basis, built from (1 ± σ)/2 (independent of the code under test)."""
    op = _OPS[basis]
    return [(np.eye(2) + op) / 2, (np.eye(2) - op) / 2]


def state_probabilities(rho: np.ndarray) -> np.ndarray:
    """(3^n, 2^n) outcome probabilities of Pauli tomography, qubit A first and most significant."""
    n = int(np.log2(rho.shape[0]))
    rows = []
    for s in pauli_settings(n):
        row = []
        for bits in np.ndindex(*([2] * n)):
            op = np.array([[1.0]])
            for q in range(n):
                op = np.kron(op, projectors(s[q])[bits[q]])
            row.append(np.trace(rho @ op).real)
        rows.append(row)
    return np.clip(np.array(rows), 0, 1)


def process_probabilities(choi: np.ndarray, inputs: tuple[str, ...]) -> np.ndarray:
    """(n_inputs, 3, 2) outcome probabilities of process tomography in bases X, Y, Z."""
    out = np.empty((len(inputs), 3, 2))
    for i, s in enumerate(inputs):
        ket = INPUT_KETS[s]
        rho_out = apply_choi(choi, np.outer(ket, ket.conj()))
        for b, basis in enumerate("XYZ"):
            out[i, b] = [np.trace(rho_out @ p).real for p in projectors(basis)]
    return np.clip(out, 0, 1)


def sample(probs: np.ndarray, shots: int, rng: np.random.Generator, size: int | None = None) -> np.ndarray:
    """Multinomial counts with `shots` per row (last axis = outcomes); optional leading axis of `size`."""
    p = probs / probs.sum(axis=-1, keepdims=True)
    flat = p.reshape(-1, p.shape[-1])
    shape = (flat.shape[0],) if size is None else (size, flat.shape[0])
    out = rng.multinomial(shots, flat, size=shape)
    return out.reshape(p.shape if size is None else (size, *p.shape))


def random_channel_kraus(rng: np.random.Generator, n_kraus: int = 4, d_out: int = 2) -> list[np.ndarray]:
    """Kraus operators of a random CPTP qubit-input channel (Gaussian operators, then normalised)."""
    k = rng.normal(size=(n_kraus, d_out, 2)) + 1j * rng.normal(size=(n_kraus, d_out, 2))
    s = np.einsum("kab,kac->bc", k.conj(), k)
    w, v = np.linalg.eigh(s)
    s_inv_half = v @ np.diag(w**-0.5) @ v.conj().T
    return [m @ s_inv_half for m in k]
