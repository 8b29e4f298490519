"""Tests of aborted runs: marked on SIGTERM/SIGINT (chaining to the previous handler), and on reopen after SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import pytest
from store_support import RUN_KW, spawn, sql

from harness.store import Store, pid_alive
from harness.store.signals import SignalGuard

VICTIM = """
import sys, time
from harness.store import Store

path, mode = sys.argv[1:3]
s = Store(path)
rid = s.start_run(profile="aer-reference", profile_hash="h", build="2.5.0", baseline_build=None, seed=7,
                  budget="smoke")
if mode == "handler":
    s.install_abort_handler()
for i in range(5):
    s.add_raw(rid, "bell_tomography", {"i": i})
if mode == "crash":
    raise ValueError("analysis failed: singular matrix")
print(rid, flush=True)
time.sleep(60)
"""


def _victim(path: str, mode: str) -> tuple[subprocess.Popen, int]:
    """Start a child that opens a run and writes 5 raw records; return it and its run id."""
    p = spawn(VICTIM, str(path), mode)
    line = p.stdout.readline()  # type: ignore[union-attr]
    assert line.strip(), p.stderr.read()  # type: ignore[union-attr]
    return p, int(line)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_marks_the_run_aborted_and_keeps_raw_records(store_url: str, signum: int) -> None:
    path = store_url
    p, rid = _victim(path, "handler")
    p.send_signal(signum)
    p.communicate(timeout=30)
    if signum == signal.SIGTERM:
        assert p.returncode == -signal.SIGTERM  # default action re-raised after marking
    else:
        assert p.returncode != 0  # KeyboardInterrupt from the chained default handler
    # Read without Store so abort_stale_runs cannot be what marked it.
    ((status, ended),) = sql(path, "SELECT status, ended_at FROM runs WHERE id = :rid", rid=rid)
    ((n_raw,),) = sql(path, "SELECT COUNT(*) FROM raw_records WHERE run_id = :rid", rid=rid)
    assert status == "aborted" and ended is not None
    assert n_raw == 5


def test_sigkill_run_is_aborted_on_reopen(store_url: str) -> None:
    path = store_url
    p, rid = _victim(path, "plain")
    with Store(path) as s:
        assert s.run(rid).status == "running"  # the child is alive: not stale
    p.kill()
    p.communicate(timeout=30)
    assert p.returncode == -signal.SIGKILL
    assert not pid_alive(p.pid)
    with Store(path) as s:
        run = s.run(rid)
        assert run.status == "aborted" and run.ended_at is not None
        assert len(s.raw_records(rid)) == 5


def test_raw_records_survive_a_crash_in_analysis(store_url: str) -> None:
    path = store_url
    p = spawn(VICTIM, str(path), "crash")
    _, err = p.communicate(timeout=60)
    assert p.returncode == 1 and "analysis failed" in err
    with Store(path) as s:
        (run,) = s.runs()
        assert run.status == "aborted"
        assert [r["payload"]["i"] for r in s.raw_records(run.id)] == [0, 1, 2, 3, 4]


def test_stale_check_spares_live_and_foreign_runs(store_url: str) -> None:
    with Store(store_url) as s:
        mine = s.start_run(**RUN_KW)
        foreign = s.start_run(**RUN_KW)
        dead = s.start_run(**RUN_KW)
        sql(store_url, "UPDATE runs SET host = 'another-host', pid = 1 WHERE id = :rid", rid=foreign)
        done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
        sql(store_url, "UPDATE runs SET pid = :pid WHERE id = :rid", pid=int(done.stdout), rid=dead)
        assert s.abort_stale_runs() == 1
        assert [s.run(r).status for r in (mine, foreign, dead)] == ["running", "running", "aborted"]


def test_abort_handler_chains_to_the_previous_python_handler(store_url: str) -> None:
    calls: list[int] = []
    previous = signal.signal(signal.SIGUSR1, lambda num, frame: calls.append(num))
    try:
        s = Store(store_url)
        keep, finished = s.start_run(**RUN_KW), s.start_run(**RUN_KW)
        s.finish_run(finished, "passed")
        listed = s.start_run(**RUN_KW)
        assert s.install_abort_handler(lambda: [listed, finished], signals=(signal.SIGUSR1,))
        os.kill(os.getpid(), signal.SIGUSR1)
        assert calls == [signal.SIGUSR1]
        assert [s.run(r).status for r in (keep, finished, listed)] == ["running", "passed", "aborted"]
        s.close()  # restores the previous handler
        os.kill(os.getpid(), signal.SIGUSR1)
        assert calls == [signal.SIGUSR1, signal.SIGUSR1]
    finally:
        signal.signal(signal.SIGUSR1, previous)


def test_signal_handlers_are_only_installed_from_the_main_thread() -> None:
    before = signal.getsignal(signal.SIGUSR1)
    answers: list[bool] = []
    worker = threading.Thread(target=lambda: answers.append(SignalGuard().install(lambda: None, (signal.SIGUSR1,))))
    worker.start()
    worker.join()
    assert answers == [False] and signal.getsignal(signal.SIGUSR1) is before
