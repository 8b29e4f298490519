"""The regression suites over the emulated bench: real pyvisa-py and pyserial on loopback, faults, replay."""

import contextlib
import json
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from suite_facts import DEGRADED, SUITES

from harness.profiles import load_yaml

pytestmark = pytest.mark.slow


@contextlib.contextmanager
def emulators(tmp: Path, build: str, *faults: str, profile: str = "bench-emulated"):
    """Serve the emulated bench of `profile` running `build` on ephemeral loopback ports; yield its live bench block."""
    out = tmp / f"live-{build}.yaml"
    args = [sys.executable, "-m", "harness.cli", "emulate", "--profile", profile, "--build", build]
    for f in faults:
        args += ["--fault", f]
    proc = subprocess.Popen([*args, "--profile-out", str(out)], stdout=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline().strip()
        assert first == str(out), f"emulate printed {first!r}"
        yield load_yaml(out)["bench"]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


def bench_profile(tmp: Path, bench: dict, name: str = "bench-e2e") -> Path:
    """A lab's profile for the emulated bench: the shipped one, with the live addresses."""
    path = tmp / "device_profiles" / f"{name}.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump({"name": name, "extends": "bench-emulated", "bench": bench}))
    return path


def run_suites(tmp: Path, profile: Path, build: str, *extra: str) -> tuple[int, dict, str]:
    summary = tmp / f"summary-{profile.stem}-{build}.json"
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        SUITES,
        "-p",
        "no:cacheprovider",
        "-q",
        "-k",
        "not decoder",
        "--device-profile",
        str(profile),
        "--firmware-build",
        build,
        "--results-db",
        str(tmp / "q.db"),
        "--harness-summary",
        str(summary),
        *extra,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp, timeout=600)
    data = json.loads(summary.read_text()) if summary.exists() else {}
    return proc.returncode, data, proc.stdout + proc.stderr


def _verdicts(summary: dict) -> dict[str, str]:
    return {m["name"]: m["verdict"] for m in summary["metrics"]}


def assert_aer_verdicts(runs: dict[str, tuple[int, dict, str]]) -> None:
    """The Aer stand-in's verdicts on a bench: the baseline build has none, 2.4.0 passes, 2.5.0-rc1 regresses.

    The Bell state regresses (concurrence follows bell_fidelity); other degraded metrics may stay undecided (a
    regressed primary gives the secondaries no alpha to PASS), the untouched ones never regress.
    """
    code, first, out = runs["2.3.0"]
    assert code == 0 and {m["verdict"] for m in first["metrics"]} == {"NO_BASELINE"}, out
    code, good, out = runs["2.4.0"]
    assert code == 0, out
    assert set(_verdicts(good).values()) <= {"PASS", "IMPROVED", "INCONCLUSIVE", "NOT_GATED"}, _verdicts(good)
    code, bad, out = runs["2.5.0-rc1"]
    assert code == 1, out
    assert {"bell_fidelity", "concurrence"} <= {n for n, v in _verdicts(bad).items() if v == "REGRESSION"} <= DEGRADED


def test_bench_gives_the_aer_verdicts_with_agreeing_metrics(tmp_path: Path):
    runs = {}
    for build in ("2.3.0", "2.4.0", "2.5.0-rc1"):
        with emulators(tmp_path, build) as bench:
            profile = bench_profile(tmp_path, bench)
            # The baseline is measured once, thoroughly, as a lab would: a stored baseline cannot be re-measured.
            extra = ("--budget", "release") if build == "2.3.0" else ("--baseline-build", "2.3.0")
            runs[build] = run_suites(tmp_path, profile, build, *extra)
    assert "SKIPPED" not in runs["2.3.0"][2] or "modelled link" in runs["2.3.0"][2]
    assert_aer_verdicts(runs)
    good = runs["2.4.0"][1]

    aer_code, aer, aer_out = run_suites(tmp_path, Path("aer-reference"), "2.4.0", "--baseline-build", "2.3.0")
    assert aer_code == 0, aer_out
    bench_metrics = {m["name"]: m for m in good["metrics"]}
    for m in aer["metrics"]:
        if m["name"].startswith("logical_"):
            continue  # logical memories run over a modelled link only (skipped on a bench)
        b = bench_metrics[m["name"]]
        # Same physics, independent samples: the intervals overlap.
        assert b["ci_low"] <= m["ci_high"] and m["ci_low"] <= b["ci_high"], (m, b)


def test_faults_are_errors_never_regressions_and_lose_no_record(tmp_path: Path):
    with emulators(tmp_path, "2.3.0") as bench:
        run_suites(tmp_path, bench_profile(tmp_path, bench), "2.3.0", "-k", "bell_state")
    # Recoverable faults (dropped and garbage replies) and an unrecoverable one (a dead connection).
    with emulators(tmp_path, "2.4.0", "drop:0.03", "garbage:0.03") as bench:
        code, noisy, out = run_suites(tmp_path, bench_profile(tmp_path, bench), "2.4.0", "-k", "bell_state")
    assert code == 0, out
    assert "REGRESSION" not in {m["verdict"] for m in noisy["metrics"]}
    with sqlite3.connect(tmp_path / "q.db") as db:
        prov = json.loads(db.execute("SELECT provenance FROM runs ORDER BY id DESC LIMIT 1").fetchone()[0])
    retries = sum(i.get("retries", 0) for i in prov["instruments"].values() if isinstance(i, dict))
    assert retries > 0, prov  # recovered faults are in the run's provenance

    with emulators(tmp_path, "2.4.0", "disconnect:40") as bench:
        profile = bench_profile(tmp_path, {**bench, "retries": 0})
        code, _, out = run_suites(tmp_path, profile, "2.4.0", "-k", "bell_state")
    assert code == 1 and "REGRESSION" not in out
    tally = [line for line in out.splitlines() if " in " in line and ("passed" in line or "error" in line)][-1]
    assert "error" in tally and "failed" not in tally, tally
    assert "failed after 0 retries" in out and ("counter" in out or "analyzers" in out), out
    with sqlite3.connect(tmp_path / "q.db") as db:
        run_id, status = db.execute("SELECT id, status FROM runs ORDER BY id DESC LIMIT 1").fetchone()
        settings = db.execute(
            "SELECT COUNT(*) FROM raw_records WHERE run_id = ? AND protocol = 'bell_setting'", (run_id,)
        ).fetchone()[0]
    assert status == "error"
    assert settings >= 1  # the settings completed before the fault stayed in the store


