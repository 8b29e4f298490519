"""Every row of the exit-code table of docs/reference.md, through the real `qharness` process.

Row 2 (interrupted) is tested per path in test_interrupts.py, and the unusable stores of row 4 in
test_bad_store.py.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from cli_helpers import PROFILE, QHARNESS, one_line, qharness, query, run_args

from harness.errors import ExitCode

DOCS = Path(__file__).resolve().parents[2] / "docs" / "reference.md"
BAD_PROFILE = Path(__file__).resolve().parents[1] / "profiles" / "bad" / "negative-loss.yaml"


def verdicts(summary: Path) -> set[str]:
    """The top-level verdicts of a --harness-summary file."""
    data = json.loads(summary.read_text())
    return {s["verdict"] for s in (data if isinstance(data, list) else [data])}


def test_the_reference_table_has_one_row_per_exit_code() -> None:
    text = DOCS.read_text(encoding="utf-8")
    table = text[text.index("## Exit codes") :].split("\n## ")[0]
    rows = [int(m) for m in re.findall(r"^\| (\d) \|", table, flags=re.MULTILINE)]
    assert rows == [code.value for code in ExitCode]


def test_0_no_regression(measured_store: tuple[Path, subprocess.CompletedProcess]) -> None:
    db, res = measured_store
    assert res.returncode == ExitCode.OK, res.stdout[-3000:] + res.stderr
    assert verdicts(db.parent / "summary.json").isdisjoint({"REGRESSION", "ERROR"})
    statuses = {
        r["role"]: r["status"] for r in query(db, "SELECT json_extract(provenance, '$.role') AS role, status FROM runs")
    }
    assert statuses == {"candidate": "passed", "baseline": "passed"}


def test_1_regression(measured_store: tuple[Path, subprocess.CompletedProcess], tmp_path: Path) -> None:
    db = tmp_path / "qharness.db"
    shutil.copy(measured_store[0], db)  # the baseline is already measured: only the candidate runs
    res = qharness(*run_args(db, tmp_path, "--build", "2.5.0-rc1"), cwd=tmp_path)
    assert res.returncode == ExitCode.REGRESSION, res.stdout[-3000:] + res.stderr
    assert verdicts(tmp_path / "summary.json") == {"REGRESSION"}
    assert "Traceback" not in res.stdout + res.stderr
    gate = qharness(
        "compare", "-p", PROFILE, "2.3.0", "2.5.0-rc1", "--db", str(db), "--fail-on-regression", cwd=tmp_path
    )
    assert gate.returncode == ExitCode.REGRESSION, gate.stderr
    assert "overall: REGRESSION" in gate.stdout


def capacity_with(setup: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run the real `qharness capacity` entry point after `setup` (Python) arranged what happens inside it."""
    script = f"{setup}\nfrom harness.cli import main\nmain()\n"
    args = ["capacity", "--channel", "dephasing", "--param", "p=0.1"]
    return subprocess.run([QHARNESS[0], "-c", script, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("signum", ["SIGINT", "SIGTERM"])
def test_2_a_signal_during_any_command_is_one_line(tmp_path: Path, signum: str) -> None:
    # The signal arrives while `capacity` computes: the command is real, only its timing is arranged.
    res = capacity_with(
        "import os, signal, time\nimport harness.cli.capacity as cap\n"
        f"cap._compute = lambda *a: (os.kill(os.getpid(), signal.{signum}), time.sleep(30))",
        tmp_path,
    )
    assert res.returncode == ExitCode.INTERRUPTED
    assert one_line(res) == f"qharness: interrupted by {signum}"


def test_3_a_bug_prints_its_traceback(tmp_path: Path) -> None:
    res = capacity_with(
        "import harness.analysis.capacities as caps\ncaps.CLOSED_FORMS['dephasing'] = ('p', lambda p: 1 / 0)", tmp_path
    )
    assert res.returncode == ExitCode.INTERNAL_ERROR
    assert "Traceback (most recent call last)" in res.stderr and "ZeroDivisionError" in res.stderr
    assert res.stderr.rstrip().splitlines()[-1].startswith("qharness: internal error")


@pytest.mark.parametrize(
    ("suite", "needle"),
    [
        # pytest's own internal error (a hook that raises) passes through as 3
        ("conftest.py", "def pytest_collection_modifyitems(items):\n    raise RuntimeError('a bug in a hook')\n"),
        # pytest killed by a crash signal is a bug, not a verdict
        ("test_crash.py", "import os, signal\n\ndef test_crash():\n    os.kill(os.getpid(), signal.SIGSEGV)\n"),
    ],
    ids=["internal-error", "crash"],
)
def test_3_a_crashing_pytest(tmp_path: Path, suite: str, needle: str) -> None:
    (tmp_path / "test_suites").mkdir()
    (tmp_path / "test_suites" / suite).write_text(needle)
    (tmp_path / "test_suites" / "test_ok.py").write_text("def test_ok():\n    pass\n")
    res = qharness(*run_args(tmp_path / "q.db", tmp_path), cwd=tmp_path, timeout=120)
    assert res.returncode == ExitCode.INTERNAL_ERROR, res.stdout[-2000:] + res.stderr
    if suite == "test_crash.py":
        assert "qharness run: pytest was ended by SIGSEGV; " in res.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["run", "--profiel", PROFILE], "qharness run: Missing option '--profile'"),
        (["run", "-p", PROFILE, "--seed", "abc"], "Invalid value for '--seed'"),
        (["run", "-p", PROFILE, "--alpha"], "Option '--alpha' requires an argument"),
        (["compare", "--nope"], "No such option: --nope"),
        (["no-such-command"], "No such command 'no-such-command'"),
        (["run", "-p", "no-such-profile"], "no profile named 'no-such-profile'"),
        (["run", "-p", str(BAD_PROFILE)], "link.loss_db: out of range"),
        (["run", "-p", PROFILE, "--build", "9.9.9"], "unknown build '9.9.9'"),
        (["history", "-p", PROFILE, "--db", "nowhere/q.db"], "does not exist"),
        (["capacity", "--channel", "bitflip", "--param", "p=0.1"], "unknown channel"),
        (["profiles", "show", PROFILE, "--build", "9.9.9"], "unknown build '9.9.9'"),
    ],
    ids=lambda v: v if isinstance(v, str) else " ".join(v[:2]),
)
def test_4_usage_error_is_one_line(tmp_path: Path, args: list[str], needle: str) -> None:
    res = qharness(*args, cwd=tmp_path, timeout=60)
    assert res.returncode == ExitCode.USAGE_ERROR, res.stderr
    assert needle in one_line(res)  # one line: pytest was never started (it would have printed its command)
    assert list(tmp_path.iterdir()) == []  # nothing written, no store created


def test_4_a_bare_command_group_prints_its_help(tmp_path: Path) -> None:
    for args in ([], ["profiles"]):
        res = qharness(*args, cwd=tmp_path, timeout=60)
        assert res.returncode == ExitCode.USAGE_ERROR
        assert res.stderr.startswith(f"Usage: qharness {' '.join(args)}".rstrip() + " [OPTIONS] COMMAND")


def test_5_nothing_collected(tmp_path: Path) -> None:
    res = qharness(*run_args(tmp_path / "q.db", tmp_path, "-k", "no_such_test"), cwd=tmp_path)
    assert res.returncode == ExitCode.NO_TESTS, res.stdout[-2000:] + res.stderr
    assert "deselected" in res.stdout
