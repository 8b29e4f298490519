"""The physics an emulated bench reports: rates and outcome probabilities from harness.physics."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from harness.physics.channels import PAULIS
from harness.physics.drift import SessionOffsets, Wander, drifted_source
from harness.physics.link import delivered_state, link_kraus, observed_link_choi, observed_state, rates
from harness.profiles import Profile
from harness.records import BASES, INPUT_BLOCH

_SIGMA = dict(zip("XYZ", PAULIS[1:], strict=True))
# Bloch vectors of the states PREP accepts: the process-tomography inputs of the analysis core.
PREP_STATES: dict[str, np.ndarray] = {name: np.array(r) for name, r in INPUT_BLOCH.items()}


def _projectors(basis: str, misalignment_deg: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Projectors of an analyser in `basis`, turned by `misalignment_deg` polarisation degrees (2 theta about Y)."""
    s = _SIGMA[basis]
    plus, minus = (np.eye(2) + s) / 2, (np.eye(2) - s) / 2
    if not misalignment_deg:
        return plus, minus
    theta = np.deg2rad(misalignment_deg)  # Ry(2 theta) = cos(theta) 1 - i sin(theta) Y
    u = np.cos(theta) * np.eye(2) - 1j * np.sin(theta) * _SIGMA["Y"]
    return u @ plus @ u.conj().T, u @ minus @ u.conj().T


@dataclass(frozen=True)
class LinkParameters:
    """The physics blocks of one effective profile, flattened (SI units)."""

    pair_rate_hz: float
    visibility: float
    loss_db: float
    depolarizing: float
    dephasing: float
    amplitude_damping: float
    efficiency_a: float
    efficiency_b: float
    dark_count_hz_a: float
    dark_count_hz_b: float
    coincidence_window_s: float
    readout_error_a: float
    readout_error_b: float
    # QEC noise of the firmware decoder's codes (the profile's qec block).
    gate_error_1q: float
    gate_error_2q: float
    measurement_error: float
    idle_error: float

    @classmethod
    def from_profile(cls, profile: Profile) -> LinkParameters:
        """Flatten the validated source, link, detectors and qec blocks of an effective Profile."""
        values: dict[str, Any] = {}
        for block in (profile.source, profile.link, profile.detectors, profile.qec):
            values.update(block.model_dump())
        return cls(**{f.name: float(values[f.name]) for f in fields(cls)})


class LinkModel:
    """Mean rates and outcome probabilities of the link, with the source on or off.

    `misalignment_deg` turns arm B's analyser (harness.physics.drift); `drifted` gives the model of one integration
    under a session's drift.
    """

    def __init__(self, params: LinkParameters, misalignment_deg: float = 0.0) -> None:
        self.params = params
        self.misalignment_deg = float(misalignment_deg)
        self._cache: dict[bool, tuple] = {}

    def drifted(self, offsets: SessionOffsets, wander: Wander) -> LinkModel:
        """The model of one integration: source and detectors moved by the session's offsets and this wander."""
        p = self.params
        src = drifted_source(p.visibility, p.pair_rate_hz, p.efficiency_a, p.efficiency_b, offsets, wander)
        moved = replace(
            p,
            visibility=float(src.visibility[0]),
            pair_rate_hz=float(src.pair_rate_hz[0]),
            efficiency_a=src.efficiency_a,
            efficiency_b=src.efficiency_b,
        )
        return LinkModel(moved, self.misalignment_deg + src.basis_angle_deg)

    def _physics(self, source_on: bool) -> tuple:
        if source_on not in self._cache:
            p = self.params
            r = rates(
                p.pair_rate_hz if source_on else 0.0,
                p.efficiency_a,
                p.efficiency_b,
                p.loss_db,
                p.dark_count_hz_a,
                p.dark_count_hz_b,
                p.coincidence_window_s,
            )
            kraus = link_kraus(p.amplitude_damping, p.dephasing, p.depolarizing)
            rho = observed_state(
                delivered_state(p.visibility, kraus, r.accidental_fraction), p.readout_error_a, p.readout_error_b
            )
            probs = {}
            for a in BASES:
                for b in BASES:
                    pa, pb = _projectors(a), _projectors(b, self.misalignment_deg)
                    ops = [np.kron(x, y) for x in pa for y in pb]
                    probs[a + b] = np.clip(np.real([np.trace(o @ rho) for o in ops]), 0.0, None)
            choi = observed_link_choi(kraus, r.accidental_fraction, p.readout_error_b)
            self._cache[source_on] = (r, rho, probs, choi)
        return self._cache[source_on]

    def link_rates(self, source_on: bool = True):
        """The LinkRates (Hz) with the pair source on or off."""
        return self._physics(source_on)[0]

    def observed_state(self, source_on: bool = True) -> np.ndarray:
        """The 4x4 state a coincidence tomography sees (accidentals and readout folded in)."""
        return self._physics(source_on)[1]

    def bell_probabilities(self, basis_a: str, basis_b: str, source_on: bool = True) -> np.ndarray:
        """Probabilities of ++, +-, -+, -- (A first) for one analyser setting."""
        return self._physics(source_on)[2][basis_a + basis_b]

    def prep_probabilities(self, state: str, basis_b: str, source_on: bool = True) -> np.ndarray:
        """Probabilities of B's outcomes (+, -) when `state` is prepared and sent through the observed link."""
        choi = self._physics(source_on)[3]
        r = PREP_STATES[state]
        rho_in = (np.eye(2) + sum(c * s for c, s in zip(r, PAULIS[1:], strict=True))) / 2
        # N(rho)_ab = sum_ij rho_ij J_(ia),(jb) = Tr_in[(rho^T ⊗ 1) J]: input factor first, as in analysis.channels.
        out = np.einsum("ij,iajb->ab", rho_in, choi.reshape(2, 2, 2, 2))
        plus, minus = _projectors(basis_b, self.misalignment_deg)
        return np.clip(np.real([np.trace(plus @ out), np.trace(minus @ out)]), 0.0, None)
