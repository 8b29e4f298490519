"""Schema version 3: the `reference_builds` table (the pinned reference build of each profile, for creep).

Nothing else changes, so every run, raw record, metric, baseline and lease of version 2 is kept as it is.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the reference_builds table and record schema_version 3 (an older qharness then refuses the store)."""
    op.create_table(
        "reference_builds",
        sa.Column("profile", sa.Text, primary_key=True),
        sa.Column("build", sa.Text, nullable=False),
        sa.Column("set_at", sa.Text, nullable=False),
    )
    meta = sa.table("meta", sa.column("key", sa.Text), sa.column("value", sa.Text))
    op.execute(meta.update().where(meta.c.key == "schema_version").values(value="3"))
