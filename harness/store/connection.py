"""One process's SQLite connection to the store file: WAL, fair write transactions, and a reconnect after fork.

Several processes (pytest-xdist workers) may write the same file at once: every write is a short
`BEGIN IMMEDIATE` transaction, so a writer waits for the lock instead of failing with "database is locked"
when it would otherwise have to upgrade a read snapshot.
"""

from __future__ import annotations

import contextlib
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from harness.store.errors import StoreError

BUSY_TIMEOUT_MS = 30_000


class Connection:
    """The store file's connection for this process; `on_connect` runs after each (re)connect, e.g. to migrate."""

    def __init__(self, path: Path, on_connect: Callable[[Connection], None]) -> None:
        """Open (creating the file and its directory as needed) the SQLite database at `path`."""
        self.path = path
        # Reentrant: the abort-on-signal handler may run while this same thread holds the lock mid-transaction.
        self.lock = threading.RLock()
        self._on_connect = on_connect
        self._conn: sqlite3.Connection | None = None
        self._pid = os.getpid()
        self._closed = False
        _prepare_directory(path)
        self._connect()

    def _connect(self) -> None:
        """Open a fresh, configured connection and run `on_connect` on it."""
        try:
            conn = sqlite3.connect(
                str(self.path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise StoreError(
                f"results store {self.path} cannot be opened ({exc}); check the path and permissions"
            ) from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            _enable_wal(conn)
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            self._conn = conn
            self._pid = os.getpid()
            self._on_connect(self)
        except sqlite3.DatabaseError as exc:
            conn.close()
            self._conn = None
            raise StoreError(
                f"results store {self.path} is not a usable SQLite database ({exc}); "
                "point --results-db at a qharness results file or a new path"
            ) from exc
        except StoreError:
            conn.close()
            self._conn = None
            raise

    @property
    def sqlite(self) -> sqlite3.Connection:
        """Return this process's sqlite3 connection, reconnecting after a fork (connections never cross processes)."""
        if self._closed:
            raise StoreError(f"results store {self.path} is closed")
        if self._conn is None or self.inherited:
            # The parent's connection and lock are abandoned, not closed: closing would touch its locks.
            self.lock = threading.RLock()
            self._conn = None
            self._connect()
        assert self._conn is not None
        return self._conn

    @property
    def inherited(self) -> bool:
        """True in a forked child that still holds its parent's connection (it reconnects on next use)."""
        return self._pid != os.getpid()

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """Run the block in one IMMEDIATE transaction, committed on success and rolled back on error."""
        with self.lock:
            c = self.sqlite
            self._begin_immediate(c)
            try:
                yield c
            except BaseException:
                if c.in_transaction:
                    c.rollback()
                raise
            else:
                c.commit()

    def _begin_immediate(self, c: sqlite3.Connection) -> None:
        """Take the write lock, polling with short jittered sleeps for up to the busy timeout."""
        # SQLite's own busy handler backs off to 100 ms sleeps, so a writer that commits often starves the
        # other process; short random polls interleave two busy writers fairly.
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        c.execute("PRAGMA busy_timeout = 0")
        try:
            while True:
                try:
                    c.execute("BEGIN IMMEDIATE")
                    return
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) and "busy" not in str(exc):
                        raise
                    if time.monotonic() >= deadline:
                        raise StoreError(
                            f"results store {self.path} stayed locked by another writer for "
                            f"{BUSY_TIMEOUT_MS / 1000:.0f} s; check for a hung qharness process"
                        ) from exc
                    time.sleep(random.uniform(0.0002, 0.002))
        finally:
            c.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")

    def query(self, sql: str, params: tuple | list = ()) -> list[sqlite3.Row]:
        """Return all rows of a read query, as sqlite3.Row."""
        with self.lock:
            cur = self.sqlite.cursor()
            cur.row_factory = sqlite3.Row
            return cur.execute(sql, params).fetchall()

    def commit_interrupted(self) -> None:
        """Commit the transaction a signal interrupted between two of its statements, keeping what it wrote."""
        c = self.sqlite
        if c.in_transaction:
            c.commit()

    def close(self) -> None:
        """Close the connection (the file stays); idempotent, and a forked child leaves its parent's alone."""
        if self._conn is not None and not self.inherited:
            self._conn.close()
        self._conn = None
        self._closed = True


def _prepare_directory(path: Path) -> None:
    """Create the directory of the store file; raise StoreError when `path` is a directory or cannot be made."""
    if path.is_dir():
        raise StoreError(f"results store {path} is a directory: pass the path of a .sqlite file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"results store {path}: cannot create directory {path.parent} ({exc}); choose a writable location"
        ) from exc


def _enable_wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL; SQLite answers 'locked' at once (no busy wait) while another process creates the file."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(random.uniform(0.005, 0.05))
