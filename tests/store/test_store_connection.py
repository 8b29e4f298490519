"""Tests of the store's connection: two processes writing one file at once, and no connection shared across fork."""

from __future__ import annotations

import itertools
import multiprocessing
import os
import sqlite3
import time
from pathlib import Path

import pytest
from store_support import RUN_KW, spawn, sql

from harness.store import Store, StoreError

WRITER = """
import sys, time
from pathlib import Path
from harness.metrics import Direction, Estimate
from harness.store import Store, StoreError

path, go, build = sys.argv[1:4]
s = Store(path)
rid = s.start_run(profile="aer-reference", profile_hash="h", build=build, baseline_build=None, seed=1,
                  budget="smoke", session_id="xdist-session")
print(rid, flush=True)
deadline = time.monotonic() + 30
while not Path(go).exists() and time.monotonic() < deadline:
    time.sleep(0.001)
for i in range(200):
    s.add_raw(rid, "bell_tomography", {"i": i, "build": build}, test=f"t::{i}")
    s.add_metric(rid, f"m{i:03d}", Estimate(i / 1000, i / 1000, i / 1000 + 0.01, i, "", Direction.HIGHER))
    if i % 20 == 0:
        s.update_provenance(rid, **{f"step{i}": i})
    if i % 2:
        time.sleep(0.001)  # analysis between records; the even steps write back to back
s.finish_run(rid, "passed")
s.close()
"""


def test_two_processes_write_at_once_without_loss(store_url: str, tmp_path: Path) -> None:
    path, go = store_url, tmp_path / "go"
    t0 = time.perf_counter()
    procs = [spawn(WRITER, str(path), str(go), build) for build in ("A", "B")]
    # Both have opened the (fresh) file and started a run before the barrier opens.
    rids = [int(p.stdout.readline()) for p in procs]  # type: ignore[union-attr]
    go.touch()
    outs = [p.communicate(timeout=120) for p in procs]
    elapsed = time.perf_counter() - t0
    for p, (_, err) in zip(procs, outs, strict=True):
        assert "locked" not in err and p.returncode == 0, err
    with Store(path) as s:
        for rid, build in zip(rids, ("A", "B"), strict=True):
            raws = s.raw_records(rid)
            assert [r["payload"] for r in raws] == [{"i": i, "build": build} for i in range(200)]
            assert len(s.metrics(rid)) == 200
            run = s.run(rid)
            assert run.status == "passed" and len(run.provenance) == 10
    # The writers really overlapped: one run's records are interrupted by the other's and resume (A..B..A).
    order = [r[0] for r in sql(store_url, "SELECT run_id FROM raw_records ORDER BY id")]
    switches = sum(a != b for a, b in itertools.pairwise(order))
    print(f"2 x 600 concurrent commits in {elapsed:.2f} s; run switches in the id sequence: {switches}")
    assert switches >= 20


def _fork_child(store: Store, rid: int) -> None:
    """Write through a Store object inherited across fork."""
    store.add_raw(rid, "child", {"pid": os.getpid()})
    store.close()


def test_connection_is_not_shared_across_fork(store_url: str) -> None:
    s = Store(store_url)
    rid = s.start_run(**RUN_KW)
    parent_conn = s.conn
    ctx = multiprocessing.get_context("fork")
    child = ctx.Process(target=_fork_child, args=(s, rid))
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 0
    assert s.conn is parent_conn  # the parent keeps its own connection
    s.add_raw(rid, "parent", {})
    assert [r["protocol"] for r in s.raw_records(rid)] == ["child", "parent"]
    assert s.raw_records(rid)[0]["payload"]["pid"] == child.pid
    s.close()


def test_a_writer_locked_out_too_long_gets_one_line_and_recovers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "r.sqlite"
    s = Store(path)
    rid = s.start_run(**RUN_KW)
    monkeypatch.setattr("harness.store.connection.BUSY_TIMEOUT_MS", 300)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process's long write transaction
    t0 = time.monotonic()
    with pytest.raises(StoreError) as info:
        s.add_raw(rid, "bell_tomography", {"i": 0})
    assert 0.3 <= time.monotonic() - t0 < 5
    assert str(info.value) == (
        f"results store {path} stayed locked by another writer for 0.3 s; check for a hung qharness process"
    )
    other.execute("ROLLBACK")
    other.close()
    assert s.add_raw(rid, "bell_tomography", {"i": 1}) > 0  # the same connection works once the lock is free
    assert [r["payload"] for r in s.raw_records(rid)] == [{"i": 1}]
    s.close()
