"""The bench device against the emulators: counts agree with the link physics; identity, errors and cleanup."""

from __future__ import annotations

import re
import time

import numpy as np
import pytest

from harness.devices.base import Device
from harness.devices.bench import BenchDevice
from harness.errors import IdentityMismatchError
from harness.instruments import InstrumentProtocolError, NotSupportedError
from harness.physics.link import delivered_state, link_kraus, observed_link_choi, observed_state, profile_rates
from harness.profiles import Profile, load_profile
from harness.records import BELL_SETTINGS, INPUTS_6
from harness.session import ProfileSession
from harness.store import Store
from tests.bench.conftest import live_profile

Z_SIGMA = 4.0


class _Truth:
    """Ground truth straight from harness.physics.link (the functions the emulators are specified against)."""

    def __init__(self, profile: Profile) -> None:
        src, link, det = profile.source, profile.link, profile.detectors
        self.rates = profile_rates(profile)
        kraus = link_kraus(link.amplitude_damping, link.dephasing, link.depolarizing)
        f_acc = self.rates.accidental_fraction
        rho = observed_state(delivered_state(src.visibility, kraus, f_acc), det.readout_error_a, det.readout_error_b)
        # |01> and |10> are indices 1 and 2 with qubit A first.
        self.qber_z = float(np.real(rho[1, 1] + rho[2, 2]))
        self.observed_link_choi = observed_link_choi(kraus, f_acc, det.readout_error_b)


def truth(profile: Profile) -> _Truth:
    return _Truth(profile)


def test_bench_device_is_a_device(emulators, reference_profile):
    dev = BenchDevice(live_profile(reference_profile, emulators()), "2.4.0")
    assert isinstance(dev, Device)


def test_bell_counts_agree_with_physics(emulators, reference_profile):
    emu = emulators(seed=11)
    dev = BenchDevice(live_profile(reference_profile, emu), "2.4.0")
    truth_ = truth(reference_profile)
    T = 0.05
    with dev:
        tc = dev.bell_tomography(T)
    assert tc.settings == BELL_SETTINGS and tc.counts.shape == (9, 4) and tc.duration_s == T
    zz = tc.counts[BELL_SETTINGS.index("ZZ")]
    n = zz.sum()
    qber = (zz[1] + zz[2]) / n
    sigma = np.sqrt(truth_.qber_z * (1 - truth_.qber_z) / n)
    assert abs(qber - truth_.qber_z) < Z_SIGMA * sigma, (qber, truth_.qber_z, sigma)
    # Total coincidence rate (true + accidental) over all 9 integrations: Poisson.
    total = tc.counts.sum()
    expected = truth_.rates.coincidence_hz * T * 9
    assert abs(total - expected) < Z_SIGMA * np.sqrt(expected), (total, expected)
    # XX is correlated for Phi+, YY anti-correlated: the emulator's basis handling is right.
    xx, yy = tc.counts[BELL_SETTINGS.index("XX")], tc.counts[BELL_SETTINGS.index("YY")]
    assert (xx[1] + xx[2]) / xx.sum() < 0.1 and (yy[0] + yy[3]) / yy.sum() < 0.1


def test_coincidences_agree_with_rates(emulators, reference_profile):
    emu = emulators(seed=12)
    dev = BenchDevice(live_profile(reference_profile, emu), "2.4.0")
    r = truth(reference_profile).rates
    T = 0.2
    with dev:
        cc = dev.coincidences(T)
    for got, rate in (
        (cc.singles_a, r.singles_a_hz),
        (cc.singles_b, r.singles_b_hz),
        (cc.coincidences, r.coincidence_hz),
    ):
        assert abs(got - rate * T) < Z_SIGMA * np.sqrt(rate * T), (got, rate * T)
    assert cc.window_s == reference_profile.detectors.coincidence_window_s and cc.duration_s == T


def test_link_tomography_agrees_with_observed_link_choi(emulators, reference_profile):
    emu = emulators(seed=13)
    dev = BenchDevice(live_profile(reference_profile, emu), "2.4.0")
    choi = truth(reference_profile).observed_link_choi.reshape(2, 2, 2, 2)
    with dev:
        pc = dev.link_tomography(0.02, inputs=INPUTS_6)
    assert pc.counts.shape == (6, 3, 2)
    bloch = {"0": (0, 0, 1), "1": (0, 0, -1), "+": (1, 0, 0), "-": (-1, 0, 0), "+i": (0, 1, 0), "-i": (0, -1, 0)}
    paulis = [np.array([[0, 1], [1, 0]]), np.array([[0, -1j], [1j, 0]]), np.diag([1.0, -1.0])]
    for i, state in enumerate(pc.inputs):
        rho = (np.eye(2) + sum(c * p for c, p in zip(bloch[state], paulis, strict=True))) / 2
        out = np.einsum("ij,iajb->ab", rho, choi)
        for j, sigma in enumerate(paulis):
            p_plus = float(np.real(np.trace(out @ (np.eye(2) + sigma) / 2)))
            plus, minus = pc.counts[i, j]
            n = plus + minus
            se = np.sqrt(max(p_plus * (1 - p_plus), 1e-4) / n)
            assert abs(plus / n - p_plus) < Z_SIGMA * se, (state, "XYZ"[j], plus / n, p_plus)
    # The device returns the emulator to entangled pairs afterwards.
    assert emu.scpi.prepared is None


