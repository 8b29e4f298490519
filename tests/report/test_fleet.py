"""The fleet matrix of `qharness report` over a shared store: every bench (profile) of the release by every build up
to it, each cell the verdict of the newest finished candidate run there, on SQLite and on PostgreSQL."""

from __future__ import annotations

import re
from pathlib import Path

import sqlalchemy as sa
from typer.testing import CliRunner

import harness.cli.report  # noqa: F401 - registers the report command
from harness.cli.app import app
from harness.metrics import Direction, Estimate
from harness.report.fleet import collect_fleet
from harness.store import Store
from harness.store.schema import metrics, runs

pytest_plugins = ["pg_engines"]  # store_url: SQLite, then PostgreSQL
RELEASE = "2.5.0-rc1"

# (profile, kind, build, status, role, metric verdicts), stored in this order (not build order).
RUNS = [
    ("bench-lab-1", "bench", "2.4.0", "failed", "candidate", ["PASS", "REGRESSION"]),
    ("bench-lab-1", "bench", "2.3.0", "passed", "candidate", ["PASS", "PASS"]),
    ("bench-lab-1", "bench", "2.4.0", "passed", "candidate", ["PASS", "INCONCLUSIVE"]),  # the newer re-run counts
    ("bench-lab-1", "bench", RELEASE, "passed", "candidate", ["IMPROVED", "PASS"]),  # overall: PASS
    ("bench-lab-1", "bench", "2.6.0", "passed", "candidate", ["PASS", "PASS"]),  # after the release
    ("bench-lab-2", "bench", "2.3.0", "error", "candidate", ["ERROR", "PASS"]),
    ("bench-lab-2", "bench", "2.4.0", "aborted", "candidate", ["PASS", "PASS"]),  # interrupted: no result
    ("bench-lab-2", "bench", RELEASE, "passed", "candidate", ["NO_BASELINE", "NO_BASELINE"]),
    ("aer-lab", "aer", "2.4.0", "passed", "baseline", ["NO_BASELINE", "NO_BASELINE"]),  # not a candidate
    ("aer-lab", "aer", RELEASE, "failed", "candidate", ["REGRESSION", "PASS"]),
    ("bench-lab-3", "bench", "2.4.0", "passed", "candidate", ["PASS", "PASS"]),  # not in the release
]
# The truth of the release report: profile -> build -> verdict ("—": no finished candidate run there).
WANT = {
    "aer-lab": {"2.3.0": "—", "2.4.0": "—", RELEASE: "REGRESSION"},
    "bench-lab-1": {"2.3.0": "PASS", "2.4.0": "INCONCLUSIVE", RELEASE: "PASS"},
    "bench-lab-2": {"2.3.0": "ERROR", "2.4.0": "—", RELEASE: "NO_BASELINE"},
}
KINDS = {"aer-lab": "aer", "bench-lab-1": "bench", "bench-lab-2": "bench"}


def fill(url: str) -> dict[tuple[str, str], int]:
    """Store RUNS at `url`; return the id of each (profile, build)'s newest candidate run."""
    ids = {}
    with Store(url) as store:
        for profile, kind, build, status, role, verdicts in RUNS:
            run = store.start_run(
                profile=profile,
                profile_hash=f"sha256:{profile}",
                build=build,
                baseline_build="2.3.0" if build != "2.3.0" else None,
                seed=1,
                budget="quick",
                provenance={"kind": kind, "role": role},
            )
            for name, verdict in zip(("bell_fidelity", "qber_z"), verdicts, strict=True):
                est = Estimate(0.9, 0.89, 0.91, 1000, "", Direction.HIGHER)
                store.add_metric(run, name, est, verdict)
            store.finish_run(run, status)
            if role == "candidate":
                ids[profile, build] = run
    return ids


def matrix_of(html: str) -> dict[str, dict[str, str]]:
    """The fleet table of a report's HTML: profile -> build -> verdict text ('—' for an empty cell)."""
    table = re.search(r'<table class="fleet">(.*?)</table>', html, re.S).group(1)
    out = {}
    for profile, row in re.findall(r'<tr data-fleet-profile="([^"]+)">(.*?)</tr>', table, re.S):
        cells = re.findall(r'<td data-build="([^"]+)"[^>]*>(.*?)</td>', row, re.S)
        out[profile] = {b: (re.search(r'data-verdict="([A-Z_]+)"', c) or re.match("(—)", c)).group(1) for b, c in cells}
    return out


