"""The shipped bench profiles: bench-emulated mirrors aer-reference's physics; the lab template validates."""

from __future__ import annotations

import pytest

from harness.devices.bench import BenchDevice
from harness.instruments import InstrumentDisconnected
from harness.profiles import load_profile

PHYSICS = ("source", "link", "detectors", "memory")


def test_bench_emulated_physics_equals_aer_reference_per_build():
    aer, bench = load_profile("aer-reference"), load_profile("bench-emulated")
    assert bench.kind == "bench" and set(bench.builds) == set(aer.builds) == {"2.3.0", "2.4.0", "2.5.0-rc1"}
    for build in aer.builds:
        a, b = aer.effective(build), bench.effective(build)
        for block in PHYSICS:
            assert getattr(a, block) == getattr(b, block), (build, block)
    assert (bench.default_build, bench.default_baseline) == (aer.default_build, aer.default_baseline)


def test_bench_emulated_points_at_the_fixed_loopback_ports():
    bench = load_profile("bench-emulated").effective().bench
    assert bench.source.url == "socket://127.0.0.1:7001"
    assert bench.counter.resource == bench.analyzers.resource == "TCPIP0::127.0.0.1::5025::SOCKET"


def test_lab_template_validates_with_real_lab_resources():
    loaded = load_profile("bench-lab-template")
    bench = loaded.effective().bench
    assert loaded.kind == "bench"
    assert bench.counter.resource == "TCPIP0::192.0.2.10::5025::SOCKET"
    assert bench.analyzers.resource == "USB0::0x1234::0x5678::SN::INSTR"
    assert bench.decoder.resource == "GPIB0::12::INSTR"
    assert bench.source.url == "/dev/ttyUSB0"
    # It builds a device (every command the device needs is defined); connecting is what fails without a lab.
    dev = BenchDevice(loaded.effective(loaded.default_build), loaded.default_build)
    assert set(dev.instruments) == {"source", "counter", "analyzers"}
    assert dev.instruments["counter"].timeout_s == 5.0


def test_lab_template_without_the_lab_fails_cleanly():
    loaded = load_profile("bench-lab-template")
    dev = BenchDevice(loaded.effective(loaded.default_build), loaded.default_build)
    if __import__("os").path.exists("/dev/ttyUSB0"):
        pytest.skip("a real /dev/ttyUSB0 exists here")
    with pytest.raises(InstrumentDisconnected, match=r"^source: cannot open serial /dev/ttyUSB0"):
        dev.open()
