"""Interleaved A/B: ABBA order, a flash and an identity check before every run, flash failures as ERROR, verdicts."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml

from harness.devices import FlashError
from harness.devices.bench import BenchDevice
from harness.emulators import EmulatorSet, ThreadedEmulators
from harness.interleave import InterleavedSession, measure_interleaved, overall, verdicts
from harness.metrics import Direction, Estimate, Tolerance
from harness.profiles import load_profile
from harness.protocols import protocols_for
from harness.store import Store

SHIPPED = load_profile("bench-emulated")


@contextlib.contextmanager
def flashable_bench(tmp_path: Path, running: str = "2.4.0") -> Iterator[tuple[EmulatorSet, Path]]:
    """Emulators of every build of bench-emulated on loopback (running `running`), and a lab profile pointing at
    them that can flash (bench-live: the shipped builds and tolerances, the emulator's FW:LOAD)."""
    runner = ThreadedEmulators(emulators=EmulatorSet.from_profile(SHIPPED, running, seed=5)).start()
    try:
        data = runner.set.profile_dict(SHIPPED.effective("2.4.0"), "bench-live")  # with the emulator's flash command
        path = tmp_path / "device_profiles" / "bench-live.yaml"
        path.parent.mkdir(exist_ok=True)
        firmware = {"flash": data["firmware"]["flash"]}
        doc = {"name": "bench-live", "extends": "bench-emulated", **data, "firmware": firmware}
        path.write_text(yaml.safe_dump(doc))
        yield runner.set, path
    finally:
        runner.stop()


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[EmulatorSet, Path]]:
    """A flashable emulated bench running 2.4.0 (see `flashable_bench`)."""
    with flashable_bench(tmp_path) as found:
        yield found


def _run(path: Path, store: Store, blocks: int, on_run=None, budget: str = "quick") -> InterleavedSession:
    loaded = load_profile(path)
    session = InterleavedSession(loaded, "2.3.0", "2.5.0-rc1", blocks)
    with BenchDevice(loaded.effective("2.4.0"), "2.4.0") as device:
        return measure_interleaved(
            session, device, protocols_for(["bell_fidelity"]), store, seed=3, budget=budget, on_run=on_run
        )


def test_runs_alternate_abba_each_flashed_checked_and_stored(live, tmp_path):
    emu, path = live
    seen = []
    with Store(tmp_path / "q.db") as store:
        record = lambda i, label, build: seen.append((label, emu.firmware.build))  # noqa: E731
        session = _run(path, store, 3, on_run=record, budget="standard")
        assert "".join(session.order) == "ABBA" * 3
        # The emulated firmware ran the build of each label when that run was measured.
        assert seen == [(lab, "2.3.0" if lab == "A" else "2.5.0-rc1") for lab in "ABBA" * 3]
        runs = [store.run(i) for i in session.run_ids]
        assert [r.build for r in runs] == ["2.3.0" if lab == "A" else "2.5.0-rc1" for lab in "ABBA" * 3]
        assert {r.status for r in runs} == {"passed"}
        assert [r.provenance["interleave"]["position"] for r in runs] == list(range(12))
        assert all(store.raw_records(i) for i in session.run_ids)  # raw records of every run are kept
    # The release candidate's visibility drop (0.97 -> 0.955 on this bench) is caught from pairs alone.
    results = verdicts(session, load_profile(path).effective("2.5.0-rc1").gate_tolerances())
    assert results["bell_fidelity"].verdict == "REGRESSION", results["bell_fidelity"]
    assert results["bell_fidelity"].variance_model == "interleaved pairs (3 ABBA blocks; t with 2 df)"


@pytest.mark.parametrize(
    ("fault", "runs_before", "message"),
    [
        # Stuck: run 3 (B again) is not flashed and still runs B; run 4's flash back to A leaves B.
        (
            "stuck-flash:1",
            3,
            "flashing build '2.3.0' with 'FW:LOAD? 2.3.0' left the source reporting build '2.5.0-rc1'",
        ),
        # The source claims another build from now on: the identity check before run 3 catches it.
        ("wrong-build:2.3.0", 2, "bench-live: the device reports build '2.3.0' but run 3 of the interleaved session"),
    ],
)
def test_a_flash_that_fails_midway_is_an_error_and_keeps_the_runs_before_it(
    live, tmp_path, fault, runs_before, message
):
    emu, path = live

    def break_after_second(i: int, label: str, build: str) -> None:
        if i == 1:
            emu.firmware.faults.add(fault)

    with Store(tmp_path / "q.db") as store:
        with pytest.raises(FlashError) as err:
            _run(path, store, 2, on_run=break_after_second)
        statuses = [r.status for r in sorted(store.runs("bench-live"), key=lambda r: r.id)]
        kept = [len(store.raw_records(r.id)) for r in store.runs("bench-live")]
    assert str(err.value).startswith(message) and "\n" not in str(err.value), err.value
    # The runs before the failure passed with their records; the failed one is an error with nothing measured.
    assert statuses == ["passed"] * runs_before + ["error"], statuses
    assert sorted(kept)[0] == 0 and sum(k > 0 for k in kept) == runs_before


def _estimate(value: float, direction: Direction = Direction.HIGHER) -> Estimate:
    return Estimate(value=value, ci_low=value - 0.01, ci_high=value + 0.01, n=1000, unit="", direction=direction)


