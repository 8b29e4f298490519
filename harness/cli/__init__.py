"""The `qharness` command line."""

import importlib

from harness.cli.app import app

# Each module registers its commands on `app` when imported.
for _name in ("capacity", "profiles", "run", "history", "report", "emulate"):
    importlib.import_module(f"harness.cli.{_name}")


def main() -> None:
    """Entry point of the `qharness` script."""
    app()
