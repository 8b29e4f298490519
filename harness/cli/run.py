"""`qharness run` commands."""

from harness.cli.app import app  # noqa: F401
