"""The results store: one SQLite file (WAL mode) holding runs, raw records, metrics and baselines.

Several processes (pytest-xdist workers) may write the same file at once: every write is a short
`BEGIN IMMEDIATE` transaction, so a writer waits on the busy timeout instead of failing with
"database is locked" when it would otherwise have to upgrade a read snapshot.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _dist_version
from pathlib import Path
from types import FrameType
from typing import Any

from harness.metrics import Direction, Estimate

SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 30_000
RUN_STATUSES = ("running", "passed", "failed", "error", "aborted")
COMPLETED_STATUSES = ("passed", "failed")
_GIT_TIMEOUT_S = 2.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    profile TEXT NOT NULL,
    profile_hash TEXT NOT NULL,
    build TEXT NOT NULL,
    baseline_build TEXT,
    seed INTEGER NOT NULL,
    budget TEXT NOT NULL,
    harness_version TEXT,
    qiskit_version TEXT,
    qiskit_aer_version TEXT,
    stim_version TEXT,
    numpy_version TEXT,
    git_sha TEXT,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    status TEXT NOT NULL CHECK (status IN ('running', 'passed', 'failed', 'error', 'aborted')),
    provenance TEXT NOT NULL DEFAULT '{}',
    session_id TEXT
);
CREATE INDEX IF NOT EXISTS runs_profile_build ON runs (profile, build, started_at);
CREATE INDEX IF NOT EXISTS runs_status ON runs (status);
CREATE TABLE IF NOT EXISTS raw_records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER NOT NULL REFERENCES runs (id),
    protocol TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at TEXT NOT NULL,
    test TEXT
);
CREATE INDEX IF NOT EXISTS raw_records_run ON raw_records (run_id);
CREATE TABLE IF NOT EXISTS metrics (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER NOT NULL REFERENCES runs (id),
    name TEXT NOT NULL,
    value REAL,
    ci_low REAL,
    ci_high REAL,
    confidence REAL NOT NULL,
    n INTEGER NOT NULL,
    unit TEXT NOT NULL,
    direction TEXT NOT NULL,
    verdict TEXT,
    detail TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS metrics_run_name ON metrics (run_id, name);
CREATE TABLE IF NOT EXISTS baselines (
    profile TEXT PRIMARY KEY,
    build TEXT NOT NULL,
    set_at TEXT NOT NULL
);
"""


class StoreError(RuntimeError):
    """The results store cannot be opened or used as asked."""


@dataclass(frozen=True)
class RunRow:
    """One row of the `runs` table, with the tool versions gathered into `versions`."""

    id: int
    profile: str
    profile_hash: str
    build: str
    baseline_build: str | None
    seed: int
    budget: str
    started_at: str
    ended_at: str | None
    status: str
    host: str
    git_sha: str | None
    versions: dict[str, str | None] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    session_id: str | None = None
    pid: int = 0


def utc_now() -> str:
    """Return the current time as an ISO-8601 UTC string with microseconds."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _json_default(obj: Any) -> Any:
    """Convert numpy arrays and scalars (and other array-likes) to JSON-ready Python values."""
    tolist = getattr(obj, "tolist", None)
    if callable(tolist):
        return tolist()
    item = getattr(obj, "item", None)
    if callable(item):
        return item()
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot store a {type(obj).__name__} in JSON")


def _dumps(obj: Any) -> str:
    """Return `obj` as compact JSON text; numpy values are converted."""
    return json.dumps(obj, default=_json_default, separators=(",", ":"))


def _loads(text: str | None) -> Any:
    """Return the decoded JSON value, or None for SQL NULL."""
    return None if text is None else json.loads(text)


def _real(x: float | None) -> float:
    """Return a stored REAL, mapping SQL NULL (how SQLite keeps NaN) back to NaN."""
    return math.nan if x is None else float(x)


def _dist(name: str) -> str | None:
    """Return the installed version of distribution `name`, or None when absent."""
    try:
        return _dist_version(name)
    except PackageNotFoundError:
        return None


_VERSIONS: dict[str, str | None] | None = None
_GIT_SHA: dict[str, str | None] = {}


def tool_versions() -> dict[str, str | None]:
    """Return the versions of qharness and the numerical libraries, as stored with each run."""
    global _VERSIONS
    if _VERSIONS is None:
        from harness import __version__

        _VERSIONS = {
            "harness_version": __version__,
            "qiskit_version": _dist("qiskit"),
            "qiskit_aer_version": _dist("qiskit-aer"),
            "stim_version": _dist("stim"),
            "numpy_version": _dist("numpy"),
        }
    return dict(_VERSIONS)


def git_sha(cwd: str | Path | None = None) -> str | None:
    """Return `git rev-parse HEAD` of `cwd` (default: the working directory), or None outside a checkout."""
    where = str(Path(cwd) if cwd is not None else Path.cwd())
    if where not in _GIT_SHA:
        try:
            out = subprocess.run(
                ["git", "rev-parse", "HEAD"],
                cwd=where,
                capture_output=True,
                text=True,
                timeout=_GIT_TIMEOUT_S,
                check=False,
            )
            sha = out.stdout.strip() if out.returncode == 0 else ""
        except (OSError, subprocess.SubprocessError):
            sha = ""
        _GIT_SHA[where] = sha or None
    return _GIT_SHA[where]


def pid_alive(pid: int) -> bool:
    """Return True when process `pid` exists on this host and is not a zombie."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    # A killed child that its parent has not reaped yet still answers kill(0); /proc tells the truth.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    state = stat.rsplit(")", 1)[-1].split()[:1]
    return state != ["Z"] and state != ["X"]


