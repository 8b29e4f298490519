"""Fixtures of the store tests: every store test runs on SQLite and on a real PostgreSQL server.

The server is the one QHARNESS_TEST_PG names (`.ci/run` starts one and sets it); without it, a throwaway server
is started here when initdb and pg_ctl are installed; otherwise, or with QHARNESS_TEST_PG=none, the PostgreSQL
cases skip, saying why.
Each test gets its own schema in a database made for this session, so tests never see each other's rows.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from pg_server import bindir, start, stop

ENV = "QHARNESS_TEST_PG"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[tuple[str, bool] | None]:
    """Return (superuser URL of a running PostgreSQL server, started here?), or None when none can be had."""
    given = os.environ.get(ENV, "").strip()
    if given and given != "none":
        yield given, False
        return
    if given == "none" or bindir() is None:
        yield None
        return
    # Not under pytest's tmp_path: that is private to us, and the server may run as another (unprivileged) user.
    directory = tempfile.mkdtemp(prefix="qharness-pg-")
    try:
        yield start(directory), True
    finally:
        stop(directory)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_database(pg_server: tuple[str, bool] | None) -> Iterator[str | None]:
    """Return the URL of a database made for this test session (dropped at its end), or None."""
    if pg_server is None:
        yield None
        return
    server, started_here = pg_server
    name = f"qh_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as c:
        c.execute(f"CREATE DATABASE {name}")
    base, _, _ = server.rpartition("/")
    yield f"{base}/{name}"
    if not started_here:  # a server started here is thrown away whole
        with psycopg.connect(server, autocommit=True) as c:
            c.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def pg_url(pg_database: str | None) -> str:
    """Return the URL of a fresh, empty schema on the PostgreSQL test server (skip without a server)."""
    if pg_database is None:
        pytest.skip(
            f"no PostgreSQL server ({ENV}=none, or no initdb/pg_ctl): set {ENV}=postgresql://... or install postgresql"
        )
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_database, autocommit=True) as c:
        c.execute(f"CREATE SCHEMA {schema}")
    return f"{pg_database}?options=-csearch_path%3D{schema}"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Return a new store location on each engine: a SQLite file path, then a PostgreSQL URL."""
    if request.param == "sqlite":
        return str(tmp_path / "results.sqlite")
    return request.getfixturevalue("pg_url")
