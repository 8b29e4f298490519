"""The Aer stand-in: conventions, exact physics, shot statistics, seeding, noise-model options."""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import pytest
from scipy import stats
from test_aer_helpers import linear_bell_fidelity, write_profile

from harness.devices.aer import AerConfigError, AerDevice, build_noise_model
from harness.devices.base import Device
from harness.errors import DeviceError
from harness.physics.link import delivered_state, link_kraus, observed_link_choi, observed_state
from harness.records import BELL_SETTINGS, INPUTS_4, INPUTS_6
from harness.streams import stream as event_rng
from tests.analysis.helpers import process_probabilities, state_probabilities

NOISY = {"link": {"amplitude_damping": 0.08, "dephasing": 0.03, "depolarizing": 0.02}}
# No readout flips, no dark counts, and a window so short that accidentals are a ~1e-9 fraction.
CLEAN_DETECTORS = {
    "readout_error_a": 0.0,
    "readout_error_b": 0.0,
    "dark_count_hz_a": 0,
    "dark_count_hz_b": 0,
    "coincidence_window_s": 1.0e-15,
}


@pytest.fixture
def device_for(tmp_path):
    """Open an AerDevice for a profile override; closes them all at teardown."""
    opened: list[AerDevice] = []

    def make(override=None, build="2.4.0", seed=7):
        dev = AerDevice(write_profile(tmp_path, override).effective(build), build, seed)
        dev.open()
        opened.append(dev)
        return dev

    yield make
    for dev in opened:
        dev.close()


def test_lifecycle_and_identity(tmp_path):
    loaded = write_profile(tmp_path)
    dev = AerDevice(loaded.effective("2.3.0"), "2.3.0", seed=1)
    assert isinstance(dev, Device)
    with pytest.raises(DeviceError, match="open"):
        dev.bell_tomography(0.01)
    dev.open()
    dev.open()
    ident = dev.identify()
    assert (ident.kind, ident.profile, ident.build) == ("aer", "aer-test", "2.3.0")
    assert dev.bell_tomography(0.001).counts.shape == (9, 4)
    dev.close()
    dev.close()
    with pytest.raises(DeviceError, match="open"):
        dev.coincidences(0.01)


def test_accepts_an_effective_profile(tmp_path):
    loaded = write_profile(tmp_path)
    with AerDevice(loaded.effective("2.4.0"), "2.4.0", seed=1) as dev:
        assert dev.identify().build == "2.4.0"


def test_a_loaded_profile_is_refused_with_the_fix(tmp_path):
    with pytest.raises(TypeError, match=r"AerDevice takes an effective .*\.effective\(build\)"):
        AerDevice(write_profile(tmp_path), "2.4.0", seed=1)


def test_rejects_bad_durations_and_inputs(device_for):
    dev = device_for()
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="duration_s"):
            dev.bell_tomography(bad)
    with pytest.raises(ValueError, match="inputs"):
        dev.link_tomography(0.01, ("0", "2"))


def test_outcome_order_is_a_first_and_plus_first(device_for):
    # A perfect pair whose qubit B is fully damped to |0>: in ZZ only "++" and "-+" can occur, and only if A is first.
    dev = device_for(
        {
            "source": {"visibility": 1.0},
            "link": {"amplitude_damping": 1.0, "dephasing": 0.0},
            "detectors": CLEAN_DETECTORS,
        }
    )
    p = dev.bell_probabilities()
    np.testing.assert_allclose(p[BELL_SETTINGS.index("ZZ")], [0.5, 0.0, 0.5, 0.0], atol=1e-8)
    np.testing.assert_allclose(p[BELL_SETTINGS.index("ZX")], [0.25, 0.25, 0.25, 0.25], atol=1e-8)
    counts = dev.bell_tomography(0.01).counts
    assert counts[BELL_SETTINGS.index("ZZ"), [1, 3]].sum() == 0


