"""The history, compare, baseline, export and report commands against a real store; plot and Allure helpers."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from report_store import BUILDS, PROFILES, RELEASE, ReleaseStore
from typer.testing import CliRunner

import harness.cli.history
import harness.cli.report  # noqa: F401 - registers the report command
from harness.cli.app import app
from harness.report import order_builds, trend_plot_png, trend_plot_svg, write_allure_environment
from harness.report.data import ReportError
from harness.report.text import fmt_number
from harness.store import Store

runner = CliRunner()


def qharness(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the real `qharness` entry point in a new interpreter."""
    return subprocess.run(
        [sys.executable, "-c", "from harness.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


def one_line_error(result: object) -> str:
    """Return the single stderr line of a failed command, checking there is no traceback."""
    err = result.stderr
    assert "Traceback" not in err and "Traceback" not in result.stdout
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture
def store_copy(release_store: ReleaseStore, tmp_path: Path) -> Path:
    """A private copy of the shared store for commands that write (baseline set)."""
    dst = tmp_path / "copy.db"
    shutil.copy(release_store.path, dst)
    return dst


# -- compare ----------------------------------------------------------------------------------------------


def test_compare_fails_on_the_regressed_build(release_store: ReleaseStore, tmp_path: Path) -> None:
    db = str(release_store.path)
    bad = qharness(
        "compare", "--profile", "aer-reference", "2.4.0", RELEASE, "--db", db, "--fail-on-regression", cwd=tmp_path
    )
    assert bad.returncode == 1, bad.stderr
    assert "bell_fidelity REGRESSION: 2.5.0-rc1" in bad.stdout
    assert "overall: REGRESSION" in bad.stdout
    assert "note:" not in bad.stderr  # aer-reference is a shipped profile: its tolerances were used
    clean = qharness(
        "compare", "--profile", "aer-reference", "2.3.0", "2.4.0", "--db", db, "--fail-on-regression", cwd=tmp_path
    )
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "REGRESSION" not in clean.stdout
    # Without --fail-on-regression the regressed build only reports.
    report_only = runner.invoke(app, ["compare", "--profile", "aer-reference", "2.4.0", RELEASE, "--db", db])
    assert report_only.exit_code == 0
    assert "overall: REGRESSION" in report_only.stdout


def test_compare_with_an_unloadable_profile_uses_zero_tolerances(release_store: ReleaseStore) -> None:
    res = runner.invoke(app, ["compare", "-p", "bench-lab", "2.3.0", "2.4.0", "--db", str(release_store.path)])
    assert res.exit_code == 0, res.stderr
    assert "zero tolerances" in res.stderr and "bench-lab" in res.stderr
    assert "bell_fidelity" in res.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["compare", "-p", "nope", "2.3.0", "2.4.0"], "'nope' has no runs"),
        (["compare", "-p", "aer-reference", "9.9.9", "2.4.0"], "build '9.9.9' has no completed run"),
        (["compare", "-p", "aer-reference", "2.3.0", "2.4.0", "--alpha", "2"], "--alpha must be in (0, 1)"),
        (["history", "-p", "nope"], "'nope' has no runs"),
        (["history", "-p", "aer-reference", "-m", "no_such_metric"], "was never measured"),
        (["baseline", "set", "-p", "aer-reference", "-b", "0.0.1"], "--build '0.0.1' has no completed run"),
        (["export", "--format", "xml"], "--format must be 'csv' or 'json'"),
        (["export", "-p", "nope"], "'nope' has no runs"),
        (
            ["report", "--release", "2.4.0", "--builds", "7.7.7,2.4.0", "-p", "bench-lab", "-o", "OUT"],
            "no runs of build(s) 7.7.7",
        ),
        (["report", "--release", "x", "--builds", "2.3.0,2.4.0", "--out", "OUT"], "--builds ends with '2.4.0'"),
        (["report", "--release", "9.9.9", "--out", "OUT"], "candidate run of the release build '9.9.9'"),
        (["report", "--release", "x", "-p", "nope", "--out", "OUT"], "--profile: nope not in results store"),
    ],
)
def test_user_errors_exit_4_with_one_line(
    release_store: ReleaseStore, tmp_path: Path, args: list[str], needle: str
) -> None:
    args = [a.replace("OUT", str(tmp_path / "out")) for a in args]
    res = runner.invoke(app, [*args, "--db", str(release_store.path)])
    assert res.exit_code == 4
    assert needle in one_line_error(res)


