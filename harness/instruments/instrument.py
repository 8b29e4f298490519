"""A named lab instrument: command templates, reply validation, bounded retries and reconnects."""

from __future__ import annotations

import re
import string
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness.instruments.errors import (
    RETRYABLE,
    InstrumentConfigError,
    InstrumentDisconnected,
    InstrumentError,
    InstrumentProtocolError,
    InstrumentTimeout,
)
from harness.instruments.python_transport import PythonTransport
from harness.instruments.recorder import SessionRecorder
from harness.instruments.transports import SerialTransport, Transport, VisaTransport

if TYPE_CHECKING:
    from harness.profiles import Bench
    from harness.profiles import Instrument as InstrumentBlock

Validator = Callable[[str], None]


@dataclass(frozen=True)
class InstrumentSpec:
    """One bench instrument: its validated profile block and the timeout, retries and backoff that apply to it."""

    block: InstrumentBlock
    timeout_s: float
    retries: int
    backoff_s: float

    @classmethod
    def from_bench(cls, bench: Bench, role: str) -> InstrumentSpec:
        """Return the spec of `bench.<role>`; the instrument's own timeout_s and retries override the bench's."""
        block: InstrumentBlock = getattr(bench, role)
        return cls(
            block,
            timeout_s=bench.timeout_s if block.timeout_s is None else block.timeout_s,
            retries=bench.retries if block.retries is None else block.retries,
            backoff_s=bench.backoff_s,
        )

    def make_transport(self) -> Transport:
        """Return a fresh transport for this instrument."""
        b = self.block
        if b.transport == "python":
            return PythonTransport(str(b.driver), b.options)
        if b.transport == "serial":
            return SerialTransport(
                str(b.url),
                baudrate=b.baudrate,
                read_termination=b.read_termination,
                write_termination=b.write_termination,
            )
        return VisaTransport(
            str(b.resource),
            backend=b.backend,
            read_termination=b.read_termination,
            write_termination=b.write_termination,
        )


# ---- reply validators -------------------------------------------------------------------------------------------

_SCPI_ERR = re.compile(r'^\s*([+-]?\d+)\s*,\s*"?(.*?)"?\s*$')


def nonneg_ints(n: int) -> Validator:
    """Validator: exactly `n` comma-separated non-negative integers."""
    pattern = re.compile(r"\s*\d+\s*" + r"(?:,\s*\d+\s*)" * (n - 1))

    def check(reply: str) -> None:
        if pattern.fullmatch(reply) is None:
            raise InstrumentProtocolError(f"expected {n} comma-separated non-negative integers, got {reply!r}", reply)

    return check


def nonempty(reply: str) -> None:
    """Validator: any non-empty printable line."""
    if not reply.strip() or not reply.isprintable():
        raise InstrumentProtocolError(f"expected a non-empty printable reply, got {reply!r}", reply)


def scpi_error(reply: str) -> None:
    """Validator: a SCPI error-queue entry `<code>,"<message>"`."""
    if not _SCPI_ERR.match(reply):
        raise InstrumentProtocolError(f'expected a SCPI error entry like 0,"No error", got {reply!r}', reply)


def parse_scpi_error(reply: str) -> tuple[int, str]:
    """Return (code, message) of a validated SCPI error-queue entry."""
    m = _SCPI_ERR.match(reply)
    if m is None:
        raise InstrumentProtocolError(f"not a SCPI error entry: {reply!r}", reply)
    return int(m.group(1)), m.group(2)


def firmware_build(reply: str) -> None:
    """Validator: a version-like firmware build string."""
    if not re.fullmatch(r"[0-9A-Za-z][0-9A-Za-z.+_-]*", reply.strip()):
        raise InstrumentProtocolError(f"expected a firmware build like 2.4.0, got {reply!r}", reply)


DEFAULT_VALIDATORS: dict[str, Validator] = {
    "identify": nonempty,
    "firmware_build": firmware_build,
    "coincidences": nonneg_ints(4),
    "singles": nonneg_ints(1),
    "errors": scpi_error,
}


@dataclass
class InstrumentStats:
    """Counters of one instrument for provenance."""

    queries: int = 0
    writes: int = 0
    retries: int = 0
    reconnects: int = 0
    faults: Counter = field(default_factory=Counter)

    def to_dict(self) -> dict:
        """JSON-ready copy."""
        return {
            "queries": self.queries,
            "writes": self.writes,
            "retries": self.retries,
            "reconnects": self.reconnects,
            "faults": dict(self.faults),
        }


