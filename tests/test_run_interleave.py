"""Interleaved A/B as a mode of the pytest plugin and of `qharness run`: the default on a bench that can flash."""

from __future__ import annotations

import contextlib
import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from test_interleave import _session, flashable_bench

from harness.analysis.truth import truth
from harness.cli.run import pytest_command
from harness.devices.aer import AerDevice
from harness.errors import NotSupportedError
from harness.gate import Verdict
from harness.interleave import verdicts
from harness.interleave_session import InterleavedProfileSession, interleaved_comparison
from harness.metrics import Direction, Tolerance
from harness.profiles import load_profile
from harness.store import Store

SUITES = str(Path(__file__).resolve().parents[1] / "harness" / "test_suites")
BELL = "bell_state"  # the Bell-state tests: five metrics of one protocol, measured in seconds on the emulator
FAST = ("--budget", "quick", "--interleave-blocks", "2")


def run_suites(tmp: Path, profile: str | Path, *extra: str) -> tuple[subprocess.CompletedProcess, dict]:
    """Run the product's suites on `profile` into tmp/q.db; return the process and its summary JSON ({} if none)."""
    summary = tmp / "summary.json"
    summary.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "pytest", SUITES, "-p", "no:cacheprovider", "-q", "-rs", "--device-profile"]
    cmd += [str(profile), "--results-db", str(tmp / "q.db"), "--harness-summary", str(summary), *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp, timeout=600)
    return proc, json.loads(summary.read_text()) if summary.exists() else {}


def stored_runs(tmp: Path) -> list:
    with Store(tmp / "q.db") as store:
        return sorted(store.runs(), key=lambda r: r.id)


def test_a_paired_verdict_becomes_the_gates_comparison_in_the_metrics_own_sense():
    # qber-like (lower is better): B is about 0.01 worse than A in every block; the delta is + in the metric's unit.
    a = [0.010, 0.011, 0.010, 0.012, 0.011, 0.010]
    b = [x + 0.01 + e for x, e in zip(a, (1e-3, -1e-3, 5e-4, 0.0, -5e-4, 2e-4), strict=True)]
    session = _session(a, b, Direction.LOWER)
    result = verdicts(session, {"m": Tolerance(absolute=0.002)})["m"]
    comp = interleaved_comparison(session, result, alpha=0.05)
    assert comp.verdict == Verdict.REGRESSION, comp
    assert comp.variance_model == "interleaved pairs (3 ABBA blocks; t with 2 df)"
    # ABBA blocks are balanced: the mean block difference is mean(B) - mean(A), and its interval is the paired t's.
    assert comp.delta.value == pytest.approx(np.mean(b) - np.mean(a)) and comp.delta.n == 3
    half = stats.t.ppf(0.975, 2) * result.test.se
    assert comp.delta.ci_high - comp.delta.value == pytest.approx(half) and half > 0
    assert comp.tolerance == pytest.approx(0.002) and comp.p_regression_adjusted == result.p_worse <= 0.05
    # Each build's value is the mean of its runs; its interval is the t interval over those runs (5 df).
    assert comp.baseline.value == pytest.approx(np.mean(a)) and comp.candidate.value == pytest.approx(np.mean(b))
    spread = stats.t.ppf(0.975, 5) * np.std(a, ddof=1) / np.sqrt(6)
    assert comp.baseline.ci_high - comp.baseline.value == pytest.approx(spread)
    assert comp.candidate.n == 6 * 1000 and "worse by more" not in comp.message("B", "A")  # no z test is claimed


