"""Tests of `qharness baseline measure|set|show|check` and of change points in `qharness history`."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import PROFILE, QHARNESS, one_line, qharness, query
from typer.testing import CliRunner

from harness.cli.app import app
from harness.cli.baseline import session_seeds
from harness.metrics import Direction, Estimate
from harness.store import Store

BELL_ONLY = ["-k", "bell_fidelity"]  # one metric test: each session takes seconds


def _stored(db: Path, build: str) -> list[tuple[int, str, dict]]:
    rows = query(db, "SELECT seed, status, provenance FROM runs WHERE build = ? ORDER BY id", (build,))
    return [(r["seed"], r["status"], json.loads(r["provenance"])) for r in rows]


def test_measure_stores_each_session_with_a_fresh_seed(tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    args = ["baseline", "measure", "-p", PROFILE, "-b", "2.3.0", "--budget", "quick", "--db", str(db)]
    res = qharness(*args, "--sessions", "2", *BELL_ONLY, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "stored 2 session(s) of 2.3.0 for aer-reference" in res.stderr
    first = _stored(db, "2.3.0")
    assert [(s, st) for s, st, _ in first] == [(1, "passed"), (2, "passed")]
    assert [p["baseline_measure"] for _, _, p in first] == [
        {"session": 1, "sessions": 2},
        {"session": 2, "sessions": 2},
    ]
    # The same command again adds new sessions: a seed already stored would repeat the same draws.
    res = qharness(*args, "--sessions", "1", *BELL_ONLY, cwd=tmp_path)
    assert res.returncode == 0 and "session 1/1 of 2.3.0: seed 3" in res.stderr
    values = query(db, "SELECT m.value FROM metrics m JOIN runs r ON r.id = m.run_id WHERE r.build = '2.3.0'")
    assert len({v["value"] for v in values}) == 3


def test_a_failing_realignment_stops_with_one_line_and_keeps_the_sessions(tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    res = qharness(
        "baseline",
        "measure",
        "-p",
        PROFILE,
        "-b",
        "2.3.0",
        "--budget",
        "quick",
        "--db",
        str(db),
        "--sessions",
        "3",
        "--realign",
        "echo lost {profile} >&2; exit 3",
        *BELL_ONLY,
        cwd=tmp_path,
    )
    assert res.returncode == 1
    assert res.stderr.strip().splitlines()[-1] == (
        "qharness baseline measure: re-alignment command 'echo lost aer-reference >&2; exit 3' exited 3 "
        "lost aer-reference"
    )
    assert [(s, st) for s, st, _ in _stored(db, "2.3.0")] == [(1, "passed")]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--sessions", "0"], "qharness baseline measure: --sessions must be >= 1, got 0"),
        (["--pause", "-1"], "qharness baseline measure: --pause must be >= 0 and --realign-timeout > 0"),
        (
            ["--realign", "align {nope}"],
            "qharness baseline measure: --realign 'align {nope}': only {build} and {profile} may be filled in "
            "(KeyError('nope'))",
        ),
    ],
)
def test_bad_options_are_one_line_before_anything_runs(tmp_path: Path, extra: list[str], expected: str) -> None:
    db = tmp_path / "q.db"
    res = qharness("baseline", "measure", "-p", PROFILE, "-b", "2.3.0", "--db", str(db), *extra, cwd=tmp_path)
    assert res.returncode == 4 and one_line(res) == expected and not db.exists()


def test_an_unknown_profile_is_a_usage_error(tmp_path: Path) -> None:
    res = qharness("baseline", "measure", "-p", "no-such-profile", "-b", "1.0", cwd=tmp_path)
    assert res.returncode == 4 and "no-such-profile" in one_line(res)


def test_session_seeds_skip_the_used_ones() -> None:
    assert session_seeds(set(), 1, 3) == [1, 2, 3]
    assert session_seeds({1, 3, 4}, 1, 3) == [2, 5, 6]


# -- reference and change points, on a store written directly -------------------------------------------------


def _run(s: Store, build: str, value: float, seed: int = 1) -> None:
    rid = s.start_run(
        profile=PROFILE,
        profile_hash="h",
        build=build,
        baseline_build=None,
        seed=seed,
        budget="quick",
        provenance={"kind": "bench"},
    )
    s.add_metric(rid, "bell_fidelity", Estimate(value, value - 0.002, value + 0.002, 1000, "", Direction.HIGHER))
    s.finish_run(rid, "passed")


@pytest.fixture
def releases(tmp_path: Path) -> Path:
    """A store with 5 sessions of 2.3.0, and releases 3.0..3.10 whose fidelity steps down 0.04 at 3.6."""
    db = tmp_path / "q.db"
    rng = np.random.default_rng(3)
    with Store(db) as s:
        for i, v in enumerate((0.951, 0.957, 0.944, 0.962, 0.949)):
            _run(s, "2.3.0", v, seed=i)
        for i in range(11):
            _run(s, f"3.{i}", 0.95 - 0.04 * (i >= 6) + 0.002 * float(rng.standard_normal()))
    return db


def test_reference_is_pinned_shown_and_checked(releases: Path) -> None:
    runner, db = CliRunner(), str(releases)
    res = runner.invoke(app, ["baseline", "check", "-p", PROFILE, "-b", "3.9", "--db", db])
    assert (
        res.exit_code == 4 and "has no reference build; pin one with `qharness baseline set --reference`" in res.stderr
    )
    res = runner.invoke(app, ["baseline", "set", "-p", PROFILE, "-b", "2.3.0", "--reference", "--db", db])
    assert res.exit_code == 0 and res.stdout.strip() == "reference of aer-reference: 2.3.0"
    res = runner.invoke(app, ["baseline", "show", "--db", db])
    assert "│ aer-reference │ -              │ 2.3.0" in res.stdout
    ok = runner.invoke(app, ["baseline", "check", "-p", PROFILE, "-b", "3.1", "--db", db, "--fail-on-regression"])
    assert ok.exit_code == 0 and "REML over 5 sessions, HKSJ t with 4 df" in ok.stdout
    bad = runner.invoke(app, ["baseline", "check", "-p", PROFILE, "-b", "3.9", "--db", db, "--fail-on-regression"])
    assert bad.exit_code == 1 and "bell_fidelity REGRESSION: 3.9" in bad.stdout


def test_history_shows_the_change_point(releases: Path) -> None:
    res = CliRunner().invoke(app, ["history", "-p", PROFILE, "-m", "bell_fidelity", "--db", str(releases)])
    assert res.exit_code == 0
    line = next(x for x in res.stdout.splitlines() if x.startswith("│ bell_fidelity │ 12"))
    assert "at 3.6: 0.9" in line


def test_an_interrupt_during_the_pause_keeps_the_sessions_and_says_so(tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    args = ["baseline", "measure", "-p", PROFILE, "-b", "2.3.0", "--budget", "quick", "--db", str(db)]
    proc = subprocess.Popen(
        [*QHARNESS, *args, "--sessions", "3", "--pause", "120", *BELL_ONLY],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen = []
    for line in proc.stderr:  # the pause starts once the first session is stored
        seen.append(line)
        if line.startswith("pausing 120 s"):
            break
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=60)
    assert proc.returncode == 2, "".join(seen) + rest
    assert rest.strip() == "qharness baseline measure: interrupted by SIGINT after session 1 of 3"
    assert [(s, st) for s, st, _ in _stored(db, "2.3.0")] == [(1, "passed")]


def test_check_tests_the_trend_since_the_reference(tmp_path: Path) -> None:
    # Reference 2.3.0 in 5 sessions; releases 3.1..3.5 in 3 sessions each, each 0.003 lower (under the 0.0036
    # tolerance of bell_fidelity); a parallel unchanged history under another profile name is not flagged.
    db = tmp_path / "q.db"
    rng = np.random.default_rng(6)
    seed = 0
    with Store(db) as s:
        for _ in range(5):
            seed += 1
            _run(s, "2.3.0", 0.95 + 0.002 * float(rng.standard_normal()), seed=seed)
        for r in range(1, 6):
            for _ in range(3):
                seed += 1
                _run(s, f"3.{r}", 0.95 - 0.003 * r + 0.002 * float(rng.standard_normal()), seed=seed)
        s.set_reference(PROFILE, "2.3.0")
    runner = CliRunner()
    first = runner.invoke(app, ["baseline", "check", "-p", PROFILE, "-b", "3.1", "--db", str(db)])
    assert first.exit_code == 0
    assert (
        "creep: none found (trend from 2.3.0 to 3.1 over 1 release; REML trend over 8 sessions, HKSJ t with 6 df)"
        in (first.stdout)
    )
    late = runner.invoke(
        app, ["baseline", "check", "-p", PROFILE, "-b", "3.5", "--db", str(db), "--fail-on-regression"]
    )
    assert (
        late.exit_code == 1 and "creep: FLAGGED: bell_fidelity (trend from 2.3.0 to 3.5 over 5 releases" in late.stdout
    )
