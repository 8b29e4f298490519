"""One process's connection to the store's database, through a SQLAlchemy engine: SQLite file or PostgreSQL.

SQLite: several processes (pytest-xdist workers) may write one file at once, so the file is in WAL mode and
every write is a short `BEGIN IMMEDIATE` transaction: a writer waits for the lock up front instead of failing
with "database is locked" when it would have to upgrade a read snapshot. pysqlite's own transaction control is
switched off and the BEGIN is ours (SQLAlchemy's documented `connect` + `begin` event recipe), so that the wait
for the lock can poll fairly (SQLite's busy handler backs off to 100 ms sleeps and starves the other writer).

PostgreSQL (psycopg 3): ordinary READ COMMITTED transactions; the server arbitrates concurrent writers.

Connections never cross a fork: a child abandons (never closes, never resets) what it inherited and connects
anew on first use, following SQLAlchemy's `Engine.dispose(close=False)` recipe.
"""

from __future__ import annotations

import contextlib
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite

from harness.store.errors import StoreError
from harness.store.url import StoreURL

BUSY_TIMEOUT_MS = 30_000
_CONNECT_TIMEOUT_S = 10
_WRITE = "qharness_write"  # Connection.info flag: the next BEGIN takes the write lock at once
# Objects a forked child inherited: kept referenced so that garbage collection never resets or closes them.
_ABANDONED: list[Any] = []


class Database:
    """The store database for this process; `on_connect` runs after each (re)connect, e.g. to check the schema."""

    def __init__(self, url: StoreURL, on_connect: Callable[[Database], None]) -> None:
        """Connect to the database at `url` (creating a SQLite file and its directory as needed)."""
        self.url = url
        # Reentrant: the abort-on-signal handler may run while this same thread holds the lock mid-transaction.
        self.lock = threading.RLock()
        self._on_connect = on_connect
        self._conn: sa.Connection | None = None
        self._pid = os.getpid()
        self._closed = False
        if url.path is not None:
            _prepare_directory(url.path)
        self.engine = make_engine(url)
        self._connect()

    def _connect(self) -> None:
        """Open a fresh connection and run `on_connect` with it; a failure is one StoreError line."""
        try:
            self._conn = self.engine.connect()
            self._pid = os.getpid()
            self._on_connect(self)
        except StoreError:
            self._drop()
            raise
        except (sa.exc.DBAPIError, sqlite3.Error) as exc:
            self._drop()
            raise StoreError(self.unusable(exc)) from None

    def unusable(self, exc: BaseException) -> str:
        """Return the one line saying why the database cannot be used (never with a password in it)."""
        return unusable(self.url, exc)

    def _drop(self) -> None:
        """Close a half-opened connection."""
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
        self._conn = None

    @property
    def connection(self) -> sa.Connection:
        """Return this process's connection, reconnecting after a fork (connections never cross processes)."""
        if self._closed:
            raise StoreError(f"results store {self.url} is closed")
        if self.inherited:
            _ABANDONED.append(self._conn)
            self.engine.dispose(close=False)
            self.lock = threading.RLock()
            self._conn = None
        if self._conn is None:
            self._connect()
        assert self._conn is not None
        return self._conn

    @property
    def inherited(self) -> bool:
        """True in a forked child that still holds its parent's connection (it reconnects on next use)."""
        return self._pid != os.getpid()

    @property
    def dbapi(self) -> Any:
        """Return this process's driver connection (sqlite3.Connection or psycopg.Connection)."""
        return self.connection.connection.driver_connection

    @contextlib.contextmanager
    def translated(self) -> Iterator[None]:
        """Turn a database failure into one StoreError line; a constraint violation is left for the caller to name."""
        try:
            yield
        except sa.exc.IntegrityError:
            raise
        except sa.exc.DBAPIError as exc:
            raise StoreError(self.unusable(exc)) from None

    @contextlib.contextmanager
    def write(self) -> Iterator[sa.Connection]:
        """Run the block in one write transaction, committed on success and rolled back on error."""
        with self.lock, self.translated():
            c = self.connection
            c.info[_WRITE] = True
            try:
                c.begin()
                try:
                    yield c
                except BaseException:
                    if c.in_transaction():
                        c.rollback()
                    raise
                c.commit()
            finally:
                c.info.pop(_WRITE, None)

    @contextlib.contextmanager
    def reading(self) -> Iterator[sa.Connection]:
        """Run the block in a read transaction (one consistent snapshot), ended when the block ends."""
        with self.lock, self.translated():
            c = self.connection
            try:
                yield c
            finally:
                if c.in_transaction():
                    c.rollback()

    @contextlib.contextmanager
    def side_write(self) -> Iterator[sa.Connection]:
        """Run the block in a write transaction on a second pooled connection (safe from any thread)."""
        _ = self.connection  # in a forked child, drop the parent's pool first
        with self.translated(), self.engine.connect() as c:
            c.info[_WRITE] = True
            try:
                with c.begin():
                    yield c
            finally:
                c.info.pop(_WRITE, None)

    def query(self, stmt: sa.Executable) -> list[dict[str, Any]]:
        """Return all rows of a read query, as dicts by column name."""
        with self.reading() as c:
            result = c.execute(stmt)
            keys = list(result.keys())
            # Plain dicts from the row tuples: several times faster than RowMapping for the 10^5 rows of a history.
            return [dict(zip(keys, row, strict=True)) for row in result.all()]

    def commit_interrupted(self) -> None:
        """Commit the transaction a signal interrupted between two of its statements, keeping what it wrote."""
        c = self.connection
        if c.in_transaction():
            c.commit()

    def close(self) -> None:
        """Close the connection (the database stays); idempotent, and a forked child leaves its parent's alone."""
        if self._conn is not None and not self.inherited:
            self._conn.close()
            self.engine.dispose()
        self._conn = None
        self._closed = True