def test_perfect_link_gives_phi_plus_correlations(device_for):
    dev = device_for(
        {
            "source": {"visibility": 1.0},
            "link": {"dephasing": 0.0},
            "detectors": CLEAN_DETECTORS,
        }
    )
    p = dev.bell_probabilities()
    # <XX> = +1, <YY> = -1, <ZZ> = +1 for |Phi+>.
    np.testing.assert_allclose(p[BELL_SETTINGS.index("XX")], [0.5, 0, 0, 0.5], atol=1e-8)
    np.testing.assert_allclose(p[BELL_SETTINGS.index("YY")], [0, 0.5, 0.5, 0], atol=1e-8)
    np.testing.assert_allclose(p[BELL_SETTINGS.index("ZZ")], [0.5, 0, 0, 0.5], atol=1e-8)
    # Each link input comes out as itself: "+" outcome with certainty in its own basis.
    lp = dev.link_probabilities(INPUTS_6)
    for i, (state, basis) in enumerate(zip(INPUTS_6, "ZZXXYY", strict=True)):
        plus = 1.0 if state in ("0", "+", "+i") else 0.0
        np.testing.assert_allclose(lp[i, "XYZ".index(basis)], [plus, 1 - plus], atol=1e-8)


def test_bell_probabilities_equal_physics_observed_state(device_for):
    dev = device_for(NOISY | {"detectors": {"readout_error_a": 0.03, "readout_error_b": 0.07}})
    prof = dev.profile
    rho = observed_state(
        delivered_state(prof.source.visibility, link_kraus(0.08, 0.03, 0.02), dev.rates.accidental_fraction),
        0.03,
        0.07,
    )
    np.testing.assert_allclose(dev.bell_probabilities(), state_probabilities(rho), atol=1e-12)


def test_link_probabilities_equal_physics_observed_link_choi(device_for):
    dev = device_for(NOISY | {"detectors": {"readout_error_b": 0.04, "coincidence_window_s": 2.0e-8}})
    f_acc = dev.rates.accidental_fraction
    assert f_acc > 0.01  # the accidental mixing is really exercised
    choi = observed_link_choi(link_kraus(0.08, 0.03, 0.02), f_acc, 0.04)
    np.testing.assert_allclose(dev.link_probabilities(INPUTS_6), process_probabilities(choi, INPUTS_6), atol=1e-12)


def test_shot_totals_follow_the_coincidence_rate(device_for):
    dev = device_for({"link": {"loss_db": 10.0}, "detectors": {"dark_count_hz_a": 5.0e4, "dark_count_hz_b": 5.0e4}})
    duration, calls = 0.002, 20
    lam = dev.rates.coincidence_hz * duration
    assert dev.rates.accidental_hz > 0
    shots = np.array([dev.bell_tomography(duration).counts.sum(axis=1) for _ in range(calls)])
    # Sum of 180 Poisson(lam) settings: mean 180 lam, sd sqrt(180 lam); and the per-setting variance is lam too.
    assert abs(shots.sum() - shots.size * lam) < 4 * np.sqrt(shots.size * lam)
    ratio = shots.var(ddof=1) / lam
    lo, hi = stats.chi2.ppf([1e-4, 1 - 1e-4], shots.size - 1) / (shots.size - 1)
    assert lo < ratio < hi
    link = np.array([dev.link_tomography(duration).counts.sum(axis=-1) for _ in range(calls)])
    assert link.shape == (calls, len(INPUTS_4), 3)
    assert abs(link.sum() - link.size * lam) < 4 * np.sqrt(link.size * lam)


def test_coincidence_counts_follow_the_rates(device_for):
    dev = device_for({"detectors": {"dark_count_hz_a": 3.0e5, "dark_count_hz_b": 3.0e5}})
    r = dev.rates
    duration, calls = 1.0e-3, 200
    recs = [dev.coincidences(duration) for _ in range(calls)]
    assert {(c.window_s, c.duration_s) for c in recs} == {(r.window_s, duration)}
    for attr, rate in (
        ("singles_a", r.singles_a_hz),
        ("singles_b", r.singles_b_hz),
        ("coincidences", r.true_coincidence_hz + r.accidental_hz),
    ):
        total = sum(getattr(c, attr) for c in recs)
        mean = rate * duration * calls
        assert abs(total - mean) < 4 * np.sqrt(mean), attr


def test_qber_z_of_counts_matches_truth(device_for):
    from harness.analysis.truth import truth

    dev = device_for(NOISY)
    tru = truth(dev.profile)
    row = dev.bell_tomography(0.05).counts[BELL_SETTINGS.index("ZZ")]
    n = row.sum()
    q_hat = (row[1] + row[2]) / n
    assert abs(q_hat - tru.qber_z) < 4 * np.sqrt(tru.qber_z * (1 - tru.qber_z) / n)
    # And the exact probabilities carry that QBER to machine precision.
    p = dev.bell_probabilities()[BELL_SETTINGS.index("ZZ")]
    assert p[1] + p[2] == pytest.approx(tru.qber_z, abs=1e-12)