def test_a_bench_that_can_flash_interleaves_by_default(tmp_path):
    with flashable_bench(tmp_path) as (emu, path):
        proc, summary = run_suites(tmp_path, path, "-k", BELL, "--firmware-build", "2.5.0-rc1", *FAST)
        last_build = emu.firmware.build
    out = proc.stdout + proc.stderr
    assert proc.returncode in (0, 1) and "Traceback" not in out, out
    runs = stored_runs(tmp_path)
    *interleaved, verdicts = runs
    # Two ABBA blocks, each run flashed to its build and stored with its role; the session ends on the baseline.
    order = "ABBAABBA"
    assert [r.provenance["interleave"]["position"] for r in interleaved] == list(range(8))
    assert [r.provenance["role"] for r in interleaved] == [{"A": "baseline", "B": "candidate"}[o] for o in order]
    assert [r.build for r in interleaved] == [{"A": "2.3.0", "B": "2.5.0-rc1"}[o] for o in order]
    assert {r.status for r in interleaved} == {"passed"} and last_build == "2.3.0"
    # The verdicts live in one more candidate run that names the interleaved runs.
    assert verdicts.provenance["interleave"] == {"order": order, "blocks": 2, "runs": [r.id for r in interleaved]}
    assert verdicts.build == "2.5.0-rc1" and verdicts.baseline_build == "2.3.0"
    assert summary["headline"].startswith("build 2.5.0-rc1 vs 2.3.0: ")
    metrics = {m["name"]: m for m in summary["metrics"]}
    assert {m["variance_model"] for m in metrics.values()} == {"interleaved pairs (2 ABBA blocks; t with 1 df)"}
    assert "ERROR" not in {m["verdict"] for m in metrics.values()}, metrics
    # The delta is the mean block difference; its 95% t interval (1 df) holds the true drop of the candidate.
    fid = metrics["bell_fidelity"]
    profile = load_profile(path)
    true_drop = truth(profile.effective("2.5.0-rc1")).bell_fidelity - truth(profile.effective("2.3.0")).bell_fidelity
    assert true_drop < -0.005 and fid["delta"]["ci_low"] <= true_drop <= fid["delta"]["ci_high"], (fid, true_drop)
    assert fid["baseline"]["value"] > fid["value"] and fid["method"] == "paired t on ABBA block differences (Holm)"


def test_no_interleave_compares_as_before_on_the_same_bench(tmp_path):
    with flashable_bench(tmp_path) as (emu, path):
        proc, summary = run_suites(tmp_path, path, "-k", BELL, "--no-interleave", *FAST)
        running = emu.firmware.build
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (run,) = stored_runs(tmp_path)  # the build under test only: nothing was flashed or interleaved
    assert "interleave" not in run.provenance and run.build == "2.4.0" and running == "2.4.0"
    # A bench has no stored 2.3.0 and cannot measure it in session: nothing to compare, as without the option.
    assert {(m["verdict"], m["variance_model"]) for m in summary["metrics"]} == {("NO_BASELINE", "none (no baseline)")}


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ("bench-emulated", "--interleave"),
            "ERROR: --interleave: profile 'bench-emulated' cannot flash builds: add firmware.flash to it "
            "(see docs/bench.md), or measure without interleaving",
        ),
        (("aer-reference", "--interleave-blocks", "1"), "ERROR: --interleave-blocks must be an integer >= 2, got 1"),
    ],
)
def test_interleave_usage_errors_are_one_line_before_anything_is_measured(tmp_path, args, line):
    proc, _ = run_suites(tmp_path, *args)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()] == [line]
    assert not (tmp_path / "q.db").exists()


def test_a_stand_in_keeps_the_normal_gate_unless_asked(tmp_path):
    proc, summary = run_suites(tmp_path, "aer-reference", "-k", "bell_fidelity", "--budget", "quick")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert summary["metrics"][0]["variance_model"] == "shot noise only (baseline measured in this session)"
    assert all("interleave" not in r.provenance for r in stored_runs(tmp_path))


