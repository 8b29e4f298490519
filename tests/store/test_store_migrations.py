"""Tests of schema versions: the version-1 store of the previous release upgrades with nothing lost, the migrations
build exactly the tables the code uses, and a store newer or (on a server) older than this release is refused."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from store_dump import api_dump
from store_support import RUN_KW, sql
from typer.testing import CliRunner

import harness.cli.db  # noqa: F401 - registers `qharness db` (harness.cli imports it too once wired)
from harness.cli.app import app
from harness.store import SCHEMA_VERSION, Store, StoreError, check_store, parse_store_url
from harness.store.schema import VERSION_TABLE, metadata
from harness.store.versions import alembic_config, store_version, upgrade_store

FIXTURES = Path(__file__).parent / "fixtures"
V1_STORE = FIXTURES / "store-v1.db"
# What the previous release wrote into the fixture (2 measured builds + the baseline they pulled in, one run
# killed by SIGTERM mid-way), counted when it was made.
V1_COUNTS = {"runs": 4, "raw_records": 31, "metrics": 60, "baselines": 1}
V1_TABLES = ("runs", "raw_records", "metrics", "baselines")


def _counts(target: str) -> dict[str, int]:
    """Return the row count of each version-1 table."""
    return {t: sql(target, f"SELECT COUNT(*) FROM {t}")[0][0] for t in V1_TABLES}


def _rows(target: str, table: str) -> list[tuple]:
    """Return every row of `table` ordered by its first column, floats as stored."""
    return sql(target, f"SELECT * FROM {table} ORDER BY 1")


def _schema_diff(target: str) -> list:
    """Return Alembic's differences between the database's tables and the code's metadata (empty: the same)."""
    engine = sa.create_engine(parse_store_url(target).url)
    try:
        with engine.connect() as c:
            opts = {"compare_type": True, "version_table": VERSION_TABLE}
            return compare_metadata(MigrationContext.configure(c, opts=opts), metadata)
    finally:
        engine.dispose()


def _v1_copy(tmp_path: Path) -> Path:
    """Return a copy of the version-1 fixture store (the fixture itself is never written)."""
    dst = tmp_path / "store-v1.db"
    shutil.copy(V1_STORE, dst)
    return dst