def test_missing_or_unreadable_db_exits_4(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "q.db"
    for args in (
        ["history", "-p", "x"],
        ["compare", "-p", "x", "a", "b"],
        ["baseline", "show"],
        ["export"],
        ["report", "--release", "r", "--out", str(tmp_path / "o")],
    ):
        res = runner.invoke(app, [*args, "--db", str(missing)])
        assert res.exit_code == 4, args
        assert "does not exist" in one_line_error(res)
    assert not missing.exists() and not missing.parent.exists()  # reading never creates a store
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not an SQLite file, just bytes " * 100)
    res = qharness("history", "-p", "x", "--db", str(junk))
    assert res.returncode == 4
    assert "is not a SQLite database" in one_line_error(res)


# -- history, baseline, export ----------------------------------------------------------------------------


def test_history_lists_every_build_of_a_metric(release_store: ReleaseStore) -> None:
    res = runner.invoke(app, ["history", "-p", "aer-reference", "-m", "bell_fidelity", "--db", str(release_store.path)])
    assert res.exit_code == 0, res.stderr
    with Store(release_store.path) as store:
        rows = store.history("aer-reference", "bell_fidelity")
    assert len(rows) == len(BUILDS)
    for r in rows:
        assert fmt_number(r["value"]) in res.stdout and r["build"] in res.stdout
    assert "REGRESSION" in res.stdout


def test_baseline_set_and_show(store_copy: Path) -> None:
    res = runner.invoke(app, ["baseline", "set", "-p", "aer-long-haul", "-b", "2.2.0", "--db", str(store_copy)])
    assert res.exit_code == 0, res.stderr
    assert "baseline of aer-long-haul: 2.2.0 (was 2.4.0)" in res.stdout
    with Store(store_copy) as store:
        assert store.baseline("aer-long-haul") == "2.2.0"
        assert store.baseline("aer-reference") == "2.4.0"
    shown = runner.invoke(app, ["baseline", "show", "--db", str(store_copy)])
    assert shown.exit_code == 0
    lines = {tuple(c.strip() for c in line.strip("│┃ ").split("│")) for line in shown.stdout.splitlines()}
    assert ("aer-long-haul", "2.2.0") in lines and ("bench-lab", "2.4.0") in lines


def test_export_csv_and_json_hold_every_metric_row(release_store: ReleaseStore, tmp_path: Path) -> None:
    db = str(release_store.path)
    n_metrics = len(release_store.metric_names)
    out = tmp_path / "all.csv"
    res = runner.invoke(app, ["export", "--format", "csv", "--db", db, "--out", str(out)])
    assert res.exit_code == 0, res.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(rows) == len(PROFILES) * len(BUILDS) * n_metrics
    res = runner.invoke(app, ["export", "--format", "json", "--db", db, "--profile", "bench-lab"])
    assert res.exit_code == 0, res.stderr
    data = json.loads(res.stdout)
    assert len(data) == len(BUILDS) * n_metrics
    with Store(release_store.path) as store:
        for row in data[:: n_metrics // 3]:
            est, verdict, _ = store.metrics(row["run_id"])[row["name"]]
            assert row["value"] == est.value and row["ci_low"] == est.ci_low and row["verdict"] == verdict
            run = store.run(row["run_id"])
            assert row["profile_hash"] == run.profile_hash and row["seed"] == run.seed
            assert row["provenance"]["instruments"]["counter"]["retries"] == 3
    by_key = {(r["profile"], r["run_id"], r["name"]): r for r in rows}
    for row in data:
        flat = by_key["bench-lab", str(row["run_id"]), row["name"]]
        assert float(flat["value"]) == row["value"] and flat["build"] == row["build"]
        assert json.loads(flat["provenance"]) == row["provenance"]


# -- report command ---------------------------------------------------------------------------------------


def test_report_command_writes_the_three_files(release_store: ReleaseStore, tmp_path: Path) -> None:
    out = tmp_path / "rep"
    res = runner.invoke(
        app, ["report", "--db", str(release_store.path), "--release", RELEASE, "-p", "aer-reference", "--out", str(out)]
    )
    assert res.exit_code == 0, res.stderr
    assert f"release {RELEASE}: REGRESSION" in res.stdout
    assert {p.name for p in out.iterdir()} == {"index.html", "summary.md", "summary.json"}
    summary = json.loads((out / "summary.json").read_text())
    assert [s["profile"] for s in summary] == ["aer-reference"]


# -- helpers for the plugin -------------------------------------------------------------------------------


def test_trend_plot_png_and_svg(release_store: ReleaseStore) -> None:
    from matplotlib.image import imread

    with Store(release_store.path) as store:
        png = trend_plot_png(store, "aer-reference", "bell_fidelity")
        svg = trend_plot_svg(store, "aer-reference", "bell_fidelity")
        with pytest.raises(ReportError, match="no measurements of metric 'nope'"):
            trend_plot_png(store, "aer-reference", "nope")
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    img = imread(io.BytesIO(png), format="png")
    assert img.shape[0] > 100 and img.shape[1] > 200
    assert np.unique(np.round(img[..., :3] * 255).reshape(-1, 3), axis=0).shape[0] > 20
    root = ET.fromstring(svg.encode())
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    titles = [t.text for t in root.iter("{http://www.w3.org/2000/svg}title")]
    assert sum(t.startswith(tuple(f"{b}: " for b in BUILDS)) for t in titles if t) == len(BUILDS)


def test_write_allure_environment(tmp_path: Path) -> None:
    prov = {
        "profile": "aer-reference",
        "build": "2.5.0-rc1",
        "seed": 7,
        "versions": {"qiskit": "2.6.2"},
        "codes": ["surface_d3", "surface_d5"],
        "note": "a=b: c\nd",
        "host name": "lab ρ",
    }
    path = write_allure_environment(tmp_path / "allure", prov)
    assert path == tmp_path / "allure" / "environment.properties"
    lines = path.read_text(encoding="ascii").splitlines()
    assert lines == [
        "profile=aer-reference",
        "build=2.5.0-rc1",
        "seed=7",
        "versions.qiskit=2.6.2",
        "codes=surface_d3, surface_d5",
        "note=a=b: c\\nd",
        "host\\ name=lab \\u03c1",
    ]


def test_build_order() -> None:
    assert order_builds(["2.10.0", "2.9.0", "2.5.0", "2.5.0-rc1", "2.5.0rc2", "1.0"]) == [
        "1.0",
        "2.5.0-rc1",
        "2.5.0rc2",
        "2.5.0",
        "2.9.0",
        "2.10.0",
    ]
    # semver that PEP 440 rejects: numeric identifiers before alphanumeric, release after pre-release
    assert order_builds(["1.0.0-beta.x", "1.0.0", "1.0.0-beta.2", "1.0.0-beta.11"]) == [
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-beta.x",
        "1.0.0",
    ]
    # a set with names that are no version at all has no version order: time of first run decides
    seen = {"nightly-b": "2026-01-02T00:00:00", "nightly-a": "2026-01-03T00:00:00", "2.0.0": "2026-01-04T00:00:00"}
    assert order_builds(["nightly-a", "2.0.0", "nightly-b"], seen) == ["nightly-b", "nightly-a", "2.0.0"]
