"""How `qharness run` stops its pytest child, with a stand-in child whose behaviour on SIGINT is known."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

# The supervisor runs in its own interpreter: it blocks signals and waits for them, which pytest's process must not.
SUPERVISOR = """
import sys
from harness.cli.child import run_child
child = [sys.executable, "-c", sys.argv[1], sys.argv[2]]
r = run_child(child, grace_s=float(sys.argv[3]))
print(r.returncode, r.signum, r.killed)
"""

# Counts the SIGINTs it gets in a file; exits 2 a moment after the first unless it ignores them; else exits 0 after
# `lifetime` seconds.
CHILD = """
import os, signal, sys, time
from pathlib import Path
log = Path(sys.argv[1])
def on_int(signum, frame):
    with log.open("a") as f:
        f.write("INT\\n")
signal.signal(signal.SIGINT, on_int)
log.with_suffix(".ready").write_text(str(os.getpid()))
deadline = time.monotonic() + {lifetime}
while time.monotonic() < deadline:
    time.sleep(0.05)
    if not {ignore} and log.exists():
        time.sleep(0.5)  # cleaning up, while qharness may get more signals
        sys.exit(2)
"""


def supervise(
    tmp: Path, ignore: bool, grace_s: float, signals: list[int], lifetime: float = 30
) -> tuple[str, int, Path]:
    """Start a supervisor and its stand-in child, send it `signals` once the child is up; return its output."""
    log = tmp / "child.log"
    proc = subprocess.Popen(
        [sys.executable, "-c", SUPERVISOR, CHILD.format(ignore=ignore, lifetime=lifetime), str(log), str(grace_s)],
        stdout=subprocess.PIPE,
        text=True,
    )
    ready = log.with_suffix(".ready")
    deadline = time.monotonic() + 30
    while not ready.exists():
        assert proc.poll() is None and time.monotonic() < deadline, "the stand-in child never started"
        time.sleep(0.02)
    for signum in signals:
        os.kill(proc.pid, signum)
        time.sleep(0.1)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    return out.strip(), int(ready.read_text()), log


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=lambda s: signal.Signals(s).name)
def test_one_sigint_is_forwarded_however_many_signals_come(tmp_path: Path, signum: int) -> None:
    out, _, log = supervise(tmp_path, ignore=False, grace_s=10, signals=[signum, signal.SIGINT, signal.SIGTERM])
    assert out == f"2 {int(signum)} False"
    assert log.read_text() == "INT\n"


def test_a_child_that_ignores_sigint_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    start = time.monotonic()
    out, child, log = supervise(tmp_path, ignore=True, grace_s=1.0, signals=[signal.SIGTERM])
    assert out == f"{-signal.SIGKILL} {int(signal.SIGTERM)} True"
    assert log.read_text() == "INT\n"
    assert time.monotonic() - start < 15
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)


def test_a_child_that_ends_by_itself_passes_its_code(tmp_path: Path) -> None:
    out, _, log = supervise(tmp_path, ignore=False, grace_s=10, signals=[], lifetime=0.5)
    assert out == "0 None False"
    assert not log.exists()
