"""Replaying a recorded bench session: the bench device with transports that answer from a JSONL cassette.

The cassette is what SessionRecorder wrote: one exchange per line, in order. Replay is strict:
each command must be the next one recorded, for the same instrument, or a ReplayMismatchError
names the expected and the actual command and the cassette line. Recorded faults are replayed
too (a timeout raises a timeout, a garbage reply is returned again), so retries happen exactly as
they did, without waiting.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from harness.devices.base import RecordCallback, require_profile
from harness.devices.bench import ROLES, BenchDevice
from harness.errors import DeviceError
from harness.instruments import InstrumentConfigError, InstrumentDisconnected, InstrumentTimeout, SessionRecorder
from harness.profiles import Profile

# Faults that happened inside the transport and so must be raised again; others come from validating the reply.
_TRANSPORT_FAULTS = {"InstrumentTimeout": InstrumentTimeout, "InstrumentDisconnected": InstrumentDisconnected}


class ReplayMismatchError(DeviceError):
    """The replayed session issued a command other than the recorded one (or ran past the cassette's end)."""


class Cassette:
    """The exchanges of a recorded session, consumed strictly in order."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise InstrumentConfigError(
                f"replay cassette {self.path} does not exist; "
                "record one with BenchDevice(..., recorder=SessionRecorder(PATH))"
            )
        self.entries: list[tuple[int, dict]] = []
        for lineno, text in enumerate(self.path.read_text(encoding="utf-8").splitlines(), start=1):
            if not text.strip():
                continue
            try:
                entry = json.loads(text)
                if not isinstance(entry, dict) or not {"instrument", "command", "reply"} <= entry.keys():
                    raise ValueError("missing instrument/command/reply")
            except ValueError as exc:
                raise InstrumentConfigError(
                    f"replay cassette {self.path} line {lineno} is not an exchange: {exc}"
                ) from None
            self.entries.append((lineno, entry))
        self.pos = 0
        self._lock = threading.Lock()

    def take(self, instrument: str, command: str) -> dict:
        """The next entry, which must be `command` on `instrument`; raise ReplayMismatchError otherwise."""
        with self._lock:
            if self.pos >= len(self.entries):
                last = self.entries[-1][0] if self.entries else 0
                raise ReplayMismatchError(
                    f"replay cassette {self.path} ended at line {last}, but {instrument} issued {command!r}; "
                    "the replayed session asks for more than was recorded"
                )
            lineno, entry = self.entries[self.pos]
            if entry["instrument"] != instrument or entry["command"] != command:
                raise ReplayMismatchError(
                    f"replay cassette {self.path} line {lineno}: expected {entry['instrument']} "
                    f"{entry['command']!r}, but {instrument} issued {command!r}; the session diverged from the "
                    "recording (different duration, build or measurement order?)"
                )
            self.pos += 1
            return entry


class CassetteTransport:
    """A Transport for one instrument that answers from a shared Cassette."""

    def __init__(self, cassette: Cassette, instrument: str) -> None:
        self.cassette = cassette
        self.instrument = instrument
        self.description = f"replay of {instrument} from {cassette.path.name}"

    def open(self, timeout_s: float) -> None:
        """Nothing to connect."""

    def close(self) -> None:
        """Nothing to release."""

    def _replay(self, text: str) -> str | None:
        entry = self.cassette.take(self.instrument, text)
        fault = entry.get("fault")
        if fault:
            name, _, message = str(fault).partition(": ")
            cls = _TRANSPORT_FAULTS.get(name)
            if cls is not None:
                raise cls(message)
        return entry.get("reply")

    def write(self, text: str, timeout_s: float) -> None:
        """Consume the recorded write."""
        self._replay(text)

    def query(self, text: str, timeout_s: float) -> str:
        """Return the recorded reply."""
        reply = self._replay(text)
        return "" if reply is None else str(reply)


class ReplayDevice(BenchDevice):
    """A bench device answering from a cassette: no instrument, no waiting, identical counts."""

    kind = "replay"

    def __init__(
        self,
        profile: Profile,
        build: str,
        *,
        cassette: str | Path | None = None,
        recorder: SessionRecorder | None = None,
        on_record: RecordCallback | None = None,
    ) -> None:
        require_profile(profile, type(self).__name__)
        if cassette is None:
            if profile.replay is None:
                raise InstrumentConfigError(
                    f"profile {profile.name!r} has no 'replay' block; add replay: {{cassette: PATH}}"
                )
            cassette = profile.replay.cassette
        self.cassette = Cassette(cassette)
        super().__init__(
            profile,
            build,
            recorder=recorder,
            on_record=on_record,
            transports={role: CassetteTransport(self.cassette, role) for role in (*ROLES, "decoder")},
        )

    @staticmethod
    def _sleep(seconds: float) -> None:
        return None

    @staticmethod
    def _run_flash_shell(line: str, build: str, timeout_s: float) -> None:
        return None
