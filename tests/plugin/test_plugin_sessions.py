"""Options that reach the measurement: the session index of a drifting stand-in and the logical sampling's resume."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import yaml
from suite_facts import SUITES


def _drifting(tmp: Path) -> Path:
    path = tmp / "device_profiles" / "aer-drifting.yaml"
    path.parent.mkdir(exist_ok=True)
    drift = {"between_sessions": {"visibility_sd": 0.005, "pair_rate_rel_sd": 0.03}}
    path.write_text(yaml.safe_dump({"name": "aer-drifting", "extends": "aer-reference", "drift": drift}))
    return path


def _run(pytester: pytest.Pytester, profile: Path, *args: str) -> pytest.RunResult:
    db = pytester.path / "q.db"
    return pytester.runpytest_subprocess(
        SUITES, "-p", "no:cacheprovider", "--device-profile", str(profile), "--results-db", str(db), *args
    )


def _drift_of_last_run(db: Path) -> dict:
    with sqlite3.connect(db) as c:
        prov = json.loads(c.execute("SELECT provenance FROM runs ORDER BY id DESC LIMIT 1").fetchone()[0])
    return prov["drift"]


@pytest.mark.slow
def test_session_index_selects_the_drift_drawn_and_is_kept(pytester: pytest.Pytester):
    profile = _drifting(pytester.path)
    args = ("-k", "test_bell_state and bell_fidelity", "--budget", "quick", "--firmware-build", "2.3.0")
    offsets = {}
    summary = pytester.path / "summary.json"
    for session in ("0", "3", "3"):
        result = _run(pytester, profile, *args, "--harness-session", session, "--harness-summary", str(summary))
        assert result.ret == 0, result.stdout.str()
        obj = json.loads(summary.read_text())
        # The baseline build measured as itself: nothing compared, and the summary says which variance that is.
        assert [m["variance_model"] for m in obj["metrics"]] == ["none (no baseline)"]
        assert isinstance(obj["change_points"], int)
        drift = _drift_of_last_run(pytester.path / "q.db")
        assert drift["session"] == int(session), drift
        offsets.setdefault(session, []).append(drift["offsets"])
    # The same session index draws the same offsets; another index draws others.
    assert offsets["3"][0] == offsets["3"][1] and offsets["3"][0] != offsets["0"][0]


@pytest.mark.slow
def test_logical_sampling_keeps_sinter_files_in_the_resume_dir(pytester: pytest.Pytester):
    resume = pytester.path / "resume"
    args = ("-k", "logical", "--budget", "quick", "--firmware-build", "2.3.0", "--qec-workers", "1")
    result = _run(pytester, Path("aer-reference"), *args, "--qec-resume-dir", str(resume))
    assert result.ret == 0, result.stdout.str()
    files = sorted(resume.glob("*.csv"))
    assert files and all(f.read_text().count("\n") >= 2 for f in files), files  # sinter's header and rows