def _session(a: list[float], b: list[float], direction: Direction = Direction.HIGHER) -> InterleavedSession:
    """A session whose A runs read `a` and B runs `b`, in ABBA order."""
    blocks = len(a) // 2
    session = InterleavedSession(SHIPPED, "A", "B", blocks)
    session.order = tuple("ABBA" * blocks)
    ai, bi = iter(a), iter(b)
    session.estimates = [{"m": _estimate(next(ai) if o == "A" else next(bi), direction)} for o in session.order]
    return session


def test_a_linear_drift_cancels_in_the_block_differences():
    # Both builds identical; the bench drifts by 0.01 per run (far more than the margin): pairs cancel it.
    t = np.arange(16)
    drift = 0.9 - 0.01 * t
    noise = np.random.default_rng(1).normal(0, 1e-4, 16)
    values = drift + noise
    order = "ABBA" * 4
    a = [v for v, o in zip(values, order, strict=True) if o == "A"]
    b = [v for v, o in zip(values, order, strict=True) if o == "B"]
    result = verdicts(_session(a, b), {"m": Tolerance(absolute=0.002)})["m"]
    assert result.verdict == "PASS", result
    assert abs(result.test.mean) < 3 * result.test.se
    # The drift moved each build by 0.15 over the session, 75 times the margin; the pairs' spread holds none of it.
    assert np.ptp(a) > 0.1 and result.test.se < 1e-4


def test_a_difference_exactly_at_the_margin_is_neither_regression_nor_pass():
    rng = np.random.default_rng(2)
    base = 0.95 + rng.normal(0, 1e-4, 12)
    diffs = np.repeat([-0.002 + e for e in (1e-4, -1e-4, 2e-4, -2e-4, 0.5e-4, -0.5e-4)], 2)
    result = verdicts(_session(list(base), list(base + diffs)), {"m": Tolerance(absolute=0.002)})["m"]
    assert result.verdict == "INCONCLUSIVE", result
    assert result.test.mean == pytest.approx(-0.002, abs=1e-12)


def test_lower_is_better_metrics_regress_upwards_and_untolerated_ones_are_not_gated():
    a = [0.010, 0.011, 0.010, 0.012, 0.011, 0.010]
    b = [x + 0.01 for x in a]
    worse = _session(a, b, Direction.LOWER)
    assert verdicts(worse, {"m": Tolerance(absolute=0.002)})["m"].verdict == "REGRESSION"
    better = _session(b, a, Direction.LOWER)
    assert verdicts(better, {"m": Tolerance(absolute=0.002)})["m"].verdict == "PASS"
    results = verdicts(worse, {})
    assert results["m"].verdict == "NOT_GATED" and overall(results) == "NO_BASELINE"


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "harness.cli", "interleave", *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=600)


def test_cli_on_aer_flags_the_release_candidate(tmp_path):
    db = str(tmp_path / "q.db")
    args = ("--profile", "aer-reference", "--baseline-build", "2.3.0", "--blocks", "4", "--budget", "quick")
    proc = _cli(*args, "--build", "2.5.0-rc1", "--protocol", "bell", "--results-db", db, "--json", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    out = json.loads(proc.stdout)
    assert out["order"] == "ABBA" * 4 and len(out["run_ids"]) == 16
    fid = next(m for m in out["metrics"] if m["name"] == "bell_fidelity")
    assert fid["verdict"] == "REGRESSION" and fid["df"] == 3, fid
    assert fid["variance_model"] == "interleaved pairs (4 ABBA blocks; t with 3 df)"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--build", "9.9.9"), "unknown build '9.9.9'"),
        (("--build", "2.4.0", "--protocol", "qec"), "--protocol qec: unknown"),
        (("--build", "2.4.0", "--budget", "huge"), "--budget huge: choose one of"),
        (("--build", "2.4.0", "--blocks", "1"), "--blocks"),
    ],
)
def test_cli_usage_errors_are_one_line_and_exit_4(tmp_path, args, message):
    proc = _cli("--profile", "aer-reference", "--baseline-build", "2.3.0", *args, cwd=tmp_path)
    assert proc.returncode == 4, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in proc.stderr, proc.stderr
    assert not (tmp_path / "reports").exists()  # nothing was measured or created


def test_cli_refuses_a_bench_that_cannot_flash_before_touching_it(tmp_path):
    proc = _cli("--profile", "bench-emulated", "--build", "2.5.0-rc1", "--baseline-build", "2.3.0", cwd=tmp_path)
    assert proc.returncode == 4 and proc.stderr.strip().count("\n") == 0, proc.stderr
    assert "cannot flash builds: add firmware.flash" in proc.stderr
    assert not (tmp_path / "reports").exists()


def test_cli_flash_failure_is_an_error_line_never_a_verdict(live, tmp_path):
    emu, path = live
    emu.firmware.faults.add("stuck-flash:1")
    db = tmp_path / "q.db"
    proc = _cli(
        "--profile",
        str(path),
        "--build",
        "2.5.0-rc1",
        "--baseline-build",
        "2.3.0",
        "--results-db",
        str(db),
        "--budget",
        "quick",
        "--blocks",
        "2",
        cwd=tmp_path,
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.startswith("interleaved: ERROR: flashing build '2.3.0' with 'FW:LOAD? 2.3.0'"), proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "REGRESSION" not in proc.stdout + proc.stderr
    with Store(db) as store:
        assert [r.status for r in store.runs("bench-live")] == ["error"]