def test_a_stand_in_interleaves_when_asked_and_leaves_qec_to_the_normal_gate(tmp_path):
    args = ("-k", "bell_fidelity or logical_success_repetition_bitflip_d3", "--interleave", *FAST)
    proc, summary = run_suites(tmp_path, "aer-reference", *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    metrics = {m["name"]: m for m in summary["metrics"]}
    assert metrics["bell_fidelity"]["variance_model"] == "interleaved pairs (2 ABBA blocks; t with 1 df)"
    logical = metrics["logical_success_repetition_bitflip_d3"]
    assert logical["verdict"] == "NOT_GATED" and logical["value"] is None, logical
    assert (
        logical["reason"] == "not interleaved: logical is measured only by a run with --no-interleave, where supported"
    )
    assert len(stored_runs(tmp_path)) == 9


def test_a_flash_that_leaves_the_wrong_build_is_an_error_once_with_the_runs_kept(tmp_path):
    # Running the baseline, a stuck flash "takes" for run 1 (A) and then leaves 2.3.0 where run 2 needs the candidate.
    with flashable_bench(tmp_path, running="2.3.0") as (emu, path):
        emu.firmware.faults.add("stuck-flash:1")
        proc, summary = run_suites(tmp_path, path, "-k", BELL, "--firmware-build", "2.5.0-rc1", *FAST)
    out = proc.stdout + proc.stderr
    cause = "flashing build '2.5.0-rc1' with 'FW:LOAD? 2.5.0-rc1' left the source reporting build '2.3.0'"
    assert proc.returncode == 1 and "REGRESSION" not in out and "Traceback" not in out, out
    # The cause is printed by the first test and by the table's cause line, never per test.
    lines = [ln for ln in out.splitlines() if cause in ln]
    assert len(lines) == 2 and lines[1].startswith("ERROR (5 metrics): "), lines
    assert out.count("same cause as") >= 1
    assert {m["verdict"] for m in summary["metrics"]} == {"ERROR"} and summary["verdict"] == "ERROR"
    assert all(m["error"].startswith(cause) for m in summary["metrics"])
    first, second, verdicts = stored_runs(tmp_path)
    assert (first.build, first.status, second.build, second.status) == ("2.3.0", "passed", "2.5.0-rc1", "error")
    with Store(tmp_path / "q.db") as store:
        assert store.raw_records(first.id) and store.metrics(first.id)  # the run measured before the failure is kept
    assert verdicts.status == "error" and verdicts.provenance["interleave"]["runs"] == [first.id, second.id]


def test_an_instrument_that_dies_mid_session_is_an_error_with_the_runs_before_it_kept(tmp_path):
    with flashable_bench(tmp_path) as (emu, path):
        stop = threading.Event()

        def kill_counter_at_the_candidate() -> None:
            # Once run 2 has flashed the candidate, the counter and analyzers stop answering for good.
            while not stop.is_set() and emu.firmware.build != "2.5.0-rc1":
                time.sleep(0.01)
            emu.scpi.faults.add("drop:1")

        watcher = threading.Thread(target=kill_counter_at_the_candidate, daemon=True)
        watcher.start()
        try:
            proc, summary = run_suites(tmp_path, path, "-k", BELL, "--firmware-build", "2.5.0-rc1", *FAST)
        finally:
            stop.set()
            watcher.join()
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "REGRESSION" not in out and "Traceback" not in out, out
    (cause,) = {m["error"] for m in summary["metrics"]}
    assert {m["verdict"] for m in summary["metrics"]} == {"ERROR"} and "failed after 3 retries: timeout" in cause, cause
    assert sum(cause in line for line in out.splitlines()) == 2, out  # the first test's error and the table's line
    first, second, verdicts = stored_runs(tmp_path)
    assert (first.status, second.status, verdicts.status) == ("passed", "error", "error")
    with Store(tmp_path / "q.db") as store:
        kinds = [r["protocol"] for r in store.raw_records(first.id)]
    # Each setting was stored as it completed, then the run's whole record: nothing measured before the fault is lost.
    assert kinds.count("bell_setting") == 9 and kinds[-1] == "bell", kinds


@pytest.mark.parametrize(
    ("kw", "tail"),
    [
        ({}, []),
        ({"interleave": True, "interleave_blocks": 3}, ["--interleave", "--interleave-blocks", "3"]),
        ({"interleave": False}, ["--no-interleave"]),
    ],
)
def test_qharness_run_passes_the_interleave_options_to_pytest(kw, tail):
    cmd = pytest_command(
        ["aer-reference"],
        build=None,
        baseline=None,
        db=None,
        seed=1,
        budget="quick",
        alpha=0.05,
        summary=None,
        strict=False,
        extra=["-k", "bell"],
        **kw,
    )
    assert cmd[cmd.index("0.05") + 1 :] == [*tail, "-k", "bell"]


def _qharness_run(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "harness.cli", "run", "--db", str(tmp / "q.db"), "--summary", str(tmp / "s.json")]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, cwd=tmp, timeout=600)


def test_qharness_run_refuses_interleave_on_a_bench_that_cannot_flash_in_one_line(tmp_path):
    proc = _qharness_run(tmp_path, "-p", "bench-emulated", "--interleave")
    assert proc.returncode == 4, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "qharness run: --interleave: profile 'bench-emulated' cannot flash builds: add firmware.flash to it "
        "(see docs/bench.md), or measure without interleaving"
    ]


