"""The one-detector waveplate bench: emulator physics, the device's scheme measurements, and the MLE metrics."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from harness.analysis.measures import PHI_PLUS, process_fidelity, state_fidelity
from harness.analysis.schemes import LABEL_VECTORS, analyser_vectors, prepared_vector
from harness.devices.bench import BenchDevice
from harness.devices.schemes import SchemeCounts, analyser_angles, preparer_angles, state_scheme
from harness.emulators import EmulatorSet, LinkModel, LinkParameters, ThreadedEmulators
from harness.emulators.waveplates import WaveplateEmulator
from harness.physics.link import profile_rates
from harness.profiles import Profile, load_profile
from harness.profiles.tomography import Tomography
from harness.protocols.mle import mle_bell_analysis, mle_link_estimates, uses_mle
from harness.records import BELL_SETTINGS, TomographyCounts

BUILD = "2.4.0"
OFFSETS = [(1.5, -1.0), (-0.8, 2.0)]


@pytest.fixture(scope="module")
def shipped() -> Profile:
    """The effective bench-waveplates profile (james16, MLE, offsets above, aer-reference physics)."""
    profile = load_profile("bench-waveplates").effective(BUILD)
    assert profile.tomography.offsets() == OFFSETS
    return profile


@pytest.fixture
def bench(shipped: Profile) -> Iterator[Any]:
    """Factory: a BenchDevice on a waveplate emulator with the given WaveplateEmulator options (no profile drift)."""
    started: list[ThreadedEmulators] = []

    def start(profile: Profile = shipped, **waveplates: Any) -> tuple[BenchDevice, EmulatorSet]:
        waveplates.setdefault("offsets", OFFSETS)
        emu = EmulatorSet(LinkParameters.from_profile(shipped), BUILD, seed=5, decoder=False, waveplates=waveplates)
        started.append(ThreadedEmulators(emulators=emu).start())
        live = Profile.model_validate(emu.profile_dict(profile, "wp-live"))
        return BenchDevice(live, BUILD), emu

    yield start
    for runner in started:
        runner.stop()


def _observed(profile: Profile) -> np.ndarray:
    return LinkModel(LinkParameters.from_profile(profile)).observed_state(True)


def test_emulator_commands_and_their_errors(shipped: Profile) -> None:
    emu = WaveplateEmulator(LinkModel(LinkParameters.from_profile(shipped)), seed=1)
    assert emu.handle("WP A,22.5,45") == (None, 0.0) and emu.plates["A"] == (22.5, 45.0)
    assert emu.handle("WP?")[0] == "A,22.5,45;B,0,0"
    for bad in ("WP C,1,2", "WP A,x,2", "WP A,1", "WP A,1000,0", "PREP:WP 1", "PREP nope", "ANAL:BAS A,X"):
        emu.handle(bad)
    assert [emu.handle("SYST:ERR?")[0][:4] for _ in range(8)] == ["-222"] * 6 + ["-113", '0,"N']
    emu.handle("PREP +i")
    assert np.allclose(abs(np.vdot(emu.input, LABEL_VECTORS["R"])), 1.0)
    emu.handle("PREP:WP 22.5,45")  # the HWP turns H to D, the QWP on D leaves it
    assert np.allclose(abs(np.vdot(emu.input, LABEL_VECTORS["D"])), 1.0)
    emu.handle("PREP NONE")
    assert emu.input is None
    with pytest.raises(ValueError, match="intensity_drift"):
        WaveplateEmulator(emu.model, intensity_drift=1.5)


def test_angles_for_labels_and_jones_vectors_project_where_asked() -> None:
    for label, vec in LABEL_VECTORS.items():
        assert abs(np.vdot(vec, analyser_vectors(*analyser_angles(label))[0])) == pytest.approx(1.0)
        assert abs(np.vdot(vec, prepared_vector(*preparer_angles(label)))) == pytest.approx(1.0)
    target = np.array([np.cos(0.3), np.exp(0.7j) * np.sin(0.3)])
    spec = {"jones": [f"{target[0].real}", f"{target[1].real}+{target[1].imag}j"]}
    assert abs(np.vdot(target, analyser_vectors(*analyser_angles(spec))[0])) ** 2 > 1 - 1e-9
    assert abs(np.vdot(target, prepared_vector(*preparer_angles(spec)))) ** 2 > 1 - 1e-9


def test_scheme_counts_follow_the_physics_with_the_true_offsets(bench, shipped: Profile) -> None:
    dev, _ = bench()
    with dev:
        raw = dev.scheme_tomography(0.5)
    assert isinstance(raw, SchemeCounts) and raw.counts.shape == (16, 1) and raw.singles.shape == (16, 2)
    scheme = state_scheme(shipped)  # the fit's projectors: nominal angles plus the calibrated (here: true) offsets
    probs = np.real(np.einsum("sij,ji->s", scheme.projectors()[:, 0], _observed(shipped)))
    mean = profile_rates(shipped).coincidence_hz * 0.5 * probs
    z = (raw.counts[:, 0] - mean) / np.sqrt(mean)
    assert np.all(np.abs(z) < 4.5), z  # Poisson counts of the emulator's physics
    pooled = raw + raw
    assert np.array_equal(pooled.counts, 2 * raw.counts) and pooled.to_dict()["settings"] == list(raw.settings)


def test_mle_recovers_the_state_and_needs_the_offsets(bench, shipped: Profile) -> None:
    truth = float(state_fidelity(_observed(shipped), PHI_PLUS))
    big = [(4.0, -3.0), (-3.0, 4.0)]  # large offsets, so that ignoring them shows
    calibrated = shipped.model_copy(
        update={"tomography": Tomography.model_validate({"scheme": "james16", "waveplate_offsets": {
            "A": {"hwp": 4.0, "qwp": -3.0}, "B": {"hwp": -3.0, "qwp": 4.0}}})}
    )  # fmt: skip
    dev, _ = bench(calibrated, offsets=big)
    with dev:
        raw = dev.scheme_tomography(1.0)
    rng = np.random.default_rng(3)
    fid = mle_bell_analysis(calibrated, raw, rng, 200).estimates["bell_fidelity"]
    assert fid.ci_low <= truth <= fid.ci_high, (fid, truth)
    ignorant = calibrated.model_copy(
        update={"tomography": calibrated.tomography.model_copy(update={"waveplate_offsets": {}})}
    )
    wrong = mle_bell_analysis(ignorant, raw, rng, 200).estimates["bell_fidelity"]
    assert not wrong.ci_low <= truth <= wrong.ci_high and truth - wrong.value > 0.01, (wrong, truth)


def test_intensity_drift_between_settings_is_taken_out_by_the_singles(bench, shipped: Profile) -> None:
    truth = float(state_fidelity(_observed(shipped), PHI_PLUS))
    dev, _ = bench(intensity_drift=0.15)
    with dev:
        raw = dev.scheme_tomography(1.0)
        coinc = dev.coincidences(0.5)
    rates = profile_rates(shipped)
    # Each rate setting is divided by its intensity first, so the drift does not tilt coincidences against singles.
    herald = (coinc.coincidences / coinc.singles_b) / (rates.coincidence_hz / rates.singles_b_hz)
    assert abs(herald - 1) < 0.01, herald
    ratio = raw.singles.sum(axis=1) / raw.singles.sum(axis=1).mean()
    assert ratio.std() > 0.05  # the source did drift between settings
    fid = mle_bell_analysis(shipped, raw, np.random.default_rng(4), 200).estimates["bell_fidelity"]
    assert fid.ci_low <= truth <= fid.ci_high, (fid, truth)


def test_link_tomography_and_rates_on_one_detector(bench, shipped: Profile) -> None:
    dev, emu = bench()
    with dev:
        link = dev.scheme_link_tomography(0.5)
        coinc = dev.coincidences(0.5)
    assert link.counts.shape == (6, 6, 1) and link.inputs == ("H", "V", "D", "A", "R", "L")
    assert emu.scpi.input is None  # the preparer is back on entangled pairs
    model = LinkModel(LinkParameters.from_profile(shipped))
    truth = float(process_fidelity(model._physics(True)[3]))
    est = mle_link_estimates(shipped, link, np.random.default_rng(6), 200)["link_process_fidelity"]
    # ~6 million counts: within 1e-3 of the truth. (The bootstrap interval, ~2e-4 wide, covered the truth of this
    # near-boundary channel in 49 of 60 simulated data sets at these counts, so it is not asserted here.)
    assert abs(est.value - truth) < 1e-3, (est, truth)
    rates = profile_rates(shipped)
    # The four H/V settings count every pair once: as one open integration of 0.5 s.
    for got, want in ((coinc.coincidences, rates.coincidence_hz), (coinc.singles_a, rates.singles_a_hz)):
        assert abs(got - want * 0.5) < 5 * np.sqrt(want * 0.5), (got, want * 0.5)


def test_pauli_counts_fitted_by_maximum_likelihood_agree_with_linear_inversion(shipped: Profile) -> None:
    from harness.analysis.estimators import estimate_bell_metrics

    aer = load_profile("aer-reference").effective(BUILD)
    mle = aer.model_copy(update={"tomography": Tomography(estimator="mle")})
    rho = _observed(shipped)
    probs = []
    for setting in BELL_SETTINGS:
        scheme_rows = state_scheme(aer).projectors()[BELL_SETTINGS.index(setting)]
        probs.append(np.real(np.einsum("oij,ji->o", scheme_rows, rho)))
    counts = np.random.default_rng(8).multinomial(40_000, np.array(probs) / np.sum(probs, axis=1, keepdims=True))
    raw = TomographyCounts(BELL_SETTINGS, counts, 0.05)
    assert uses_mle(mle, raw) and not uses_mle(aer, raw)
    by_mle = mle_bell_analysis(mle, raw, np.random.default_rng(9), 200).estimates
    linear = estimate_bell_metrics(raw, rng=np.random.default_rng(9), n_boot=200)
    for name in ("bell_fidelity", "qber_z", "qber_x", "chsh_s", "concurrence"):
        a, b = by_mle[name], linear[name]
        assert a.ci_low <= b.ci_high and b.ci_low <= a.ci_high, (name, a, b)
        assert abs(a.value - b.value) < 2 * max(a.standard_error, b.standard_error), (name, a, b)


def _custom(shipped: Profile, settings: list[Any] | None, inputs: list[Any]) -> Profile:
    block: dict[str, Any] = {"scheme": "custom" if settings else "james16", "link": {"inputs": inputs}}
    block["waveplate_offsets"] = {"A": {"hwp": 1.5, "qwp": -1.0}, "B": {"hwp": -0.8, "qwp": 2.0}}
    if settings:
        block["projections"] = settings
    return shipped.model_copy(update={"tomography": Tomography.model_validate(block)})


def test_custom_projections_as_angles_and_jones_vectors_recover_the_state(bench, shipped: Profile) -> None:
    # The 36 products, a few given as angles or Jones vectors instead of labels: the plates carry offsets, so a
    # Jones vector is fitted as the angles the bench set, plus the offsets.
    settings: list[Any] = [a + b for a in "HVDARL" for b in "HVDARL"]
    settings[0] = [{"hwp": 0.0, "qwp": 0.0}, "H"]
    settings[14] = ["D", {"jones": ["0.7071067811865476", "-0.7071067811865476"]}]
    settings[29] = [{"jones": [1, "1j"]}, {"hwp": -22.5, "qwp": -45.0}]
    custom = _custom(shipped, settings, ["H"])
    dev, _ = bench(custom)
    with dev:
        raw = dev.scheme_tomography(0.5)
    assert raw.counts.shape == (36, 1) and raw.settings[0] == "(h0,q0)|H"
    truth = float(state_fidelity(_observed(shipped), PHI_PLUS))
    fid = mle_bell_analysis(custom, raw, np.random.default_rng(10), 200).estimates["bell_fidelity"]
    assert fid.ci_low <= truth <= fid.ci_high, (fid, truth)


def test_link_inputs_as_angles_and_jones_vectors_prepare_the_labelled_states(bench, shipped: Profile) -> None:
    labels = ["H", "V", "D", "A", "R", "L"]
    mixed = ["H", "V", {"hwp": 22.5, "qwp": 45.0}, "A", {"jones": [1, "1j"]}, "L"]  # D by angles, R by vector
    found = {}
    for name, inputs in (("labels", labels), ("mixed", mixed)):
        dev, _ = bench(_custom(shipped, None, inputs))
        with dev:
            found[name] = dev.scheme_link_tomography(0.5)
    assert found["mixed"].inputs[2] == "(h22.5,q45)" and found["mixed"].inputs[4].startswith("J[")
    # The same seed and the same prepared states (PREP:WP for angles and vectors, PREP for labels): the same counts.
    assert np.abs(found["mixed"].counts - found["labels"].counts).max() <= 1
    choi = LinkModel(LinkParameters.from_profile(shipped))._physics(True)[3]
    est = mle_link_estimates(_custom(shipped, None, mixed), found["mixed"], np.random.default_rng(11), 200)
    # ~6 million counts: the fit is within 1e-3 of the emulated channel's fidelity (its interval is ~2e-4 wide and
    # too narrow for this near-boundary channel, as in the test above).
    assert abs(est["link_process_fidelity"].value - float(process_fidelity(choi))) < 1e-3