def test_the_fixture_is_a_version_1_store_of_the_previous_release(tmp_path: Path) -> None:
    path = _v1_copy(tmp_path)
    assert _counts(str(path)) == V1_COUNTS
    assert sql(str(path), "SELECT value FROM meta WHERE key = 'schema_version'") == [("1",)]
    tables = {r[0] for r in sql(str(path), "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert VERSION_TABLE not in tables and "leases" not in tables
    assert sorted(r[0] for r in sql(str(path), "SELECT status FROM runs")) == ["aborted", "failed", "passed", "passed"]


def test_version_1_store_upgrades_on_open_with_nothing_lost(tmp_path: Path) -> None:
    path = _v1_copy(tmp_path)
    before = {t: _rows(str(path), t) for t in V1_TABLES}
    with Store(path) as s:
        # Every run, raw record, metric and baseline answers exactly as the previous release answered.
        assert api_dump(s) + "\n" == (FIXTURES / "store-v1.api.json").read_text()
        new = s.start_run(**RUN_KW)
        assert new == 5 and len(s.runs()) == 5
    assert {t: _rows(str(path), t) for t in V1_TABLES if t != "runs"} == {t: before[t] for t in V1_TABLES[1:]}
    assert _rows(str(path), "runs")[:4] == before["runs"]
    assert sql(str(path), f"SELECT version_num FROM {VERSION_TABLE}") == [(f"{SCHEMA_VERSION:04d}",)]
    assert sql(str(path), "SELECT value FROM meta WHERE key = 'schema_version'") == [(str(SCHEMA_VERSION),)]
    with sqlite3.connect(path) as c:
        assert c.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert c.execute("PRAGMA foreign_key_check").fetchall() == []
    # The hand-written version-1 tables differ from the code's only where SQLite cannot tell: REAL is FLOAT's
    # affinity, and an INTEGER PRIMARY KEY (the rowid) or a TEXT PRIMARY KEY reflects as nullable.
    for kind, _schema, table, column, *_rest in (d[0] for d in _schema_diff(str(path))):
        assert (kind, table, column) in _V1_QUIRKS


_V1_QUIRKS = {
    ("modify_nullable", "runs", "id"),
    ("modify_nullable", "raw_records", "id"),
    ("modify_nullable", "metrics", "id"),
    ("modify_nullable", "meta", "key"),
    ("modify_nullable", "baselines", "profile"),
    *(("modify_type", "metrics", c) for c in ("value", "ci_low", "ci_high", "confidence")),
}


def test_db_upgrade_command_upgrades_the_version_1_store(tmp_path: Path) -> None:
    path = _v1_copy(tmp_path)
    runner = CliRunner()
    res = runner.invoke(app, ["db", "current", "--db", str(path)])
    assert res.exit_code == 0 and "schema version 1, behind: run `qharness db upgrade`" in res.stdout
    res = runner.invoke(app, ["db", "upgrade", "--db", str(path)])
    assert res.exit_code == 0 and f"upgraded from schema version 1 to {SCHEMA_VERSION}" in res.stdout
    assert _counts(str(path)) == V1_COUNTS
    res = runner.invoke(app, ["db", "upgrade", "--db", str(path)])
    assert res.exit_code == 0 and f"already at schema version {SCHEMA_VERSION}" in res.stdout
    res = runner.invoke(app, ["db", "current", "--db", f"sqlite:///{path}"])
    assert res.exit_code == 0 and res.stdout.strip().endswith(f"schema version {SCHEMA_VERSION}, current")


def test_migrations_build_exactly_the_tables_of_the_code(store_url: str) -> None:
    engine = sa.create_engine(parse_store_url(store_url).url)
    try:
        with engine.begin() as c:
            command.upgrade(alembic_config(c), "head")
    finally:
        engine.dispose()
    assert _schema_diff(store_url) == []
    assert store_version(store_url).current


def test_a_new_store_is_made_at_the_newest_version(store_url: str) -> None:
    # Store makes a new database's tables from the metadata at once and stamps it: the same tables as above.
    Store(store_url).close()
    assert _schema_diff(store_url) == []
    found = store_version(store_url)
    assert found.current and found.version == SCHEMA_VERSION and found.meta_version == SCHEMA_VERSION


def _load_v1_into(url: str) -> None:
    """Build a version-1 store at `url` with the migrations and copy every row of the fixture into it."""
    engine = sa.create_engine(parse_store_url(url).url)
    src = sa.create_engine(f"sqlite:///file:{V1_STORE}?mode=ro&immutable=1&uri=true")
    try:
        with engine.begin() as c:
            command.upgrade(alembic_config(c), "0001")
        with src.connect() as s, engine.begin() as c:
            for table in ("runs", "raw_records", "metrics", "baselines"):
                rows = [dict(r) for r in s.execute(sa.select(metadata.tables[table])).mappings()]
                c.execute(sa.insert(metadata.tables[table]), rows)
            for table in ("runs", "raw_records", "metrics"):
                c.execute(
                    sa.text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
                )
    finally:
        engine.dispose()
        src.dispose()


def test_a_postgresql_store_behind_is_refused_until_db_upgrade(pg_url: str) -> None:
    _load_v1_into(pg_url)
    assert store_version(pg_url).version == 1
    shown = str(parse_store_url(pg_url))
    expected = (
        f"results store {shown} has schema version 1, this qharness needs {SCHEMA_VERSION}: "
        "run `qharness db upgrade` with the same --db (once, for every user of this database)"
    )
    with pytest.raises(StoreError) as info:
        Store(pg_url)
    assert str(info.value) == expected
    with pytest.raises(StoreError) as info:
        check_store(pg_url)
    assert str(info.value) == expected
    assert upgrade_store(pg_url) == (1, SCHEMA_VERSION)
    assert check_store(pg_url) == parse_store_url(pg_url)
    with Store(pg_url) as s:
        assert api_dump(s) + "\n" == (FIXTURES / "store-v1.api.json").read_text()
        assert s.start_run(**RUN_KW) == 5
    assert _counts(pg_url) == {**V1_COUNTS, "runs": 5}
    assert _schema_diff(pg_url) == []


@pytest.mark.parametrize("stored", ["0003", "f00dcafe"])
def test_a_store_newer_than_this_release_is_refused(store_url: str, stored: str) -> None:
    with Store(store_url) as s:
        shown = s.path
    sql(store_url, f"UPDATE {VERSION_TABLE} SET version_num = :v", v=stored)
    version = 3 if stored.isdigit() else stored
    expected = (
        f"results store {shown} has schema version {version}, this qharness understands up to {SCHEMA_VERSION}: "
        "upgrade qharness"
    )
    for attempt in (Store, check_store, upgrade_store):
        with pytest.raises(StoreError) as info:
            attempt(store_url)
        assert str(info.value) == expected
    res = CliRunner().invoke(app, ["db", "upgrade", "--db", store_url])
    assert res.exit_code == 4 and res.stderr.strip() == f"qharness db upgrade: {expected}"


def test_a_foreign_sqlite_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as c:
        c.execute("CREATE TABLE notes (x TEXT)")
    for attempt in (Store, check_store):
        with pytest.raises(StoreError, match="holds tables but is not a qharness results store"):
            attempt(path)
    assert sql(str(path), "SELECT name FROM sqlite_master") == [("notes",)]  # nothing added
