"""The suite-facing estimators on counts sampled from known states, channels and rates."""

from __future__ import annotations

import time

import numpy as np
import pytest

from harness.analysis import (
    AnalysisError,
    ce_and_q1,
    coherent_information,
    concurrence,
    estimate_bell_metrics,
    estimate_link_metrics,
    estimate_rate_metrics,
    holevo_chi,
    process_fidelity,
    qber,
    reconstruct_bell_state,
    reconstruct_link_choi,
    state_fidelity,
)
from harness.analysis.measures import chsh_phi_plus
from harness.physics.channels import choi_from_kraus
from harness.physics.link import apply_to_b, link_kraus, rates, werner_state
from harness.records import BELL_SETTINGS, INPUTS_4, INPUTS_6, CoincidenceCounts, ProcessCounts, TomographyCounts

from .helpers import process_probabilities, sample, state_probabilities

KRAUS = link_kraus(0.05, 0.02, 0.03)
RHO = apply_to_b(KRAUS, werner_state(0.9))
CHOI = choi_from_kraus(KRAUS)


def _bell(rng: np.random.Generator, shots: int = 4000) -> TomographyCounts:
    return TomographyCounts(BELL_SETTINGS, sample(state_probabilities(RHO), shots, rng), 1.0)


def test_bell_metrics_near_truth_with_intervals():
    rng = np.random.default_rng(10)
    est = estimate_bell_metrics(_bell(rng), rng=rng, n_boot=200)
    truth = {
        "bell_fidelity": state_fidelity(RHO),
        "concurrence": concurrence(RHO),
        "chsh_s": chsh_phi_plus(RHO),
        "qber_z": qber(RHO, "Z"),
        "qber_x": qber(RHO, "X"),
        "coherent_information": coherent_information(RHO),
    }
    assert set(est) == set(truth)
    for name, value in truth.items():
        e = est[name]
        width = e.ci_high - e.ci_low
        assert 0 < width < 0.1, name
        assert abs(e.value - value) < 2 * width, name
        assert e.n == (4000 if name.startswith("qber") else 9 * 4000), name
        assert len(e.samples) == 200
    assert est["coherent_information"].unit == "bit/pair"
    assert est["qber_z"].direction == "lower"


def test_settings_order_is_normalised():
    rng = np.random.default_rng(2)
    counts = _bell(rng)
    perm = list(reversed(range(9)))
    shuffled = TomographyCounts(tuple(BELL_SETTINGS[i] for i in perm), counts.counts[perm], 1.0)
    np.testing.assert_allclose(reconstruct_bell_state(shuffled), reconstruct_bell_state(counts), atol=1e-14)


@pytest.mark.parametrize("inputs", [INPUTS_4, INPUTS_6])
def test_link_metrics_near_truth_and_fast(inputs):
    rng = np.random.default_rng(3)
    counts = ProcessCounts(inputs, ("X", "Y", "Z"), sample(process_probabilities(CHOI, inputs), 4000, rng), 1.0)
    t0 = time.perf_counter()
    est = estimate_link_metrics(counts, rng=rng, n_boot=200)
    elapsed = time.perf_counter() - t0
    # ~2-4 s on a quiet 2-core machine: the capacities run on 200 replicates and on 200 draws for their bias.
    assert elapsed < 12.0
    ce, q1 = ce_and_q1(CHOI)
    truth = {
        "link_process_fidelity": process_fidelity(CHOI),
        "capacity_ce_bits": ce,
        "capacity_q1_bits": q1,
        "capacity_chi_bits": holevo_chi(CHOI),
    }
    for name, value in truth.items():
        e = est[name]
        assert abs(e.value - value) < 2 * (e.ci_high - e.ci_low) + 1e-3, name
        assert e.unit == ("" if name == "link_process_fidelity" else "bit/use")
    assert np.abs(reconstruct_link_choi(counts) - CHOI).max() < 0.05


def test_rate_metrics_recover_physics():
    rng = np.random.default_rng(4)
    lr = rates(1e6, 0.6, 0.5, 3.0, 500.0, 800.0, 1e-9)
    duration = 2.0
    coinc = CoincidenceCounts(
        singles_a=int(rng.poisson(lr.singles_a_hz * duration)),
        singles_b=int(rng.poisson(lr.singles_b_hz * duration)),
        coincidences=int(rng.poisson(lr.coincidence_hz * duration)),
        window_s=lr.window_s,
        duration_s=duration,
    )
    est = estimate_rate_metrics(coinc, _bell(rng), rng=rng, n_boot=200)
    pair = est["pair_rate_hz"]
    assert pair.ci_low < lr.true_coincidence_hz < pair.ci_high
    assert pair.unit == "Hz"
    eta_a = lr.true_coincidence_hz / lr.singles_b_hz
    assert est["heralding_efficiency_a"].ci_low - 0.01 < eta_a < est["heralding_efficiency_a"].ci_high + 0.01
    car_true = lr.true_coincidence_hz / lr.accidental_hz
    assert est["car"].ci_low < car_true < est["car"].ci_high
    ic = coherent_information(RHO)
    assert est["ebit_rate_hz"].value == pytest.approx(pair.value * ic, rel=0.05)
    assert est["secret_key_rate_bps"].unit == "bit/s"
    assert 0 < est["plob_fraction"].value < 1


def test_bad_records_are_rejected():
    rng = np.random.default_rng(0)
    good = _bell(rng)
    with pytest.raises(AnalysisError, match="TomographyCounts"):
        estimate_bell_metrics(good.counts, rng=rng)
    with pytest.raises(AnalysisError, match="settings"):
        estimate_bell_metrics(TomographyCounts(("XX",) * 9, good.counts, 1.0), rng=rng)
    with pytest.raises(AnalysisError, match="wrong shape"):
        estimate_bell_metrics(TomographyCounts(BELL_SETTINGS, good.counts[:, :3], 1.0), rng=rng)
    neg = good.counts.copy()
    neg[0, 0] = -1
    with pytest.raises(AnalysisError, match=">= 0"):
        estimate_bell_metrics(TomographyCounts(BELL_SETTINGS, neg, 1.0), rng=rng)
    nan = good.counts.astype(float)
    nan[1, 1] = np.nan
    with pytest.raises(AnalysisError, match="NaN"):
        estimate_bell_metrics(TomographyCounts(BELL_SETTINGS, nan, 1.0), rng=rng)
    with pytest.raises(AnalysisError, match="Generator"):
        estimate_bell_metrics(good, rng=1)
    with pytest.raises(AnalysisError, match="wrong shape"):
        estimate_link_metrics(ProcessCounts(INPUTS_4, ("X", "Y", "Z"), np.ones((4, 3, 3), int), 1.0), rng=rng)
    coinc = CoincidenceCounts(100, 0, 10, 1e-9, 1.0)
    with pytest.raises(AnalysisError, match="singles"):
        estimate_rate_metrics(coinc, good, rng=rng)
    with pytest.raises(AnalysisError, match="duration_s"):
        estimate_rate_metrics(CoincidenceCounts(100, 100, 10, 1e-9, 0.0), good, rng=rng)
    with pytest.raises(AnalysisError, match="exceed"):
        estimate_rate_metrics(CoincidenceCounts(100, 100, 1000, 1e-9, 1.0), good, rng=rng)
