"""A fault matrix: >= 100 injected faults across runs lose no completed setting, and every failure is typed."""

from __future__ import annotations

import json
import re

import pytest

from harness.devices.bench import BenchDevice
from harness.instruments import InstrumentError, SessionRecorder
from harness.records import BELL_SETTINGS
from tests.bench.conftest import live_profile

# instrument: command failed after N retries: fault
TYPED_MESSAGE = re.compile(r"^(source|counter|analyzers): \S.* failed after \d+ retries: \S.*$")
REPLY_FAULTS = ("drop", "garbage", "disconnect", "slow")

RUNS = 4
# (faults, seed, least number of faults the row must inject); the least numbers add up to >= 100.
MATRIX = [
    (["drop:0.15"], 1, 5),
    (["garbage:0.15"], 2, 5),
    (["disconnect:9"], 3, 25),
    (["drop:0.05", "garbage:0.05", "disconnect:13"], 4, 15),
    (["drop:0.45"], 5, 25),  # heavy: some queries exhaust their retries
    (["garbage:0.5"], 6, 10),
    (["slow:0.2"], 7, 16),  # every reply later than the timeout: each run fails at its first query after 4 tries
    (["scpi-error:1"], 8, 1),
]
assert sum(m for _, _, m in MATRIX) >= 100


def _completed_settings(cassette) -> list[list[int]]:
    """Counts of each setting the cassette shows completed: the last good COUN:COIN? before a clean SYST:ERR?."""
    done, last = [], None
    for line in cassette.read_text().splitlines():
        e = json.loads(line)
        if e["fault"] is not None:
            continue
        if e["command"] == "COUN:COIN?":
            last = [int(x) for x in e["reply"].split(",")]
        elif e["command"] == "SYST:ERR?" and e["reply"].startswith("0,") and last is not None:
            done.append(last)
            last = None
    return done


@pytest.mark.parametrize(("faults", "seed", "least"), MATRIX, ids=["+".join(f) for f, _, _ in MATRIX])
def test_fault_matrix_loses_no_records(emulators, reference_profile, tmp_path, faults, seed, least):
    emu = emulators(faults=faults, seed=seed)
    profile = live_profile(reference_profile, emu, timeout_s=0.05, retries=3, backoff_s=0.001)
    injected_total = 0
    failures: list[InstrumentError] = []
    for run in range(RUNS):
        records: list[dict] = []
        cassette = tmp_path / f"run{run}.jsonl"
        with SessionRecorder(cassette) as rec:
            dev = BenchDevice(profile, "2.4.0", recorder=rec, on_record=lambda k, p, out=records: out.append(p))
            try:
                dev.open()
                dev.bell_tomography(0.002)
            except InstrumentError as exc:
                failures.append(exc)
                assert TYPED_MESSAGE.match(str(exc)), str(exc)
            finally:
                dev.close()
        # Zero lost records: every setting the instruments completed reached on_record, with the same counts.
        assert [r["counts"] for r in records] == _completed_settings(cassette)
        assert [r["setting"] for r in records] == list(BELL_SETTINGS[: len(records)])
        # Recovered faults appear in fault_stats: every injected reply fault cost the client one fault.
        stats = dev.fault_stats()
        client_faults = sum(sum(s["faults"].values()) for k, s in stats.items() if k != "setting_redos")
        retries = sum(s["retries"] for k, s in stats.items() if k != "setting_redos")
        assert client_faults >= retries
        injected_now = sum(v for k, v in emu.injected().items() if k in REPLY_FAULTS)
        assert client_faults >= injected_now - injected_total
        injected_total = injected_now
    assert sum(emu.injected().values()) >= least, emu.injected()
    if faults in (["slow:0.2"], ["scpi-error:1"]):
        assert failures, "a fault no retry can cure must surface as a typed exception"
