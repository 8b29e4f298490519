"""Bootstrap 95% intervals of fidelity and C_E cover the truth at close to the nominal rate."""

from __future__ import annotations

import numpy as np
import pytest

from harness.analysis import entanglement_assisted_capacity, state_fidelity
from harness.analysis.bootstrap import resample_multinomial
from harness.analysis.intervals import percentile_interval
from harness.analysis.tomography import process_tomography, state_tomography
from harness.physics.channels import choi_from_kraus
from harness.physics.link import apply_to_b, link_kraus, werner_state
from harness.records import INPUTS_6

from .helpers import process_probabilities, sample, state_probabilities

REPS = 300
# The over-complete input set halves C_E's (convexity) bias relative to its spread.
INPUTS = INPUTS_6
SHOTS = 2000
N_BOOT = 200

# Werner V = 0.9 through a mildly noisy link; state and Choi matrix have full rank (smallest
# eigenvalue of J/2 is 0.0375), so sampling noise rarely pushes them out of the physical set.
KRAUS = link_kraus(0.1, 0.05, 0.15)
RHO = apply_to_b(KRAUS, werner_state(0.9))
CHOI = choi_from_kraus(KRAUS)


def coverage_rates(reps: int = REPS, seed: int = 7) -> tuple[float, float]:
    """Share of repetitions whose 95% bootstrap interval contains the true fidelity and the true C_E."""
    rng = np.random.default_rng(seed)
    true_f = float(state_fidelity(RHO))
    true_ce = float(entanglement_assisted_capacity(CHOI))
    p_state = state_probabilities(RHO)
    p_proc = process_probabilities(CHOI, INPUTS)
    hit_f = hit_ce = 0
    for _ in range(reps):
        counts = sample(p_state, SHOTS, rng)
        boot = state_fidelity(state_tomography(resample_multinomial(counts, rng, N_BOOT)))
        lo, hi = percentile_interval(boot, float(state_fidelity(state_tomography(counts))))
        hit_f += lo <= true_f <= hi
        pc = sample(p_proc, SHOTS, rng)
        chois = process_tomography(np.concatenate([pc[None], resample_multinomial(pc, rng, N_BOOT)]), INPUTS)
        ce = entanglement_assisted_capacity(chois)
        lo, hi = percentile_interval(ce[1:], float(ce[0]))
        hit_ce += lo <= true_ce <= hi
    return hit_f / reps, hit_ce / reps


@pytest.mark.slow
def test_bootstrap_coverage_of_fidelity_and_ce():
    cov_f, cov_ce = coverage_rates()
    print(f"coverage over {REPS} repetitions: fidelity {cov_f:.3f}, C_E {cov_ce:.3f}")
    assert 0.92 <= cov_f <= 0.98
    assert 0.92 <= cov_ce <= 0.98
