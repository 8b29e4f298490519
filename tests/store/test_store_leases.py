"""Tests of bench leases with real processes: never two holders at once, a killed holder is taken over (after the
TTL on PostgreSQL, at once with SQLite's flock), a waiting run is told who holds the bench, and a timeout says so."""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from store_support import spawn, sql

from harness.store import LeaseHolder, LeaseLostError, LeaseTimeoutError, Store, StoreError, pid_alive

CONTENDER = """
import os, sys, time
from pathlib import Path
from harness.store import Store

url, inside, go, name = sys.argv[1:5]
waits = []
s = Store(url)
print("ready", flush=True)
deadline = time.monotonic() + 60
while not Path(go).exists() and time.monotonic() < deadline:
    time.sleep(0.001)
for i in range(6):
    with s.lease("bench-7", ttl_s=5, timeout_s=60, run_id=f"{name}-{i}", poll_s=0.01, on_wait=waits.append):
        # Exclusive create: fails if another holder is inside at this moment.
        fd = os.open(inside, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        t0 = time.monotonic_ns()
        time.sleep(0.03)
        t1 = time.monotonic_ns()
        os.close(fd)
        os.unlink(inside)
    print(t0, t1, flush=True)
    time.sleep(0.005)
print("waited", len(waits), flush=True)
"""

HOLDER = """
import os, sys, time
from harness.store import Store

url, ttl, fork = sys.argv[1], float(sys.argv[2]), sys.argv[3] == "fork"
s = Store(url)
with s.lease("bench-7", ttl_s=ttl, timeout_s=0, run_id="run-42"):
    helper = os.fork() if fork else 0
    if fork and helper == 0:
        time.sleep(60)  # a forked helper that outlives its parent
        os._exit(0)
    print("held", helper, flush=True)
    time.sleep(120)
"""


def _hold(url: str, ttl_s: float, fork: bool = False) -> tuple[subprocess.Popen, int]:
    """Start a child process that takes bench-7's lease and keeps it; return it and the pid of the helper it forked
    (0 for none) once it holds the lease."""
    p = spawn(HOLDER, url, str(ttl_s), "fork" if fork else "no")
    word, helper = [*p.stdout.readline().split(), "", "0"][:2]  # type: ignore[union-attr]
    assert word == "held", p.stderr.read()  # type: ignore[union-attr]
    return p, int(helper)


def test_processes_never_hold_a_bench_at_once(store_url: str, tmp_path: Path) -> None:
    inside, go = tmp_path / "inside", tmp_path / "go"
    Store(store_url).close()  # the schema exists before the contenders start
    procs = [spawn(CONTENDER, store_url, str(inside), str(go), f"p{k}") for k in range(3)]
    for p in procs:  # every contender has started and opened the store before any takes the lease
        assert p.stdout.readline().strip() == "ready", p.stderr.read()  # type: ignore[union-attr]
    go.touch()
    outs = [p.communicate(timeout=120) for p in procs]
    intervals, waited = [], 0
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        lines = out.split("\n")
        intervals += [tuple(map(int, line.split())) for line in lines if line and not line.startswith("waited")]
        waited += int(next(line for line in lines if line.startswith("waited")).split()[1])
    assert len(intervals) == 18
    intervals.sort()
    overlaps = [(a, b) for a, b in itertools.pairwise(intervals) if b[0] < a[1]]
    assert overlaps == []
    assert waited >= 3  # they really contended: each waiting run was told who held the bench
    assert sql(store_url, "SELECT COUNT(*) FROM leases") == [(0,)]  # every lease was given back


def test_a_waiting_run_is_told_the_holder_and_times_out(store_url: str) -> None:
    p, _ = _hold(store_url, ttl_s=30)
    pid = p.pid
    told: list[LeaseHolder] = []
    try:
        with Store(store_url) as s:
            t0 = time.monotonic()
            with (
                pytest.raises(LeaseTimeoutError) as info,
                s.lease("bench-7", timeout_s=0.6, poll_s=0.05, on_wait=told.append),
            ):
                pytest.fail("the lease was granted while another process held it")
            waited = time.monotonic() - t0
    finally:
        p.kill()
        p.communicate(timeout=30)
    assert 0.6 <= waited < 5
    assert len(told) == 1 and (told[0].host, told[0].pid, told[0].run_id) == (socket.gethostname(), pid, "run-42")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(
        f"bench 'bench-7' is still leased by run run-42 (host {socket.gethostname()}, pid {pid}, "
    )
    assert f"since {told[0].since}" in message and message.endswith("wait longer with --lease-timeout")
    # On a server the lease also has a TTL, and the holder renews it; a flock is held while the process lives.
    assert ("lease expires in" in message) == store_url.startswith("postgresql")


