"""Circuit-level noise of a logical-memory experiment, derived from a device profile and the link's channel.

Mapping from the profile's `qec` section and the link's Choi matrix to circuit noise (stim names; the Aer
path in harness/qec/aer_memory.py uses the qiskit equivalents given here):

- link: every data qubit passes the link once, as PAULI_CHANNEL_1(px, py, pz), the Pauli twirl of the
  link's channel (see `pauli_twirl`). Twirling drops the coherent part of e.g. amplitude damping; the
  twirled channel has the same process fidelity 1 - px - py - pz.
- qec.gate_error_1q = p: DEPOLARIZE1(p) after every 1-qubit gate (H). DEPOLARIZE1(p) applies X, Y or Z
  with probability p/3 each; qiskit's depolarizing_error(lam, 1) = (1 - lam) rho + lam I/2 applies each
  with lam/4, so DEPOLARIZE1(p) == depolarizing_error(4 p / 3, 1).
- qec.gate_error_2q = p: DEPOLARIZE2(p) after every 2-qubit gate (CX). stim's DEPOLARIZE2(p) applies one of
  the 15 non-identity two-qubit Paulis with total probability p (p/15 each); qiskit's
  depolarizing_error(lam, 2) applies each of the 16 Paulis with lam/16, i.e. the 15 non-identity ones with
  total 15 lam / 16, so DEPOLARIZE2(p) == depolarizing_error(16 p / 15, 2).
- qec.measurement_error = p: X_ERROR(p) immediately before every Z-basis measurement (a classical flip of
  the outcome; an X-basis readout is H then M, so it sees the same flip, equivalent to Z_ERROR before MX).
  Resets are ideal.
- qec.idle_error = p: DEPOLARIZE1(p) once per syndrome round on every data qubit, placed while the
  ancillas are measured (the data qubits' idle window).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.physics.channels import PAULIS, ChannelError, validate_choi


class QecError(ValueError):
    """A logical-memory request or noise parameter is invalid; the message says which and how to fix it."""


def pauli_twirl(choi: np.ndarray) -> tuple[float, float, float]:
    """Return (px, py, pz), the Pauli-error probabilities of the Pauli twirl of a qubit channel's Choi matrix.

    With J = sum_ij |i><j| ⊗ N(|i><j|) and |P>> = sum_i |i> ⊗ P|i> (norm^2 = 2), a Kraus operator
    K = sum_P c_P P has |K>> = sum_P c_P |P>>, so <<P|J|P>> = sum_k |<<P|K_k>>|^2 = 4 sum_k |c_kP|^2.
    The twirl keeps the diagonal of the chi matrix: p_P = <<P|J|P>> / 4 (and sum_P p_P = Tr J / 2 = 1).
    """
    try:
        j = validate_choi(choi)
    except ChannelError as exc:
        raise QecError(f"link Choi matrix: {exc}; pass a 4x4 CPTP Choi matrix (harness.physics.channels)") from None
    if j.shape != (4, 4):
        raise QecError(f"link Choi matrix must be 4x4 (qubit to qubit), got {j.shape}; trace out extra levels first")
    probs = []
    for P in PAULIS[1:]:
        # vec[i*2 + a] = P[a, i], matching choi_from_kraus.
        v = P.T.reshape(4)
        probs.append(float(np.real(v.conj() @ j @ v)) / 4.0)
    px, py, pz = (min(max(p, 0.0), 1.0) for p in probs)
    return px, py, pz


_LIMITS = {
    "px": 1.0,
    "py": 1.0,
    "pz": 1.0,
    "gate_error_1q": 0.75,
    "gate_error_2q": 15.0 / 16.0,
    "measurement_error": 1.0,
    "idle_error": 0.75,
}


@dataclass(frozen=True)
class QecNoise:
    """Circuit noise of a memory experiment: link Pauli channel and gate/measurement/idle error probabilities."""

    px: float = 0.0
    py: float = 0.0
    pz: float = 0.0
    gate_error_1q: float = 0.0
    gate_error_2q: float = 0.0
    measurement_error: float = 0.0
    idle_error: float = 0.0

    def __post_init__(self) -> None:
        for name, high in _LIMITS.items():
            value = getattr(self, name)
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise QecError(f"QecNoise.{name} must be a number, got {value!r}") from None
            if not 0.0 <= value <= high:
                raise QecError(f"QecNoise.{name} must be a probability in [0, {high:.4g}], got {value}")
            object.__setattr__(self, name, value)
        if self.px + self.py + self.pz > 1.0 + 1e-12:
            raise QecError(f"QecNoise link px + py + pz must be <= 1, got {self.px + self.py + self.pz}")

    @classmethod
    def from_profile(cls, profile: Any, link_choi: np.ndarray) -> QecNoise:
        """Return the noise of `profile.qec` (gate/measurement/idle errors) with the link's twirled channel."""
        qec = getattr(profile, "qec", None)
        if qec is None:
            raise QecError("device profile has no 'qec' section; add qec: {gate_error_1q, gate_error_2q, ...}")
        values = {}
        for key in ("gate_error_1q", "gate_error_2q", "measurement_error", "idle_error"):
            if not hasattr(qec, key):
                raise QecError(f"device profile key qec.{key} is missing; add it (a probability per operation)")
            values[key] = getattr(qec, key)
        px, py, pz = pauli_twirl(link_choi)
        return cls(px=px, py=py, pz=pz, **values)
