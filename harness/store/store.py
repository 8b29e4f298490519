"""The results store: runs, raw records, metrics and baselines in SQLite or PostgreSQL, and every query on them.

`Store` is the facade: it holds this process's `Database` (engine, locking, fork safety), the `SignalGuard`
that marks open runs aborted on SIGTERM/SIGINT, the bench leases and the queries. The tables are in `schema`,
their versions in `versions`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from harness.metrics import Direction, Estimate
from harness.store.connection import Database, upsert
from harness.store.errors import StoreError
from harness.store.leases import Lease, LeaseHolder, acquire_lease
from harness.store.provenance import VERSION_KEYS, dumps, hostname, loads, pid_alive, run_stamp, utc_now
from harness.store.schema import RunStatus, baselines, metrics, raw_records, runs
from harness.store.signals import ABORT_SIGNALS, SignalGuard
from harness.store.url import StoreURL, parse_store_url, redact_values
from harness.store.versions import ensure_current

# Only runs that measured to the end give a build's metrics (for a baseline or `compare`).
_COMPLETED = tuple(str(s) for s in RunStatus if s.completed)


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
    """A results store (a SQLite file or a PostgreSQL database); each process opens its own connection."""

    def __init__(self, target: str | Path | StoreURL) -> None:
        """Open the store at `target` (a path, sqlite:///path or postgresql://...) and abort runs of dead processes."""
        self.url = parse_store_url(target)
        self._open_runs: set[int] = set()
        self._guard = SignalGuard()
        self._db = Database(self.url, on_connect=self._on_connect)
        self.abort_stale_runs()

    @property
    def path(self) -> Path | str:
        """Return the SQLite file, or for a server database its URL without the password (for messages)."""
        return self.url.path if self.url.path is not None else str(self.url)

    def _on_connect(self, db: Database) -> None:
        """Check (and create or upgrade) the schema; a forked child starts with none of its parent's runs open."""
        self._open_runs = set()
        ensure_current(db)

    @property
    def conn(self) -> Any:
        """Return this process's driver connection (sqlite3 or psycopg), reconnecting after a fork."""
        return self._db.dbapi

    @property
    def engine(self) -> sa.Engine:
        """Return the SQLAlchemy engine of this process's connection (for tools that read the tables)."""
        _ = self._db.connection  # reconnects first in a forked child
        return self._db.engine

    def close(self) -> None:
        """Close the connection (the data stays); idempotent."""
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
            "status": str(RunStatus.RUNNING),
            "provenance": dumps(redact_values(provenance or {})),
            "session_id": session_id,
            **run_stamp(),
        }
        with self._db.write() as c:
            run_id = int(c.execute(sa.insert(runs).values(row)).inserted_primary_key[0])
        self._open_runs.add(run_id)
        return run_id

    def update_provenance(self, run_id: int, **items: Any) -> None:
        """Merge `items` into the run's provenance JSON (later keys replace earlier ones)."""
        with self._db.write() as c:
            current = c.execute(
                sa.select(runs.c.provenance).where(runs.c.id == run_id).with_for_update()
            ).scalar_one_or_none()
            if current is None:
                raise StoreError(f"results store {self.url} has no run {run_id}")
            merged = loads(current) or {}
            merged.update(redact_values(items))
            c.execute(sa.update(runs).where(runs.c.id == run_id).values(provenance=dumps(merged)))

    def finish_run(self, run_id: int, status: str) -> None:
        """Set the run's final status (a RunStatus other than RUNNING, or its value) and ended_at.

        A run already marked aborted (by the signal guard) stays aborted: an interrupt is the truth about it.
        """
        if status not in list(RunStatus) or status == RunStatus.RUNNING:
            raise StoreError(f"run status {status!r} is not a final status; use one of passed, failed, error, aborted")
        with self._db.write() as c:
            current = c.execute(sa.select(runs.c.status).where(runs.c.id == run_id)).scalar_one_or_none()
            if current is None:
                raise StoreError(f"results store {self.url} has no run {run_id}")
            if current != RunStatus.ABORTED:
                c.execute(
                    sa.update(runs).where(runs.c.id == run_id).values(status=str(RunStatus(status)), ended_at=utc_now())
                )
        self._open_runs.discard(run_id)

    def _abort(self, run_ids: list[int]) -> int:
        """Mark the listed runs that are still running 'aborted'; return how many changed."""
        if not run_ids:
            return 0
        stmt = (
            sa.update(runs)
            .where(runs.c.status == str(RunStatus.RUNNING), runs.c.id.in_(run_ids))
            .values(status=str(RunStatus.ABORTED), ended_at=utc_now())
        )
        with self._db.write() as c:
            return c.execute(stmt).rowcount

    def abort_stale_runs(self) -> int:
        """Mark 'aborted' the running runs of this host whose process is gone; return how many."""
        rows = self._db.query(
            sa.select(runs.c.id, runs.c.pid).where(runs.c.status == str(RunStatus.RUNNING), runs.c.host == hostname())
        )
        return self._abort([int(r["id"]) for r in rows if not pid_alive(int(r["pid"]))])

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

    # -- bench leases ---------------------------------------------------------------------------------

    @contextmanager
    def lease(
        self,
        bench: str,
        *,
        ttl_s: float = 60.0,
        timeout_s: float = 0.0,
        run_id: str | None = None,
        on_wait: Callable[[LeaseHolder], None] | None = None,
        poll_s: float = 0.25,
    ) -> Iterator[Lease]:
        """Hold `bench`'s exclusive lease for the block, waiting up to `timeout_s` (then LeaseTimeoutError)."""
        with acquire_lease(
            self._db, bench, ttl_s=ttl_s, timeout_s=timeout_s, run_id=run_id, on_wait=on_wait, poll_s=poll_s
        ) as held:
            yield held

    # -- records and metrics --------------------------------------------------------------------------

    def add_raw(self, run_id: int, protocol: str, payload: dict, test: str | None = None) -> int:
        """Insert and commit one raw record (before any analysis); return its id."""
        row = {"run_id": run_id, "protocol": protocol, "payload": dumps(payload), "created_at": utc_now(), "test": test}
        return self._insert(raw_records, row, f"a {protocol} raw record")

    def add_metric(
        self,
        run_id: int,
        name: str,
        estimate: Estimate,
        verdict: str | None = None,
        detail: dict | None = None,
    ) -> int:
        """Insert one metric estimate of a run; return the metric row id."""
        row = {
            "run_id": run_id,
            "name": name,
            "value": float(estimate.value),
            "ci_low": float(estimate.ci_low),
            "ci_high": float(estimate.ci_high),
            "confidence": float(estimate.confidence),
            "n": int(estimate.n),
            "unit": estimate.unit,
            "direction": str(estimate.direction),
            "verdict": None if verdict is None else str(verdict),
            "detail": None if detail is None else dumps(detail),
            "created_at": utc_now(),
        }
        return self._insert(metrics, row, f"metric {name}")

    def _insert(self, table: sa.Table, row: dict[str, Any], what: str) -> int:
        """Insert one row referring to run `row['run_id']` and return its id; an unknown run is a StoreError."""
        try:
            with self._db.write() as c:
                return int(c.execute(sa.insert(table).values(row)).inserted_primary_key[0])
        except sa.exc.IntegrityError:
            raise StoreError(f"results store {self.url} has no run {row['run_id']} for {what}") from None

    # -- queries --------------------------------------------------------------------------------------

    def run(self, run_id: int) -> RunRow:
        """Return one run; raise StoreError when the id is unknown."""
        rows = self._db.query(sa.select(runs).where(runs.c.id == run_id))
        if not rows:
            raise StoreError(f"results store {self.url} has no run {run_id}; list runs with `qharness history`")
        return _run_row(rows[0])

    def runs(self, profile: str | None = None, build: str | None = None) -> list[RunRow]:
        """Return the runs (optionally of one profile and/or build), oldest first."""
        stmt = sa.select(runs).order_by(runs.c.started_at, runs.c.id)
        if profile is not None:
            stmt = stmt.where(runs.c.profile == profile)
        if build is not None:
            stmt = stmt.where(runs.c.build == build)
        return [_run_row(r) for r in self._db.query(stmt)]

    def raw_records(self, run_id: int) -> list[dict]:
        """Return the run's raw records in insertion order: id, run_id, protocol, payload, created_at, test."""
        rows = self._db.query(sa.select(raw_records).where(raw_records.c.run_id == run_id).order_by(raw_records.c.id))
        for r in rows:
            r["id"], r["run_id"], r["payload"] = int(r["id"]), int(r["run_id"]), loads(r["payload"])
        return rows

    def metrics(self, run_id: int) -> dict[str, tuple[Estimate, str | None, dict | None]]:
        """Return the run's newest row per metric name as (estimate, verdict, detail)."""
        rows = self._db.query(sa.select(metrics).where(metrics.c.run_id == run_id).order_by(metrics.c.id))
        return {r["name"]: (_estimate(r), r["verdict"], loads(r["detail"])) for r in rows}

    def latest_metrics(self, profile: str, build: str) -> dict[str, Estimate]:
        """Return, per metric name, the newest estimate from the latest completed (passed/failed) run having it."""
        stmt = (
            sa.select(metrics)
            .join(runs, runs.c.id == metrics.c.run_id)
            .where(runs.c.profile == profile, runs.c.build == build, runs.c.status.in_(_COMPLETED))
            .order_by(runs.c.started_at, runs.c.id, metrics.c.id)
        )
        # A metric stored unmeasured (an ERROR: n 0, no value) is no baseline: an earlier estimate stands.
        return {r["name"]: _estimate(r) for r in self._db.query(stmt) if int(r["n"]) > 0 and r["value"] is not None}

    def has_build(self, profile: str, build: str) -> bool:
        """Return True when the store holds a completed (passed/failed) run of this profile and build."""
        stmt = (
            sa.select(sa.literal(1))
            .where(runs.c.profile == profile, runs.c.build == build, runs.c.status.in_(_COMPLETED))
            .limit(1)
        )
        return bool(self._db.query(stmt))

    def set_baseline(self, profile: str, build: str) -> None:
        """Make `build` the baseline of `profile` (replacing any earlier one)."""
        with self._db.write() as c:
            c.execute(upsert(c, baselines, {"profile": profile, "build": build, "set_at": utc_now()}, ["profile"]))

    def baseline(self, profile: str) -> str | None:
        """Return the baseline build of `profile`, or None when none is set."""
        rows = self._db.query(sa.select(baselines.c.build).where(baselines.c.profile == profile))
        return rows[0]["build"] if rows else None

    def baselines(self) -> dict[str, str]:
        """Return every profile's baseline build."""
        rows = self._db.query(sa.select(baselines.c.profile, baselines.c.build).order_by(baselines.c.profile))
        return {r["profile"]: r["build"] for r in rows}

    def history(self, profile: str, metric: str | None = None, run_ids: Collection[int] | None = None) -> list[dict]:
        """Return the profile's metric rows (optionally one metric, or only runs `run_ids`), oldest first."""
        m, r = metrics.c, runs.c
        stmt = (
            sa.select(r.build, r.id.label("run_id"), r.started_at, r.status, m.name, m.value, m.ci_low, m.ci_high)
            .add_columns(m.n, m.unit, m.direction, m.verdict, m.confidence)
            .join_from(metrics, runs, r.id == m.run_id)
            .where(r.profile == profile)
            .order_by(r.started_at, r.id, m.id)
        )
        if metric is not None:
            stmt = stmt.where(m.name == metric)
        if run_ids is not None:
            # A report shows one run per build: reading only those rows is 60x less work on a store of 10^4 runs.
            stmt = stmt.where(m.run_id.in_(sorted({int(i) for i in run_ids})))
        rows = self._db.query(stmt)
        for row in rows:
            for key in ("value", "ci_low", "ci_high"):
                row[key] = _real(row[key])
        return rows

    def metric_run_ids(self, profile: str) -> set[int]:
        """Return the ids of the profile's runs that have at least one metric row."""
        stmt = sa.select(metrics.c.run_id).distinct().join(runs, runs.c.id == metrics.c.run_id)
        return {int(r["run_id"]) for r in self._db.query(stmt.where(runs.c.profile == profile))}

    def profiles(self) -> list[str]:
        """Return the profiles that have runs or a baseline, sorted."""
        both = sa.union(sa.select(runs.c.profile), sa.select(baselines.c.profile)).subquery()
        rows = self._db.query(sa.select(both.c.profile).order_by(both.c.profile))
        return [r["profile"] for r in rows]


def _real(x: float | None) -> float:
    """Return a stored REAL, mapping SQL NULL (how SQLite keeps NaN) back to NaN."""
    return math.nan if x is None else float(x)


def _run_row(r: Mapping[str, Any]) -> RunRow:
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


def _estimate(r: Mapping[str, Any]) -> Estimate:
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
