"""The QCoDeS adapter (`driver: qcodes`) against QCoDeS's own simulated instruments (pyvisa-sim YAML in qcodes).

The bench: a Yokogawa GS200 as the pair source (output on/off, IDN), a Lakeshore 336 and a third generator as the
counter (sensor readings and the generator's phase stand for the four counts, raw sensor readings for the singles,
its power for the integration time), and two R&S SGS100A generators as the analysers of arms A and B (the phase is
the basis). They run under QCoDeS 0.50 (the extra's lower bound) and under the newest QCoDeS alike.
"""

import logging
from pathlib import Path

import pytest
import yaml

pytest.importorskip("qcodes", reason="QCoDeS is not installed (pip install 'qharness[qcodes]')")
pytest.importorskip("pyvisa_sim", reason="pyvisa-sim is not installed (pip install 'qharness[qcodes]')")

import pyvisa
from qcodes.instrument import Instrument as QcodesInstrument

from harness.devices.bench import BenchDevice
from harness.instruments import (
    InstrumentConfigError,
    InstrumentDisconnected,
    InstrumentProtocolError,
    InstrumentTimeout,
)
from harness.instruments.qcodes_adapter import STATIONS
from harness.profiles import ProfileError, load_profile

SIMS = "qcodes.instrument.sims"
STATION = {
    "instruments": {
        "gs200": {
            "type": "qcodes.instrument_drivers.yokogawa.YokogawaGS200",
            "address": "GPIB::1::INSTR",
            "init": {"pyvisa_sim_file": f"{SIMS}:Yokogawa_GS200.yaml"},
        },
        "ls336": {
            "type": "qcodes.instrument_drivers.Lakeshore.LakeshoreModel336",
            "address": "GPIB::2::INSTR",
            "init": {"pyvisa_sim_file": f"{SIMS}:lakeshore_model336.yaml"},
        },
        **{
            f"sgs_{arm}": {
                "type": "qcodes.instrument_drivers.rohde_schwarz.RohdeSchwarzSGS100A",
                "address": f"GPIB::{i}::INSTR",
                "init": {"pyvisa_sim_file": f"{SIMS}:RSSGS100A.yaml"},
            }
            for i, arm in ((1, "a"), (2, "b"), (3, "gate"))
        },
    }
}
BASIS_PHASE = {"X": 0.0, "Y": 90.0, "Z": 180.0}
# Readings standing for the four counts: two sensor readings of the sims (fixed) and a phase the test sets.
COUNT_PARAMETERS = ["ls336.A.temperature", "sgs_gate.phase", "ls336.A.sensor_raw", "ls336.B.temperature"]
COUNTS = [100, 37, 101, 100]


def qcodes_bench(station: Path, **counter_parameters) -> dict:
    """The bench block: three python instruments on one QCoDeS station."""
    counter = {
        "set_integration": {"parameter": "sgs_gate.power", "scale": 10.0},
        "coincidences": COUNT_PARAMETERS,
        "singles": ["ls336.A.sensor_raw", "ls336.B.sensor_raw"],
        **counter_parameters,
    }
    source = {
        "identify": "gs200.IDN",
        "firmware_build": {"parameter": "gs200.IDN", "key": "firmware"},
        "enable": {"parameter": "gs200.output", "value": "on"},
        "disable": {"parameter": "gs200.output", "value": "off"},
    }
    analyzers = {"set_basis": {arm: {"parameter": f"sgs_{arm.lower()}.phase", "values": BASIS_PHASE} for arm in "AB"}}
    roles = {"source": source, "counter": counter, "analyzers": analyzers}
    # Connecting loads every instrument of the station: on a loaded machine that can take seconds.
    block = {"timeout_s": 15.0, "retries": 1, "backoff_s": 0.0, "decoder": None}
    for role, parameters in roles.items():
        options = {"station": str(station), "parameters": parameters}
        block[role] = {"transport": "python", "driver": "qcodes", "options": options}
    return block


@pytest.fixture
def station(tmp_path: Path) -> Path:
    path = tmp_path / "station.yaml"
    path.write_text(yaml.safe_dump(STATION))
    logging.getLogger("qcodes").setLevel(logging.ERROR)  # the sims cannot answer every snapshot query
    return path


def profile_of(tmp_path: Path, bench: dict):
    path = tmp_path / "qcodes-bench.yaml"
    path.write_text(yaml.safe_dump({"name": "qcodes-bench", "extends": "bench-emulated", "bench": bench}))
    return load_profile(path).effective("MOCKFW")


@pytest.fixture
def device(tmp_path: Path, station: Path):
    dev = BenchDevice(profile_of(tmp_path, qcodes_bench(station)), "MOCKFW")
    yield dev
    dev.close()
    assert not STATIONS._open  # the last driver to close closed the station's instruments