def test_a_killed_holder_loses_the_lease(store_url: str) -> None:
    ttl = 2.0
    p, _ = _hold(store_url, ttl_s=ttl)
    pid = p.pid
    p.send_signal(signal.SIGKILL)
    p.communicate(timeout=30)
    killed = time.monotonic()
    told: list[LeaseHolder] = []
    with Store(store_url) as s, s.lease("bench-7", ttl_s=ttl, timeout_s=10, poll_s=0.05, on_wait=told.append) as lease:
        after = time.monotonic() - killed
        assert lease.holder.pid == os.getpid() and not lease.lost
    if store_url.startswith("postgresql"):
        # The dead holder renewed every TTL/3, so its lease had between 2/3 TTL and one TTL left.
        assert ttl * 0.5 <= after <= ttl + 1.0
        assert [h.pid for h in told] == [pid]
    else:
        assert after < 0.5 and told == []  # the kernel released the flock with the process


def test_a_forked_child_does_not_keep_a_dead_parents_sqlite_lease(tmp_path: Path) -> None:
    url = str(tmp_path / "q.db")
    p, helper = _hold(url, ttl_s=1, fork=True)
    assert helper > 0
    p.kill()
    p.wait(timeout=30)  # not communicate(): the helper keeps the pipes open
    try:
        assert pid_alive(helper)  # the forked helper lives on, with a copy of every descriptor its parent had
        with Store(url) as s, s.lease("bench-7", timeout_s=2, poll_s=0.05) as lease:
            assert lease.holder.pid == os.getpid()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(helper, signal.SIGKILL)


def test_the_heartbeat_keeps_a_lease_past_its_ttl(store_url: str) -> None:
    ttl = 0.6
    with Store(store_url) as s, s.lease("bench-7", ttl_s=ttl) as held:
        time.sleep(3 * ttl)
        with pytest.raises(LeaseTimeoutError), s.lease("bench-7", ttl_s=ttl, timeout_s=ttl, poll_s=0.05):
            pass
        held.check()
    with Store(store_url) as s, s.lease("bench-7", ttl_s=ttl, timeout_s=0):
        pass  # given back at the end of the block: free at once


def test_a_lease_taken_over_is_reported_lost(pg_url: str) -> None:
    ttl = 0.6
    with Store(pg_url) as s, s.lease("bench-7", ttl_s=ttl) as held:
        # Another run took the bench (as if this one had stalled past its TTL).
        sql(pg_url, "UPDATE leases SET token = 'someone-else' WHERE bench = 'bench-7'")
        deadline = time.monotonic() + 5
        while not held.lost and time.monotonic() < deadline:
            time.sleep(0.05)
        with pytest.raises(LeaseLostError, match=r"bench 'bench-7': this run's lease was not renewed"):
            held.check()
    # Giving back a lost lease leaves the new holder's row alone.
    assert sql(pg_url, "SELECT token FROM leases") == [("someone-else",)]


def test_sqlite_leases_lock_a_file_beside_the_store(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    with Store(path) as s, s.lease("lab/rack 3", ttl_s=1):
        (lock,) = (tmp_path / "q.db.leases").iterdir()
        assert lock.name.startswith("lab_rack_3-") and lock.suffix == ".lock"
        assert sql(str(path), "SELECT bench, pid FROM leases") == [("lab/rack 3", os.getpid())]
    assert sql(str(path), "SELECT COUNT(*) FROM leases") == [(0,)]


def test_bad_lease_arguments_are_store_errors(tmp_path: Path) -> None:
    with Store(tmp_path / "q.db") as s:
        for kw in ({"ttl_s": 0}, {"timeout_s": -1}, {"poll_s": 0}):
            with pytest.raises(StoreError, match="TTL and poll must be > 0 s"), s.lease("b", **kw):
                pass
