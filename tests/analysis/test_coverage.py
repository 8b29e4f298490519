"""The 95% intervals of the Bell fidelity and of C_E cover the truth at close to the nominal rate."""

from __future__ import annotations

import numpy as np
import pytest

from harness.analysis import entanglement_assisted_capacity, state_fidelity
from harness.analysis.estimators import estimate_bell_metrics, estimate_link_metrics
from harness.physics.channels import choi_from_kraus
from harness.physics.link import apply_to_b, link_kraus, werner_state
from harness.records import BELL_SETTINGS, INPUTS_6, ProcessCounts, TomographyCounts

from .helpers import process_probabilities, sample, state_probabilities

REPS = 200
SHOTS = 2000
N_BOOT = 100

# Werner V = 0.9 through a mildly noisy link; state and Choi matrix have full rank (smallest
# eigenvalue of J/2 is 0.0375), so sampling noise rarely pushes them out of the physical set.
KRAUS = link_kraus(0.1, 0.05, 0.15)
RHO = apply_to_b(KRAUS, werner_state(0.9))
CHOI = choi_from_kraus(KRAUS)


def coverage_rates(reps: int = REPS, seed: int = 7) -> tuple[float, float]:
    """Share of repetitions whose 95% interval contains the true fidelity and the true C_E (public estimators)."""
    rng = np.random.default_rng(seed)
    true_f = float(state_fidelity(RHO))
    true_ce = float(entanglement_assisted_capacity(CHOI))
    p_state = state_probabilities(RHO)
    p_proc = process_probabilities(CHOI, INPUTS_6)
    hit_f = hit_ce = 0
    for _ in range(reps):
        bell = TomographyCounts(BELL_SETTINGS, sample(p_state, SHOTS, rng), 1.0)
        f = estimate_bell_metrics(bell, rng=rng, n_boot=N_BOOT)["bell_fidelity"]
        hit_f += f.ci_low <= true_f <= f.ci_high
        link = ProcessCounts(INPUTS_6, ("X", "Y", "Z"), sample(p_proc, SHOTS, rng), 1.0)
        ce = estimate_link_metrics(link, rng=rng, n_boot=N_BOOT)["capacity_ce_bits"]
        hit_ce += ce.ci_low <= true_ce <= ce.ci_high
    return hit_f / reps, hit_ce / reps


@pytest.mark.slow
def test_coverage_of_fidelity_and_ce():
    cov_f, cov_ce = coverage_rates()
    print(f"coverage over {REPS} repetitions: fidelity {cov_f:.3f}, C_E {cov_ce:.3f}")
    # 200 repetitions: the Monte Carlo error of a 95% coverage is 0.015.
    assert 0.91 <= cov_f <= 0.99
    assert 0.91 <= cov_ce <= 0.99