def test_same_inputs_give_identical_counts(tmp_path):
    loaded = write_profile(tmp_path, NOISY)
    a, b = (
        AerDevice(loaded.effective("2.4.0"), "2.4.0", seed=11),
        AerDevice(loaded.effective("2.4.0"), "2.4.0", seed=11),
    )
    a.open()
    b.open()
    for _ in range(2):
        np.testing.assert_array_equal(a.bell_tomography(0.01).counts, b.bell_tomography(0.01).counts)
        np.testing.assert_array_equal(a.link_tomography(0.01).counts, b.link_tomography(0.01).counts)
        assert a.coincidences(0.01) == b.coincidences(0.01)


def test_repeated_calls_builds_and_seeds_give_fresh_samples(tmp_path):
    loaded = write_profile(tmp_path, NOISY)
    devs = {
        (build, seed): AerDevice(loaded.effective(build), build, seed)
        for build in ("2.3.0", "2.4.0")
        for seed in (1, 2)
    }
    for d in devs.values():
        d.open()
    first = devs["2.4.0", 1].bell_tomography(0.01).counts
    again = devs["2.4.0", 1].bell_tomography(0.01).counts
    assert not np.array_equal(first, again)
    assert not np.array_equal(first, devs["2.3.0", 1].bell_tomography(0.01).counts)
    assert not np.array_equal(first, devs["2.4.0", 2].bell_tomography(0.01).counts)
    assert devs["2.4.0", 1].coincidences(0.01) != devs["2.3.0", 1].coincidences(0.01)


def test_event_streams_are_keyed_by_every_input():
    base = event_rng(3, "p", "b", "bell_tomography", 0).integers(0, 2**62, size=4)
    for args in ((4, "p", "b", "bell_tomography", 0), (3, "q", "b", "bell_tomography", 0),
                 (3, "p", "c", "bell_tomography", 0), (3, "p", "b", "coincidences", 0),
                 (3, "p", "b", "bell_tomography", 1)):  # fmt: skip
        assert not np.array_equal(base, event_rng(*args).integers(0, 2**62, size=4)), args
    np.testing.assert_array_equal(base, event_rng(3, "p", "b", "bell_tomography", 0).integers(0, 2**62, size=4))


def test_builds_with_identical_physics_are_independent(tmp_path):
    loaded = write_profile(tmp_path, NOISY)
    duration, n_seeds = 0.002, 30
    fids = np.empty((n_seeds, 2))
    for seed in range(n_seeds):
        for j, build in enumerate(("2.3.0", "2.4.0")):
            with AerDevice(loaded.effective(build), build, seed) as dev:
                fids[seed, j] = linear_bell_fidelity(dev.bell_tomography(duration).counts)
    # The variance of the linear fidelity estimator, from the exact outcome probabilities at the mean shot number.
    with AerDevice(loaded.effective("2.4.0"), "2.4.0", 0) as dev:
        p = dev.bell_probabilities()
        n = dev.rates.coincidence_hz * duration
    var_single = 0.0
    for k in (0, 8, 4):  # XX, ZZ, YY enter with weight 1/4 each
        sign = np.array([1, -1, -1, 1])
        e = p[k] @ sign
        var_single += (1 - e**2) / n / 16
    diff = fids[:, 1] - fids[:, 0]
    assert abs(diff.mean()) < 4 * np.sqrt(2 * var_single / n_seeds)
    # Independent builds: Var(diff) = 2 Var(single); a shared stream would make it ~0.
    ratio = diff.var(ddof=1) / (2 * var_single)
    lo, hi = stats.chi2.ppf([1e-3, 1 - 1e-3], n_seeds - 1) / (n_seeds - 1)
    assert lo < ratio < hi, ratio
    single_ratio = fids.var(axis=0, ddof=1) / var_single
    assert np.all((lo < single_ratio) & (single_ratio < hi)), single_ratio
    assert abs(np.corrcoef(fids.T)[0, 1]) < 0.6


