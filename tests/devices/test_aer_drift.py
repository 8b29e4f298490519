"""The Aer stand-in under drift: unchanged without it, reproducible per session, and counts that follow the physics."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats
from test_aer_helpers import linear_bell_fidelity, write_profile

from harness.devices import open_device
from harness.devices.aer import AerConfigError, AerDevice
from harness.physics.link import delivered_state, link_kraus, observed_link_choi, observed_state, rates
from harness.records import INPUTS_4, INPUTS_6
from tests.analysis.helpers import process_probabilities, state_probabilities

NOISY = {"link": {"amplitude_damping": 0.08, "dephasing": 0.03, "depolarizing": 0.02}}
BIG_OFFSETS = {
    "between_sessions": {
        "visibility_sd": 0.02,
        "pair_rate_rel_sd": 0.3,
        "basis_angle_sd_deg": 10.0,
        "efficiency_rel_sd": 0.1,
    }
}
# Window long enough that accidentals are a few per cent, so their drift is exercised too.
ACCIDENTALS = {"detectors": {"coincidence_window_s": 2.0e-8, "readout_error_a": 0.03, "readout_error_b": 0.05}}
CLEAN = {
    "link": {"dephasing": 0.0},
    "detectors": {
        "readout_error_a": 0.0,
        "readout_error_b": 0.0,
        "dark_count_hz_a": 0,
        "dark_count_hz_b": 0,
        "coincidence_window_s": 1.0e-15,
    },
}


def _device(tmp_path, override=None, *, build="2.4.0", seed=7, session=0) -> AerDevice:
    dev = AerDevice(write_profile(tmp_path, override).effective(build), build, seed, session=session)
    dev.open()
    return dev


def _ry(theta_deg: float) -> np.ndarray:
    """Ry(2 theta) on the Bloch sphere: the turn of an analyser by theta polarisation degrees."""
    t = np.deg2rad(theta_deg)
    return np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]], dtype=complex)


NO_OFFSETS = dict.fromkeys(
    ("visibility", "pair_rate_rel", "efficiency_a_rel", "efficiency_b_rel", "basis_angle_deg"), 0.0
)


def _rates(profile, offsets: dict, rate_factor: float = 1.0):
    """Detection rates from harness.physics.link with the source and detectors moved by `offsets`."""
    src, link, det = profile.source, profile.link, profile.detectors
    return rates(
        src.pair_rate_hz * (1 + offsets["pair_rate_rel"]) * rate_factor,
        min(1.0, det.efficiency_a * (1 + offsets["efficiency_a_rel"])),
        min(1.0, det.efficiency_b * (1 + offsets["efficiency_b_rel"])),
        link.loss_db,
        det.dark_count_hz_a,
        det.dark_count_hz_b,
        det.coincidence_window_s,
    )


def _truth(profile, offsets: dict, visibility_shift: float = 0.0):
    """Rates, Bell and link probabilities straight from harness.physics.link at the given drift."""
    src, link, det = profile.source, profile.link, profile.detectors
    vis = float(np.clip(src.visibility + offsets["visibility"] + visibility_shift, 0.0, 1.0))
    r = _rates(profile, offsets)
    kraus = link_kraus(link.amplitude_damping, link.dephasing, link.depolarizing)
    # Measuring with B's analyser turned by U equals measuring (1 ⊗ U†) rho (1 ⊗ U) with the nominal one.
    turn = np.kron(np.eye(2), _ry(offsets["basis_angle_deg"]))
    rho = observed_state(delivered_state(vis, kraus, r.accidental_fraction), det.readout_error_a, det.readout_error_b)
    choi = observed_link_choi(kraus, r.accidental_fraction, det.readout_error_b)
    bell = state_probabilities(turn.conj().T @ rho @ turn)
    return r, bell, process_probabilities(turn.conj().T @ choi @ turn, INPUTS_6)


# ---- without drift nothing changes -------------------------------------------------------------------------------

# Counts of the drift-free device (seed 7, build 2.4.0, test_aer_helpers.BASE) as drawn before drift existed.
PINNED_BELL = [
    [[177, 8, 1, 143], [71, 78, 67, 81], [84, 77, 82, 86], [73, 85, 86, 73], [4, 143, 182, 8], [83, 85, 68, 83]],
    [[71, 82, 80, 75], [81, 86, 93, 83], [156, 6, 5, 167]],
]
PINNED_LINK = [[[162, 163], [174, 162], [298, 3]], [[169, 152], [169, 145], [2, 318]]]


@pytest.mark.parametrize("drift", [None, {"within_session": {"correlation_time_s": 5.0}}])
def test_without_drift_the_counts_are_those_drawn_before_drift_existed(tmp_path, drift):
    dev = _device(tmp_path, {"drift": drift} if drift else None)
    np.testing.assert_array_equal(dev.bell_tomography(0.0005).counts, PINNED_BELL[0] + PINNED_BELL[1])
    dev.bell_tomography(0.0005)
    np.testing.assert_array_equal(dev.link_tomography(0.0005).counts[:2], PINNED_LINK)
    c = dev.coincidences(0.001)
    assert (c.singles_a, c.singles_b, c.coincidences) == (1643, 821, 670)
    assert dev.drift_offsets() == {}


def test_without_drift_a_later_session_still_draws_fresh_shot_noise(tmp_path):
    first, again, later = (_device(tmp_path, session=s) for s in (0, 0, 1))
    a, b, c = (d.bell_tomography(0.01).counts for d in (first, again, later))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(first.bell_probabilities(), later.bell_probabilities())


# ---- reproducible sessions ---------------------------------------------------------------------------------------


def test_a_session_is_reproducible_and_the_next_one_differs(tmp_path):
    drift = {"drift": BIG_OFFSETS | {"within_session": {"visibility_sd": 0.01, "correlation_time_s": 0.1}}}
    a, b, c = (_device(tmp_path, drift, session=s) for s in (3, 3, 4))
    for _ in range(2):
        counts = [d.bell_tomography(0.01).counts for d in (a, b, c)]
        np.testing.assert_array_equal(counts[0], counts[1])
        assert not np.array_equal(counts[0], counts[2])
    assert a.drift_offsets() == b.drift_offsets()
    assert a.drift_offsets()["offsets"] != c.drift_offsets()["offsets"]
    assert a.drift_offsets()["session"] == 3
    assert open_device(a.profile, "2.4.0", 7, session=4).session == 4


def test_the_applied_drift_is_reported_for_provenance(tmp_path):
    dev = _device(tmp_path, {"drift": {"within_session": {"pair_rate_rel_sd": 0.01}}})
    dev.bell_tomography(0.05)
    dev.link_tomography(0.05, INPUTS_4)
    dev.coincidences(0.2)
    dev.bell_tomography(0.05)
    record = json.loads(json.dumps(dev.drift_offsets()))  # JSON-ready
    runs = record["integrations"]
    assert [(r["protocol"], r["call"], len(r["duration_s"])) for r in runs] == [
        ("bell_tomography", 0, 9),
        ("link_tomography", 0, 12),
        ("coincidences", 0, 1),
        ("bell_tomography", 1, 9),
    ]
    starts = np.concatenate([r["start_s"] for r in runs])
    durations = np.concatenate([r["duration_s"] for r in runs])
    np.testing.assert_allclose(starts[1:], np.cumsum(durations)[:-1])  # one integration after the other
    assert record["clock_s"] == pytest.approx(18 * 0.05 + 12 * 0.05 + 0.2)
    assert record["spec"]["within_session"]["pair_rate_rel_sd"] == 0.01
    assert all(v == 0.0 for r in runs for v in r["visibility"]) and any(r["pair_rate_rel"][0] != 0 for r in runs)


# ---- the physics of drifted counts -------------------------------------------------------------------------------


@pytest.mark.parametrize("session", [0, 1, 2])
def test_drifted_probabilities_equal_the_physics_at_the_applied_offsets(tmp_path, session):
    dev = _device(tmp_path, NOISY | ACCIDENTALS | {"drift": BIG_OFFSETS}, session=session)
    offsets = dev.drift_offsets()["offsets"]
    assert abs(offsets["basis_angle_deg"]) > 0.5 and abs(offsets["pair_rate_rel"]) > 0.01  # really moved
    r, bell, link = _truth(dev.profile, offsets)
    assert r.accidental_fraction > 0.01
    np.testing.assert_allclose(dev.bell_probabilities(), bell, atol=1e-12)
    np.testing.assert_allclose(dev.link_probabilities(INPUTS_6), link, atol=1e-12)


def test_coincidence_counts_follow_the_wander_of_each_integration(tmp_path):
    drift = {"drift": {"within_session": {"pair_rate_rel_sd": 0.3, "correlation_time_s": 0.05}}}
    dev = _device(tmp_path, drift)
    counts = np.array([dev.coincidences(0.01).coincidences for _ in range(200)])
    wander = np.array([r["pair_rate_rel"][0] for r in dev.drift_offsets()["integrations"]])
    lam = np.array([_rates(dev.profile, NO_OFFSETS, 1 + w).coincidence_hz * 0.01 for w in wander])
    # Poisson at each integration's own rate: the mean of z^2 is 1 (SE 0.1 for 200 draws).
    assert np.mean((counts - lam) ** 2 / lam) == pytest.approx(1.0, abs=0.45)
    # At the nominal rate the same counts are far outside shot noise: the wander is in the counts.
    nominal = dev.rates.coincidence_hz * 0.01
    assert np.mean((counts - nominal) ** 2 / nominal) > 100


def test_bell_counts_follow_the_visibility_of_each_setting(tmp_path):
    drift = {"drift": {"within_session": {"visibility_sd": 0.05, "correlation_time_s": 0.02}}}
    dev = _device(tmp_path, {"source": {"visibility": 0.8}} | drift)
    counts = dev.bell_tomography(0.05).counts
    wander = dev.drift_offsets()["integrations"][0]["visibility"]
    expected = np.array([_truth(dev.profile, NO_OFFSETS, visibility_shift=w)[1][i] for i, w in enumerate(wander)])
    nominal = _truth(dev.profile, NO_OFFSETS)[1]
    limit = stats.chi2.ppf(1 - 1e-4, 9 * 3)

    def chi2(p: np.ndarray) -> float:
        e = p * counts.sum(axis=1, keepdims=True)
        return float(((counts - e) ** 2 / e).sum())

    assert np.std(wander) > 0.02  # the settings really saw different visibilities
    assert chi2(expected) < limit < chi2(nominal)


def test_mean_fidelity_over_sessions_drops_by_the_misalignment_effect(tmp_path):
    sd_deg, n = 8.0, 40
    drift = {"between_sessions": {"visibility_sd": 0.005, "basis_angle_sd_deg": sd_deg}}
    loaded = write_profile(tmp_path, CLEAN | {"drift": drift})
    fidelity, predicted = np.empty(n), np.empty(n)
    for k in range(n):
        with AerDevice(loaded.effective("2.4.0"), "2.4.0", 5, session=k) as dev:
            fidelity[k] = linear_bell_fidelity(dev.bell_tomography(0.05).counts)  # ~32k pairs per setting
            off = dev.drift_offsets()["offsets"]
        v, theta = 0.97 + off["visibility"], np.deg2rad(off["basis_angle_deg"])
        predicted[k] = v * np.cos(theta) ** 2 + (1 - v) / 4  # Werner pair seen by a turned analyser
    # Each session's counts give its own physics within shot noise (fidelity SE < 2e-3 here).
    assert np.abs(fidelity - predicted).max() < 0.008
    # Over sessions: E[cos^2 theta] = (1 + exp(-2 sigma^2)) / 2, so the mean drops by V (1 - exp(-2 sigma^2)) / 2.
    nominal = 0.97 + 0.03 / 4
    drop = 0.97 * (1 - np.exp(-2 * np.deg2rad(sd_deg) ** 2)) / 2
    se = fidelity.std(ddof=1) / np.sqrt(n)
    assert nominal - fidelity.mean() == pytest.approx(drop, abs=4 * se)
    assert drop > 3 * se  # the drop is resolved, not hidden in the tolerance


@pytest.mark.parametrize(
    ("aer", "message"),
    [
        ({"method": "statevector"}, r"drift needs the exact 'density_matrix' method; remove aer.method 'statevector'"),
        ({"noise_model": "harness.devices.aer:build_noise_model"}, r"drift needs the built-in noise model"),
    ],
)
def test_drift_needs_the_exact_built_in_model(tmp_path, aer, message):
    loaded = write_profile(tmp_path, {"aer": aer, "drift": BIG_OFFSETS})
    dev = AerDevice(loaded.effective("2.4.0"), "2.4.0", 1)
    with pytest.raises(AerConfigError, match=rf"profile 'aer-test' build '2.4.0': {message}"):
        dev.open()


# ---- flashing ----------------------------------------------------------------------------------------------------


def test_flash_serves_the_other_builds_physics_and_streams(tmp_path):
    loaded = write_profile(tmp_path, {"builds": {"2.5.0-rc1": {"source": {"visibility": 0.9}}}})
    dev = _device(tmp_path, {"builds": {"2.5.0-rc1": {"source": {"visibility": 0.9}}}})
    first_24 = dev.bell_tomography(0.01).counts
    dev.flash("2.5.0-rc1", loaded.effective("2.5.0-rc1"))
    assert dev.identify().build == "2.5.0-rc1"
    fresh = _device(tmp_path, {"builds": {"2.5.0-rc1": {"source": {"visibility": 0.9}}}}, build="2.5.0-rc1")
    np.testing.assert_allclose(dev.bell_probabilities(), fresh.bell_probabilities(), atol=1e-15)
    np.testing.assert_array_equal(dev.bell_tomography(0.01).counts, fresh.bell_tomography(0.01).counts)
    # Back on 2.4.0, its streams continue: the second call, not a repeat of the first.
    dev.flash("2.4.0", loaded.effective("2.4.0"))
    again = dev.bell_tomography(0.01).counts
    assert not np.array_equal(again, first_24)
    ref = _device(tmp_path)
    ref.bell_tomography(0.01)
    np.testing.assert_array_equal(again, ref.bell_tomography(0.01).counts)
    with pytest.raises(ValueError, match=r"effective profile of that build"):
        dev.flash("2.3.0", loaded.effective("2.4.0"))


def test_flash_keeps_the_session_drift_and_its_clock(tmp_path):
    loaded = write_profile(tmp_path, {"drift": BIG_OFFSETS | {"within_session": {"visibility_sd": 0.01}}})
    dev = _device(tmp_path, {"drift": BIG_OFFSETS | {"within_session": {"visibility_sd": 0.01}}})
    dev.bell_tomography(0.05)
    before = dev.drift_offsets()
    dev.flash("2.3.0", loaded.effective("2.3.0"))
    dev.coincidences(0.2)
    after = dev.drift_offsets()
    assert after["offsets"] == before["offsets"] and after["keyed_by_build"] == "2.4.0"
    assert after["clock_s"] == pytest.approx(9 * 0.05 + 0.2)
    assert [r["build"] for r in after["integrations"]] == ["2.4.0", "2.3.0"]
    bell = _truth(dev.profile, after["offsets"])[1]
    np.testing.assert_allclose(dev.bell_probabilities(), bell, atol=1e-12)
