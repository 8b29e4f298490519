"""Tests of the store's schema: the version guard on open and the run statuses the tables allow."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from store_support import RUN_KW, sql

from harness.store import SCHEMA_VERSION, RunStatus, Store, StoreError


def test_newer_schema_version_is_refused(store_url: str) -> None:
    with Store(store_url) as s:
        shown = s.path
    sql(store_url, "UPDATE meta SET value = :v WHERE key = 'schema_version'", v=str(SCHEMA_VERSION + 1))
    with pytest.raises(StoreError) as info:
        Store(store_url)
    assert str(info.value) == (
        f"results store {shown} has schema version {SCHEMA_VERSION + 1}, this qharness understands up to "
        f"{SCHEMA_VERSION}: upgrade qharness"
    )


def test_the_runs_table_allows_exactly_the_run_statuses(store_url: str) -> None:
    with Store(store_url) as s:
        rid = s.start_run(**RUN_KW)
        for status in RunStatus:
            sql(store_url, "UPDATE runs SET status = :s WHERE id = :rid", s=str(status), rid=rid)
            assert s.run(rid).status is status
        with pytest.raises(sa.exc.IntegrityError, match=r"(?i)check constraint"):
            sql(store_url, "UPDATE runs SET status = 'paused' WHERE id = :rid", rid=rid)
