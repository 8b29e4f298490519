"""A transport whose instrument is a Python object: command lines become method calls under a timeout.

The driver is built and called on one worker thread of its own, so a vendor API that is bound to the thread that
opened it keeps working, and a call that hangs costs the caller one timeout, not the run: the stuck worker is
abandoned and the next connection builds a new driver. Every exception a driver raises becomes a typed instrument
fault: TimeoutError an InstrumentTimeout, OSError (refused, reset, broken pipe) an InstrumentDisconnected, any
other exception an InstrumentProtocolError; a typed InstrumentError raised by the driver passes unchanged.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Mapping
from numbers import Integral, Real
from typing import Any

from harness.instruments.errors import (
    InstrumentConfigError,
    InstrumentDisconnected,
    InstrumentError,
    InstrumentProtocolError,
    InstrumentTimeout,
)
from harness.profiles.drivers import DriverError, load_driver, one_line

NO_ERROR = '0,"No error"'
# Placeholders whose values a driver receives as numbers; every other one arrives as a string.
FIELD_TYPES: dict[str, type] = {"seconds": float, "channel": int}
# Close a driver with at most this long a wait: closing must never hold up the end of a run.
CLOSE_TIMEOUT_S = 1.0


def translate(exc: BaseException, what: str = "") -> BaseException:
    """The typed instrument fault that a driver's exception stands for, its message after `what` if given."""
    if isinstance(exc, InstrumentError) or not isinstance(exc, Exception):
        return exc
    prefix = f"{what}: " if what else ""
    if isinstance(exc, TimeoutError):
        return InstrumentTimeout(f"{prefix}{one_line(exc)}")
    if isinstance(exc, (OSError, EOFError)):
        return InstrumentDisconnected(f"{prefix}{one_line(exc)}")
    return InstrumentProtocolError(f"{prefix}driver raised {one_line(exc)}")


def parse_line(line: str) -> tuple[str, dict[str, Any]]:
    """The method name and keyword arguments of a python instrument's command line 'name key=value ...'."""
    name, *pairs = line.split()
    kwargs: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise InstrumentConfigError(f"command {line!r} is not 'method key=value ...'")
        kind = FIELD_TYPES.get(key, float if key.endswith("_deg") else str)
        try:
            kwargs[key] = kind(value)
        except ValueError:
            raise InstrumentConfigError(f"command {line!r}: {key} must be a {kind.__name__}, got {value!r}") from None
    return name.removesuffix("?"), kwargs


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, Integral):
        return str(int(value))
    if isinstance(value, Real) and float(value).is_integer():
        return str(int(value))  # an integral float (1234.0) is a count; 12.5 stays 12.5 and fails validation
    return str(value)


def format_reply(value: Any) -> str:
    """A driver's return value as a reply line: numbers as text, sequences comma-separated, None as ''."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return ",".join(_scalar(v) for v in value.values())
    if hasattr(value, "__iter__"):
        return ",".join(_scalar(v) for v in value)
    return _scalar(value)


class _Worker:
    """One daemon thread that runs a driver's calls in order; a call that outlives its timeout abandons it."""

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.stuck = False
        threading.Thread(target=self._run, name=f"driver {name}", daemon=True).start()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            fn, box, done = job
            try:
                box["value"] = fn()
            except BaseException as exc:  # handed to the caller, which types it
                box["error"] = exc
            done.set()

    def call(self, fn: Callable[[], Any], timeout_s: float, what: str = "") -> Any:
        """Run `fn` on the worker; its value, or its exception translated; InstrumentTimeout after `timeout_s`."""
        prefix = f"{what}: " if what else ""
        if self.stuck:
            raise InstrumentDisconnected(f"{prefix}the driver is still busy with a call that timed out")
        box: dict[str, Any] = {}
        done = threading.Event()
        self._jobs.put((fn, box, done))
        if not done.wait(timeout_s):
            self.stuck = True
            raise InstrumentTimeout(f"{prefix}no answer within {round(timeout_s, 3)} s")
        if "error" in box:
            raise translate(box["error"], what) from box["error"]
        return box["value"]

    def stop(self) -> None:
        """Let the thread end after its current call."""
        self._jobs.put(None)


class PythonTransport:
    """An instrument implemented by a driver class in this process (profile `transport: python`)."""

    def __init__(self, driver: str, options: Mapping[str, Any] | None = None) -> None:
        self.driver_ref = driver
        self.options = dict(options or {})
        self.description = f"python driver {driver}"
        self._driver: Any = None
        self._worker: _Worker | None = None

    def open(self, timeout_s: float) -> None:
        """Build the driver from its options on a fresh worker; a constructor that fails means unreachable."""
        if self._driver is not None:
            return
        try:
            cls = load_driver(self.driver_ref)
        except DriverError as exc:
            raise InstrumentConfigError(str(exc)) from None
        worker = _Worker(self.driver_ref)
        try:
            self._driver = worker.call(lambda: cls(**self.options), timeout_s, f"cannot connect to {self.description}")
        except InstrumentConfigError:
            worker.stop()
            raise  # the driver says its configuration cannot work: retrying will not help
        except InstrumentError as exc:
            worker.stop()
            # Whatever else the constructor did (refused, timed out, raised), the instrument cannot be reached.
            raise InstrumentDisconnected(str(exc)) from exc
        self._worker = worker

    def close(self) -> None:
        """Close the driver (its `close()` if it has one), ignoring its errors; never waits on a stuck call."""
        driver, worker = self._driver, self._worker
        self._driver = self._worker = None
        if worker is None:
            return
        if not worker.stuck and callable(getattr(driver, "close", None)):
            with contextlib.suppress(Exception):
                worker.call(driver.close, CLOSE_TIMEOUT_S, "close")
        worker.stop()

    def _call(self, line: str, timeout_s: float) -> Any:
        if self._driver is None or self._worker is None:
            raise InstrumentDisconnected(f"{self.description} is not open")
        name, kwargs = parse_line(line)
        if name == "*OPC" or (name == "errors" and not hasattr(self._driver, "errors")):
            # Every call returns once applied, and faults arrive as exceptions: these answer themselves.
            return "1" if name == "*OPC" else NO_ERROR
        if name == "*IDN" and not hasattr(self._driver, "identify"):
            return self.description
        method = getattr(self._driver, "identify" if name == "*IDN" else name, None)
        if not callable(method):
            raise InstrumentConfigError(f"{self.description} has no method {name!r} (command {line!r})")
        return self._worker.call(lambda: method(**kwargs), timeout_s)

    def write(self, text: str, timeout_s: float) -> None:
        """Call the method of a command line; its return value is ignored."""
        self._call(text, timeout_s)

    def query(self, text: str, timeout_s: float) -> str:
        """Call the method of a command line and return its value as a reply line."""
        return format_reply(self._call(text, timeout_s))
