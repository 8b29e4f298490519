"""Check a results store before a run touches any device: usable, or one line saying why (and nothing written)."""

from __future__ import annotations

import os
import re
import sqlite3
from pathlib import Path

from harness.store.errors import StoreError
from harness.store.schema import SCHEMA_VERSION

SQLITE_HEADER = b"SQLite format 3\x00"
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def store_path(target: str | Path) -> Path:
    """Return the SQLite file a --results-db value names (a path or sqlite:///path); another URL scheme fails."""
    text = str(target)
    m = _SCHEME.match(text)
    if m is None:
        return Path(text).expanduser()
    scheme = m.group(1).lower()
    if scheme != "sqlite":
        raise StoreError(
            f"results store {text!r}: the URL scheme {scheme!r} is not supported; give a SQLite file path "
            "(e.g. reports/qharness.db) or sqlite:///PATH"
        )
    # SQLAlchemy's convention: sqlite:///relative/path and sqlite:////absolute/path.
    rest = text[m.end() :]
    return Path(rest[1:] if rest.startswith("/") else rest).expanduser()


def _nearest_existing(path: Path) -> Path:
    """Return `path` or its nearest existing ancestor."""
    current = path
    while not current.exists() and current != current.parent:
        current = current.parent
    return current


def _schema_version(path: Path) -> int | None:
    """Return the store's schema version read without writing (None for an empty database or no meta table)."""
    # immutable: read without creating -wal/-shm files beside the store (a check never writes).
    uri = f"file:{path}?mode=ro&immutable=1"
    try:
        conn = sqlite3.connect(uri, uri=True)
    except sqlite3.Error as exc:
        raise StoreError(f"results store {path} cannot be opened ({exc}); check the path and permissions") from exc
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if tables and "meta" not in tables:
            raise StoreError(
                f"results store {path} is a SQLite database but not a qharness results store (no 'meta' table); "
                "point --results-db at a qharness results file or a new path"
            )
        if not tables:
            return None
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return int(row[0]) if row else None
    except sqlite3.DatabaseError as exc:
        raise StoreError(
            f"results store {path} is not a usable SQLite database ({exc}); "
            "point --results-db at a qharness results file or a new path"
        ) from exc
    finally:
        conn.close()


def _check_existing(path: Path) -> None:
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
    found = _schema_version(path) if head else None
    if found is not None and found > SCHEMA_VERSION:
        raise StoreError(
            f"results store {path} has schema version {found}, this qharness understands up to {SCHEMA_VERSION}: "
            "upgrade qharness"
        )


def check_store(target: str | Path) -> Path:
    """Return the SQLite path of a usable results store, or raise StoreError (a usage error) saying why; never writes.

    A missing file is usable when its nearest existing ancestor is a writable directory: the store creates the
    missing directories and the file on first use.
    """
    path = store_path(target)
    if path.exists():
        _check_existing(path)
        directory = path.parent
    else:
        directory = _nearest_existing(path.parent)
        if not directory.is_dir():
            raise StoreError(f"results store {path}: {directory} is a file, not a directory; choose another path")
    # SQLite's WAL keeps -wal and -shm files beside the store, so the directory must be writable too.
    if not os.access(directory, os.W_OK | os.X_OK):
        raise StoreError(f"results store {path}: directory {directory} is not writable; choose a writable location")
    return path
