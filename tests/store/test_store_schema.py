"""Tests of the store's schema: the version guard on open and the run statuses the tables allow."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from store_support import RUN_KW

from harness.store import SCHEMA_VERSION, RunStatus, Store, StoreError


def test_newer_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    Store(path).close()
    with sqlite3.connect(path) as c:
        c.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    with pytest.raises(StoreError) as info:
        Store(path)
    assert str(info.value) == (
        f"results store {path} has schema version {SCHEMA_VERSION + 1}, this qharness understands up to "
        f"{SCHEMA_VERSION}: upgrade qharness"
    )


def test_the_runs_table_allows_exactly_the_run_statuses(tmp_path: Path) -> None:
    with Store(tmp_path / "r.sqlite") as s:
        rid = s.start_run(**RUN_KW)
        for status in RunStatus:
            s.conn.execute("UPDATE runs SET status = ? WHERE id = ?", (status, rid))
            assert s.run(rid).status is status
        with pytest.raises(sqlite3.IntegrityError, match="CHECK constraint"):
            s.conn.execute("UPDATE runs SET status = 'paused' WHERE id = ?", (rid,))