def test_link_tomography_without_prepare_state_is_not_supported(emulators, reference_profile):
    emu = emulators()
    data = emu.profile_dict(reference_profile, "bench-live")
    del data["bench"]["analyzers"]["commands"]["prepare_state"]
    dev = BenchDevice(Profile.model_validate(data), "2.4.0")
    with pytest.raises(NotSupportedError, match=r"link tomography needs a 'prepare_state' command"):
        dev.link_tomography(0.01)
    assert emu.scpi.integrations == 0


def test_wrong_build_is_detected_before_any_measurement(emulators, reference_profile, tmp_path):
    emu = emulators(faults=["wrong-build:2.3.0"])
    dev = BenchDevice(live_profile(reference_profile, emu), "2.4.0")
    with dev:
        ident = dev.identify()
        assert (ident.kind, ident.profile, ident.build) == ("bench", "bench-live", "2.3.0")
    # The session that opens the device checks the reported build against the one under test.
    path = emu.write_profile(tmp_path / "bench-live.yaml", reference_profile, "bench-live")
    with Store(tmp_path / "runs.db") as store:
        session = ProfileSession(load_profile(path), store, build="2.4.0")
        try:
            with pytest.raises(
                IdentityMismatchError, match=r"reports firmware build '2\.3\.0' .* build under test is '2\.4\.0'"
            ):
                session.open_candidate()
        finally:
            session.close()
    assert emu.scpi.integrations == 0


def test_scpi_error_after_a_setting_keeps_completed_records(emulators, reference_profile):
    emu = emulators()
    dev_records: list[tuple[str, dict]] = []

    def on_record(kind: str, payload: dict) -> None:
        dev_records.append((kind, payload))
        if payload["index"] == 3:
            emu.scpi.queue_errors(1)  # the next setting's integration goes out of range

    dev = BenchDevice(live_profile(reference_profile, emu), "2.4.0", on_record=on_record)
    with dev, pytest.raises(InstrumentProtocolError) as info:
        dev.bell_tomography(0.01)
    assert re.fullmatch(
        r'counter: SYST:ERR\? failed after 0 retries: instrument reported SCPI error -222,"Data out of range" '
        rf"\(after setting {BELL_SETTINGS[4]}\)",
        str(info.value),
    ), str(info.value)
    assert [p["setting"] for _, p in dev_records] == list(BELL_SETTINGS[:4])
    assert all(k == "bell_setting" and len(p["counts"]) == 4 for k, p in dev_records)


def test_close_switches_the_source_off_and_never_hangs(emulators, reference_profile):
    emu = emulators()
    dev = BenchDevice(live_profile(reference_profile, emu, timeout_s=0.2), "2.4.0")
    dev.open()
    assert emu.source_state.on is True
    dev.close()
    deadline = time.monotonic() + 2.0
    while emu.source_state.on and time.monotonic() < deadline:
        time.sleep(0.005)  # the disable is a write: give the emulator its turn to apply it
    assert emu.source_state.on is False
    dev.close()  # twice is fine

    # With the whole bench gone, close() still returns promptly and without raising.
    emu2 = emulators()
    dev2 = BenchDevice(live_profile(reference_profile, emu2, timeout_s=0.3, retries=5), "2.4.0")
    dev2.open()
    emu2.runner.stop()
    t0 = time.monotonic()
    dev2.close()
    assert time.monotonic() - t0 < 0.6


def test_open_against_a_stopped_bench_names_the_instrument(emulators, reference_profile):
    from harness.instruments import InstrumentDisconnected

    emu = emulators()
    profile = live_profile(reference_profile, emu, timeout_s=0.3)
    emu.scpi._server.close()  # stop listening: the port is now refused
    time.sleep(0.05)
    dev = BenchDevice(profile, "2.4.0")
    with pytest.raises(InstrumentDisconnected, match=r"^counter: cannot connect to VISA TCPIP0::127\.0\.0\.1::\d+"):
        dev.open()
