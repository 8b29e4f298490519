"""Python driver plugins: resolution, the protocol check at profile load, the transport's calls, values and faults."""

import inspect
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from pydantic import ValidationError

from harness.devices.bench import BenchDevice
from harness.errors import FlashError
from harness.instruments import (
    Instrument,
    InstrumentConfigError,
    InstrumentDisconnected,
    InstrumentProtocolError,
    InstrumentSpec,
    InstrumentTimeout,
    PythonTransport,
)
from harness.instruments.drivers import PROTOCOLS
from harness.instruments.python_transport import format_reply, parse_line, translate
from harness.profiles import Bench, load_profile
from harness.profiles import Instrument as InstrumentBlock
from harness.profiles.checks import BENCH_COMMANDS
from harness.profiles.drivers import ANSWERED_BY_TRANSPORT, ENTRY_POINT_GROUP, DriverError, load_driver

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the plugin module, as a lab's vendor package would be importable

PLUGIN = "test_drivers_plugin"
OPTIONS = {"bench": "unit", "physics": "aer-reference", "build": "2.4.0", "seed": 5}


class Flaky:
    """A driver whose behaviour the test sets per call: a value, an exception to raise, or a hang."""

    instances: list["Flaky"] = []  # noqa: RUF012 - shared on purpose: the tests see every instance built

    def __init__(self, fail_open: BaseException | None = None) -> None:
        if fail_open is not None:
            raise fail_open
        self.plan: list = []
        self.closed = False
        self.thread = threading.current_thread().name
        Flaky.instances.append(self)

    def coincidences(self):
        step = Flaky.instances[0].plan.pop(0) if Flaky.instances[0].plan else [1, 2, 3, 4]
        if isinstance(step, BaseException):
            raise step
        if step == "hang":
            threading.Event().wait(5.0)
        return step

    def set_integration(self, seconds: float) -> None:
        self.seconds = seconds

    def singles(self, channel: int) -> int:
        return 10 * channel

    def close(self) -> None:
        self.closed = True


def transport(**options) -> PythonTransport:
    Flaky.instances.clear()
    return PythonTransport(f"{__name__}:Flaky", options)


def test_protocols_name_exactly_the_bench_commands_and_their_placeholders():
    for role, proto in PROTOCOLS.items():
        methods = {n for n, v in vars(proto).items() if inspect.isfunction(v) and not n.startswith("_")}
        assert methods == set(BENCH_COMMANDS[role]) - ANSWERED_BY_TRANSPORT, role
        for name in methods:
            params = set(inspect.signature(getattr(proto, name)).parameters) - {"self"}
            assert params == BENCH_COMMANDS[role][name], (role, name)


def test_command_lines_carry_typed_keyword_arguments():
    assert parse_line("set_integration seconds=0.05") == ("set_integration", {"seconds": 0.05})
    assert parse_line("singles channel=2") == ("singles", {"channel": 2})
    assert parse_line("set_basis arm=A basis=X") == ("set_basis", {"arm": "A", "basis": "X"})
    assert parse_line("prepare_state state=+i") == ("prepare_state", {"state": "+i"})
    assert parse_line("load_firmware? build=2.5.0-rc1") == ("load_firmware", {"build": "2.5.0-rc1"})
    with pytest.raises(InstrumentConfigError, match="seconds must be a float, got 'soon'"):
        parse_line("set_integration seconds=soon")


def test_return_values_become_reply_lines_that_the_validators_judge():
    assert format_reply(np.array([5, 0, 7, 1], dtype=np.int64)) == "5,0,7,1"
    assert format_reply([1200.0, 3.0, 4.0, 5.0]) == "1200,3,4,5"  # integral floats are counts
    assert format_reply([1.5, 2, 3, 4]) == "1.5,2,3,4"  # and fractions are not: nonneg_ints rejects them
    assert format_reply(np.float64(7.0)) == "7" and format_reply(True) == "1" and format_reply(None) == ""
    assert format_reply("2.4.0") == "2.4.0"


