"""Models of a quantum link: pair source, lossy noisy channel, detectors and accidentals.

Pure functions in SI units, shared by the Aer stand-in and the instrument emulators.
"""

from harness.physics.link import (
    LinkRates,
    apply_to_b,
    delivered_state,
    link_block_choi,
    link_kraus,
    observed_link_choi,
    observed_state,
    profile_link_kraus,
    profile_rates,
    rates,
    sample_singles,
    transmissivity,
    werner_state,
)

__all__ = [
    "LinkRates",
    "apply_to_b",
    "delivered_state",
    "link_block_choi",
    "link_kraus",
    "observed_link_choi",
    "observed_state",
    "profile_link_kraus",
    "profile_rates",
    "rates",
    "sample_singles",
    "transmissivity",
    "werner_state",
]
