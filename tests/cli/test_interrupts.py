"""`qharness run` stopped mid-measurement: by SIGINT or SIGTERM to qharness alone (a CI runner cancelling a job), to
its process group (a terminal's Ctrl-C), or by SIGKILL to qharness. Exit 2, one line, the run aborted with its raw
records, no pytest left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from cli_helpers import QHARNESS, query, run_args, wait_for_measuring

from harness.errors import ExitCode
from harness.store import pid_alive


def start(tmp: Path, db: Path, *more: str) -> subprocess.Popen:
    """Start a quick `qharness run` in its own process group, its output going to files in `tmp`."""
    with (tmp / "stdout.txt").open("w") as out, (tmp / "stderr.txt").open("w") as err:
        return subprocess.Popen(
            [*QHARNESS, *run_args(db, tmp, *more)], cwd=tmp, stdout=out, stderr=err, start_new_session=True
        )


def gone(pid: int, timeout: float = 30) -> bool:
    """Wait up to `timeout` s for process `pid` to be gone (no process, or a zombie); return whether it is."""
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=lambda s: signal.Signals(s).name)
@pytest.mark.parametrize("target", ["parent", "group"])
def test_a_signal_stops_the_run_with_exit_2(tmp_path: Path, target: str, signum: int) -> None:
    db = tmp_path / "qharness.db"
    proc = start(tmp_path, db, "--report", str(tmp_path / "report"))
    try:
        running = wait_for_measuring(db, proc)
        assert running["pid"] != proc.pid  # the run belongs to the pytest child, not to qharness
        if target == "parent":
            os.kill(proc.pid, signum)
        else:
            os.killpg(proc.pid, signum)  # the child has its own session: only qharness gets it
        rc = proc.wait(timeout=90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    out = (tmp_path / "stdout.txt").read_text()
    err = (tmp_path / "stderr.txt").read_text()
    assert rc == ExitCode.INTERRUPTED, err
    assert "Traceback" not in out + err
    named = [line for line in err.splitlines() if "interrupted" in line]
    assert named == [
        f"qharness run: interrupted by {signal.Signals(signum).name}; run {running['id']} marked aborted, "
        "raw records kept; no report written"
    ], err
    assert not (tmp_path / "report").exists()
    (run,) = query(db, "SELECT status, pid FROM runs WHERE id = ?", (running["id"],))
    assert run["status"] == "aborted"
    (kept,) = query(db, "SELECT count(*) AS n FROM raw_records WHERE run_id = ?", (running["id"],))
    assert kept["n"] >= running["records"] >= 1
    assert not query(db, "SELECT id FROM runs WHERE status = 'running'")
    assert gone(run["pid"], timeout=0)


def test_the_child_dies_with_a_killed_qharness(tmp_path: Path) -> None:
    db = tmp_path / "qharness.db"
    proc = start(tmp_path, db)
    try:
        running = wait_for_measuring(db, proc)
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    os.kill(proc.pid, signal.SIGKILL)  # no handler runs: only the kernel can tell the child
    assert proc.wait(timeout=30) == -signal.SIGKILL
    try:
        assert gone(running["pid"]), "pytest outlived a SIGKILLed qharness"
    finally:
        if pid_alive(running["pid"]):
            os.kill(running["pid"], signal.SIGKILL)
    (run,) = query(db, "SELECT status FROM runs WHERE id = ?", (running["id"],))
    assert run["status"] == "aborted"  # the child got SIGTERM and marked its run before it ended
