"""Which schema version a store has, and bringing it to this release's version with Alembic.

On open (`ensure_current`): a new, empty database gets the newest tables at once; an embedded SQLite store that
is behind is upgraded in place, in one transaction (it belongs to this user and the step is cheap); a PostgreSQL
store that is behind is refused with a one-line "run `qharness db upgrade`", because it is shared and its
upgrade is the lab's decision. A store newer than this release is always refused: upgrade qharness.

Every upgrade runs under the store's write lock (SQLite: BEGIN IMMEDIATE; PostgreSQL: a transaction-scoped
advisory lock) and re-reads the version inside it, so processes opening one store together upgrade it once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from harness.store.connection import Database
from harness.store.errors import StoreError
from harness.store.schema import HEAD_REVISION, QHARNESS_TABLES, SCHEMA_VERSION, VERSION_TABLE, meta, metadata
from harness.store.url import StoreURL, parse_store_url

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Key of the PostgreSQL advisory lock that serialises schema changes ("qharness" in ASCII, as a bigint).
_SCHEMA_LOCK_KEY = 0x7168_6172_6E65_7373 & 0x7FFF_FFFF_FFFF_FFFF
_version_table = sa.Table(
    VERSION_TABLE,
    sa.MetaData(),
    sa.Column("version_num", sa.String(32), nullable=False),
    sa.PrimaryKeyConstraint("version_num", name=f"{VERSION_TABLE}_pkc"),
)


@dataclass(frozen=True)
class StoredVersion:
    """What a database holds: its qharness tables, Alembic revision and meta.schema_version."""

    tables: frozenset[str]
    revision: str | None
    meta_version: int | None

    @property
    def version(self) -> int | None:
        """Return the schema version number (None for a database without qharness tables)."""
        if self.revision is not None:
            return int(self.revision) if self.revision.isdigit() else None
        return self.meta_version

    @property
    def fresh(self) -> bool:
        """True when the database has no qharness table yet."""
        return not self.tables

    @property
    def newer(self) -> bool:
        """True when the store was written by a newer qharness (a revision or version this release lacks)."""
        if self.revision is not None and not self.revision.isdigit():
            return True
        return max(self.version or 0, self.meta_version or 0) > SCHEMA_VERSION

    @property
    def current(self) -> bool:
        """True when the store is at this release's schema version."""
        return self.revision == HEAD_REVISION and not self.newer


def read_version(conn: sa.Connection, where: str) -> StoredVersion:
    """Return the stored version seen through `conn` (reads only); a foreign database `where` is a StoreError."""
    names = set(sa.inspect(conn).get_table_names())
    tables = frozenset(names & QHARNESS_TABLES)
    revision = None
    if VERSION_TABLE in names:
        revision = conn.execute(sa.select(_version_table.c.version_num)).scalar()
    meta_version = None
    if "meta" in names:
        value = conn.execute(sa.select(meta.c.value).where(meta.c.key == "schema_version")).scalar()
        meta_version = int(value) if value is not None and str(value).isdigit() else None
    if names and "meta" not in names and revision is None:
        raise StoreError(
            f"results store {where} holds tables but is not a qharness results store (no 'meta' table); "
            "point --results-db at a qharness store, a new file or an empty database"
        )
    return StoredVersion(tables, revision, meta_version)


def newer_message(where: str, found: StoredVersion) -> str:
    """Return the one line refusing a store newer than this release."""
    known = [v for v in (found.version, found.meta_version) if v is not None]
    shown = max(known) if known and (found.revision is None or found.revision.isdigit()) else found.revision
    return (
        f"results store {where} has schema version {shown}, this qharness understands up to {SCHEMA_VERSION}: "
        "upgrade qharness"
    )


def behind_message(where: str, found: StoredVersion) -> str:
    """Return the one line refusing to write a shared (server) store that is behind this release."""
    return (
        f"results store {where} has schema version {found.version}, this qharness needs {SCHEMA_VERSION}: "
        "run `qharness db upgrade` with the same --db (once, for every user of this database)"
    )


def stored_version(db: Database) -> StoredVersion:
    """Return the stored version of `db`'s database (reads only)."""
    with db.reading() as conn:
        return read_version(conn, str(db.url))


def ensure_current(db: Database) -> None:
    """Bring the store to this release's schema on open, or raise StoreError saying what to do (see module doc)."""
    found = stored_version(db)
    if found.current:
        return
    if found.newer:
        raise StoreError(newer_message(str(db.url), found))
    if not found.fresh and not db.url.is_sqlite:
        raise StoreError(behind_message(str(db.url), found))
    upgrade(db)


def upgrade(db: Database) -> tuple[int | None, int]:
    """Upgrade the store to this release's schema in one locked transaction; return (version before, after)."""
    with db.write() as conn:
        if db.url.dialect == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_SCHEMA_LOCK_KEY)))
        found = read_version(conn, str(db.url))
        if found.newer:
            raise StoreError(newer_message(str(db.url), found))
        if found.current:
            return found.version, SCHEMA_VERSION
        if found.fresh:
            # A new database: the newest tables at once (a test shows the migrations build the same tables).
            metadata.create_all(conn)
            _version_table.create(conn)
            conn.execute(sa.insert(_version_table).values(version_num=HEAD_REVISION))
            conn.execute(sa.insert(meta).values(key="schema_version", value=str(SCHEMA_VERSION)))
        else:
            _alembic_upgrade(conn, stamp_first=found.revision is None)
    return found.version, SCHEMA_VERSION


def _alembic_upgrade(conn: sa.Connection, *, stamp_first: bool) -> None:
    """Run the Alembic migrations to head on `conn`, inside its transaction (stamping a version-1 store first)."""
    from alembic import command

    cfg = alembic_config(conn)
    if stamp_first:
        # The first release wrote no version table: its store is revision 0001 by construction.
        command.stamp(cfg, "0001")
    command.upgrade(cfg, "head")


def alembic_config(conn: sa.Connection | None = None) -> Config:
    """Return an Alembic Config for the packaged migrations (no alembic.ini), bound to `conn` when given."""
    from alembic.config import Config  # imported when a migration runs, not on every open

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("version_table", VERSION_TABLE)
    if conn is not None:
        cfg.attributes["connection"] = conn
    return cfg


def _open(target: str | Path | StoreURL) -> Database:
    """Connect to the store at `target` without checking its schema (for the schema commands themselves)."""
    return Database(parse_store_url(target), on_connect=lambda db: None)


def upgrade_store(target: str | Path | StoreURL) -> tuple[int | None, int]:
    """Create or upgrade the store at `target` to this release's schema; return (version before or None, after)."""
    db = _open(target)
    try:
        return upgrade(db)
    finally:
        db.close()


def store_version(target: str | Path | StoreURL) -> StoredVersion:
    """Return the schema version of the store at `target` (reads only); a missing SQLite file is a StoreError."""
    url = parse_store_url(target)
    if url.path is not None and not url.path.exists():
        raise StoreError(f"results store {url} does not exist; `qharness db upgrade` creates it")
    db = _open(url)
    try:
        return stored_version(db)
    finally:
        db.close()
