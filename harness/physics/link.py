"""Rates and states of an entangled-pair link: source, loss, qubit noise, detectors, accidentals."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from harness.physics.channels import (
    amplitude_damping_kraus,
    choi_from_kraus,
    compose_kraus,
    dephasing_kraus,
    depolarizing_kraus,
)

PHI_PLUS = np.array([1, 0, 0, 1], dtype=complex) / np.sqrt(2)


@dataclass(frozen=True)
class LinkRates:
    """Mean detection rates of a pair link, in Hz, and the coincidence window in s."""

    singles_a_hz: float
    singles_b_hz: float
    true_coincidence_hz: float
    accidental_hz: float
    window_s: float
    eta_link: float

    @property
    def coincidence_hz(self) -> float:
        """Mean rate of all coincidences (true plus accidental), Hz."""
        return self.true_coincidence_hz + self.accidental_hz

    @property
    def accidental_fraction(self) -> float:
        """Fraction of coincidences that are accidental."""
        total = self.coincidence_hz
        return self.accidental_hz / total if total > 0 else 0.0


def transmissivity(loss_db: float) -> float:
    """Link transmissivity eta = 10^(-loss_db/10)."""
    return float(10.0 ** (-loss_db / 10.0))


def rates(
    pair_rate_hz: float,
    efficiency_a: float,
    efficiency_b: float,
    loss_db: float,
    dark_count_hz_a: float,
    dark_count_hz_b: float,
    window_s: float,
) -> LinkRates:
    """Singles S_A = R eta_a + d_a, S_B = R eta eta_b + d_b, C_t = R eta_a eta eta_b, C_acc = S_A S_B tau."""
    eta = transmissivity(loss_db)
    s_a = pair_rate_hz * efficiency_a + dark_count_hz_a
    s_b = pair_rate_hz * eta * efficiency_b + dark_count_hz_b
    c_t = pair_rate_hz * efficiency_a * eta * efficiency_b
    return LinkRates(s_a, s_b, c_t, s_a * s_b * window_s, window_s, eta)


def link_kraus(amplitude_damping: float, dephasing: float, depolarizing: float) -> list[np.ndarray]:
    """Kraus operators of the link: amplitude damping, then dephasing, then depolarising."""
    ad = amplitude_damping_kraus(amplitude_damping)
    return compose_kraus(compose_kraus(ad, dephasing_kraus(dephasing)), depolarizing_kraus(depolarizing))


def werner_state(visibility: float) -> np.ndarray:
    """V |Phi+><Phi+| + (1-V) I/4, qubit A first."""
    return visibility * np.outer(PHI_PLUS, PHI_PLUS.conj()) + (1 - visibility) * np.eye(4) / 4


def apply_to_b(kraus: Sequence[np.ndarray], rho: np.ndarray) -> np.ndarray:
    """(1 ⊗ N)(rho) for a two-qubit rho with qubit A first."""
    return sum(np.kron(np.eye(2), k) @ rho @ np.kron(np.eye(2), k).conj().T for k in kraus)


def _mix_identity(rho: np.ndarray, fraction: float) -> np.ndarray:
    d = rho.shape[0]
    return (1 - fraction) * rho + fraction * np.eye(d) / d


def delivered_state(visibility: float, kraus: Sequence[np.ndarray], accidental_fraction: float) -> np.ndarray:
    """State of a coincidence event: (1 ⊗ N_link)(Werner(V)) mixed with I/4 by the accidental fraction."""
    return _mix_identity(apply_to_b(kraus, werner_state(visibility)), accidental_fraction)


def observed_state(rho: np.ndarray, readout_error_a: float, readout_error_b: float) -> np.ndarray:
    """The state a tomography with symmetric readout flips sees.

    A flip with probability r in every basis scales each Bloch component by (1 - 2r), which is
    exactly a depolarising channel of p = 2r before an ideal measurement.
    """
    ka = depolarizing_kraus(2 * readout_error_a)
    kb = depolarizing_kraus(2 * readout_error_b)
    return sum(np.kron(a, b) @ rho @ np.kron(a, b).conj().T for a in ka for b in kb)


def observed_link_choi(kraus: Sequence[np.ndarray], accidental_fraction: float, readout_error_b: float) -> np.ndarray:
    """Choi matrix that link tomography sees: link, then accidental mixing, then readout flips."""
    mix = depolarizing_kraus(accidental_fraction)
    readout = depolarizing_kraus(2 * readout_error_b)
    return choi_from_kraus(compose_kraus(compose_kraus(kraus, mix), readout))


def sample_singles(rates: LinkRates, coincidences: int, duration_s: float, rng: np.random.Generator) -> tuple[int, int]:
    """Singles N_A, N_B over `duration_s` that contain the given coincidences, as detectors count them.

    Every coincidence is also a single on both arms, so N = C + Poisson(events seen by one arm only);
    drawing singles independently of C would overstate the spread of C / N (the heralding efficiencies).
    """
    only = np.maximum(np.array([rates.singles_a_hz, rates.singles_b_hz]) - rates.coincidence_hz, 0.0) * duration_s
    n_a, n_b = coincidences + rng.poisson(only)
    return int(n_a), int(n_b)


def profile_rates(profile: object) -> LinkRates:
    """Return the mean singles, true and accidental coincidence rates (Hz) of a profile's link."""
    det = profile.detectors
    return rates(
        profile.source.pair_rate_hz,
        det.efficiency_a,
        det.efficiency_b,
        profile.link.loss_db,
        det.dark_count_hz_a,
        det.dark_count_hz_b,
        det.coincidence_window_s,
    )


def profile_link_kraus(profile: object) -> list[np.ndarray]:
    """Return the Kraus operators of a profile's link on qubit B (zero operators dropped)."""
    link = profile.link
    ks = link_kraus(link.amplitude_damping, link.dephasing, link.depolarizing)
    kept = [k for k in ks if np.linalg.norm(k) > 1e-12]
    return kept or [np.eye(2, dtype=complex)]


def link_block_choi(link: object) -> np.ndarray:
    """Choi matrix of a profile's `link` block (amplitude damping, dephasing, depolarising), without readout."""
    return choi_from_kraus(link_kraus(link.amplitude_damping, link.dephasing, link.depolarizing))
