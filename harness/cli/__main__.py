"""`python -m harness.cli` runs the `qharness` command line."""

from harness.cli import main

main()
