"""Schema version 1: runs, raw records, metrics, baselines and meta, as the first release wrote them.

A store made by that release has these tables but no version table: it is stamped as this revision.
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_STATUS = "status IN ('running', 'passed', 'failed', 'error', 'aborted')"
_BIGINT = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    """Create the version-1 tables and record schema_version 1."""
    meta = op.create_table(
        "meta", sa.Column("key", sa.Text, primary_key=True), sa.Column("value", sa.Text, nullable=False)
    )
    _create_runs()
    _create_records()
    op.create_table(
        "baselines",
        sa.Column("profile", sa.Text, primary_key=True),
        sa.Column("build", sa.Text, nullable=False),
        sa.Column("set_at", sa.Text, nullable=False),
    )
    op.bulk_insert(meta, [{"key": "schema_version", "value": "1"}])


def _create_runs() -> None:
    """Create the runs table and its indexes."""
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        *(sa.Column(c, sa.Text, nullable=False) for c in ("profile", "profile_hash", "build")),
        sa.Column("baseline_build", sa.Text),
        sa.Column("seed", _BIGINT, nullable=False),
        sa.Column("budget", sa.Text, nullable=False),
        *(
            sa.Column(c, sa.Text)
            for c in ("harness_version", "qiskit_version", "qiskit_aer_version", "stim_version", "numpy_version")
        ),
        sa.Column("git_sha", sa.Text),
        sa.Column("host", sa.Text, nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("started_at", sa.Text, nullable=False),
        sa.Column("ended_at", sa.Text),
        sa.Column("status", sa.Text, sa.CheckConstraint(_STATUS, name="runs_status_check"), nullable=False),
        sa.Column("provenance", sa.Text, nullable=False, server_default="{}"),
        sa.Column("session_id", sa.Text),
        sqlite_autoincrement=True,
    )
    op.create_index("runs_profile_build", "runs", ["profile", "build", "started_at"])
    op.create_index("runs_status", "runs", ["status"])


def _create_records() -> None:
    """Create the raw_records and metrics tables (each row belongs to a run) and their indexes."""
    op.create_table(
        "raw_records",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), nullable=False),
        sa.Column("protocol", sa.Text, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("test", sa.Text),
        sqlite_autoincrement=True,
    )
    op.create_index("raw_records_run", "raw_records", ["run_id"])
    op.create_table(
        "metrics",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        *(sa.Column(c, sa.Float) for c in ("value", "ci_low", "ci_high")),
        sa.Column("confidence", sa.Float, nullable=False),
        sa.Column("n", _BIGINT, nullable=False),
        sa.Column("unit", sa.Text, nullable=False),
        sa.Column("direction", sa.Text, nullable=False),
        sa.Column("verdict", sa.Text),
        sa.Column("detail", sa.Text),
        sa.Column("created_at", sa.Text, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("metrics_run_name", "metrics", ["run_id", "name"])
