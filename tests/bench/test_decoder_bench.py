"""The firmware decoder over the bench path: real pyserial socket:// and pty lines to the emulated firmware."""

from __future__ import annotations

import numpy as np
import pytest

from harness.devices.bench import BenchDevice
from harness.devices.replay import ReplayDevice, ReplayMismatchError
from harness.emulators.decoder import SURFACE_D3_SINGLE_X_CHECK
from harness.instruments import InstrumentProtocolError, SessionRecorder
from harness.protocols import PROTOCOLS, MeasureContext
from harness.protocols.decoder import decoder_memory, decoder_noise, syndrome_strings
from tests.bench.conftest import live_profile


def sampled(reference, code: str, shots: int = 400) -> tuple[list[str], np.ndarray]:
    """Syndromes of `code` sampled under the reference noise, and matching's answers to them."""
    comp = decoder_memory(code, decoder_noise(reference.link, reference.qec))
    dets, _ = comp.circuit.compile_detector_sampler(seed=9).sample(shots, separate_observables=True)
    dets = dets[dets.any(axis=1)]
    return syndrome_strings(dets), comp.matching.decode_batch(dets)[:, 0]


@pytest.mark.parametrize("serial", ["socket", "pty"])
def test_bench_decode_round_trips_match_matching(emulators, reference_profile, serial):
    emu = emulators(serial=serial)
    profile = live_profile(reference_profile, emu)
    assert profile.bench.decoder is not None
    syndromes, expected = sampled(reference_profile, "surface_d3_z")
    with BenchDevice(profile, "2.4.0") as dev:
        # The source and the decoder share the firmware: both lines work side by side.
        assert dev.identify().build == "2.4.0"
        answers, latency_us = dev.decode("surface_d3_z", syndromes)
        assert dev.source.query("firmware_build") == "2.4.0"
        stats = dev.fault_stats()
    assert np.array_equal(answers, expected) and len(syndromes) > 20
    assert latency_us.shape == (len(syndromes),) and np.all(latency_us > 0) and np.all(latency_us < 2e6)
    assert stats["decoder"]["queries"] == len(syndromes)


def test_faulty_build_answers_its_bug_entry_wrongly(emulators, reference_profile):
    emu = emulators(build="2.5.0-rc1")
    profile = live_profile(reference_profile, emu)
    with BenchDevice(profile, "2.5.0-rc1") as dev:
        answers, _ = dev.decode("surface_d3_z", [SURFACE_D3_SINGLE_X_CHECK, "0" * 32])
    assert answers.tolist() == [1, 0]


def test_decoder_errors_fail_after_retries_as_protocol_errors(emulators, reference_profile):
    emu = emulators()
    profile = live_profile(reference_profile, emu, retries=1, backoff_s=0.0)
    with BenchDevice(profile, "2.4.0") as dev, pytest.raises(InstrumentProtocolError, match="decoder answer 0 or 1"):
        dev.decode("surface_d5_z", ["0" * 72])


def test_protocol_over_the_bench_with_faults_keeps_every_answer(emulators, reference_profile):
    # Dropped and garbage replies are retried by the instrument: the answers, hence the metrics, are unchanged.
    emu = emulators(faults=["drop:0.02", "garbage:0.02"])
    profile = live_profile(reference_profile, emu, timeout_s=0.2, backoff_s=0.0)
    ctx = MeasureContext(profile, 0.05, 1, 200, build="2.4.0")
    with BenchDevice(profile, "2.4.0") as dev:
        raw = PROTOCOLS["decoder"].measure(dev, ctx)
        est = PROTOCOLS["decoder"].estimate(raw, ctx, {})
        retries = dev.fault_stats()["decoder"]["retries"]
    assert retries > 0
    assert est["decoder_agreement"].value == 1.0
    assert all(np.array_equal(c.device, c.matching) for c in raw.codes)


def test_recorded_decoder_session_replays_identically(emulators, reference_profile, tmp_path):
    emu = emulators(faults=["garbage:0.05"])
    profile = live_profile(reference_profile, emu, backoff_s=0.0)
    syndromes, expected = sampled(reference_profile, "repetition_bitflip_d3", shots=4000)
    cassette = tmp_path / "decoder.jsonl"
    with SessionRecorder(cassette) as rec, BenchDevice(profile, "2.4.0", recorder=rec) as dev:
        live, _ = dev.decode("repetition_bitflip_d3", syndromes)
    with ReplayDevice(profile, "2.4.0", cassette=cassette) as replay:
        replayed, _ = replay.decode("repetition_bitflip_d3", syndromes)
        retries = replay.decoder.stats.retries
        with pytest.raises(ReplayMismatchError, match="expected source 'PAIR:OFF'"):
            replay.decode("repetition_bitflip_d3", syndromes[:1])  # the recording went on to switch the source off
    assert np.array_equal(live, expected) and np.array_equal(replayed, live)
    assert retries > 0  # the recorded garbage replies were retried again