class Instrument:
    """One named instrument: renders command templates, validates replies, retries and reconnects.

    Every exchange runs under a monotonic deadline of 2 (retries + 1) timeouts (a reconnect and a
    reply per attempt) plus the backoff delays, so a call returns or raises in bounded time
    whatever the instrument does.
    """

    def __init__(
        self,
        name: str,
        spec: InstrumentSpec,
        *,
        recorder: SessionRecorder | None = None,
        transport: Transport | None = None,
        validators: Mapping[str, Validator] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.name = name
        self.spec = spec
        self.timeout_s = float(spec.timeout_s)
        self.retries = int(spec.retries)
        self.backoff_s = float(spec.backoff_s)
        self.recorder = recorder
        self.transport = transport if transport is not None else spec.make_transport()
        self.validators = dict(DEFAULT_VALIDATORS if validators is None else validators)
        self.stats = InstrumentStats()
        self.generation = 0  # bumped on every (re)connect so callers can see a connection was replaced
        self._open = False
        self._sleep = sleep

    # ---- connection ---------------------------------------------------------------------------------------------

    def open(self) -> None:
        """Connect (idempotent); raise InstrumentDisconnected with the reason if the instrument is unreachable."""
        if self._open:
            return
        try:
            self.transport.open(self.timeout_s)
        except (InstrumentDisconnected, InstrumentConfigError) as exc:
            raise type(exc)(f"{self.name}: {exc}") from exc
        self._open = True
        self.generation += 1

    def close(self) -> None:
        """Disconnect; never raises."""
        self._open = False
        self.transport.close()

    def _reconnect(self) -> None:
        self.transport.close()
        self._open = False
        self.stats.reconnects += 1
        self.transport.open(self.timeout_s)
        self._open = True
        self.generation += 1

    # ---- commands -----------------------------------------------------------------------------------------------

    def has(self, command_name: str) -> bool:
        """Whether the profile defines a template for `command_name`."""
        return command_name in self.spec.block.commands

    def render(self, command_name: str, **fields: Any) -> str:
        """The command line of `command_name` with `fields` substituted."""
        template = self.spec.block.commands.get(command_name)
        if template is None:
            known = ", ".join(sorted(self.spec.block.commands)) or "none"
            raise InstrumentConfigError(
                f"{self.name}: no command {command_name!r} in bench.{self.name}.commands (known: {known}); "
                "add it to the profile"
            )
        try:
            return template.format(**fields)
        except (KeyError, IndexError, ValueError) as exc:
            wanted = [f for _, f, _, _ in string.Formatter().parse(template) if f]
            raise InstrumentConfigError(
                f"{self.name}: template {template!r} of command {command_name!r} needs fields {wanted}, "
                f"got {sorted(fields)}"
            ) from exc

    def query(self, command_name: str, **fields: Any) -> str:
        """Send `command_name` rendered with `fields` and return the validated reply (retried on faults)."""
        line = self.render(command_name, **fields)
        self.stats.queries += 1
        return self._exchange(command_name, line, expect_reply=True)  # type: ignore[return-value]

    def write(self, command_name: str, **fields: Any) -> None:
        """Send `command_name` rendered with `fields`; no reply is expected."""
        line = self.render(command_name, **fields)
        self.stats.writes += 1
        self._exchange(command_name, line, expect_reply=False)

    def query_raw(self, line: str, *, validator: Validator | None = nonempty) -> str:
        """Send a literal command line (e.g. '*IDN?') and return its validated reply."""
        self.stats.queries += 1
        return self._exchange(None, line, expect_reply=True, validator=validator)  # type: ignore[return-value]

    def _exchange(
        self,
        command_name: str | None,
        line: str,
        *,
        expect_reply: bool,
        validator: Validator | None = None,
    ) -> str | None:
        if validator is None and command_name is not None:
            validator = self.validators.get(command_name)
        # Each attempt may spend up to one timeout reconnecting and one waiting for the reply.
        budget = 2 * self.timeout_s * (self.retries + 1) + self.backoff_s * (2**self.retries - 1)
        deadline = time.monotonic() + budget
        attempt = 0
        last: InstrumentError | None = None
        while True:
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise InstrumentTimeout(f"deadline of {budget:.3g} s exceeded")
                if not self._open:
                    self._reconnect() if self.generation else self.open()
                timeout = min(self.timeout_s, remaining)
                if expect_reply:
                    reply: str | None = self.transport.query(line, timeout)
                    if validator is not None:
                        validator(reply)  # type: ignore[arg-type]
                else:
                    self.transport.write(line, timeout)
                    reply = None
            except RETRYABLE as exc:
                last = exc
                self.stats.faults[type(exc).__name__] += 1
                if self.recorder is not None:
                    self.recorder.record(self.name, line, getattr(exc, "raw", None), exc)
                if isinstance(exc, (InstrumentTimeout, InstrumentDisconnected)):
                    # The stream may hold a late reply or be dead: start the retry on a fresh connection.
                    self._open = False
                if attempt >= self.retries or time.monotonic() >= deadline:
                    break
                self._sleep(min(self.backoff_s * 2**attempt, max(0.0, deadline - time.monotonic())))
                attempt += 1
                self.stats.retries += 1
                continue
            if self.recorder is not None:
                self.recorder.record(self.name, line, reply, None)
            return reply
        raise type(last)(
            f"{self.name}: {line} failed after {attempt} retries: {last}",
            *((last.raw,) if isinstance(last, InstrumentProtocolError) else ()),
        ) from last

    def __repr__(self) -> str:
        return f"Instrument({self.name!r}, {self.transport.description})"
