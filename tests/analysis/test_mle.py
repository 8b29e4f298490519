"""Measurement schemes and maximum-likelihood tomography: exact recovery, conventions, offsets, peer agreement."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from harness.analysis import AnalysisError
from harness.analysis.measures import PHI_PLUS, state_fidelity
from harness.analysis.mle import fit_tomography, linear_inversion
from harness.analysis.mle_bootstrap import bootstrap_fit, process_estimates, state_estimates
from harness.analysis.schemes import (
    ANALYSER_ANGLES,
    LABEL_VECTORS,
    PREPARER_ANGLES,
    Waveplates,
    analyser_vectors,
    build_scheme,
    custom_scheme,
    james16_scheme,
    prepared_vector,
    process_scheme,
)
from harness.analysis.singles import accidentals_from_singles, intensities_from_singles
from harness.metrics import Estimate
from harness.physics.channels import amplitude_damping_kraus, choi_from_kraus, compose_kraus, depolarizing_kraus

PSI_I = np.array([1, 0, 0, 1j]) / np.sqrt(2)  # (|HH> + i|VV>)/sqrt2: imaginary coherence


def mixed(vec: np.ndarray, fidelity: float) -> np.ndarray:
    """Werner-type mixture of a pure two-qubit state with white noise, at the given fidelity to it."""
    p = (fidelity - 0.25) / 0.75
    return p * np.outer(vec, vec.conj()) + (1 - p) * np.eye(4) / 4


def probabilities(scheme, rho: np.ndarray) -> np.ndarray:
    """Outcome probabilities Tr(E rho) of every count of `scheme`."""
    return np.real(np.einsum("...ab,ba->...", scheme.operators(), rho))


STATES = {"F0.998": mixed(PHI_PLUS, 0.998), "imaginary": mixed(PSI_I, 0.9), "pure": np.outer(PHI_PLUS, PHI_PLUS)}


@pytest.mark.parametrize("kind", ["pauli", "james16", "projections36"])
@pytest.mark.parametrize("state", list(STATES))
def test_exact_probabilities_recover_the_state(kind, state):
    scheme = build_scheme(kind)
    rho = STATES[state]
    # A pure state is a rank-deficient optimum, where only the stall rule stops Newton: make it strict.
    counts = 1e5 * probabilities(scheme, rho)
    fit = fit_tomography(scheme, counts, stall=1e-13, max_iter=300)
    assert fit.converged
    assert np.allclose(fit.means, counts, rtol=1e-6, atol=1e-6)
    assert np.max(np.abs(fit.rho - rho)) < 1e-6
    assert fit.intensity == pytest.approx(1e5, rel=1e-6)


def test_linear_inversion_is_exact_on_exact_probabilities():
    scheme = build_scheme("james16")
    rho = STATES["imaginary"]
    assert np.max(np.abs(linear_inversion(scheme, 3e4 * probabilities(scheme, rho)) - rho)) < 1e-10


def test_accidentals_efficiencies_and_drift_are_modelled():
    scheme = build_scheme("pauli")
    rho = STATES["imaginary"]
    eta = np.array([[0.9, 0.7], [0.8, 1.0]])
    drift = np.linspace(0.8, 1.2, scheme.n_settings)
    singles = np.full((scheme.n_settings, 2, 2), 4e4)
    acc = accidentals_from_singles(scheme, singles, window_s=2e-9, duration_s=1.0)
    eff = np.einsum("a,b->ab", eta[0], eta[1]).reshape(-1)
    means = 2e4 * drift[:, None] * eff * probabilities(scheme, rho) + acc
    fit = fit_tomography(scheme, means, accidentals=acc, efficiencies=eta, intensities=drift)
    assert np.max(np.abs(fit.rho - rho)) < 1e-6
    naive = fit_tomography(scheme, means)
    assert np.max(np.abs(naive.rho - rho)) > 1e-2
    assert intensities_from_singles(singles).tolist() == pytest.approx([1.0] * scheme.n_settings)


# Tolerances: about 4 standard errors of the fidelity at these counts (from the bootstrap), per state.
@pytest.mark.parametrize(
    ("kind", "shots", "tols"), [("projections36", 4000, (0.003, 0.02)), ("james16", 20000, (0.02, 0.02))]
)
def test_sampled_high_fidelity_and_imaginary_states_are_recovered(kind, shots, tols):
    rng = np.random.default_rng(11)
    scheme = build_scheme(kind)
    for vec, rho, tol in ((PHI_PLUS, STATES["F0.998"], tols[0]), (PSI_I, STATES["imaginary"], tols[1])):
        fit = fit_tomography(scheme, rng.poisson(shots * probabilities(scheme, rho)))
        assert fit.converged
        assert abs(state_fidelity(fit.rho, vec) - state_fidelity(rho, vec)) < tol
    # The imaginary coherence is seen as such: the estimate is far from Phi+ (fidelity 0.5 x 0.9 + noise).
    assert state_fidelity(fit.rho, PHI_PLUS) < 0.6


def test_waveplate_offsets_given_to_the_fit_remove_the_bias():
    offsets = [Waveplates(1.5, -1.5), Waveplates(-1.5, 1.5)]
    true_scheme = james16_scheme(offsets=offsets)
    rho = STATES["F0.998"]
    counts = 1e5 * probabilities(true_scheme, rho)
    with_offsets = fit_tomography(custom_scheme(list(true_scheme.labels), 1, offsets), counts)
    without = fit_tomography(build_scheme("james16"), counts)
    f_true = state_fidelity(rho, PHI_PLUS)
    assert abs(state_fidelity(with_offsets.rho, PHI_PLUS) - f_true) < 1e-6
    assert abs(state_fidelity(without.rho, PHI_PLUS) - f_true) > 5e-3


def test_label_angles_give_the_label_states_and_specs_agree():
    for label, (h, q) in ANALYSER_ANGLES.items():
        assert abs(np.vdot(analyser_vectors(h, q)[0], LABEL_VECTORS[label])) ** 2 == pytest.approx(1.0)
        assert abs(np.vdot(prepared_vector(*PREPARER_ANGLES[label]), LABEL_VECTORS[label])) ** 2 == pytest.approx(1.0)
    by_label = custom_scheme(["HD", "RV"], 2).projectors()
    by_plates = custom_scheme([[{"hwp": 0, "qwp": 0}, Waveplates(22.5, 45)], [Waveplates(0, 45), "V"]], 2)
    by_jones = custom_scheme([[(1, 0), (1, 1)], [(1, 1j), (0, 1)]], 2).projectors()
    assert np.allclose(by_label, by_plates.projectors()) and np.allclose(by_label, by_jones)


def test_pauli_scheme_matches_the_records_convention():
    # Setting "XY", outcome "+-": A projected on D (X+), B on L (Y-, the -1 eigenvector of Y).
    proj = build_scheme("pauli").projectors()
    d, l_ = LABEL_VECTORS["D"], LABEL_VECTORS["L"]
    assert np.allclose(proj[1, 1], np.kron(np.outer(d, d.conj()), np.outer(l_, l_.conj())))


def test_incomplete_schemes_are_rejected_naming_what_is_missing():
    with pytest.raises(AnalysisError, match=r"not informationally complete.*undetermined"):
        build_scheme("custom", projections=["HH", "HV", "VH", "VV", "DD", "DA", "AD", "AA"])
    with pytest.raises(AnalysisError, match="not informationally complete"):
        process_scheme(inputs=("H", "V", "D"))
    with pytest.raises(AnalysisError, match="detectors_per_arm"):
        build_scheme("custom", projections=JAMES16_LIST, detectors_per_arm=3)
    with pytest.raises(AnalysisError, match="wrong shape"):
        fit_tomography(build_scheme("james16"), np.ones((15, 1)))


JAMES16_LIST = list(build_scheme("james16").labels)


def test_process_mle_recovers_a_channel_and_stays_trace_preserving():
    choi = choi_from_kraus(compose_kraus(depolarizing_kraus(0.1), amplitude_damping_kraus(0.2)))
    for scheme in (process_scheme(), process_scheme(analysis=("H", "V", "D", "R"), detectors_per_arm=1)):
        fit = fit_tomography(scheme, 1e4 * probabilities(scheme, choi))
        assert np.max(np.abs(fit.rho - choi)) < 1e-6
    rng = np.random.default_rng(2)
    scheme = process_scheme()
    est = process_estimates(scheme, rng.poisson(1000 * probabilities(scheme, choi)), rng=rng, n_boot=50)
    fit = fit_tomography(scheme, rng.poisson(1000 * probabilities(scheme, choi)))
    partial = np.einsum("iaja->ij", fit.rho.reshape(2, 2, 2, 2))
    assert np.allclose(partial, np.eye(2), atol=1e-9)
    assert isinstance(est["link_process_fidelity"], Estimate)


def test_bootstrap_estimates_are_batched_and_contain_the_truth():
    rng = np.random.default_rng(7)
    scheme = build_scheme("projections36")
    rho = STATES["F0.998"]
    est = state_estimates(scheme, rng.poisson(4000 * probabilities(scheme, rho)), rng=rng, n_boot=100)
    assert set(est) == {"bell_fidelity", "concurrence", "purity"}
    f = est["bell_fidelity"]
    assert f.ci_low <= 0.998 <= f.ci_high and f.ci_high - f.ci_low < 0.01
    fits = bootstrap_fit(scheme, rng.poisson(4000 * probabilities(scheme, rho)), rng=rng, n_boot=30)
    assert fits.replicates.rho.shape == (30, 4, 4) and fits.replicates.converged.all()


def _quantum_tomography():
    qt = pytest.importorskip("QuantumTomography", reason="quantum-tomography (the bench extra) is not installed")
    from QuantumTomography import TomoClass

    return qt, TomoClass


def qt_state(scheme, counts: np.ndarray, accidentals: bool = False, **kw) -> np.ndarray:
    """QuantumTomography's MLE of the same counts (its Jones vectors need a real first component)."""
    qt, tomo_class = _quantum_tomography()
    v = scheme.vectors[:, :, 0, :]
    v = v * np.exp(-1j * np.angle(v[:, :, :1]))
    original = tomo_class.maxlike_fitness
    # With numpy >= 2.x its fitness fails on (M, 1)-shaped accidentals; flattening them changes nothing else.
    tomo_class.maxlike_fitness = lambda t, c, a, m, o: original(t, c, np.ravel(a), m, o)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            c = counts[:, 0] if scheme.detectors_per_arm == 1 else counts
            tomo = qt.Tomography()
            tomo.conf["DoAccidentalCorrection"] = int(accidentals)
            rho, _, _ = tomo.StateTomography(v.reshape(len(v), 4), np.asarray(c, dtype=float), **kw)
    finally:
        tomo_class.maxlike_fitness = original
    return rho


