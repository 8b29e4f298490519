"""The root `qharness` Typer application, and what its commands share: groups, usage exits, the store option."""

from __future__ import annotations

import sys
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from harness.errors import ExitCode

# None: the store named by $QHARNESS_DB, else reports/qharness.db (harness.store.default_store_url).
DEFAULT_DB: str | None = None

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        "--results-db",
        metavar="PATH|URL",
        help="results store: a SQLite file, sqlite:///PATH or postgresql://USER@HOST/DB "
        "(default: $QHARNESS_DB, else reports/qharness.db)",
    ),
]

# A bare command group prints its help; errors are one line, never a rich traceback. Plain (click) help, not rich
# panels: rich cuts long option names such as --baseline-build at 80 columns, click wraps the text beside them.
_SETTINGS: dict[str, Any] = {
    "no_args_is_help": True,
    "add_completion": False,
    "pretty_exceptions_enable": False,
    "rich_markup_mode": None,
}

app = typer.Typer(
    name="qharness", help="Regression harness for quantum-link firmware: measure, compare, report.", **_SETTINGS
)


def command_group(name: str, description: str) -> typer.Typer:
    """Return a new `qharness NAME ...` command group attached to the root application."""
    group = typer.Typer(name=name, help=description, **_SETTINGS)
    app.add_typer(group, name=name)
    return group


def usage_exit(*lines: str) -> NoReturn:
    """Print the lines on stderr and exit with status 4 (a usage or data error, never a traceback)."""
    for line in lines:
        print(line, file=sys.stderr)
    raise typer.Exit(ExitCode.USAGE_ERROR)


def fail(command: str, message: str) -> NoReturn:
    """Print 'qharness COMMAND: MESSAGE' on stderr and exit with status 4."""
    usage_exit(f"qharness {command}: {message}")


def console() -> Console:
    """Return a console wide enough that tables are not folded when piped."""
    return Console(width=200 if not sys.stdout.isatty() else None)


def open_db(command: str, db: str | None) -> Any:
    """Return the Store at `db` ($QHARNESS_DB by default), or exit 4 when it is missing or unusable (never created)."""
    from harness.report.build import open_store
    from harness.report.data import ReportError
    from harness.store import StoreError, check_store, default_store_url, parse_store_url

    try:
        url = parse_store_url(db or default_store_url())
        if url.exists():
            check_store(url)  # one line for junk, a directory, a newer schema, no permission; never writes
        return open_store(url)
    except (ReportError, StoreError) as exc:
        fail(command, str(exc))