def test_the_matrix_holds_the_newest_finished_run_of_each_bench_and_build(store_url: str) -> None:
    ids = fill(store_url)
    with Store(store_url) as store:
        m = collect_fleet(store, {"aer-lab": RELEASE, "bench-lab-1": RELEASE, "bench-lab-2": RELEASE})
    assert m.profiles == ["aer-lab", "bench-lab-1", "bench-lab-2"]
    assert m.builds == ["2.3.0", "2.4.0", RELEASE]  # build order, ending at the release; 2.6.0 came after it
    got = {p: {b: (c.verdict if (c := m.cell(p, b)) else "—") for b in m.builds} for p in m.profiles}
    assert got == WANT
    assert m.kinds == KINDS
    assert m.cell("bench-lab-1", "2.4.0").run_id == ids["bench-lab-1", "2.4.0"]  # the re-run, not the first
    assert m.counts() == {"PASS": 2, "INCONCLUSIVE": 1, "ERROR": 1, "NO_BASELINE": 1, "REGRESSION": 1}


def test_a_profile_row_ends_at_the_build_its_section_reports(store_url: str) -> None:
    fill(store_url)
    with Store(store_url) as store:
        m = collect_fleet(store, {"bench-lab-1": "2.6.0", "bench-lab-3": "2.4.0"})
        narrowed = collect_fleet(store, {"bench-lab-1": "2.6.0"}, builds=["2.4.0", "2.6.0"])
    assert m.builds == ["2.3.0", "2.4.0", RELEASE, "2.6.0"]
    assert [b for b in m.builds if m.cell("bench-lab-3", b)] == ["2.4.0"]
    assert m.cell("bench-lab-1", "2.6.0").verdict == "PASS"
    assert narrowed.builds == ["2.4.0", "2.6.0"] and narrowed.cell("bench-lab-1", "2.3.0") is None


def test_the_release_report_shows_the_matrix_in_html_and_markdown(store_url: str, tmp_path: Path) -> None:
    fill(store_url)
    out = tmp_path / "r"
    res = CliRunner().invoke(app, ["report", "--db", store_url, "--release", RELEASE, "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith(f"release {RELEASE}: REGRESSION")
    html = (out / "index.html").read_text(encoding="utf-8")
    assert matrix_of(html) == WANT
    assert "2.6.0" not in html and "bench-lab-3" not in html  # neither belongs to this release
    for profile in WANT:  # the release cell links to the bench's own section, which is there as before
        assert f'<a href="#profile-{profile}"><span class="verdict v-{WANT[profile][RELEASE]}"' in html
        assert f'<section class="profile" id="profile-{profile}" data-profile="{profile}"' in html
    assert html.count('<a href="#profile-') == 2 * len(WANT)  # the nav link and the release cell
    md = (out / "summary.md").read_text(encoding="utf-8")
    assert "| Profile | Kind | `2.3.0` | `2.4.0` | `2.5.0-rc1` |" in md
    assert "| `bench-lab-2` | bench | ! ERROR | — | – NO_BASELINE |" in md
    assert "| `aer-lab` | aer | — | — | ✖ REGRESSION |" in md


def test_the_matrix_of_1200_runs_over_40_benches_has_every_cell(tmp_path: Path) -> None:
    """More runs than one query's chunk (500), written in one transaction to keep the test fast."""
    run_rows, metric_rows = [], []
    for k in range(1200):
        stamp = f"2026-01-01T00:{k // 60:02d}:{k % 60:02d}+00:00"
        run_rows.append(
            {"id": k + 1, "profile": f"bench-{k % 40:02d}", "profile_hash": "x", "build": f"3.{k // 40}.0", "seed": 1}
            | {"budget": "quick", "host": "h", "pid": 1, "started_at": stamp, "ended_at": stamp, "status": "passed"}
            | {"provenance": '{"kind": "bench", "role": "candidate"}'}
        )
        verdict = "REGRESSION" if k == 777 else "PASS"
        metric_rows.append(
            {"run_id": k + 1, "name": "bell_fidelity", "value": 0.9, "ci_low": 0.89, "ci_high": 0.91}
            | {"confidence": 0.95, "n": 10, "unit": "", "direction": "higher", "verdict": verdict, "created_at": stamp}
        )
    with Store(tmp_path / "big.db") as store:
        with store.engine.begin() as c:
            c.execute(sa.insert(runs), run_rows)
            c.execute(sa.insert(metrics), metric_rows)
        m = collect_fleet(store, {f"bench-{p:02d}": "3.29.0" for p in range(40)})
    assert m.builds == [f"3.{b}.0" for b in range(30)]  # build order: 3.10.0 after 3.9.0
    assert len(m.cells) == 1200 and m.counts() == {"PASS": 1199, "REGRESSION": 1}
    assert m.cell("bench-17", "3.19.0").verdict == "REGRESSION"  # run 777: bench 777 % 40, build 777 // 40
