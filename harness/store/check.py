"""Check a results store before a run touches any device: usable, or one line saying why (and nothing written).

SQLite: the file (or the directory that will hold it) must be readable and writable, a SQLite database, a qharness
store, and not newer than this release (an older one is upgraded when the store opens). PostgreSQL: one
connection checks that the server answers, the credentials work, and the schema is this release's (or the
database is empty); a message never contains the password.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from urllib.parse import quote

import sqlalchemy as sa

from harness.store.connection import make_engine, unusable
from harness.store.errors import StoreError
from harness.store.url import StoreURL, parse_store_url
from harness.store.versions import StoredVersion, behind_message, newer_message, read_version

SQLITE_HEADER = b"SQLite format 3\x00"


def _nearest_existing(path: Path) -> Path:
    """Return `path` or its nearest existing ancestor."""
    current = path
    while not current.exists() and current != current.parent:
        current = current.parent
    return current


def _read_only_version(url: StoreURL) -> StoredVersion:
    """Return the stored version of the database at `url`, reading without writing (SQLite: opened read-only)."""
    if url.path is not None:
        # immutable: read without creating -wal/-shm files beside the store (a check never writes).
        target = f"file:{quote(str(url.path))}?mode=ro&immutable=1"
        engine = sa.create_engine("sqlite://", creator=lambda: sqlite3.connect(target, uri=True))
    else:
        engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return read_version(conn, str(url))
    except sa.exc.DBAPIError as exc:
        raise StoreError(unusable(url, exc)) from None
    finally:
        engine.dispose()


def _check_version(url: StoreURL) -> None:
    """Raise StoreError when the store is newer than this release, or a server store needs `qharness db upgrade`."""
    found = _read_only_version(url)
    if found.newer:
        raise StoreError(newer_message(str(url), found))
    if not url.is_sqlite and not found.fresh and not found.current:
        raise StoreError(behind_message(str(url), found))


def _check_file(url: StoreURL, path: Path) -> None:
    """Raise StoreError unless the existing file at `path` is a qharness store this release can read and write."""
    if path.is_dir():
        raise StoreError(f"results store {path} is a directory: pass the path of a .db file inside it")
    if not os.access(path, os.R_OK | os.W_OK):
        raise StoreError(f"results store {path} is not readable and writable by this user; fix its permissions")
    with path.open("rb") as fh:
        head = fh.read(len(SQLITE_HEADER))
    if head and head != SQLITE_HEADER:
        raise StoreError(
            f"results store {path} is not a SQLite database (it starts with {head[:8]!r}); "
            "point --results-db at a qharness results file or a new path"
        )
    if head:
        _check_version(url)


def check_store(target: str | Path | StoreURL) -> StoreURL:
    """Return the StoreURL of a usable results store, or raise StoreError (a usage error) saying why; never writes.

    A missing SQLite file is usable when its nearest existing ancestor is a writable directory: the store creates
    the missing directories and the file on first use.
    """
    url = parse_store_url(target)
    if url.path is None:
        _check_version(url)
        return url
    path = url.path
    if path.exists():
        _check_file(url, path)
        directory = path.parent
    else:
        directory = _nearest_existing(path.parent)
        if not directory.is_dir():
            raise StoreError(f"results store {path}: {directory} is a file, not a directory; choose another path")
    # SQLite's WAL keeps -wal and -shm files beside the store, so the directory must be writable too.
    if not os.access(directory, os.W_OK | os.X_OK):
        raise StoreError(f"results store {path}: directory {directory} is not writable; choose a writable location")
    return url