def test_exceptions_translate_to_typed_faults():
    assert isinstance(translate(TimeoutError("slow")), InstrumentTimeout)
    assert isinstance(translate(ConnectionRefusedError(111, "refused")), InstrumentDisconnected)
    assert isinstance(translate(BrokenPipeError(32, "pipe")), InstrumentDisconnected)
    fault = translate(KeyError("tagger 3"))
    assert isinstance(fault, InstrumentProtocolError) and str(fault) == "driver raised KeyError: 'tagger 3'"
    mine = InstrumentTimeout("own")
    assert translate(mine) is mine
    interrupt = KeyboardInterrupt()
    assert translate(interrupt) is interrupt  # not a fault: it ends the run
    long = translate(RuntimeError("line one\nline two " + "x" * 400))
    assert "\n" not in str(long) and len(str(long)) < 230


def test_calls_run_on_one_worker_thread_and_close_closes_the_driver():
    t = transport()
    t.open(1.0)
    assert t.query("coincidences", 1.0) == "1,2,3,4"
    t.write("set_integration seconds=0.25", 1.0)
    driver = Flaky.instances[0]
    assert driver.seconds == 0.25 and driver.thread.startswith("driver ")
    assert t.query("errors", 1.0) == '0,"No error"' and t.query("*OPC?", 1.0) == "1"
    assert t.query("*IDN?", 1.0) == f"python driver {__name__}:Flaky"
    with pytest.raises(InstrumentConfigError, match="has no method 'decode'"):
        t.query("decode code=surface_d3 syndrome=01", 1.0)
    t.close()
    assert driver.closed
    with pytest.raises(InstrumentDisconnected, match="is not open"):
        t.query("coincidences", 1.0)


def test_a_hung_call_costs_one_timeout_and_the_retry_builds_a_new_driver():
    t = transport()
    t.open(1.0)
    Flaky.instances[0].plan = ["hang"]
    start = time.monotonic()
    with pytest.raises(InstrumentTimeout, match=r"no answer within 0\.2 s"):
        t.query("coincidences", 0.2)
    assert time.monotonic() - start < 1.0
    with pytest.raises(InstrumentDisconnected, match="still busy"):
        t.query("coincidences", 0.2)
    t.close()  # does not wait for the hung call
    t.open(1.0)
    assert len(Flaky.instances) == 2 and t.query("coincidences", 1.0) == "1,2,3,4"
    assert not Flaky.instances[0].closed  # its worker is stuck; closing it would hang too
    t.close()


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (ConnectionRefusedError(111, "Connection refused"), "ConnectionRefusedError: [Errno 111] Connection refused"),
        (RuntimeError("no tagger with serial 1234"), "driver raised RuntimeError: no tagger with serial 1234"),
    ],
)
def test_a_constructor_that_fails_means_the_instrument_cannot_be_reached(error, text):
    t = transport(fail_open=error)
    with pytest.raises(InstrumentDisconnected, match=f"cannot connect to python driver {__name__}:Flaky: ") as info:
        t.open(1.0)
    assert text in str(info.value)


def python_spec(retries: int = 2) -> InstrumentSpec:
    # Outside a bench block the role is unknown: the commands are those of any role the driver implements.
    block = InstrumentBlock.model_validate({"transport": "python", "driver": f"{__name__}:Flaky"})
    assert set(block.commands) == {"coincidences", "errors", "set_integration", "singles"}
    return InstrumentSpec(block, timeout_s=1.0, retries=retries, backoff_s=0.0)


def test_the_instrument_retries_driver_faults_and_names_itself_in_the_last_one():
    Flaky.instances.clear()
    inst = Instrument("counter", python_spec(), sleep=lambda s: None)
    inst.open()
    Flaky.instances[0].plan = [[1, -2, 3, 4], RuntimeError("bus error"), [1, 2, 3, 4]]
    assert inst.query("coincidences") == "1,2,3,4"
    assert inst.stats.retries == 2 and dict(inst.stats.faults) == {"InstrumentProtocolError": 2}
    Flaky.instances[0].plan = [OSError(5, "I/O error")] * 3
    with pytest.raises(InstrumentDisconnected) as info:
        inst.query("coincidences")
    assert str(info.value) == "counter: coincidences failed after 2 retries: OSError: [Errno 5] I/O error"
    assert inst.stats.reconnects == 2  # an OSError starts the retry on a new driver
    assert inst.query("singles", channel=2) == "20"
    inst.close()


