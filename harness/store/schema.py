"""The store's tables at the newest schema version, as SQLAlchemy Core metadata, and the run statuses they allow.

The migrations in `migrations/versions/` build exactly these tables step by step (a test compares the two);
`SCHEMA_VERSION` is the number of the newest step, also written to meta.schema_version so that an older
qharness, which reads only that row, refuses a store it does not understand.
"""

from __future__ import annotations

from enum import StrEnum

import sqlalchemy as sa

SCHEMA_VERSION = 2
HEAD_REVISION = f"{SCHEMA_VERSION:04d}"
# Alembic's bookkeeping table; a name of our own so a PostgreSQL database shared with another Alembic project works.
VERSION_TABLE = "qharness_alembic_version"


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


STATUS_CHECK = "status IN ('running', 'passed', 'failed', 'error', 'aborted')"

metadata = sa.MetaData()

meta = sa.Table(
    "meta",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("profile", sa.Text, nullable=False),
    sa.Column("profile_hash", sa.Text, nullable=False),
    sa.Column("build", sa.Text, nullable=False),
    sa.Column("baseline_build", sa.Text),
    sa.Column("seed", sa.BigInteger().with_variant(sa.Integer, "sqlite"), nullable=False),
    sa.Column("budget", sa.Text, nullable=False),
    sa.Column("harness_version", sa.Text),
    sa.Column("qiskit_version", sa.Text),
    sa.Column("qiskit_aer_version", sa.Text),
    sa.Column("stim_version", sa.Text),
    sa.Column("numpy_version", sa.Text),
    sa.Column("git_sha", sa.Text),
    sa.Column("host", sa.Text, nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("started_at", sa.Text, nullable=False),
    sa.Column("ended_at", sa.Text),
    sa.Column("status", sa.Text, sa.CheckConstraint(STATUS_CHECK, name="runs_status_check"), nullable=False),
    sa.Column("provenance", sa.Text, nullable=False, server_default="{}"),
    sa.Column("session_id", sa.Text),
    sa.Index("runs_profile_build", "profile", "build", "started_at"),
    sa.Index("runs_status", "status"),
    sqlite_autoincrement=True,
)

raw_records = sa.Table(
    "raw_records",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), nullable=False),
    sa.Column("protocol", sa.Text, nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("test", sa.Text),
    sa.Index("raw_records_run", "run_id"),
    sqlite_autoincrement=True,
)

metrics = sa.Table(
    "metrics",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("value", sa.Float),
    sa.Column("ci_low", sa.Float),
    sa.Column("ci_high", sa.Float),
    sa.Column("confidence", sa.Float, nullable=False),
    sa.Column("n", sa.BigInteger().with_variant(sa.Integer, "sqlite"), nullable=False),
    sa.Column("unit", sa.Text, nullable=False),
    sa.Column("direction", sa.Text, nullable=False),
    sa.Column("verdict", sa.Text),
    sa.Column("detail", sa.Text),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Index("metrics_run_name", "run_id", "name"),
    sqlite_autoincrement=True,
)

baselines = sa.Table(
    "baselines",
    metadata,
    sa.Column("profile", sa.Text, primary_key=True),
    sa.Column("build", sa.Text, nullable=False),
    sa.Column("set_at", sa.Text, nullable=False),
)

# Version 2: who holds each bench. Times are seconds since the epoch on the database's clock, so hosts with
# skewed clocks still agree on when a lease expires.
leases = sa.Table(
    "leases",
    metadata,
    sa.Column("bench", sa.Text, primary_key=True),
    sa.Column("token", sa.Text, nullable=False),
    sa.Column("host", sa.Text, nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("run_id", sa.Text),
    sa.Column("since", sa.Text, nullable=False),
    sa.Column("heartbeat_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
)

QHARNESS_TABLES = frozenset({*metadata.tables, VERSION_TABLE})