def test_the_bench_measures_through_qcodes_parameters(device: BenchDevice):
    device.open()
    find = QcodesInstrument.find_instrument
    assert find("gs200").output() == "on"  # enable
    identity = device.identify()
    assert identity.build == "MOCKFW" and "QCoDeS Yokogawa Mock,GS200" in identity.detail
    find("sgs_gate").phase(37.0)
    tomography = device.bell_tomography(0.05)
    assert tomography.counts.tolist() == [COUNTS] * 9
    assert find("sgs_gate").power() == pytest.approx(0.5)  # 0.05 s x scale 10
    assert (find("sgs_a").phase(), find("sgs_b").phase()) == (BASIS_PHASE["Z"], BASIS_PHASE["Z"])  # last: ZZ
    rate = device.coincidences(0.2)
    assert (rate.singles_a, rate.singles_b, rate.coincidences) == (101, 101, sum(COUNTS))
    assert device.fault_stats()["counter"]["faults"] == {}


def test_a_reply_qcodes_cannot_parse_is_a_protocol_fault_naming_the_instrument(tmp_path: Path, station: Path):
    # The GS200 sim answers its voltage query with 'ERROR', as a confused instrument would.
    coincidences = [*COUNT_PARAMETERS[:3], "gs200.voltage"]
    dev = BenchDevice(profile_of(tmp_path, qcodes_bench(station, coincidences=coincidences)), "MOCKFW")
    try:
        with pytest.raises(InstrumentProtocolError) as info:
            dev.bell_tomography(0.05)
    finally:
        dev.close()
    message = str(info.value)
    assert message.startswith("counter: coincidences failed after 1 retries: driver raised ValueError: ")
    assert "could not convert string to float: 'ERROR'" in message and "gs200_voltage" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("status", "fault", "text"),
    [
        (pyvisa.constants.StatusCode.error_timeout, InstrumentTimeout, "VISA timeout (VI_ERROR_TMO)"),
        (pyvisa.constants.StatusCode.error_connection_lost, InstrumentDisconnected, "VI_ERROR_CONN_LOST"),
    ],
)
def test_visa_errors_under_qcodes_are_typed_faults(device: BenchDevice, monkeypatch, status, fault, text):
    device.open()
    monkeypatch.setattr(
        QcodesInstrument.find_instrument("ls336").A.sensor_raw,
        "get",
        lambda: (_ for _ in ()).throw(pyvisa.errors.VisaIOError(status)),
    )
    with pytest.raises(fault) as info:
        device.counter.query("singles", channel=1)
    assert str(info.value) == f"counter: singles channel=1 failed after 1 retries: getting ls336.A.sensor_raw: {text}"


def test_a_parameter_the_station_does_not_have_fails_at_connection(tmp_path: Path, station: Path):
    bench = qcodes_bench(station, singles=["ls336.A.sensor_raw", "ls336.B.no_such_reading"])
    dev = BenchDevice(profile_of(tmp_path, bench), "MOCKFW")
    with pytest.raises(InstrumentConfigError) as info:
        dev.open()
    assert (
        str(info.value)
        == f"counter: QCoDeS station {str(station)!r}: 'ls336.B.no_such_reading' has no 'no_such_reading'"
    )
    assert not STATIONS._open


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"coincidences": ["tagger.cc_pp", "tagger.cc_pm", "tagger.cc_mp", "tagger.cc_mm"]},
            "qcodes options: instrument 'tagger' is not in station",
        ),
        ({"singles": None}, "the options of driver 'qcodes' provide no 'singles'; bench.counter needs"),
        ({"coincidences": ["ls336.output_1.setpoint"]}, "qcodes options: parameters.coincidences"),
        ({"set_integration": {"parameter": "ls336", "scale": 1}}, "qcodes options: parameters.set_integration"),
    ],
    ids=["unknown-instrument", "missing-method", "three-counts", "not-a-parameter-path"],
)
def test_options_that_cannot_work_are_profile_errors_at_the_options_key(tmp_path, station, change, message):
    bench = qcodes_bench(station, **change)
    bench["counter"]["options"]["parameters"] = {
        k: v for k, v in bench["counter"]["options"]["parameters"].items() if v is not None
    }
    with pytest.raises(ProfileError) as info:
        profile_of(tmp_path, bench)
    problems = [p for p in info.value.problems if p.key == "bench.counter.options"]
    assert len(problems) == 1 and message in problems[0].message, info.value.problems


def test_a_missing_station_file_is_a_profile_error(tmp_path: Path):
    with pytest.raises(ProfileError) as info:
        profile_of(tmp_path, qcodes_bench(tmp_path / "nowhere.yaml"))
    assert "station" in str(info.value) and "nowhere.yaml' cannot be read (FileNotFoundError)" in str(info.value)