def test_profile_validation_fills_the_commands_from_the_driver_methods():
    block = {"transport": "python", "driver": f"{PLUGIN}:PhysicsCounter", "options": OPTIONS}
    other = {"transport": "python", "driver": f"{PLUGIN}:PhysicsAnalyzers", "options": OPTIONS}
    source = {"transport": "python", "driver": f"{PLUGIN}:PhysicsSource", "options": OPTIONS}
    bench = Bench.model_validate({"source": source, "counter": block, "analyzers": other})
    assert bench.counter.commands == {
        "coincidences": "coincidences",
        "errors": "errors",
        "set_integration": "set_integration seconds={seconds}",
        "singles": "singles channel={channel}",
    }
    assert bench.analyzers.commands["set_basis"] == "set_basis arm={arm} basis={basis}"
    assert bench.analyzers.commands["prepare_state"] == "prepare_state state={state}"


def _bench_error(**counter) -> str:
    ok = {"transport": "python", "driver": f"{PLUGIN}:PhysicsSource", "options": OPTIONS}
    analyzers = {"transport": "python", "driver": f"{PLUGIN}:PhysicsAnalyzers", "options": OPTIONS}
    with pytest.raises(ValidationError) as info:
        Bench.model_validate({"source": ok, "counter": counter, "analyzers": analyzers})
    (error,) = info.value.errors(include_url=False)
    return f"{'.'.join(map(str, (*error['loc'], *error['ctx'].get('path', []))))}: {error['ctx']['reason']}"


def test_profile_errors_name_the_key_and_the_fix():
    assert _bench_error(transport="python") == (
        "counter: a python instrument needs 'driver': 'package.module:Class' or a registered name"
    )
    assert _bench_error(transport="serial", url="loop://", driver="x:Y").startswith(
        "counter.driver: 'driver' is for transport python"
    )
    assert _bench_error(transport="python", driver="math:pi") == (
        "counter.driver: driver 'math:pi' is a float, not a class; name the driver class"
    )
    assert _bench_error(transport="python", driver="no_such_tagger") == (
        f"counter.driver: no driver 'no_such_tagger' is registered under the entry-point group '{ENTRY_POINT_GROUP}' "
        f"(registered: {', '.join(sorted(_registered())) or 'none'}); give 'package.module:Class' or install the plugin"
    )
    broken = _bench_error(transport="python", driver=f"{PLUGIN}:PhysicsSource", options=OPTIONS)
    assert broken.startswith(f"counter.driver: driver '{PLUGIN}:PhysicsSource' has no method 'coincidences'")


def _registered() -> set[str]:
    from importlib.metadata import entry_points

    return {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}


def test_a_driver_registered_as_an_entry_point_is_found_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    dist = tmp_path / "acme_tagger-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-tagger\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\nacme-counter = {PLUGIN}:PhysicsCounter\nacme-broken = acme_missing_sdk:Tagger\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    from test_drivers_plugin import PhysicsCounter

    assert load_driver("acme-counter") is PhysicsCounter
    with pytest.raises(DriverError, match=r"driver 'acme-broken' \(acme_missing_sdk:Tagger\) cannot be loaded: "):
        load_driver("acme-broken")


@pytest.mark.parametrize("command", ["load_firmware build={build}", "load_firmware? build={build}"])
def test_a_python_source_flashes_through_a_driver_method(tmp_path: Path, command: str):
    options = {**OPTIONS, "bench": f"flash-{command}"}
    bench = {
        role: {"transport": "python", "driver": f"{PLUGIN}:{cls}", "options": options}
        for role, cls in (("source", "PhysicsSource"), ("counter", "PhysicsCounter"), ("analyzers", "PhysicsAnalyzers"))
    }
    path = tmp_path / "flash.yaml"
    body = {"name": "flash", "extends": "bench-emulated", "bench": {**bench, "decoder": None}}
    path.write_text(yaml.safe_dump({**body, "firmware": {"build": "2.4.0", "flash": {"command": command}}}))
    device = BenchDevice(load_profile(path).effective("2.4.0"), "2.4.0")
    try:
        device.flash("2.5.0-rc1")
        assert device.identify().build == "2.5.0-rc1"
        source = device.source.transport._driver
        assert source.state.model.params.visibility == pytest.approx(0.955)  # the rc1 physics is served
        if command.startswith("load_firmware?"):  # a query: its ERR reply fails the flash at once
            with pytest.raises(FlashError, match=r"the source replied \"ERR unknown build '9\.9\.9'\""):
                device.flash("9.9.9")
        else:  # a write: judged by the build the source reports afterwards
            with pytest.raises(FlashError, match=r"left the source reporting build '2\.5\.0-rc1'"):
                device.flash("9.9.9")
    finally:
        device.close()
