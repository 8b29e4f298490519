"""The root `qharness` Typer application; command modules attach to it."""

import typer

app = typer.Typer(
    name="qharness",
    help="Regression harness for quantum-link firmware: measure, compare, report.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
