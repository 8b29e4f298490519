"""`qharness report` commands."""

from harness.cli.app import app  # noqa: F401
