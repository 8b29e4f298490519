"""The store's tables (schema version SCHEMA_VERSION), the run statuses they allow, and the version check on open."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from harness.store.errors import StoreError

if TYPE_CHECKING:
    from harness.store.connection import Connection

SCHEMA_VERSION = 1


class RunStatus(StrEnum):
    """State of one run: running until finished, aborted when its process died or was signalled."""

    RUNNING = "running"
    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    ABORTED = "aborted"

    @property
    def completed(self) -> bool:
        """True for a run that measured to the end (passed or failed): only those give a baseline's metrics."""
        return self in (RunStatus.PASSED, RunStatus.FAILED)


# Version 1 as first shipped: a new version adds a migration step instead of editing this text.
DDL = """
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


def migrate(db: Connection) -> None:
    """Refuse a store newer than SCHEMA_VERSION, and create the tables of this version when missing."""
    with db.write() as c:
        has_meta = c.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone()
        if has_meta:
            row = c.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            found = int(row[0]) if row else None
            if found is not None and found > SCHEMA_VERSION:
                raise StoreError(
                    f"results store {db.path} has schema version {found}, this qharness understands up to "
                    f"{SCHEMA_VERSION}: upgrade qharness"
                )
        for statement in DDL.split(";"):
            if statement.strip():
                c.execute(statement)
        c.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
