"""Helpers of the `qharness` command-line tests: real processes, real signals, loopback only."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

QHARNESS = [sys.executable, "-m", "harness.cli"]
PROFILE = "aer-reference"
QUICK = ["--budget", "quick"]


def qharness(*args: str, cwd: Path, timeout: float = 180, **kwargs: object) -> subprocess.CompletedProcess:
    """Run `qharness ARGS` in a new interpreter in `cwd` and return what it did."""
    return subprocess.run(
        [*QHARNESS, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False, **kwargs
    )


def run_args(db: Path, tmp: Path, *more: str) -> list[str]:
    """The arguments of a quick `qharness run` of aer-reference into store `db`, summary in `tmp`."""
    return ["run", "-p", PROFILE, *QUICK, "--db", str(db), "--summary", str(tmp / "summary.json"), *more]


def one_line(res: subprocess.CompletedProcess) -> str:
    """The single stderr line of a failed command; there is no traceback anywhere."""
    assert "Traceback" not in res.stderr + res.stdout, res.stderr
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, res.stderr
    return lines[0]


def read_only(db: Path) -> sqlite3.Connection:
    """A read-only connection to a results store (reading it never marks or migrates anything)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    conn.row_factory = sqlite3.Row
    return conn


def query(db: Path, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
    """Rows of one read-only query on the store at `db`."""
    conn = read_only(db)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def wait_for_measuring(db: Path, proc: subprocess.Popen, timeout: float = 120) -> sqlite3.Row:
    """Wait until the store holds a 'running' run with at least one raw record; return (id, pid, records)."""
    sql = (
        "SELECT r.id, r.pid, count(x.id) AS records FROM runs r JOIN raw_records x ON x.run_id = r.id "
        "WHERE r.status = 'running' GROUP BY r.id ORDER BY r.id LIMIT 1"
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"qharness ended (exit {proc.returncode}) before measuring"
        if db.exists():
            try:
                rows = query(db, sql)
            except sqlite3.OperationalError:  # the store is being created: no tables yet, or locked
                rows = []
            if rows:
                return rows[0]
        time.sleep(0.05)
    raise AssertionError(f"no running run with a raw record in {db} after {timeout} s")


def snapshot(path: Path) -> tuple:
    """What must not change under a refused store: the bytes and mtime of a file, or a directory's listing."""
    if path.is_dir():
        return ("dir", sorted(os.listdir(path)), path.stat().st_mtime_ns)
    return ("file", path.read_bytes(), path.stat().st_mtime_ns)
