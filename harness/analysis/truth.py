"""Ground truth of a profile's link: the exact states, channels and metric values a perfect estimator would find.

Truth is for tests and reports only; estimators never see it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.physics.channels import choi_from_kraus
from harness.physics.link import (
    PHI_PLUS,
    LinkRates,
    delivered_state,
    link_kraus,
    observed_link_choi,
    observed_state,
    profile_rates,
)


@dataclass(frozen=True, eq=False)
class Truth:
    """Exact states, channels and metric values of one effective profile."""

    rates: LinkRates
    link_kraus: tuple[np.ndarray, ...]
    link_choi: np.ndarray
    delivered_state: np.ndarray
    observed_state: np.ndarray
    observed_link_choi: np.ndarray
    bell_fidelity: float
    qber_z: float
    qber_x: float
    concurrence: float
    chsh_s: float
    coherent_information: float
    pair_rate_hz: float
    heralding_efficiency_a: float
    heralding_efficiency_b: float
    car: float
    ebit_rate_hz: float
    secret_key_rate_bps: float
    plob_fraction: float
    capacity_ce_bits: float
    capacity_q1_bits: float
    capacity_chi_bits: float
    link_process_fidelity: float

    METRICS = (
        "bell_fidelity",
        "qber_z",
        "qber_x",
        "concurrence",
        "chsh_s",
        "coherent_information",
        "pair_rate_hz",
        "heralding_efficiency_a",
        "heralding_efficiency_b",
        "car",
        "ebit_rate_hz",
        "secret_key_rate_bps",
        "plob_fraction",
        "capacity_ce_bits",
        "capacity_q1_bits",
        "capacity_chi_bits",
        "link_process_fidelity",
    )

    def metrics(self) -> dict[str, float]:
        """Return every true metric value by name (units as in harness.metrics)."""
        return {name: float(getattr(self, name)) for name in self.METRICS}


def truth(profile: Any) -> Truth:
    """Return the exact Truth of an effective Profile (rates in Hz, information in bits)."""
    from harness.analysis import capacities, measures
    from harness.analysis.rates import plob_share

    det = profile.detectors
    link = profile.link
    r = profile_rates(profile)
    kraus = tuple(link_kraus(link.amplitude_damping, link.dephasing, link.depolarizing))
    f_acc = r.accidental_fraction
    delivered = delivered_state(profile.source.visibility, kraus, f_acc)
    observed = observed_state(delivered, det.readout_error_a, det.readout_error_b)
    obs_choi = observed_link_choi(kraus, f_acc, det.readout_error_b)
    caps = capacities.channel_capacities(obs_choi)
    ic = float(measures.coherent_information(observed))
    q_z, q_x = float(measures.qber(observed, "Z")), float(measures.qber(observed, "X"))
    c_t = r.true_coincidence_hz
    return Truth(
        rates=r,
        link_kraus=kraus,
        link_choi=choi_from_kraus(kraus),
        delivered_state=delivered,
        observed_state=observed,
        observed_link_choi=obs_choi,
        bell_fidelity=float(measures.state_fidelity(observed, PHI_PLUS)),
        qber_z=q_z,
        qber_x=q_x,
        concurrence=float(measures.concurrence(observed)),
        chsh_s=float(measures.chsh_phi_plus(observed)),
        coherent_information=ic,
        pair_rate_hz=float(c_t),
        # The rate estimators divide by the mean singles S_A, S_B (dark counts included) and the mean accidentals.
        heralding_efficiency_a=float(c_t / r.singles_b_hz),
        heralding_efficiency_b=float(c_t / r.singles_a_hz),
        car=float(c_t / r.accidental_hz) if r.accidental_hz > 0 else float("nan"),
        ebit_rate_hz=float(c_t * max(0.0, ic)),
        secret_key_rate_bps=float(c_t * 0.5 * capacities.bbm92_key_fraction(q_x, q_z)),
        plob_fraction=float(plob_share(c_t / r.singles_a_hz, ic)),
        capacity_ce_bits=caps.C_E,
        capacity_q1_bits=caps.Q1,
        capacity_chi_bits=caps.chi,
        link_process_fidelity=float(measures.process_fidelity(obs_choi)),
    )
