"""Resume files: the sinter CSV of one memory experiment, kept beside the results store.

One file per memory, `<resume_dir>/<strong id>.csv`: sinter's CSV_HEADER and one row per worker flush, each
written with sinter's own `TaskStats.to_csv_line` and flushed at once (readable by `sinter plot` and
`sinter combine`). sinter's strong id hashes the circuit (so the noise), the decoder and the metadata (code,
distance, basis, rounds, seed, budget and block size; the seed derives from profile, build and session seed),
so a file holds the rows of exactly one memory at one budget. A row cut short by a hard kill is dropped when
the file is opened again.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TextIO

import sinter

from harness.qec.noise import QecError


class ResumeFile:
    """The rows of one memory: read what earlier runs sampled, append what this run samples."""

    def __init__(self, directory: Path, strong_id: str):
        self.path = Path(directory) / f"{strong_id}.csv"
        self.strong_id = strong_id
        self._out: TextIO | None = None

    def load(self) -> sinter.TaskStats | None:
        """Return the sum of the file's rows (None without a file or rows); drop a row cut short."""
        try:
            if not self.path.exists():
                return None
            raw = self.path.read_bytes()
            if raw and not raw.endswith(b"\n"):
                raw = raw[: raw.rfind(b"\n") + 1]
                with self.path.open("r+b") as f:
                    f.truncate(len(raw))
        except OSError as exc:
            raise self._inaccessible(exc) from None
        if not raw.strip():  # killed before the header was written
            return None
        try:
            rows = sinter.read_stats_from_csv_files(io.StringIO(raw.decode()))
        except (ValueError, KeyError, TypeError, AssertionError, UnicodeDecodeError) as exc:
            raise self._unreadable(f"{type(exc).__name__}: {exc}") from None
        if any(row.strong_id != self.strong_id for row in rows):
            raise self._unreadable("it holds rows of another task")
        return rows[0] if rows else None

    def _unreadable(self, why: str) -> QecError:
        return QecError(
            f"resume file {self.path} is not a sinter CSV of this memory ({why}); delete it to sample the memory again"
        )

    def _inaccessible(self, exc: OSError) -> QecError:
        return QecError(
            f"resume file {self.path} cannot be read or written ({exc.strerror or exc}); make its directory "
            "writable or measure without a resume directory"
        )

    def append(self, stats: sinter.TaskStats) -> None:
        """Append one row and flush it, so a kill right after loses nothing written."""
        try:
            if self._out is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fresh = not self.path.exists() or self.path.stat().st_size == 0
                self._out = self.path.open("a", encoding="utf-8")
                if fresh:
                    print(sinter.CSV_HEADER, file=self._out, flush=True)
            print(stats.to_csv_line(), file=self._out, flush=True)
        except OSError as exc:
            raise self._inaccessible(exc) from None

    def close(self) -> None:
        """Close the file if this run wrote to it."""
        if self._out is not None:
            self._out.close()
            self._out = None
