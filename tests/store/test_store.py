"""Tests of the results store facade: round trips through a real file, baselines, history, user errors."""

from __future__ import annotations

import math
import os
import socket
import subprocess
from pathlib import Path

import numpy as np
import pytest
from store_support import REPO, RUN_KW, sql

import harness
from harness.metrics import Direction, Estimate
from harness.store import SCHEMA_VERSION, RunRow, RunStatus, Store, StoreError

H, L = Direction.HIGHER, Direction.LOWER


# -- round trip -------------------------------------------------------------------------------------


def test_round_trip(store_url: str) -> None:
    with Store(store_url) as s:
        rid = s.start_run(**RUN_KW, session_id="sess-1", provenance={"retries": 0})
        s.update_provenance(rid, retries=2, faults=["loss"])
        s.update_provenance(rid, options={"k": "bell"})
        counts = np.array([[480, 20, 22, 478]], dtype=np.int64)
        raw1 = s.add_raw(rid, "bell_tomography", {"settings": ["ZZ"], "counts": counts, "duration_s": np.float64(1.5)})
        raw2 = s.add_raw(rid, "link_tomography", {"n": 3}, test="tests/test_link.py::test_process[aer]")
        fid = Estimate(0.9112, 0.9095, 0.9129, 20_000, "", H, confidence=0.95)
        rate = Estimate(1520.0, 1500.0, 1540.0, 15_200, "Hz", H, confidence=0.9)
        nan = Estimate(math.nan, math.nan, math.nan, 0, "", L)
        s.add_metric(rid, "bell_fidelity", fid, verdict="REGRESSION", detail={"p_adjusted": 1.2e-12})
        s.add_metric(rid, "pair_rate_hz", rate, verdict="PASS", detail={"delta": 1.0})
        s.add_metric(rid, "qber_z", nan)
        assert s.run(rid).status == "running" and s.run(rid).ended_at is None
        s.finish_run(rid, "failed")

    with Store(store_url) as s:
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
    assert sql(store_url, "SELECT value FROM meta WHERE key = 'schema_version'") == [(str(SCHEMA_VERSION),)]


def test_sqlite_file_is_made_with_its_directories_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "results.sqlite"
    with Store(path) as s:
        s.start_run(**RUN_KW)
        assert s.path == path and s.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert s.conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 30_000
        assert s.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert path.exists()
    with Store(f"sqlite:///{path}") as s:
        assert len(s.runs()) == 1


def test_baselines_latest_metrics_and_history_order(store_url: str) -> None:
    s = Store(store_url)
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
    # Only some runs' rows (as a report reads one run per build), and which runs have metrics at all.
    ids = s.metric_run_ids("aer-reference")
    assert len(ids) == 5 and s.metric_run_ids("lab-rack") == set()
    newest = max(ids)
    assert [(h["run_id"], h["name"]) for h in s.history("aer-reference", run_ids=[newest, r2])] == [
        (r2, "a"),
        (r2, "a"),
        (newest, "a"),
    ]
    assert s.history("aer-reference", "b", run_ids=[r2]) == [] and s.history("aer-reference", run_ids=[]) == []
    assert [r.status for r in s.runs("aer-reference", "2.3.0")] == ["passed", "failed", "error", "running"]
    s.close()


def test_user_errors_are_store_errors(store_url: str) -> None:
    s = Store(store_url)
    with pytest.raises(StoreError, match="no run 999"):
        s.run(999)
    with pytest.raises(StoreError, match="no run 999"):
        s.add_raw(999, "bell_tomography", {})
    with pytest.raises(StoreError, match="no run 999"):
        s.add_metric(999, "x", Estimate(1, 1, 1, 1, "", H))
    rid = s.start_run(**RUN_KW)
    for status in ("running", RunStatus.RUNNING, "done"):
        with pytest.raises(StoreError, match="not a final status"):
            s.finish_run(rid, status)
    s.close()
    with pytest.raises(StoreError, match="closed"):
        s.runs()


def test_an_unusable_sqlite_file_is_a_store_error(tmp_path: Path) -> None:
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


# -- run statuses -------------------------------------------------------------------------------------


def test_run_status_is_an_enum_equal_to_its_stored_text(store_url: str) -> None:
    assert [str(s) for s in RunStatus] == ["running", "passed", "failed", "error", "aborted"]
    assert [s for s in RunStatus if s.completed] == [RunStatus.PASSED, RunStatus.FAILED]
    with Store(store_url) as s:
        rid = s.start_run(**RUN_KW)
        assert s.run(rid).status is RunStatus.RUNNING and s.run(rid).status == "running"
        s.finish_run(rid, RunStatus.ERROR)
        assert s.run(rid).status is RunStatus.ERROR
        # The stored text is what a plain SQL reader sees.
        assert sql(store_url, "SELECT status FROM runs WHERE id = :rid", rid=rid) == [("error",)]
        for status in ("passed", "failed", "error", "aborted"):
            s.finish_run(s.start_run(**RUN_KW), status)
        assert [r.status for r in s.runs()] == ["error", "passed", "failed", "error", "aborted"]
        assert s.has_build("aer-reference", "2.5.0-rc1")