def assert_one_cause(code: int, summary: dict, out: str, cause: str) -> None:
    """A bench that cannot be used: exit 1, the cause printed once by a test and once under the table, short output,
    and every metric of the suites listed as ERROR with the cause (table and summary JSON)."""
    lines = out.splitlines()
    assert code == 1 and "REGRESSION" not in out and "Traceback" not in out, out
    assert len(lines) < 60, f"{len(lines)} lines:\n{out}"
    # pytest's own short summary repeats the first error in one line (cut to the terminal's width); leave it out.
    short = next((i for i, line in enumerate(lines) if "short test summary info" in line), len(lines))
    ends = [i for i, line in enumerate(lines) if i > short and line.startswith("=")]
    ours = lines[:short] + lines[ends[0] if ends else len(lines) :]
    assert sum(cause in line for line in lines[short:]) <= 1, lines[short:]  # one line there, not one per test
    with_cause = [line for line in ours if cause in line]
    assert len(with_cause) == 2, with_cause  # the first test's error and the table's cause line
    assert with_cause[1].startswith(f"ERROR ({len(summary['metrics'])} metrics): "), with_cause
    assert sum("ERROR at setup of" in line for line in lines) == 1
    names = {m["name"] for m in summary["metrics"]}
    assert len(names) >= 20 and {m["verdict"] for m in summary["metrics"]} == {"ERROR"}
    assert all(cause in m["error"] and m["value"] is None and m["n"] == 0 for m in summary["metrics"])
    rows = [line.split() for line in lines if line.split() and line.split()[0] in names]
    assert {r[0] for r in rows} == names and {r[-1] for r in rows} == {"ERROR"}, rows
    assert summary["verdict"] == "ERROR" and summary["headline"].endswith(": ERROR")


def test_wrong_firmware_build_is_one_error_before_any_measurement(tmp_path: Path):
    with emulators(tmp_path, "2.4.0", "wrong-build:9.9.9") as bench:
        code, summary, out = run_suites(tmp_path, bench_profile(tmp_path, bench), "2.4.0")
    cause = "device reports firmware build '9.9.9' but the build under test is '2.4.0'; flash '2.4.0'"
    assert_one_cause(code, summary, out, cause)
    with sqlite3.connect(tmp_path / "q.db") as db:
        assert db.execute("SELECT COUNT(*) FROM raw_records").fetchone()[0] == 0
        assert db.execute("SELECT status FROM runs").fetchall() == [("error",)]


def test_refused_connection_is_one_error(tmp_path: Path):
    with socket.socket() as sock:  # a loopback port nothing listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with emulators(tmp_path, "2.4.0") as bench:
        # The counter and analysers answer; the pair source's port refuses.
        profile = bench_profile(tmp_path, {**bench, "source": {**bench["source"], "url": f"socket://127.0.0.1:{port}"}})
        code, summary, out = run_suites(tmp_path, profile, "2.4.0")
    assert_one_cause(code, summary, out, f"source: cannot open serial socket://127.0.0.1:{port}")
    assert "Connection refused" in out


def test_instrument_timeout_is_one_error(tmp_path: Path):
    # Every query goes unanswered: the device cannot even be identified, so each retry times out.
    with emulators(tmp_path, "2.4.0", "drop:1") as bench:
        profile = bench_profile(tmp_path, {**bench, "timeout_s": 0.2, "retries": 1, "backoff_s": 0.0})
        code, summary, out = run_suites(tmp_path, profile, "2.4.0")
    assert_one_cause(code, summary, out, "failed after 1 retries: timeout after 0.2 s")


def test_recorded_session_replays_to_identical_metrics(tmp_path: Path):
    cassette = tmp_path / "session.jsonl"
    with emulators(tmp_path, "2.4.0") as bench:
        profile = bench_profile(tmp_path, bench)
        code, live, out = run_suites(
            tmp_path, profile, "2.4.0", "-k", "bell_state or entanglement_rate", "--record-session", str(cassette)
        )
    assert code == 0, out
    # The same profile name as the recording, so the bootstrap streams match too.
    replay = tmp_path / "replay" / "bench-e2e.yaml"
    replay.parent.mkdir()
    replay.write_text(
        yaml.safe_dump(
            {
                "name": "bench-e2e",
                "extends": "bench-emulated",
                "kind": "replay",
                "bench": bench,
                "replay": {"cassette": str(cassette)},
            }
        )
    )
    code, replayed, out = run_suites(tmp_path, replay, "2.4.0", "-k", "bell_state or entanglement_rate")
    assert code == 0, out
    values = {m["name"]: (m["value"], m["ci_low"], m["ci_high"]) for m in live["metrics"]}
    assert values == {m["name"]: (m["value"], m["ci_low"], m["ci_high"]) for m in replayed["metrics"]}
