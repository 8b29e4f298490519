"""Schema version 2: the `leases` table (which run holds each bench, until when).

Nothing else changes, so every run, raw record, metric and baseline of version 1 is kept as it is.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the leases table and record schema_version 2 (an older qharness then refuses the store)."""
    op.create_table(
        "leases",
        sa.Column("bench", sa.Text, primary_key=True),
        sa.Column("token", sa.Text, nullable=False),
        sa.Column("host", sa.Text, nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("run_id", sa.Text),
        sa.Column("since", sa.Text, nullable=False),
        sa.Column("heartbeat_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    meta = sa.table("meta", sa.column("key", sa.Text), sa.column("value", sa.Text))
    op.execute(meta.update().where(meta.c.key == "schema_version").values(value="2"))
