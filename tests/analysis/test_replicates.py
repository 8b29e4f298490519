"""Bootstrap replicates are joint within a protocol and independent across records that share no counts."""

from __future__ import annotations

import numpy as np

from harness.analysis.estimators import estimate_bell_metrics, estimate_link_metrics
from harness.analysis.rates import estimate_rate_metrics
from harness.physics.channels import choi_from_kraus
from harness.physics.link import apply_to_b, link_kraus, werner_state
from harness.profiles import load_profile
from harness.protocols.base import MeasureContext
from harness.protocols.link import BellProtocol, RatesProtocol, bell_bootstrap_stream
from harness.records import BELL_SETTINGS, INPUTS_6, CoincidenceCounts, ProcessCounts, TomographyCounts

from .helpers import process_probabilities, sample, state_probabilities

N_BOOT = 300
RHO = apply_to_b(link_kraus(0.02, 0.02, 0.0), werner_state(0.9))
# A bright link: the pair rate's spread is small beside the coherent information's, so the ebit rate follows it.
COINC = CoincidenceCounts(
    singles_a=4_000_000, singles_b=3_000_000, coincidences=2_000_000, window_s=1e-9, duration_s=1.0
)


def _corr(a, b) -> float:
    return float(np.corrcoef(np.asarray(a, float), np.asarray(b, float))[0, 1])


def _bell(seed: int, shots: int = 3000) -> TomographyCounts:
    return TomographyCounts(BELL_SETTINGS, sample(state_probabilities(RHO), shots, np.random.default_rng(seed)), 1.0)


def test_replicates_of_one_bell_call_come_from_the_same_resamples():
    est = estimate_bell_metrics(_bell(1), rng=np.random.default_rng(2), n_boot=N_BOOT)
    assert {len(e.samples) for e in est.values()} == {N_BOOT}
    # Concurrence is nearly 2F - 1 here: resample i moves both the same way.
    assert _corr(est["bell_fidelity"].samples, est["concurrence"].samples) > 0.9
    # qber_z rests on the ZZ setting, which is a third of the fidelity's counts.
    assert _corr(est["bell_fidelity"].samples, est["qber_z"].samples) < -0.3
    # Independently drawn replicates (a second call) are uncorrelated.
    other = estimate_bell_metrics(_bell(1), rng=np.random.default_rng(3), n_boot=N_BOOT)
    assert abs(_corr(est["bell_fidelity"].samples, other["concurrence"].samples)) < 0.25


def test_link_replicates_are_joint():
    choi = choi_from_kraus(link_kraus(0.05, 0.02, 0.03))
    counts = sample(process_probabilities(choi, INPUTS_6), 3000, np.random.default_rng(4))
    est = estimate_link_metrics(
        ProcessCounts(INPUTS_6, ("X", "Y", "Z"), counts, 1.0), rng=np.random.default_rng(5), n_boot=100
    )
    assert _corr(est["link_process_fidelity"].samples, est["capacity_ce_bits"].samples) > 0.7


def test_rates_reuse_the_bell_resamples_and_not_the_coincidence_ones():
    bell = _bell(6)
    found = estimate_bell_metrics(bell, rng=np.random.default_rng(7), n_boot=N_BOOT)
    rates = estimate_rate_metrics(
        COINC, bell, rng=np.random.default_rng(8), n_boot=N_BOOT, bell_rng=np.random.default_rng(7)
    )
    ebit, ic = rates["ebit_rate_hz"].samples, found["coherent_information"].samples
    assert _corr(ebit, ic) > 0.9
    # Share no counts: the Bell tomography against the coincidences.
    assert abs(_corr(found["bell_fidelity"].samples, rates["pair_rate_hz"].samples)) < 0.25
    assert abs(_corr(found["bell_fidelity"].samples, rates["car"].samples)) < 0.25
    # Within the rates record, the pair rate and the heralding efficiencies share C.
    assert _corr(rates["pair_rate_hz"].samples, rates["heralding_efficiency_b"].samples) > 0.5


def test_bell_and_rates_protocols_key_the_bell_stream_by_the_counts():
    profile = load_profile("aer-reference").effective("2.4.0")
    bell = _bell(9)
    first = MeasureContext(profile, 1.0, seed=1, n_boot=N_BOOT, build="2.4.0", call=3)
    later = MeasureContext(profile, 1.0, seed=1, n_boot=N_BOOT, build="2.4.0", call=8)
    assert bell_bootstrap_stream(first, bell).integers(1 << 30) == bell_bootstrap_stream(later, bell).integers(1 << 30)
    assert bell_bootstrap_stream(first, bell).integers(1 << 30) != bell_bootstrap_stream(first, _bell(10)).integers(
        1 << 30
    )
    bell_found = BellProtocol()._estimate(bell, first, {})
    rates_found = RatesProtocol()._estimate(COINC, later, {"bell": bell})
    ic = bell_found.estimates["coherent_information"].samples
    assert _corr(rates_found.estimates["ebit_rate_hz"].samples, ic) > 0.9
    assert abs(_corr(rates_found.estimates["pair_rate_hz"].samples, ic)) < 0.25
    # The display values sit beside the gated estimates, not in place of them.
    art = bell_found.artifacts
    assert art["bell_fidelity"]["physical_value"] <= bell_found.estimates["bell_fidelity"].ci_high + 0.01
    assert art["chsh_s"]["horodecki_max"] >= bell_found.estimates["chsh_s"].value - 0.05
