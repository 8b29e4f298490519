"""Tests of where a store is (paths and URLs, $QHARNESS_DB), checking it before a run, and keeping passwords out
of every message, repr and stored provenance."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest
from pg_server import PASSWORD, SECRET_ROLE
from store_support import RUN_KW, sql

from harness.store import (
    Store,
    StoreError,
    StoreURL,
    check_store,
    default_store_url,
    parse_store_url,
    redact,
    store_path,
)


def _with_credentials(url: str, password: str) -> str:
    """Return `url` logging in as the password-protected role with `password`."""
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{SECRET_ROLE}:{password}@{rest.split('@', 1)[1]}"


@pytest.fixture
def secret_url(pg_url: str) -> str:
    """Return a URL of the test schema that logs in with a password the server really checks."""
    try:
        psycopg.connect(_with_credentials(pg_url, "wrong-password"), connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        if "password authentication failed" in str(exc):
            return _with_credentials(pg_url, PASSWORD)
        raise
    pytest.skip(f"the test server does not check {SECRET_ROLE}'s password (start it with tests/store/pg_server.py)")


# -- locations ----------------------------------------------------------------------------------------


def test_paths_and_urls_name_the_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert parse_store_url("reports/q.db").path == Path("reports/q.db")
    assert parse_store_url("sqlite:///reports/q.db").path == Path("reports/q.db")
    assert parse_store_url(f"sqlite:///{tmp_path}/q.db").path == tmp_path / "q.db"
    assert parse_store_url("~/q.db").path == Path.home() / "q.db"
    assert store_path("sqlite:///a/b.db") == Path("a/b.db")
    for text in ("postgresql://lab@db.example/qh", "postgres://lab@db.example:5433/qh"):
        url = parse_store_url(text)
        assert url.path is None and url.dialect == "postgresql" and url.url.drivername == "postgresql+psycopg"
    assert str(parse_store_url("postgresql://lab@db.example:5433/qh")) == "postgresql://lab@db.example:5433/qh"
    with pytest.raises(StoreError, match="server database, not a SQLite file"):
        store_path("postgresql://lab@db.example/qh")
    with pytest.raises(StoreError, match="URL scheme 'mysql' is not supported"):
        parse_store_url("mysql://lab:pw@db/qh")
    with pytest.raises(StoreError, match="names no database"):
        parse_store_url("postgresql://lab@db.example")


def test_qharness_db_is_the_default_store(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QHARNESS_DB", raising=False)
    assert default_store_url() == "reports/qharness.db"
    monkeypatch.setenv("QHARNESS_DB", "  ")
    assert default_store_url() == "reports/qharness.db"
    monkeypatch.setenv("QHARNESS_DB", "postgresql://lab@db.example/qh")
    assert default_store_url() == "postgresql://lab@db.example/qh"


def test_redact_hides_every_url_password() -> None:
    assert (
        redact("see postgresql://u:p4ss@h:5432/db and sqlite:///x")
        == "see postgresql://u:***@h:5432/db and sqlite:///x"
    )
    assert redact("postgres://:only-pw@h/db") == "postgres://:***@h/db"
    assert redact("postgresql://u@h/db") == "postgresql://u@h/db"
    url = parse_store_url("postgresql://u:p4ss@h/db")
    assert "p4ss" not in f"{url} {url!r}" and "p4ss" in url.url.render_as_string(hide_password=False)


# -- SQLite files ---------------------------------------------------------------------------------------


def test_check_accepts_a_new_path_without_creating_it(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "q.db"
    assert check_store(target) == StoreURL(parse_store_url(target).url, target)
    assert not (tmp_path / "a").exists()


def test_check_refuses_unusable_sqlite_targets(tmp_path: Path) -> None:
    (tmp_path / "junk.db").write_bytes(b"PK\x03\x04 a zip file, not a database")
    with pytest.raises(StoreError, match=r"junk\.db is not a SQLite database \(it starts with b'PK"):
        check_store(tmp_path / "junk.db")
    with pytest.raises(StoreError, match="is a directory"):
        check_store(tmp_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="is a file, not a directory"):
        check_store(tmp_path / "file" / "q.db")


def test_check_reads_an_existing_store_without_writing(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    with Store(path) as s:
        s.start_run(**RUN_KW)
    before = path.stat().st_mtime_ns, path.stat().st_size
    assert check_store(f"sqlite:///{path}").path == path
    assert (path.stat().st_mtime_ns, path.stat().st_size) == before


# -- PostgreSQL servers -----------------------------------------------------------------------------------


def test_check_connects_once_to_a_server(pg_url: str) -> None:
    assert check_store(pg_url) == parse_store_url(pg_url)  # an empty database is fine: the first run makes it
    Store(pg_url).close()
    assert check_store(pg_url).dialect == "postgresql"


def test_an_unreachable_server_is_one_line_without_the_password() -> None:
    with pytest.raises(StoreError) as info:
        check_store("postgresql://lab:Hunter2-secret@127.0.0.1:1/qh")
    message = str(info.value)
    assert "\n" not in message and "Hunter2-secret" not in message
    assert message.startswith("results store postgresql://lab:***@127.0.0.1:1/qh cannot be used (")
    with pytest.raises(StoreError) as info:
        Store("postgresql://lab:Hunter2-secret@127.0.0.1:1/qh")
    assert "\n" not in str(info.value) and "Hunter2-secret" not in str(info.value)
    assert "127.0.0.1" in str(info.value) and "Connection refused" in str(info.value)


def test_a_wrong_password_is_one_line_without_either_password(secret_url: str) -> None:
    wrong = secret_url.replace(PASSWORD, "Wr0ng-guess-xyz")
    for attempt in (check_store, Store):
        with pytest.raises(StoreError) as info:
            attempt(wrong)
        message = str(info.value)
        assert "\n" not in message and "Wr0ng-guess-xyz" not in message and PASSWORD not in message
        assert "password authentication failed" in message and f"{SECRET_ROLE}:***@" in message


def test_the_password_is_never_stored_or_shown(secret_url: str) -> None:
    assert check_store(secret_url).dialect == "postgresql"
    with Store(secret_url) as s:
        rid = s.start_run(**RUN_KW, provenance={"results_db": secret_url, "argv": ["--results-db", secret_url]})
        s.update_provenance(rid, options={"db": secret_url})
        shown = f"{s.path} {s.url} {s.url!r} {s.run(rid)}"
    assert PASSWORD not in shown
    stored = sql(secret_url, "SELECT provenance FROM runs WHERE id = :rid", rid=rid)[0][0]
    assert PASSWORD not in stored and stored.count(f"{SECRET_ROLE}:***@") == 3


def test_a_role_that_may_not_create_tables_is_one_line(pg_url: str) -> None:
    role = f"qh_reader_{uuid.uuid4().hex[:8]}"
    sql(pg_url, f"CREATE ROLE {role} LOGIN PASSWORD 'Rd-only-pw'")
    url = _with_credentials(pg_url, "Rd-only-pw").replace(f"{SECRET_ROLE}:", f"{role}:")
    with pytest.raises(StoreError) as info:
        Store(url)  # an empty schema it may not create tables in
    message = str(info.value)
    assert "\n" not in message and "Rd-only-pw" not in message
    # Without rights on the schema, PostgreSQL finds no schema to create the tables in.
    assert message.startswith(f"results store {parse_store_url(url)} cannot be used (no schema has been selected")
    assert "CREATE TABLE" not in message
