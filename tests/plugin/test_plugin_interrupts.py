"""Ctrl-C and SIGTERM in the middle of a measurement: exit 2, the run aborted, its raw records kept, no traceback."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from suite_facts import SUITES

from harness.pytest_plugin.interrupts import TerminateAsInterrupt


def raw_records_of_running_run(db: Path) -> int:
    """Raw records of the store's running runs, read without writing (0 while the store is not there yet)."""
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            row = conn.execute(
                "SELECT COUNT(*) FROM raw_records r JOIN runs u ON u.id = r.run_id WHERE u.status = 'running'"
            ).fetchone()
        conn.close()
    except sqlite3.Error:
        return 0  # created but not yet initialised
    return int(row[0])


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_mid_measurement_aborts_the_run_and_keeps_its_records(tmp_path: Path, signum: int):
    db, summary = tmp_path / "q.db", tmp_path / "summary.json"
    cmd = [sys.executable, "-m", "pytest", SUITES, "-p", "no:cacheprovider", "-q", "--budget", "release"]
    cmd += ["--device-profile", "aer-reference", "--results-db", str(db), "--harness-summary", str(summary)]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while (seen := raw_records_of_running_run(db)) == 0 and time.monotonic() < deadline:
            assert proc.poll() is None, "pytest ended before it measured anything"
            time.sleep(0.05)
        assert seen >= 1, "no raw record of a running run within 120 s"
        proc.send_signal(signum)
        out, _ = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out
    assert "Traceback" not in out, out
    with sqlite3.connect(db) as conn:
        statuses = [r[0] for r in conn.execute("SELECT status FROM runs")]
        kept = conn.execute("SELECT COUNT(*) FROM raw_records").fetchone()[0]
    conn.close()
    assert statuses and set(statuses) == {"aborted"}, statuses
    assert kept >= seen >= 1
    written = json.loads(summary.read_text())
    assert written["status"] == "aborted" and "aborted (interrupted; raw records kept)" in written["headline"]
    assert "aborted (interrupted; raw records kept)" in out


def test_terminate_as_interrupt_restores_the_handler_it_replaced():
    before = signal.getsignal(signal.SIGTERM)
    guard = TerminateAsInterrupt()
    assert guard.install() and guard.install()  # a second install keeps the first's saved handler
    with pytest.raises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGTERM)
    guard.uninstall()
    assert signal.getsignal(signal.SIGTERM) is before