def test_qharness_run_interleaves_a_stand_in_end_to_end(tmp_path):
    proc = _qharness_run(
        tmp_path,
        "-p",
        "aer-reference",
        "--interleave",
        "--interleave-blocks",
        "2",
        "--budget",
        "quick",
        "-k",
        "bell_fidelity",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "--interleave --interleave-blocks 2" in proc.stderr.splitlines()[0]
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["metrics"][0]["variance_model"] == "interleaved pairs (2 ABBA blocks; t with 1 df)"


def test_an_interrupt_mid_session_aborts_it_and_keeps_the_runs_measured(tmp_path):
    db, summary = tmp_path / "q.db", tmp_path / "summary.json"
    cmd = [sys.executable, "-m", "pytest", SUITES, "-p", "no:cacheprovider", "-q", "-k", "bell_fidelity"]
    cmd += ["--device-profile", "aer-reference", "--interleave", "--budget", "release", "--results-db", str(db)]
    cmd += ["--interleave-blocks", "12"]  # 48 runs: the signal lands mid-session even on a slow machine
    proc = subprocess.Popen(
        [*cmd, "--harness-summary", str(summary)], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 120
        while not _passed_runs(db) and time.monotonic() < deadline:
            assert proc.poll() is None, "pytest ended before a run was measured"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out = proc.communicate(timeout=120)[0].decode()
    finally:
        proc.kill()
    assert proc.returncode == pytest.ExitCode.INTERRUPTED and "Traceback" not in out, out
    *interleaved, closing = stored_runs(tmp_path)
    statuses = [r.status for r in interleaved]
    # The runs measured before the signal passed with their records; the one it stopped (unless it landed between
    # two runs) and the session are aborted.
    assert set(statuses[:-1]) == {"passed"} and statuses[-1] in ("aborted", "passed"), statuses
    assert closing.status == "aborted" and closing.provenance["interleave"]["runs"] == [r.id for r in interleaved]
    with Store(db) as store:
        assert all(store.raw_records(r.id) for r in interleaved[:-1])
    written = json.loads(summary.read_text())
    assert written["headline"] == "build 2.4.0 vs 2.3.0: aborted (interrupted; raw records kept)", written


def _passed_runs(db: Path) -> int:
    """Runs of the store that passed, read without writing (0 while the store is not there yet)."""
    if not db.exists():
        return 0
    try:
        # Wait out the writer's locks instead of reading 0 while it commits (a busy machine commits slowly).
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM runs WHERE status = 'passed'").fetchone()[0])
    except sqlite3.Error:
        return 0  # created but not yet initialised


class _NoLinkTomography(AerDevice):
    """A stand-in that cannot prepare input states, as a bench without a `prepare_state` command."""

    def link_tomography(self, duration_s: float, inputs: tuple = ()) -> None:
        raise NotSupportedError("this bench cannot prepare input states")


def test_a_protocol_the_device_cannot_perform_is_skipped_and_the_rest_gated(tmp_path):
    loaded = load_profile("aer-reference")
    with Store(tmp_path / "q.db") as store:
        session = InterleavedProfileSession(
            loaded, store, build="2.5.0-rc1", baseline_build="2.3.0", blocks=2, budget="quick",
            device_factory=lambda profile, build, seed, **kw: _NoLinkTomography(profile, build, seed),
        )  # fmt: skip
        session.family.update({"bell_fidelity", "link_process_fidelity", "capacity_q1_bits"})
        for metric in ("link_process_fidelity", "capacity_q1_bits"):
            with pytest.raises(NotSupportedError, match="cannot prepare input states"):
                session.comparison(metric)
        fid = session.comparison("bell_fidelity")
        session.close()
        assert fid.variance_model == "interleaved pairs (2 ABBA blocks; t with 1 df)" and fid.candidate.n > 0
        closing = store.run(max(r.id for r in store.runs()))
        # The skipped metrics are not stored as verdicts; every interleaved run holds only what it measured.
        assert set(store.metrics(closing.id)) == {"bell_fidelity"} and closing.status in ("passed", "failed")
        assert all("link" not in {r["protocol"] for r in store.raw_records(i)} for i in session.interleaved.run_ids)