class Store:
    """A results store on one SQLite file; each process opens its own connection."""

    def __init__(self, path: str | Path) -> None:
        """Open (creating as needed) the store at `path` and mark runs of dead processes aborted."""
        self.path = Path(path).expanduser()
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._pid = os.getpid()
        self._open_runs: set[int] = set()
        self._closed = False
        self._previous_handlers: dict[int, Any] = {}
        if self.path.is_dir():
            raise StoreError(f"results store {self.path} is a directory: pass the path of a .sqlite file")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"results store {self.path}: cannot create directory {self.path.parent} ({exc}); "
                "choose a writable location"
            ) from exc
        self._connect()
        self.abort_stale_runs()

    # -- connection -----------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        """Return a fresh, configured connection with the schema in place."""
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
            self._enable_wal(conn)
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            self._conn = conn
            self._pid = os.getpid()
            self._migrate(conn)
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
        return conn

    @staticmethod
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

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """Check the schema version and create the tables of version SCHEMA_VERSION when missing."""
        with self._write(conn):
            has_meta = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone()
            if has_meta:
                row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
                found = int(row[0]) if row else None
                if found is not None and found > SCHEMA_VERSION:
                    raise StoreError(
                        f"results store {self.path} has schema version {found}, this qharness understands up to "
                        f"{SCHEMA_VERSION}: upgrade qharness"
                    )
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )

    @property
    def conn(self) -> sqlite3.Connection:
        """Return this process's connection, reconnecting after a fork (connections never cross processes)."""
        if self._closed:
            raise StoreError(f"results store {self.path} is closed")
        if self._conn is None or self._pid != os.getpid():
            # The parent's connection and lock are abandoned, not closed: closing would touch its locks.
            self._lock = threading.RLock()
            self._open_runs = set()
            self._conn = None
            self._connect()
        assert self._conn is not None
        return self._conn

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

    @contextlib.contextmanager
    def _write(self, conn: sqlite3.Connection | None = None) -> Iterator[sqlite3.Connection]:
        """Run the block in one IMMEDIATE transaction, committed on success and rolled back on error."""
        with self._lock:
            c = conn if conn is not None else self.conn
            self._begin_immediate(c)
            try:
                yield c
            except BaseException:
                if c.in_transaction:
                    c.rollback()
                raise
            else:
                c.commit()

    def _query(self, sql: str, params: tuple | list = ()) -> list[sqlite3.Row]:
        """Return all rows of a read query, as sqlite3.Row."""
        with self._lock:
            c = self.conn
            cur = c.cursor()
            cur.row_factory = sqlite3.Row
            return cur.execute(sql, params).fetchall()

    def close(self) -> None:
        """Close the connection (the file stays); idempotent."""
        with self._lock:
            self.uninstall_abort_handler()
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None
            self._closed = True

    def __enter__(self) -> Store:
        """Return the open store."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the store."""
        self.close()

    # -- runs -----------------------------------------------------------------------------------------

    def start_run(
        self,
        *,
        profile: str,
        profile_hash: str,
        build: str,
        baseline_build: str | None,
        seed: int,
        budget: str,
        session_id: str | None = None,
        provenance: dict | None = None,
    ) -> int:
        """Insert a 'running' run with versions, git sha, host and pid; return its id."""
        v = tool_versions()
        with self._write() as c:
            cur = c.execute(
                """INSERT INTO runs (profile, profile_hash, build, baseline_build, seed, budget, harness_version,
                       qiskit_version, qiskit_aer_version, stim_version, numpy_version, git_sha, host, pid,
                       started_at, status, provenance, session_id)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?)""",
                (
                    profile,
                    profile_hash,
                    build,
                    baseline_build,
                    int(seed),
                    budget,
                    v["harness_version"],
                    v["qiskit_version"],
                    v["qiskit_aer_version"],
                    v["stim_version"],
                    v["numpy_version"],
                    git_sha(),
                    socket.gethostname(),
                    os.getpid(),
                    utc_now(),
                    _dumps(provenance or {}),
                    session_id,
                ),
            )
            run_id = int(cur.lastrowid)
        self._open_runs.add(run_id)
        return run_id

    def update_provenance(self, run_id: int, **items: Any) -> None:
        """Merge `items` into the run's provenance JSON (later keys replace earlier ones)."""
        with self._write() as c:
            row = c.execute("SELECT provenance FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise StoreError(f"results store {self.path} has no run {run_id}")
            merged = _loads(row[0]) or {}
            merged.update(items)
            c.execute("UPDATE runs SET provenance = ? WHERE id = ?", (_dumps(merged), run_id))

    def finish_run(self, run_id: int, status: str) -> None:
        """Set the run's final status and ended_at."""
        if status not in RUN_STATUSES or status == "running":
            raise StoreError(f"run status {status!r} is not a final status; use one of passed, failed, error, aborted")
        with self._write() as c:
            cur = c.execute("UPDATE runs SET status = ?, ended_at = ? WHERE id = ?", (status, utc_now(), run_id))
            if cur.rowcount == 0:
                raise StoreError(f"results store {self.path} has no run {run_id}")
        self._open_runs.discard(run_id)

    def _abort(self, run_ids: list[int]) -> int:
        """Mark the listed runs that are still running 'aborted'; return how many changed."""
        if not run_ids:
            return 0
        marks = ",".join("?" * len(run_ids))
        with self._write() as c:
            cur = c.execute(
                f"UPDATE runs SET status = 'aborted', ended_at = ? WHERE status = 'running' AND id IN ({marks})",
                (utc_now(), *run_ids),
            )
            return cur.rowcount

    def abort_stale_runs(self) -> int:
        """Mark 'aborted' the running runs of this host whose process is gone; return how many."""
        host = socket.gethostname()
        rows = self._query("SELECT id, pid FROM runs WHERE status = 'running' AND host = ?", (host,))
        stale = [int(r["id"]) for r in rows if not pid_alive(int(r["pid"]))]
        return self._abort(stale)

    def open_runs(self) -> list[int]:
        """Return the ids of runs this process started and has not finished."""
        return sorted(self._open_runs)

    # -- signals --------------------------------------------------------------------------------------

    def install_abort_handler(
        self,
        run_ids: Callable[[], list[int]] | None = None,
        signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT),
    ) -> bool:
        """Mark the given runs aborted on SIGTERM/SIGINT, then chain to the previous handler; return False off-main."""
        if threading.current_thread() is not threading.main_thread():
            return False
        ids = run_ids if run_ids is not None else self.open_runs
        for signum in signals:
            previous = signal.getsignal(signum)
            self._previous_handlers.setdefault(signum, previous)

            def handler(num: int, frame: FrameType | None, _prev: Any = previous) -> None:
                self._on_signal(num, frame, ids, _prev)

            signal.signal(signum, handler)
        return True

    def uninstall_abort_handler(self) -> None:
        """Restore the signal handlers that were in place before install_abort_handler."""
        if threading.current_thread() is not threading.main_thread() or self._pid != os.getpid():
            return
        for signum, previous in self._previous_handlers.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(signum, previous)
        self._previous_handlers.clear()

    def _on_signal(self, signum: int, frame: FrameType | None, ids: Callable[[], list[int]], previous: Any) -> None:
        """Abort the listed runs, then behave as the previous handler would."""
        with contextlib.suppress(Exception), self._lock:
            c = self.conn
            # The signal may land between statements of one of our own transactions: keep what was written.
            if c.in_transaction:
                c.commit()
            self._abort(list(ids()))
        if callable(previous):
            previous(signum, frame)
        elif previous == signal.SIG_IGN:
            return
        elif signum == signal.SIGINT:
            raise KeyboardInterrupt
        else:
            # Default action: die by the same signal so the parent sees the true cause.
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    # -- records and metrics --------------------------------------------------------------------------

    def add_raw(self, run_id: int, protocol: str, payload: dict, test: str | None = None) -> int:
        """Insert and commit one raw record (before any analysis); return its id."""
        text = _dumps(payload)
        try:
            with self._write() as c:
                cur = c.execute(
                    "INSERT INTO raw_records (run_id, protocol, payload, created_at, test) VALUES (?, ?, ?, ?, ?)",
                    (run_id, protocol, text, utc_now(), test),
                )
                return int(cur.lastrowid)
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"results store {self.path} has no run {run_id} for a {protocol} raw record") from exc

    def add_metric(
        self,
        run_id: int,
        name: str,
        estimate: Estimate,
        verdict: str | None = None,
        detail: dict | None = None,
    ) -> int:
        """Insert one metric estimate of a run; return the metric row id."""
        try:
            with self._write() as c:
                cur = c.execute(
                    """INSERT INTO metrics (run_id, name, value, ci_low, ci_high, confidence, n, unit, direction,
                           verdict, detail, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    (
                        run_id,
                        name,
                        float(estimate.value),
                        float(estimate.ci_low),
                        float(estimate.ci_high),
                        float(estimate.confidence),
                        int(estimate.n),
                        estimate.unit,
                        str(estimate.direction),
                        None if verdict is None else str(verdict),
                        None if detail is None else _dumps(detail),
                        utc_now(),
                    ),
                )
                return int(cur.lastrowid)
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"results store {self.path} has no run {run_id} for metric {name}") from exc

    def set_verdict(self, metric_id: int, verdict: str, detail: dict | None = None) -> None:
        """Set a metric row's verdict, and its detail JSON when given."""
        with self._write() as c:
            if detail is None:
                cur = c.execute("UPDATE metrics SET verdict = ? WHERE id = ?", (str(verdict), metric_id))
            else:
                cur = c.execute(
                    "UPDATE metrics SET verdict = ?, detail = ? WHERE id = ?", (str(verdict), _dumps(detail), metric_id)
                )
            if cur.rowcount == 0:
                raise StoreError(f"results store {self.path} has no metric row {metric_id}")

    # -- queries --------------------------------------------------------------------------------------

    @staticmethod
    def _run_row(r: sqlite3.Row) -> RunRow:
        """Return the RunRow of a `runs` row."""
        return RunRow(
            id=int(r["id"]),
            profile=r["profile"],
            profile_hash=r["profile_hash"],
            build=r["build"],
            baseline_build=r["baseline_build"],
            seed=int(r["seed"]),
            budget=r["budget"],
            started_at=r["started_at"],
            ended_at=r["ended_at"],
            status=r["status"],
            host=r["host"],
            git_sha=r["git_sha"],
            versions={
                k: r[k]
                for k in ("harness_version", "qiskit_version", "qiskit_aer_version", "stim_version", "numpy_version")
            },
            provenance=_loads(r["provenance"]) or {},
            session_id=r["session_id"],
            pid=int(r["pid"]),
        )

    @staticmethod
    def _estimate(r: sqlite3.Row) -> Estimate:
        """Return the Estimate of a `metrics` row."""
        return Estimate(
            value=_real(r["value"]),
            ci_low=_real(r["ci_low"]),
            ci_high=_real(r["ci_high"]),
            n=int(r["n"]),
            unit=r["unit"],
            direction=Direction(r["direction"]),
            confidence=float(r["confidence"]),
        )

    def run(self, run_id: int) -> RunRow:
        """Return one run; raise StoreError when the id is unknown."""
        rows = self._query("SELECT * FROM runs WHERE id = ?", (run_id,))
        if not rows:
            raise StoreError(f"results store {self.path} has no run {run_id}; list runs with `qharness history`")
        return self._run_row(rows[0])

    def runs(self, profile: str | None = None, build: str | None = None) -> list[RunRow]:
        """Return the runs (optionally of one profile and/or build), oldest first."""
        where, params = [], []
        if profile is not None:
            where.append("profile = ?")
            params.append(profile)
        if build is not None:
            where.append("build = ?")
            params.append(build)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = self._query(f"SELECT * FROM runs {clause} ORDER BY started_at, id", params)
        return [self._run_row(r) for r in rows]

    def raw_records(self, run_id: int) -> list[dict]:
        """Return the run's raw records in insertion order: id, run_id, protocol, payload, created_at, test."""
        rows = self._query("SELECT * FROM raw_records WHERE run_id = ? ORDER BY id", (run_id,))
        return [
            {
                "id": int(r["id"]),
                "run_id": int(r["run_id"]),
                "protocol": r["protocol"],
                "payload": _loads(r["payload"]),
                "created_at": r["created_at"],
                "test": r["test"],
            }
            for r in rows
        ]

    def metrics(self, run_id: int) -> dict[str, tuple[Estimate, str | None, dict | None]]:
        """Return the run's newest row per metric name as (estimate, verdict, detail)."""
        rows = self._query("SELECT * FROM metrics WHERE run_id = ? ORDER BY id", (run_id,))
        out: dict[str, tuple[Estimate, str | None, dict | None]] = {}
        for r in rows:
            out[r["name"]] = (self._estimate(r), r["verdict"], _loads(r["detail"]))
        return out

    def metric_ids(self, run_id: int) -> dict[str, int]:
        """Return the row id of the run's newest row per metric name (for set_verdict)."""
        rows = self._query("SELECT name, MAX(id) AS id FROM metrics WHERE run_id = ? GROUP BY name", (run_id,))
        return {r["name"]: int(r["id"]) for r in rows}

    def latest_metrics(self, profile: str, build: str) -> dict[str, Estimate]:
        """Return, per metric name, the newest estimate from the latest completed (passed/failed) run having it."""
        rows = self._query(
            """SELECT m.* FROM metrics m JOIN runs r ON r.id = m.run_id
               WHERE r.profile = ? AND r.build = ? AND r.status IN ('passed', 'failed')
               ORDER BY r.started_at, r.id, m.id""",
            (profile, build),
        )
        out: dict[str, Estimate] = {}
        for r in rows:
            out[r["name"]] = self._estimate(r)
        return out

    def has_build(self, profile: str, build: str) -> bool:
        """Return True when the store holds a completed (passed/failed) run of this profile and build."""
        rows = self._query(
            "SELECT 1 FROM runs WHERE profile = ? AND build = ? AND status IN ('passed', 'failed') LIMIT 1",
            (profile, build),
        )
        return bool(rows)

    def set_baseline(self, profile: str, build: str) -> None:
        """Make `build` the baseline of `profile` (replacing any earlier one)."""
        with self._write() as c:
            c.execute(
                "INSERT INTO baselines (profile, build, set_at) VALUES (?, ?, ?) "
                "ON CONFLICT (profile) DO UPDATE SET build = excluded.build, set_at = excluded.set_at",
                (profile, build, utc_now()),
            )

    def baseline(self, profile: str) -> str | None:
        """Return the baseline build of `profile`, or None when none is set."""
        rows = self._query("SELECT build FROM baselines WHERE profile = ?", (profile,))
        return rows[0]["build"] if rows else None

    def baselines(self) -> dict[str, str]:
        """Return every profile's baseline build."""
        return {r["profile"]: r["build"] for r in self._query("SELECT profile, build FROM baselines ORDER BY profile")}

    def history(self, profile: str, metric: str | None = None) -> list[dict]:
        """Return the profile's metric rows (optionally one metric) with their build and run, oldest first."""
        sql = """SELECT r.build, r.id AS run_id, r.started_at, r.status, m.name, m.value, m.ci_low, m.ci_high, m.n,
                        m.unit, m.direction, m.verdict, m.confidence
                 FROM metrics m JOIN runs r ON r.id = m.run_id WHERE r.profile = ?"""
        params: list[Any] = [profile]
        if metric is not None:
            sql += " AND m.name = ?"
            params.append(metric)
        sql += " ORDER BY r.started_at, r.id, m.id"
        out = []
        for r in self._query(sql, params):
            d = dict(r)
            for k in ("value", "ci_low", "ci_high"):
                d[k] = _real(d[k])
            out.append(d)
        return out

    def profiles(self) -> list[str]:
        """Return the profiles that have runs or a baseline, sorted."""
        rows = self._query("SELECT profile FROM runs UNION SELECT profile FROM baselines ORDER BY profile")
        return [r["profile"] for r in rows]
