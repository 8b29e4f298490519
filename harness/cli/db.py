"""`qharness db upgrade` and `qharness db current`: the results store's schema version, and upgrading it."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from harness.cli.app import command_group
from harness.errors import ExitCode

if TYPE_CHECKING:
    from harness.store.versions import StoredVersion

db_app = command_group("db", "Show or upgrade the results store's schema (SQLite file or PostgreSQL database).")

StoreOption = Annotated[
    str | None,
    typer.Option(
        "--db", "--results-db", help="results store: a SQLite path or postgresql://USER@HOST/DB (default: $QHARNESS_DB)"
    ),
]


def _fail(command: str, message: str) -> NoReturn:
    """Print 'qharness db COMMAND: MESSAGE' on stderr and exit with the usage-error status."""
    print(f"qharness db {command}: {message}", file=sys.stderr)
    raise typer.Exit(ExitCode.USAGE_ERROR)


@db_app.command("upgrade")
def upgrade(db: StoreOption = None) -> None:
    """Create the store, or upgrade it in place to this release's schema (nothing stored is lost)."""
    from harness.store import SCHEMA_VERSION, StoreError, default_store_url, parse_store_url
    from harness.store.versions import upgrade_store

    try:
        url = parse_store_url(db or default_store_url())
        before, after = upgrade_store(url)
    except StoreError as exc:
        _fail("upgrade", str(exc))
    if before is None:
        print(f"results store {url}: created at schema version {after}")
    elif before == after:
        print(f"results store {url}: already at schema version {SCHEMA_VERSION}")
    else:
        print(f"results store {url}: upgraded from schema version {before} to {after}")


def _state(found: StoredVersion, sqlite: bool) -> str:
    """Return what a stored version means for this release, in words."""
    from harness.store import SCHEMA_VERSION

    if found.fresh:
        return "empty (the first run, or `qharness db upgrade`, creates the tables)"
    if found.newer:
        return f"newer than this qharness (which understands up to {SCHEMA_VERSION}): upgrade qharness"
    if found.current:
        return "current"
    return "behind: run `qharness db upgrade`" + (
        " (or just open it: a SQLite store upgrades on open)" if sqlite else ""
    )


@db_app.command("current")
def current(db: StoreOption = None) -> None:
    """Print the store's schema version and whether this release can use it as it is."""
    from harness.store import StoreError, default_store_url, parse_store_url
    from harness.store.versions import store_version

    try:
        url = parse_store_url(db or default_store_url())
        found = store_version(url)
    except StoreError as exc:
        _fail("current", str(exc))
    version = found.version if found.version is not None else found.revision
    print(
        f"results store {url}: schema version {version if version is not None else '-'}, {_state(found, url.is_sqlite)}"
    )