@pytest.mark.parametrize("kind", ["james16", "pauli"])
def test_agrees_with_quantum_tomography_on_identical_counts(kind):
    rng = np.random.default_rng(4)
    scheme = build_scheme(kind)
    rho = STATES["imaginary"]
    counts = rng.poisson(3000 * probabilities(scheme, rho)).astype(float)
    peer = qt_state(scheme, counts)
    same_objective = fit_tomography(scheme, counts, objective="pearson").rho
    assert np.max(np.abs(same_objective - peer)) < 1e-6
    poisson = fit_tomography(scheme, counts).rho
    assert np.max(np.abs(poisson - peer)) < 1e-3
    assert abs(state_fidelity(poisson, PSI_I) - state_fidelity(peer, PSI_I)) < 1e-4


def test_accidentals_efficiencies_and_drift_match_quantum_tomography():
    rng = np.random.default_rng(4)
    scheme = build_scheme("pauli")
    rho = STATES["imaginary"]
    eta = np.array([[0.9, 0.7], [0.8, 1.0]])
    drift = np.linspace(0.8, 1.2, scheme.n_settings)
    singles = rng.uniform(3e4, 5e4, size=(scheme.n_settings, 2, 2))
    duration = np.ones(scheme.n_settings)
    acc = accidentals_from_singles(scheme, singles, 3e-9, duration)
    eff = np.kron(eta[0], eta[1])  # the package takes one efficiency per detector pair
    counts = rng.poisson(3000 * drift[:, None] * eff * probabilities(scheme, rho) + acc).astype(float)
    ours = fit_tomography(scheme, counts, accidentals=acc, efficiencies=eta, intensities=drift, objective="pearson")
    # Its singles columns are A+, B+, A-, B- and its coincidence window is in ns, one per detector pair.
    qt_singles = singles.transpose(0, 2, 1).reshape(scheme.n_settings, 4)
    kw = {"efficiency": eff, "time": duration, "singles": qt_singles, "window": np.full(4, 3.0), "intensities": drift}
    peer = qt_state(scheme, counts, accidentals=True, **kw)
    assert np.max(np.abs(ours.rho - peer)) < 1e-6


def test_process_inputs_and_analysers_with_offsets_are_modelled():
    choi = choi_from_kraus(compose_kraus(depolarizing_kraus(0.05), amplitude_damping_kraus(0.1)))
    kw = {"input_offset": Waveplates(1.0, -2.0), "analysis_offset": Waveplates(-1.5, 1.0)}
    inputs = ("H", "V", Waveplates(22.5, 45), (1, 1j))  # labels, waveplates and a Jones vector mixed
    true_scheme = process_scheme(inputs=inputs, **kw)
    counts = 1e4 * probabilities(true_scheme, choi)
    assert np.max(np.abs(fit_tomography(process_scheme(inputs=inputs, **kw), counts).rho - choi)) < 1e-6
    assert np.max(np.abs(fit_tomography(process_scheme(inputs=inputs), counts).rho - choi)) > 1e-3
