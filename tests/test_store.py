"""Tests of the SQLite results store: round trips, concurrent writers, schema guard and aborted runs."""

from __future__ import annotations

import itertools
import math
import multiprocessing
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import harness
from harness.metrics import Direction, Estimate
from harness.store import SCHEMA_VERSION, RunRow, Store, StoreError, pid_alive

REPO = Path(harness.__file__).resolve().parent.parent
H, L = Direction.HIGHER, Direction.LOWER

RUN_KW = {
    "profile": "aer-reference",
    "profile_hash": "sha256:abc",
    "build": "2.5.0-rc1",
    "baseline_build": "2.3.0",
    "seed": 1234,
    "budget": "smoke",
}


def env() -> dict[str, str]:
    """Environment for child interpreters that import this source tree."""
    e = dict(os.environ)
    e["PYTHONPATH"] = str(REPO) + os.pathsep + e.get("PYTHONPATH", "")
    return e


def spawn(code: str, *args: str) -> subprocess.Popen:
    """Start a child interpreter running `code` with argv[1:] = args."""
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
    )


# -- round trip -------------------------------------------------------------------------------------


def test_round_trip_through_a_real_file(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "results.sqlite"
    with Store(path) as s:
        rid = s.start_run(**RUN_KW, session_id="sess-1", provenance={"retries": 0})
        s.update_provenance(rid, retries=2, faults=["loss"])
        s.update_provenance(rid, options={"k": "bell"})
        counts = np.array([[480, 20, 22, 478]], dtype=np.int64)
        raw1 = s.add_raw(rid, "bell_tomography", {"settings": ["ZZ"], "counts": counts, "duration_s": np.float64(1.5)})
        raw2 = s.add_raw(rid, "link_tomography", {"n": 3}, test="tests/test_link.py::test_process[aer]")
        fid = Estimate(0.9112, 0.9095, 0.9129, 20_000, "", H, confidence=0.95)
        rate = Estimate(1520.0, 1500.0, 1540.0, 15_200, "Hz", H, confidence=0.9)
        nan = Estimate(math.nan, math.nan, math.nan, 0, "", L)
        m1 = s.add_metric(rid, "bell_fidelity", fid)
        s.add_metric(rid, "pair_rate_hz", rate, verdict="PASS", detail={"delta": 1.0})
        s.add_metric(rid, "qber_z", nan)
        s.set_verdict(m1, "REGRESSION", {"p_adjusted": 1.2e-12})
        assert s.run(rid).status == "running" and s.run(rid).ended_at is None
        s.finish_run(rid, "failed")

    assert path.exists()
    with Store(path) as s:
        run = s.run(rid)
        assert isinstance(run, RunRow)
        assert (run.profile, run.profile_hash, run.build, run.baseline_build) == (
            "aer-reference",
            "sha256:abc",
            "2.5.0-rc1",
            "2.3.0",
        )
        assert (run.seed, run.budget, run.status, run.session_id) == (1234, "smoke", "failed", "sess-1")
        assert run.provenance == {"retries": 2, "faults": ["loss"], "options": {"k": "bell"}}
        assert run.host == socket.gethostname() and run.pid == os.getpid()
        assert run.versions["numpy_version"] == np.__version__
        assert run.versions["harness_version"] == harness.__version__
        assert set(run.versions) == {
            "harness_version",
            "qiskit_version",
            "qiskit_aer_version",
            "stim_version",
            "numpy_version",
        }
        assert run.started_at.endswith("+00:00") and run.ended_at is not None and run.ended_at >= run.started_at

        raws = s.raw_records(rid)
        assert [r["id"] for r in raws] == [raw1, raw2]
        assert raws[0]["payload"] == {"settings": ["ZZ"], "counts": [[480, 20, 22, 478]], "duration_s": 1.5}
        assert raws[0]["test"] is None and raws[1]["test"] == "tests/test_link.py::test_process[aer]"
        assert raws[1]["protocol"] == "link_tomography"

        got = s.metrics(rid)
        assert got["bell_fidelity"] == (fid, "REGRESSION", {"p_adjusted": 1.2e-12})
        assert got["pair_rate_hz"] == (rate, "PASS", {"delta": 1.0})
        assert got["pair_rate_hz"][0].confidence == 0.9
        q, verdict, detail = got["qber_z"]
        assert math.isnan(q.value) and q.direction == L and verdict is None and detail is None

        assert s.latest_metrics("aer-reference", "2.5.0-rc1")["bell_fidelity"] == fid
        assert s.has_build("aer-reference", "2.5.0-rc1")
        assert not s.has_build("aer-reference", "2.3.0")
        assert s.runs() == [run] and s.runs(profile="aer-reference", build="2.5.0-rc1") == [run]
        assert s.runs(build="nope") == []
        hist = s.history("aer-reference", "bell_fidelity")
        assert len(hist) == 1
        assert {k: hist[0][k] for k in ("build", "run_id", "name", "value", "n", "unit", "direction", "verdict")} == {
            "build": "2.5.0-rc1",
            "run_id": rid,
            "name": "bell_fidelity",
            "value": 0.9112,
            "n": 20_000,
            "unit": "",
            "direction": "higher",
            "verdict": "REGRESSION",
        }
        assert len(s.history("aer-reference")) == 3
        assert s.profiles() == ["aer-reference"]
        assert s.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert s.conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 30_000
        assert s.conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "1"


def test_baselines_latest_metrics_and_history_order(tmp_path: Path) -> None:
    s = Store(tmp_path / "r.sqlite")
    assert s.baseline("aer-reference") is None and s.baselines() == {}

    def run(build: str, status: str, values: dict[str, float]) -> int:
        rid = s.start_run(**{**RUN_KW, "build": build})
        for name, v in values.items():
            s.add_metric(rid, name, Estimate(v, v - 0.01, v + 0.01, 100, "", H))
        if status != "running":
            s.finish_run(rid, status)
        return rid

    run("2.3.0", "passed", {"a": 0.50, "b": 0.60})
    r2 = run("2.3.0", "failed", {"a": 0.55})
    run("2.3.0", "error", {"a": 0.10, "b": 0.10})  # not a completed run
    run("2.3.0", "running", {"a": 0.20})
    run("2.4.0", "passed", {"a": 0.70})
    latest = s.latest_metrics("aer-reference", "2.3.0")
    assert latest["a"].value == 0.55  # newest completed run
    assert latest["b"].value == 0.60  # the newest completed run that measured b
    # A second row of the same name in one run: the newest row wins.
    s.add_metric(r2, "a", Estimate(0.56, 0.55, 0.57, 100, "", H))
    assert s.latest_metrics("aer-reference", "2.3.0")["a"].value == 0.56
    assert s.metrics(r2)["a"][0].value == 0.56
    assert s.latest_metrics("aer-reference", "9.9.9") == {}
    assert not s.has_build("other-profile", "2.3.0")

    s.set_baseline("aer-reference", "2.3.0")
    s.set_baseline("aer-reference", "2.4.0")
    s.set_baseline("lab-rack", "1.0")
    assert s.baseline("aer-reference") == "2.4.0"
    assert s.baselines() == {"aer-reference": "2.4.0", "lab-rack": "1.0"}
    assert s.profiles() == ["aer-reference", "lab-rack"]
    builds = [h["build"] for h in s.history("aer-reference", "a")]
    assert builds == ["2.3.0"] * 5 + ["2.4.0"]
    assert [r.status for r in s.runs("aer-reference", "2.3.0")] == ["passed", "failed", "error", "running"]
    s.close()


def test_user_errors_are_store_errors(tmp_path: Path) -> None:
    s = Store(tmp_path / "r.sqlite")
    with pytest.raises(StoreError, match="no run 999"):
        s.run(999)
    with pytest.raises(StoreError, match="no run 999"):
        s.add_raw(999, "bell_tomography", {})
    with pytest.raises(StoreError, match="no run 999"):
        s.add_metric(999, "x", Estimate(1, 1, 1, 1, "", H))
    with pytest.raises(StoreError, match="no metric row 77"):
        s.set_verdict(77, "PASS")
    rid = s.start_run(**RUN_KW)
    with pytest.raises(StoreError, match="not a final status"):
        s.finish_run(rid, "running")
    s.close()
    with pytest.raises(StoreError, match="closed"):
        s.runs()
    (tmp_path / "junk.sqlite").write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(StoreError, match=r"junk\.sqlite is not a usable SQLite database"):
        Store(tmp_path / "junk.sqlite")
    with pytest.raises(StoreError, match="is a directory"):
        Store(tmp_path)


def test_git_sha_of_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # not a git checkout
    with Store(tmp_path / "r.sqlite") as s:
        assert s.run(s.start_run(**RUN_KW)).git_sha is None
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False)
    if head.returncode != 0:
        pytest.skip("source tree is not a git checkout")
    monkeypatch.chdir(REPO)
    with Store(tmp_path / "r.sqlite") as s:
        assert s.run(s.start_run(**RUN_KW)).git_sha == head.stdout.strip()


