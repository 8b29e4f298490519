"""Drift in the emulated bench: the same physics as the Aer stand-in, reproducible sessions, carried across FW:LOAD."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from harness.devices.aer import AerDevice
from harness.devices.bench import BenchDevice
from harness.emulators import EmulatorSet, LinkModel, LinkParameters, ThreadedEmulators
from harness.physics.drift import Wander
from harness.profiles import LoadedProfile, Profile, load_profile
from harness.records import BASES, BELL_SETTINGS, INPUTS_6
from tests.devices.test_aer_helpers import write_profile

BIG = {
    "between_sessions": {
        "visibility_sd": 0.02,
        "pair_rate_rel_sd": 0.3,
        "basis_angle_sd_deg": 10.0,
        "efficiency_rel_sd": 0.1,
    }
}
WANDER = {"within_session": {"pair_rate_rel_sd": 0.3, "correlation_time_s": 0.05}}


def _bench_profile(tmp_path: Path, drift: dict | None, builds: dict | None = None) -> LoadedProfile:
    data: dict[str, Any] = {"name": "bench-drift", "extends": "bench-emulated", "drift": drift}
    if builds is not None:
        data["builds"] = builds
    path = tmp_path / "bench-drift.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_profile(path)


@pytest.fixture
def serve() -> Iterator[Callable[..., EmulatorSet]]:
    """Serve EmulatorSet.from_profile(loaded, **kw) on loopback; stopped at teardown."""
    started: list[ThreadedEmulators] = []

    def start(loaded: LoadedProfile, **kw: Any) -> EmulatorSet:
        kw.setdefault("seed", 7)
        kw.setdefault("decoder", False)
        runner = ThreadedEmulators(emulators=EmulatorSet.from_profile(loaded, "2.4.0", **kw)).start()
        started.append(runner)
        return runner.set

    yield start
    for runner in started:
        runner.stop()


def _bench(emu: EmulatorSet, loaded: LoadedProfile) -> BenchDevice:
    return BenchDevice(Profile.model_validate(emu.profile_dict(loaded.effective("2.4.0"), "bench-live")), "2.4.0")


def test_emulator_and_aer_device_drift_alike(tmp_path):
    override = {
        "link": {"amplitude_damping": 0.08, "dephasing": 0.03, "depolarizing": 0.02},
        "detectors": {"coincidence_window_s": 2.0e-8, "readout_error_b": 0.05},
        "drift": BIG,
    }
    loaded = write_profile(tmp_path, override)
    emu = EmulatorSet.from_profile(loaded, "2.4.0", seed=5, session=2, decoder=False)
    with AerDevice(loaded.effective("2.4.0"), "2.4.0", 5, session=2) as dev:
        aer_offsets = dev.drift_offsets()["offsets"]
        bell, link = dev.bell_probabilities(), dev.link_probabilities(INPUTS_6)
    # Same seed, profile, build and session: the same offsets on the bench as in the stand-in.
    assert emu.drift_offsets()["offsets"] == aer_offsets
    assert abs(aer_offsets["basis_angle_deg"]) > 0.5
    model = emu.scpi.model.drifted(emu.drift.offsets, Wander.none([0.0]))
    served = np.array([model.bell_probabilities(s[0], s[1]) for s in BELL_SETTINGS])
    np.testing.assert_allclose(served, bell, atol=1e-12)
    prep = np.array([[model.prep_probabilities(s, b) for b in BASES] for s in INPUTS_6])
    np.testing.assert_allclose(prep, link, atol=1e-12)
    # And the drifted model really differs from the drift-free one.
    assert np.abs(served - np.array([emu.scpi.model.bell_probabilities(*s) for s in BELL_SETTINGS])).max() > 0.01


def test_without_drift_the_emulator_counts_as_before(tmp_path):
    reference = load_profile("bench-emulated")
    params = LinkParameters.from_profile(reference.effective("2.4.0"))
    sets = [
        EmulatorSet(params, "2.4.0", seed=3, decoder=False),
        EmulatorSet.from_profile(reference, "2.4.0", seed=3, decoder=False),
        EmulatorSet.from_profile(_bench_profile(tmp_path, {"within_session": {}}), "2.4.0", seed=3, decoder=False),
    ]
    draws = []
    for emu in sets:
        emu.source_state.on = True
        emu.scpi.integration_s = 0.01
        draws.append(np.array([emu.scpi.integrate() for _ in range(5)]))
    assert sets[0].drift is None and sets[1].drift is not None and not sets[2].drift.active
    np.testing.assert_array_equal(draws[0], draws[1])
    np.testing.assert_array_equal(draws[0], draws[2])


def test_served_counts_carry_the_wander_and_a_session_replays_exactly(tmp_path, serve):
    loaded = _bench_profile(tmp_path, BIG | WANDER)

    def run(session: int) -> tuple[np.ndarray, EmulatorSet]:
        emu = serve(loaded, session=session)
        with _bench(emu, loaded) as dev:
            counts = np.array([dev.coincidences(0.01).coincidences for _ in range(30)])
        return counts, emu

    first, emu = run(0)
    again, _ = run(0)
    other, emu_other = run(1)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert emu.drift_offsets()["offsets"] != emu_other.drift_offsets()["offsets"]
    assert emu.drift.clock_s == pytest.approx(30 * 0.01)  # one integration per measurement, on the counter's clock
    # A 30 % wander with a 50 ms correlation time moves the counts far beyond Poisson noise around their mean.
    assert first.var(ddof=1) / first.mean() > 50


def test_fw_load_carries_the_drift_over_with_the_new_builds_spec(tmp_path, serve):
    builds = {"2.3.0": {}, "2.4.0": {}, "2.5.0-rc1": {"drift": {"between_sessions": {"visibility_sd": 0.0}}}}
    loaded = _bench_profile(tmp_path, BIG | WANDER, builds)
    emu = serve(loaded)
    with _bench(emu, loaded) as dev:
        dev.coincidences(0.2)
        before = emu.drift_offsets()
        dev.flash("2.5.0-rc1")
        dev.coincidences(0.2)
        after = emu.drift_offsets()
    assert after["clock_s"] == pytest.approx(0.4)
    assert before["offsets"]["visibility"] != 0.0 and after["offsets"]["visibility"] == 0.0
    same = ("pair_rate_rel", "efficiency_a_rel", "efficiency_b_rel", "basis_angle_deg")
    assert {k: after["offsets"][k] for k in same} == {k: before["offsets"][k] for k in same}
    assert isinstance(emu.scpi.model, LinkModel) and emu.scpi.model.params.visibility == 0.955


def test_a_profile_without_physics_cannot_be_emulated():
    with pytest.raises(ValueError, match=r"build '.*' lacks the physics blocks source the emulators serve"):
        EmulatorSet.from_profile(load_profile("bench-lab-template"))