def test_sampling_method_draws_the_same_distribution(tmp_path):
    exact = AerDevice(write_profile(tmp_path, NOISY).effective("2.4.0"), "2.4.0", seed=5)
    exact.open()
    p_bell = exact.bell_probabilities()
    p_link = exact.link_probabilities()
    sampled_profile = write_profile(tmp_path, NOISY | {"name": "aer-sampled", "aer": {"method": "statevector"}})
    dev = AerDevice(sampled_profile.effective("2.4.0"), "2.4.0", seed=5)
    dev.open()
    assert "sampled" in dev.identify().detail
    with pytest.raises(DeviceError, match="density_matrix"):
        dev.bell_probabilities()
    counts = dev.bell_tomography(0.002).counts
    link = dev.link_tomography(0.002).counts.reshape(-1, 2)
    lam = dev.rates.coincidence_hz * 0.002
    assert abs(counts.sum() - 9 * lam) < 4 * np.sqrt(9 * lam)
    for obs, p in ((counts, p_bell), (link, p_link.reshape(-1, 2))):
        expected = obs.sum(axis=1, keepdims=True) * p
        keep = expected > 5
        chi2 = ((obs - expected)[keep] ** 2 / expected[keep]).sum()
        dof = keep.sum() - len(obs)
        assert stats.chi2.sf(chi2, dof) > 1e-4, (chi2, dof)
    again = AerDevice(sampled_profile.effective("2.4.0"), "2.4.0", seed=5)
    again.open()
    np.testing.assert_array_equal(again.bell_tomography(0.002).counts, counts)


def test_user_noise_model_replaces_the_built_in_one(tmp_path, monkeypatch):
    module = tmp_path / "qh_user_noise.py"
    module.write_text(
        textwrap.dedent(
            """
            from harness.devices.aer import build_noise_model
            CALLS = []

            def noiseless(profile, build):
                CALLS.append((profile.name, build))
                return build_noise_model(profile.model_copy(update={
                    "source": profile.source.model_copy(update={"visibility": 1.0}),
                    "link": profile.link.model_copy(update={"dephasing": 0.0}),
                    "detectors": profile.detectors.model_copy(update={
                        "readout_error_a": 0.0, "readout_error_b": 0.0, "dark_count_hz_a": 0, "dark_count_hz_b": 0,
                        "coincidence_window_s": 1.0e-15}),
                }))
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "qh_user_noise", raising=False)
    loaded = write_profile(tmp_path, {"aer": {"noise_model": "qh_user_noise:noiseless"}})
    with AerDevice(loaded.effective("2.3.0"), "2.3.0", seed=1) as dev:
        counts = dev.bell_tomography(0.005).counts
        assert counts[BELL_SETTINGS.index("ZZ"), 1:3].sum() == 0
        assert counts[BELL_SETTINGS.index("XX"), 1:3].sum() == 0
    assert sys.modules["qh_user_noise"].CALLS == [("aer-test", "2.3.0")]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("qh_no_such_module:model", "cannot import module 'qh_no_such_module'"),
        ("harness.devices.aer:no_such_function", "has no function 'no_such_function'"),
        ("harness.streams:stable_hash32", "raised"),
        ("harness.streams:stream", "raised"),
    ],
)
def test_bad_user_noise_model_names_the_key(tmp_path, spec, message):
    dev = AerDevice(write_profile(tmp_path, {"aer": {"noise_model": spec}}).effective("2.4.0"), "2.4.0", seed=1)
    with pytest.raises(AerConfigError, match=r"aer\.noise_model") as err:
        dev.open()
    assert message in str(err.value)


def test_noise_model_returning_the_wrong_type_is_named(tmp_path, monkeypatch):
    (tmp_path / "qh_wrong_type.py").write_text("def model(profile, build):\n    return 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    profile = write_profile(tmp_path, {"aer": {"noise_model": "qh_wrong_type:model"}}).effective("2.4.0")
    dev = AerDevice(profile, "2.4.0", seed=1)
    with pytest.raises(AerConfigError, match=r"aer.noise_model .* returned int"):
        dev.open()


def test_unsupported_method_is_named(tmp_path):
    dev = AerDevice(write_profile(tmp_path, {"aer": {"method": "stabilizer"}}).effective("2.4.0"), "2.4.0", seed=1)
    with pytest.raises(AerConfigError, match=r"aer.method 'stabilizer' is not supported"):
        dev.open()


def test_built_in_noise_model_has_every_labelled_error(tmp_path):
    nm = build_noise_model(write_profile(tmp_path).effective("2.4.0"))
    assert {"qh_source", "qh_link", "qh_accidental", "qh_link_accidental", "measure"} <= set(nm.noise_instructions)