def unusable(url: StoreURL, exc: BaseException) -> str:
    """Return the one line saying why the database at `url` cannot be used (never with a password in it)."""
    # PostgreSQL appends the statement ("LINE 2: CREATE TABLE ...") to its message: the reason is what comes before.
    reason = url.scrub(str(getattr(exc, "orig", None) or exc).split("\nLINE ")[0])
    if url.is_sqlite:
        return (
            f"results store {url} is not a usable SQLite database ({reason}); "
            "point --results-db at a qharness results file or a new path"
        )
    return (
        f"results store {url} cannot be used ({reason}); check the URL, that the server runs, "
        "and the credentials (~/.pgpass or PGPASSWORD)"
    )


def upsert(c: sa.Connection, table: sa.Table, row: Mapping[str, Any], keys: list[str], where: Any = None) -> Any:
    """Return INSERT ... ON CONFLICT (keys) DO UPDATE [WHERE where] of `row`, in the connection's dialect."""
    # Both dialects spell the upsert the same way, but SQLAlchemy keeps it in each dialect's own insert().
    insert = postgresql.insert if c.dialect.name == "postgresql" else sqlite.insert
    stmt = insert(table).values(dict(row))
    return stmt.on_conflict_do_update(
        index_elements=keys, set_={k: stmt.excluded[k] for k in row if k not in keys}, where=where
    )


def make_engine(url: StoreURL) -> sa.Engine:
    """Return the engine of `url`, with SQLite's WAL, pragmas and fair BEGIN IMMEDIATE wired in."""
    if not url.is_sqlite:
        try:
            return sa.create_engine(
                url.url, connect_args={"connect_timeout": _CONNECT_TIMEOUT_S, "application_name": "qharness"}
            )
        except ImportError:
            raise StoreError(
                f"results store {url}: PostgreSQL needs the psycopg driver; pip install 'qharness[postgresql]'"
            ) from None
    engine = sa.create_engine(url.url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False})
    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
    """Configure a new SQLite connection: our own BEGIN, busy timeout, WAL, full sync, foreign keys."""
    dbapi_connection.isolation_level = None  # pysqlite emits no BEGIN of its own
    dbapi_connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    _enable_wal(dbapi_connection)
    dbapi_connection.execute("PRAGMA synchronous = FULL")
    dbapi_connection.execute("PRAGMA foreign_keys = ON")


def _sqlite_begin(conn: sa.Connection) -> None:
    """Emit BEGIN IMMEDIATE for a write transaction (polling fairly for the lock), a plain BEGIN for a read."""
    raw = conn.connection.driver_connection
    if conn.info.get(_WRITE):
        _begin_immediate(raw, conn.engine.url.database)
    else:
        raw.execute("BEGIN")


def _begin_immediate(c: sqlite3.Connection, path: str | None) -> None:
    """Take the write lock, polling with short jittered sleeps for up to the busy timeout."""
    # SQLite's own busy handler backs off to 100 ms sleeps, so a writer that commits often starves the
    # other process; short random polls interleave busy writers fairly.
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
                        f"results store {path} stayed locked by another writer for {BUSY_TIMEOUT_MS / 1000:g} s; "
                        "check for a hung qharness process"
                    ) from exc
                time.sleep(random.uniform(0.0002, 0.002))
    finally:
        c.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")


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
