"""`qharness emulate` commands."""

from harness.cli.app import app  # noqa: F401
