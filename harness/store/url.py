"""Which database a --results-db value names: a SQLite file (a path or sqlite:///path) or a PostgreSQL URL.

A password may be part of a PostgreSQL URL (better: ~/.pgpass or PGPASSWORD, which libpq reads itself); it is
kept only inside the engine and never appears in a message, a repr or the stored provenance (`redact`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL

from harness.store.errors import StoreError

DEFAULT_STORE = "reports/qharness.db"
ENV_VAR = "QHARNESS_DB"
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
# user:password@ in any URL-like text; the password part is replaced before text is shown or stored.
_CREDENTIALS = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:)([^@\s/]+)@")
_POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")


def default_store_url() -> str:
    """Return the store to use when no --results-db/--db is given: $QHARNESS_DB, else reports/qharness.db."""
    return os.environ.get(ENV_VAR, "").strip() or DEFAULT_STORE


def redact(text: str) -> str:
    """Return `text` with the password of every URL in it replaced by ***."""
    return _CREDENTIALS.sub(r"\1***@", text)


def redact_values(obj: Any) -> Any:
    """Return a JSON-like value with every string passed through `redact` (keys included)."""
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, dict):
        return {redact_values(k): redact_values(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [redact_values(v) for v in obj]
    return obj


@dataclass(frozen=True)
class StoreURL:
    """A parsed results-store location; `str()` is safe to print (no password)."""

    url: URL
    path: Path | None  # the SQLite file, None for a server database

    @property
    def dialect(self) -> str:
        """Return 'sqlite' or 'postgresql'."""
        return self.url.get_backend_name()

    @property
    def is_sqlite(self) -> bool:
        """True for an embedded SQLite file."""
        return self.path is not None

    def exists(self) -> bool:
        """True when there is a store to read: the SQLite file exists, or it is a server database."""
        return self.path is None or self.path.exists()

    def __str__(self) -> str:
        """Return the SQLite path, or the server URL with its password hidden."""
        if self.path is not None:
            return str(self.path)
        return self.url.set(drivername=self.dialect).render_as_string(hide_password=True)

    def __repr__(self) -> str:
        """Return a repr without the password."""
        return f"StoreURL({str(self)!r})"

    def scrub(self, message: str) -> str:
        """Return `message` with this URL's password (and any URL password) removed, on one line."""
        text = " ".join(str(message).split())
        password = self.url.password
        if password:
            text = text.replace(str(password), "***")
        return redact(text)


def parse_store_url(target: str | Path | StoreURL) -> StoreURL:
    """Return the StoreURL of a path, sqlite:///path or postgresql://...; another scheme is a StoreError."""
    if isinstance(target, StoreURL):
        return target
    text = str(target)
    m = _SCHEME.match(text)
    if m is None:
        path = Path(text).expanduser()
        return StoreURL(URL.create("sqlite", database=str(path)), path)
    scheme = m.group(1).lower()
    if scheme == "sqlite":
        # SQLAlchemy's convention: sqlite:///relative/path and sqlite:////absolute/path.
        rest = text[m.end() :].split("?", 1)[0]
        path = Path(rest[1:] if rest.startswith("/") else rest).expanduser()
        return StoreURL(URL.create("sqlite", database=str(path)), path)
    if scheme in _POSTGRES_SCHEMES:
        try:
            url = sa.make_url(text)
        except (sa.exc.ArgumentError, ValueError) as exc:
            raise StoreError(f"results store URL {redact(text)!r} is malformed ({redact(str(exc))})") from None
        if not url.database:
            raise StoreError(
                f"results store {url.render_as_string(hide_password=True)} names no database; "
                "use postgresql://USER@HOST[:PORT]/DATABASE"
            )
        return StoreURL(url.set(drivername="postgresql+psycopg"), None)
    raise StoreError(
        f"results store {redact(text)!r}: the URL scheme {scheme!r} is not supported; give a SQLite file path "
        "(e.g. reports/qharness.db), sqlite:///PATH or postgresql://USER@HOST/DATABASE"
    )


def store_path(target: str | Path) -> Path:
    """Return the SQLite file a --results-db value names; a server URL is a StoreError (it has no file)."""
    url = parse_store_url(target)
    if url.path is None:
        raise StoreError(f"results store {url} is a server database, not a SQLite file")
    return url.path
