"""The physics an emulated bench reports: rates and outcome probabilities from harness.physics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.physics.channels import PAULIS
from harness.physics.link import delivered_state, link_kraus, observed_link_choi, observed_state, rates
from harness.records import BASES, INPUT_BLOCH

_SIGMA = dict(zip("XYZ", PAULIS[1:], strict=True))
# Bloch vectors of the states PREP accepts: the process-tomography inputs of the analysis core.
PREP_STATES: dict[str, np.ndarray] = {name: np.array(r) for name, r in INPUT_BLOCH.items()}


_QEC_KEYS = ("gate_error_1q", "gate_error_2q", "measurement_error", "idle_error")


def _projectors(basis: str) -> tuple[np.ndarray, np.ndarray]:
    s = _SIGMA[basis]
    return (np.eye(2) + s) / 2, (np.eye(2) - s) / 2


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
    # QEC noise of the firmware decoder's codes (profile qec block; defaults equal harness.profiles.Qec's).
    gate_error_1q: float = 1.0e-4
    gate_error_2q: float = 1.0e-3
    measurement_error: float = 1.0e-3
    idle_error: float = 1.0e-4

    @classmethod
    def from_profile(cls, profile: Any) -> LinkParameters:
        """Read the source, link, detectors (and, if present, qec) blocks of an effective Profile."""
        src, link, det = profile.source, profile.link, profile.detectors
        qec = getattr(profile, "qec", None)
        qec_errors = {
            key: float(getattr(qec, key))
            for key in _QEC_KEYS
            if qec is not None and getattr(qec, key, None) is not None
        }
        return cls(
            pair_rate_hz=float(src.pair_rate_hz),
            visibility=float(src.visibility),
            loss_db=float(link.loss_db),
            depolarizing=float(link.depolarizing),
            dephasing=float(link.dephasing),
            amplitude_damping=float(link.amplitude_damping),
            efficiency_a=float(det.efficiency_a),
            efficiency_b=float(det.efficiency_b),
            dark_count_hz_a=float(det.dark_count_hz_a),
            dark_count_hz_b=float(det.dark_count_hz_b),
            coincidence_window_s=float(det.coincidence_window_s),
            readout_error_a=float(det.readout_error_a),
            readout_error_b=float(det.readout_error_b),
            **qec_errors,
        )


class LinkModel:
    """Mean rates and outcome probabilities of the link, with the source on or off."""

    def __init__(self, params: LinkParameters) -> None:
        self.params = params
        self._cache: dict[bool, tuple] = {}

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
                    pa, pb = _projectors(a), _projectors(b)
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
        plus, minus = _projectors(basis_b)
        return np.clip(np.real([np.trace(plus @ out), np.trace(minus @ out)]), 0.0, None)

    def expected_coincidence_hz(self, source_on: bool = True) -> float:
        """Mean rate of all coincidences (true plus accidental), Hz."""
        return self.link_rates(source_on).coincidence_hz
