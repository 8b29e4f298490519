"""Record/replay: a recorded emulated session replays to identical counts; divergence is a clear error."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from harness.devices.bench import BenchDevice
from harness.devices.replay import ReplayDevice, ReplayMismatchError
from harness.instruments import SessionRecorder
from harness.profiles import load_profile
from tests.bench.conftest import live_profile


def _session(dev) -> dict:
    with dev:
        ident = dev.identify()
        bell = dev.bell_tomography(0.01)
        coinc = dev.coincidences(0.05)
        link = dev.link_tomography(0.01)
    return {"ident": ident, "bell": bell, "coinc": coinc, "link": link, "stats": dev.fault_stats()}


@pytest.fixture
def recorded(emulators, reference_profile, tmp_path):
    """A session recorded against emulators with recoverable faults, and a kind-replay profile file for it."""
    emu = emulators(faults=["drop:0.05", "garbage:0.05"], seed=21)
    profile = live_profile(reference_profile, emu, timeout_s=0.05, retries=6, backoff_s=0.001)
    cassette = tmp_path / "cassettes" / "session.jsonl"
    records: list[dict] = []
    with SessionRecorder(cassette) as rec:
        session = _session(BenchDevice(profile, "2.4.0", recorder=rec, on_record=lambda k, p: records.append(p)))
    data = profile.model_dump(mode="json", exclude_none=True)
    data.update(name="bench-replay", kind="replay", replay={"cassette": "cassettes/session.jsonl"})
    path = tmp_path / "bench-replay.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return session, path, records


def test_recorded_session_replays_to_identical_counts(recorded):
    session, path, records = recorded
    assert sum(sum(s["faults"].values()) for k, s in session["stats"].items() if k != "setting_redos") > 0
    replayed_records: list[dict] = []
    dev = ReplayDevice(
        load_profile(path).effective("2.4.0"), "2.4.0", on_record=lambda k, p: replayed_records.append(p)
    )
    replay = _session(dev)
    assert replay["ident"].kind == "replay" and replay["ident"].build == session["ident"].build == "2.4.0"
    np.testing.assert_array_equal(replay["bell"].counts, session["bell"].counts)
    np.testing.assert_array_equal(replay["link"].counts, session["link"].counts)
    assert replay["coinc"] == session["coinc"]
    # Faults and retries are replayed as they happened, without waiting.
    assert replay["stats"] == session["stats"]
    assert replayed_records == records
    assert dev.cassette.pos == len(dev.cassette.entries)


def _identified_replay(path) -> ReplayDevice:
    """An open replay of the recorded session, past the identification it starts with."""
    dev = ReplayDevice(load_profile(path).effective("2.4.0"), "2.4.0")
    dev.open()
    dev.identify()
    return dev


def test_out_of_order_command_names_expected_actual_and_line(recorded):
    _, path, _ = recorded
    dev = _identified_replay(path)
    with pytest.raises(
        ReplayMismatchError,
        match=r"session\.jsonl line \d+: expected analyzers 'ANAL:BAS A,X', but counter issued 'COUN:TIME 0\.05'",
    ):
        dev.coincidences(0.05)  # the recording measured Bell tomography first


def test_a_different_duration_diverges_at_the_integration_command(recorded):
    _, path, _ = recorded
    dev = _identified_replay(path)
    with pytest.raises(
        ReplayMismatchError, match=r"expected counter 'COUN:TIME 0\.01', but counter issued 'COUN:TIME 0\.02'"
    ):
        dev.bell_tomography(0.02)


def test_missing_cassette_is_a_clear_error(tmp_path, reference_profile):
    from harness.instruments import InstrumentConfigError

    with pytest.raises(InstrumentConfigError, match=r"replay cassette .*nope\.jsonl does not exist"):
        ReplayDevice(reference_profile, "2.4.0", cassette=tmp_path / "nope.jsonl")
