"""JSONL recording of every instrument exchange, for provenance and replay."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import IO

from harness.errors import DeviceError


class RecordingError(DeviceError):
    """The session recording (--record-session) cannot be written; the run ends as an ERROR."""


class SessionRecorder:
    """Append one JSON line per exchange: instrument, command, reply, t (s since start), fault."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: IO[str] | None = self.path.open("w", encoding="utf-8")
        self._t0 = time.monotonic()
        self._lock = threading.Lock()
        self.count = 0

    def record(self, instrument: str, command: str, reply: str | None, fault: BaseException | None = None) -> None:
        """Write one exchange; `reply` is None for a write or a failed query."""
        entry = {
            "instrument": instrument,
            "command": command,
            "reply": reply,
            "t": round(time.monotonic() - self._t0, 6),
            "fault": None if fault is None else f"{type(fault).__name__}: {fault}",
        }
        with self._lock:
            if self._fh is None:
                raise RecordingError(f"session recorder {self.path} is closed")
            try:
                # Flushed per line so a crash mid-session still leaves every completed exchange on disk.
                self._fh.write(json.dumps(entry) + "\n")
                self._fh.flush()
            except OSError as exc:
                raise RecordingError(f"cannot write the session recording {self.path}: {exc}") from exc
            self.count += 1

    def close(self) -> None:
        """Close the file; safe to call twice."""
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None

    def __enter__(self) -> SessionRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
