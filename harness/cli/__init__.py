"""The `qharness` command line."""

import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from harness.cli.app import app
from harness.cli.exits import run_app

# Each module registers its commands on `app` when imported.
for _name in ("capacity", "profiles", "run", "history", "report", "emulate", "db", "interleave", "tomography", "plan"):
    importlib.import_module(f"harness.cli.{_name}")


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Entry point of the `qharness` script: run one command and exit with its status (`harness.errors.ExitCode`)."""
    sys.exit(run_app(app, argv))
