"""`--help` of every `qharness` command at 80 columns: every option name whole, no line wider than the terminal."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import typer
from cli_helpers import qharness
from typer.testing import CliRunner

from harness.cli import app

COLUMNS = 80


def commands(command: object = None, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], list[str]]:
    """Every command path of the application with the option strings it declares (--name, -n, --no-name)."""
    command = command or typer.main.get_command(app)
    found = {}
    subcommands = getattr(command, "commands", None)
    if subcommands:
        for name, sub in subcommands.items():
            found.update(commands(sub, (*path, name)))
        return found
    found[path] = [o for p in command.params if p.param_type_name == "option" for o in (*p.opts, *p.secondary_opts)]
    return found


COMMANDS = commands()


def test_the_walk_finds_every_command() -> None:
    assert {" ".join(p) for p in COMMANDS} >= {"run", "report", "compare", "capacity", "profiles validate"}
    assert {"--baseline-build", "--firmware-build", "--harness-summary", "--results-db"} <= set(COMMANDS[("run",)])


def check_help(path: tuple[str, ...], text: str) -> None:
    """Assert that a command's help names each of its options whole and fits in COLUMNS."""
    assert text.startswith(f"Usage: qharness {' '.join(path)} ")
    for option in COMMANDS[path]:
        assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text), f"{option} is not whole in:\n{text}"
    assert "…" not in text
    assert max(map(len, text.splitlines())) <= COLUMNS


@pytest.mark.parametrize("path", [("run",), ("report",)], ids=" ".join)
def test_help_in_a_real_80_column_process(tmp_path: Path, path: tuple[str, ...]) -> None:
    res = qharness(*path, "--help", cwd=tmp_path, timeout=60, env={**os.environ, "COLUMNS": str(COLUMNS)})
    assert res.returncode == 0, res.stderr
    check_help(path, res.stdout)


@pytest.mark.parametrize("path", list(COMMANDS), ids=" ".join)
def test_help_of_every_command_at_80_columns(path: tuple[str, ...]) -> None:
    res = CliRunner().invoke(app, [*path, "--help"], prog_name="qharness", env={"COLUMNS": str(COLUMNS)})
    assert res.exit_code == 0, res.output
    check_help(path, res.stdout)


def test_capacity_help_states_the_choi_convention(tmp_path: Path) -> None:
    res = qharness("capacity", "--help", cwd=tmp_path, timeout=60, env={**os.environ, "COLUMNS": str(COLUMNS)})
    text = " ".join(res.stdout.split())
    assert "J = sum_ij |i><j| ⊗ N(|i><j|)" in text
    assert "input factor first" in text and "Tr J = 2" in text
    reference = " ".join((Path(__file__).resolve().parents[2] / "docs" / "reference.md").read_text().split())
    assert "J = sum_ij |i><j| ⊗ N(|i><j|)" in reference and "`Tr J = 2`" in reference
