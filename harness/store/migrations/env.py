"""Alembic's environment: run the migrations on the connection qharness passes in (its transaction, its lock)."""

from alembic import context

from harness.store.schema import VERSION_TABLE, metadata

connection = context.config.attributes["connection"]
# Batch mode lets a later migration alter a SQLite table (SQLite's ALTER TABLE cannot drop or change columns).
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    render_as_batch=True,
)
with context.begin_transaction():
    context.run_migrations()
