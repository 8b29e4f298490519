"""The results store: runs, raw records, metrics and baselines in one SQLite file, and every SQL query on them.

`Store` is the facade: it holds this process's `Connection` (WAL, locking, fork safety), the `SignalGuard` that
marks open runs aborted on SIGTERM/SIGINT, and the queries. The tables themselves are in `schema`.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.metrics import Direction, Estimate
from harness.store.connection import Connection
from harness.store.errors import StoreError
from harness.store.provenance import VERSION_KEYS, dumps, hostname, loads, pid_alive, run_stamp, utc_now
from harness.store.schema import RunStatus, migrate
from harness.store.signals import ABORT_SIGNALS, SignalGuard

# Only runs that measured to the end give a build's metrics (for a baseline or `compare`).
_COMPLETED = tuple(s for s in RunStatus if s.completed)

_INSERT_RUN = """INSERT INTO runs (profile, profile_hash, build, baseline_build, seed, budget, harness_version,
       qiskit_version, qiskit_aer_version, stim_version, numpy_version, git_sha, host, pid, started_at, status,
       provenance, session_id)
   VALUES (:profile, :profile_hash, :build, :baseline_build, :seed, :budget, :harness_version, :qiskit_version,
       :qiskit_aer_version, :stim_version, :numpy_version, :git_sha, :host, :pid, :started_at, :status,
       :provenance, :session_id)"""


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
    status: RunStatus
    host: str
    git_sha: str | None
    versions: dict[str, str | None] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    session_id: str | None = None
    pid: int = 0


class Store:
    """A results store on one SQLite file; each process opens its own connection."""

    def __init__(self, path: str | Path) -> None:
        """Open (creating as needed) the store at `path` and mark runs of dead processes aborted."""
        self.path = Path(path).expanduser()
        self._open_runs: set[int] = set()
        self._guard = SignalGuard()
        self._db = Connection(self.path, on_connect=self._on_connect)
        self.abort_stale_runs()

    def _on_connect(self, db: Connection) -> None:
        """Check and create the schema; a forked child starts with none of its parent's runs open."""
        self._open_runs = set()
        migrate(db)

    @property
    def conn(self) -> sqlite3.Connection:
        """Return this process's sqlite3 connection, reconnecting after a fork (connections never cross processes)."""
        return self._db.sqlite

    def close(self) -> None:
        """Close the connection (the file stays); idempotent."""
        with self._db.lock:
            self.uninstall_abort_handler()
            self._db.close()

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
        row = {
            "profile": profile,
            "profile_hash": profile_hash,
            "build": build,
            "baseline_build": baseline_build,
            "seed": int(seed),
            "budget": budget,
            "status": RunStatus.RUNNING,
            "provenance": dumps(provenance or {}),
            "session_id": session_id,
        }
        with self._db.write() as c:
            run_id = int(c.execute(_INSERT_RUN, {**row, **run_stamp()}).lastrowid)
        self._open_runs.add(run_id)
        return run_id

    def update_provenance(self, run_id: int, **items: Any) -> None:
        """Merge `items` into the run's provenance JSON (later keys replace earlier ones)."""
        with self._db.write() as c:
            row = c.execute("SELECT provenance FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise StoreError(f"results store {self.path} has no run {run_id}")
            merged = loads(row[0]) or {}
            merged.update(items)
            c.execute("UPDATE runs SET provenance = ? WHERE id = ?", (dumps(merged), run_id))

    def finish_run(self, run_id: int, status: str) -> None:
        """Set the run's final status (a RunStatus other than RUNNING, or its value) and ended_at.

        A run already marked aborted (by the signal guard) stays aborted: an interrupt is the truth about it.
        """
        if status not in list(RunStatus) or status == RunStatus.RUNNING:
            raise StoreError(f"run status {status!r} is not a final status; use one of passed, failed, error, aborted")
        with self._db.write() as c:
            found = c.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
            if found is None:
                raise StoreError(f"results store {self.path} has no run {run_id}")
            if found[0] != RunStatus.ABORTED:
                c.execute(
                    "UPDATE runs SET status = ?, ended_at = ? WHERE id = ?", (RunStatus(status), utc_now(), run_id)
                )
        self._open_runs.discard(run_id)

    def _abort(self, run_ids: list[int]) -> int:
        """Mark the listed runs that are still running 'aborted'; return how many changed."""
        if not run_ids:
            return 0
        with self._db.write() as c:
            cur = c.execute(
                f"UPDATE runs SET status = ?, ended_at = ? WHERE status = ? AND id IN ({_marks(run_ids)})",
                (RunStatus.ABORTED, utc_now(), RunStatus.RUNNING, *run_ids),
            )
            return cur.rowcount

    def abort_stale_runs(self) -> int:
        """Mark 'aborted' the running runs of this host whose process is gone; return how many."""
        rows = self._db.query("SELECT id, pid FROM runs WHERE status = ? AND host = ?", (RunStatus.RUNNING, hostname()))
        stale = [int(r["id"]) for r in rows if not pid_alive(int(r["pid"]))]
        return self._abort(stale)

    def open_runs(self) -> list[int]:
        """Return the ids of runs this process started and has not finished."""
        return sorted(self._open_runs)

    # -- signals --------------------------------------------------------------------------------------

    def install_abort_handler(
        self,
        run_ids: Callable[[], list[int]] | None = None,
        signals: tuple[int, ...] = ABORT_SIGNALS,
    ) -> bool:
        """Mark the given runs aborted on SIGTERM/SIGINT, then chain to the previous handler; return False off-main."""
        ids = run_ids if run_ids is not None else self.open_runs

        def abort_listed() -> None:
            with self._db.lock:
                # The signal may land between statements of one of our own transactions: keep what was written.
                self._db.commit_interrupted()
                self._abort(list(ids()))

        return self._guard.install(abort_listed, signals)

    def uninstall_abort_handler(self) -> None:
        """Restore the signal handlers that were in place before install_abort_handler."""
        # A forked child that has not reconnected leaves the handlers it inherited alone.
        if not self._db.inherited:
            self._guard.uninstall()

    # -- records and metrics --------------------------------------------------------------------------

    def add_raw(self, run_id: int, protocol: str, payload: dict, test: str | None = None) -> int:
        """Insert and commit one raw record (before any analysis); return its id."""
        text = dumps(payload)
        try:
            with self._db.write() as c:
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
            with self._db.write() as c:
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
                        None if detail is None else dumps(detail),
                        utc_now(),
                    ),
                )
                return int(cur.lastrowid)
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"results store {self.path} has no run {run_id} for metric {name}") from exc

    # -- queries --------------------------------------------------------------------------------------

    def run(self, run_id: int) -> RunRow:
        """Return one run; raise StoreError when the id is unknown."""
        rows = self._db.query("SELECT * FROM runs WHERE id = ?", (run_id,))
        if not rows:
            raise StoreError(f"results store {self.path} has no run {run_id}; list runs with `qharness history`")
        return _run_row(rows[0])

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
        rows = self._db.query(f"SELECT * FROM runs {clause} ORDER BY started_at, id", params)
        return [_run_row(r) for r in rows]

    def raw_records(self, run_id: int) -> list[dict]:
        """Return the run's raw records in insertion order: id, run_id, protocol, payload, created_at, test."""
        rows = self._db.query("SELECT * FROM raw_records WHERE run_id = ? ORDER BY id", (run_id,))
        return [
            {
                "id": int(r["id"]),
                "run_id": int(r["run_id"]),
                "protocol": r["protocol"],
                "payload": loads(r["payload"]),
                "created_at": r["created_at"],
                "test": r["test"],
            }
            for r in rows
        ]

    def metrics(self, run_id: int) -> dict[str, tuple[Estimate, str | None, dict | None]]:
        """Return the run's newest row per metric name as (estimate, verdict, detail)."""
        rows = self._db.query("SELECT * FROM metrics WHERE run_id = ? ORDER BY id", (run_id,))
        out: dict[str, tuple[Estimate, str | None, dict | None]] = {}
        for r in rows:
            out[r["name"]] = (_estimate(r), r["verdict"], loads(r["detail"]))
        return out

    def latest_metrics(self, profile: str, build: str) -> dict[str, Estimate]:
        """Return, per metric name, the newest estimate from the latest completed (passed/failed) run having it."""
        rows = self._db.query(
            f"""SELECT m.* FROM metrics m JOIN runs r ON r.id = m.run_id
                WHERE r.profile = ? AND r.build = ? AND r.status IN ({_marks(_COMPLETED)})
                ORDER BY r.started_at, r.id, m.id""",
            (profile, build, *_COMPLETED),
        )
        out: dict[str, Estimate] = {}
        for r in rows:
            # A metric stored unmeasured (an ERROR: n 0, no value) is no baseline: an earlier estimate stands.
            if int(r["n"]) > 0 and r["value"] is not None:
                out[r["name"]] = _estimate(r)
        return out

    def has_build(self, profile: str, build: str) -> bool:
        """Return True when the store holds a completed (passed/failed) run of this profile and build."""
        rows = self._db.query(
            f"SELECT 1 FROM runs WHERE profile = ? AND build = ? AND status IN ({_marks(_COMPLETED)}) LIMIT 1",
            (profile, build, *_COMPLETED),
        )
        return bool(rows)

    def set_baseline(self, profile: str, build: str) -> None:
        """Make `build` the baseline of `profile` (replacing any earlier one)."""
        with self._db.write() as c:
            c.execute(
                "INSERT INTO baselines (profile, build, set_at) VALUES (?, ?, ?) "
                "ON CONFLICT (profile) DO UPDATE SET build = excluded.build, set_at = excluded.set_at",
                (profile, build, utc_now()),
            )

    def baseline(self, profile: str) -> str | None:
        """Return the baseline build of `profile`, or None when none is set."""
        rows = self._db.query("SELECT build FROM baselines WHERE profile = ?", (profile,))
        return rows[0]["build"] if rows else None

    def baselines(self) -> dict[str, str]:
        """Return every profile's baseline build."""
        rows = self._db.query("SELECT profile, build FROM baselines ORDER BY profile")
        return {r["profile"]: r["build"] for r in rows}

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
        for r in self._db.query(sql, params):
            d = dict(r)
            for k in ("value", "ci_low", "ci_high"):
                d[k] = _real(d[k])
            out.append(d)
        return out

    def profiles(self) -> list[str]:
        """Return the profiles that have runs or a baseline, sorted."""
        rows = self._db.query("SELECT profile FROM runs UNION SELECT profile FROM baselines ORDER BY profile")
        return [r["profile"] for r in rows]


def _marks(values: Sequence[Any]) -> str:
    """Return the `?, ?, ...` placeholders of an SQL `IN` list of `values`."""
    return ",".join("?" * len(values))


def _real(x: float | None) -> float:
    """Return a stored REAL, mapping SQL NULL (how SQLite keeps NaN) back to NaN."""
    return math.nan if x is None else float(x)


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
        status=RunStatus(r["status"]),
        host=r["host"],
        git_sha=r["git_sha"],
        versions={k: r[k] for k in VERSION_KEYS},
        provenance=loads(r["provenance"]) or {},
        session_id=r["session_id"],
        pid=int(r["pid"]),
    )


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