# -- schema version -----------------------------------------------------------------------------------


def test_newer_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    Store(path).close()
    with sqlite3.connect(path) as c:
        c.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    with pytest.raises(StoreError) as info:
        Store(path)
    assert str(info.value) == (
        f"results store {path} has schema version {SCHEMA_VERSION + 1}, this qharness understands up to "
        f"{SCHEMA_VERSION}: upgrade qharness"
    )


# -- concurrency --------------------------------------------------------------------------------------

WRITER = """
import sys, time
from pathlib import Path
from harness.metrics import Direction, Estimate
from harness.store import Store

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


def test_two_processes_write_at_once_without_loss(tmp_path: Path) -> None:
    path, go = tmp_path / "shared.sqlite", tmp_path / "go"
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
        order = [r[0] for r in s.conn.execute("SELECT run_id FROM raw_records ORDER BY id")]
        switches = sum(a != b for a, b in itertools.pairwise(order))
    print(f"2 x 600 concurrent commits in {elapsed:.2f} s; run switches in the id sequence: {switches}")
    assert switches >= 20


def _fork_child(store: Store, rid: int) -> None:
    """Write through a Store object inherited across fork."""
    store.add_raw(rid, "child", {"pid": os.getpid()})
    store.close()


def test_connection_is_not_shared_across_fork(tmp_path: Path) -> None:
    s = Store(tmp_path / "r.sqlite")
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


# -- aborted runs -------------------------------------------------------------------------------------

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


def _victim(path: Path, mode: str) -> tuple[subprocess.Popen, int]:
    """Start a child that opens a run and writes 5 raw records; return it and its run id."""
    p = spawn(VICTIM, str(path), mode)
    line = p.stdout.readline()  # type: ignore[union-attr]
    assert line.strip(), p.stderr.read()  # type: ignore[union-attr]
    return p, int(line)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_marks_the_run_aborted_and_keeps_raw_records(tmp_path: Path, signum: int) -> None:
    path = tmp_path / "r.sqlite"
    p, rid = _victim(path, "handler")
    p.send_signal(signum)
    p.communicate(timeout=30)
    if signum == signal.SIGTERM:
        assert p.returncode == -signal.SIGTERM  # default action re-raised after marking
    else:
        assert p.returncode != 0  # KeyboardInterrupt from the chained default handler
    with sqlite3.connect(path) as c:  # read without Store so abort_stale_runs cannot be what marked it
        status, ended = c.execute("SELECT status, ended_at FROM runs WHERE id = ?", (rid,)).fetchone()
        n_raw = c.execute("SELECT COUNT(*) FROM raw_records WHERE run_id = ?", (rid,)).fetchone()[0]
    assert status == "aborted" and ended is not None
    assert n_raw == 5


def test_sigkill_run_is_aborted_on_reopen(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
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


def test_raw_records_survive_a_crash_in_analysis(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    p = spawn(VICTIM, str(path), "crash")
    _, err = p.communicate(timeout=60)
    assert p.returncode == 1 and "analysis failed" in err
    with Store(path) as s:
        (run,) = s.runs()
        assert run.status == "aborted"
        assert [r["payload"]["i"] for r in s.raw_records(run.id)] == [0, 1, 2, 3, 4]


def test_stale_check_spares_live_and_foreign_runs(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    with Store(path) as s:
        mine = s.start_run(**RUN_KW)
        foreign = s.start_run(**RUN_KW)
        dead = s.start_run(**RUN_KW)
        s.conn.execute("UPDATE runs SET host = 'another-host', pid = 1 WHERE id = ?", (foreign,))
        done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
        s.conn.execute("UPDATE runs SET pid = ? WHERE id = ?", (int(done.stdout), dead))
        assert s.abort_stale_runs() == 1
        assert [s.run(r).status for r in (mine, foreign, dead)] == ["running", "running", "aborted"]


def test_abort_handler_chains_to_the_previous_python_handler(tmp_path: Path) -> None:
    calls: list[int] = []
    previous = signal.signal(signal.SIGUSR1, lambda num, frame: calls.append(num))
    try:
        s = Store(tmp_path / "r.sqlite")
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
