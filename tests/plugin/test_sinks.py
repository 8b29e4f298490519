"""The session's outputs: the verdict table, the summary JSON and what the summary keeps of a metric's detail."""

import json
from pathlib import Path

import numpy as np

from harness.metrics import Direction, Estimate
from harness.pytest_plugin.sinks import format_table, json_default, write_summary
from harness.store import Store
from harness.summary import candidate_runs, run_summary


def _store_one_run(store: Store, detail: dict | None = None) -> None:
    """A finished candidate run of profile "p" in session "s1" with one PASS metric."""
    run = store.start_run(
        profile="p",
        profile_hash="h",
        build="2",
        baseline_build="1",
        seed=1,
        budget="quick",
        session_id="s1",
        provenance={"role": "candidate"},
    )
    store.add_metric(run, "bell_fidelity", Estimate(0.9, 0.8, 0.95, 100, "", Direction.HIGHER), "PASS", detail)
    store.finish_run(run, "passed")


def test_table_rows_show_value_interval_baseline_and_delta():
    metric = {
        "name": "bell_fidelity",
        "value": 0.95,
        "ci_low": 0.94,
        "ci_high": 0.96,
        "baseline": {"value": 0.951},
        "delta": {"value": -0.001, "ci_low": -0.003, "ci_high": 0.001},
        "verdict": "PASS",
    }
    header, row, bare = format_table([metric, {"name": "chsh_s", "value": None, "verdict": "ERROR"}])
    assert header.split()[:2] == ["metric", "value"] and header.endswith("verdict")
    assert row.split() == ["bell_fidelity", "0.95", "[0.94,", "0.96]", "0.951", "-0.001", "[-0.003,", "+0.001]", "PASS"]
    assert bare.split() == ["chsh_s", "-", "-", "-", "ERROR"]


def test_json_default_makes_numpy_values_plain():
    assert json_default(np.arange(2)) == [0, 1] and json_default(np.float64(0.5)) == 0.5
    assert json_default(Path("x")) == "x"


def test_summary_json_holds_the_session_candidate_runs(tmp_path: Path):
    with Store(tmp_path / "q.db") as store:
        _store_one_run(store)
        write_summary(store, "s1", tmp_path / "out" / "summary.json")
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["profile"] == "p" and summary["verdict"] == "PASS"
    assert [m["name"] for m in summary["metrics"]] == ["bell_fidelity"]


def test_metric_detail_reaches_the_summary_but_its_artifacts_do_not(tmp_path: Path):
    with Store(tmp_path / "q.db") as store:
        _store_one_run(store, {"p_value": 0.3, "artifacts": {"rho": [[0.5, 0.0], [0.0, 0.5]]}})
        [run] = candidate_runs(store, "s1")
        entry = run_summary(store, run)["metrics"][0]
    assert entry["p_value"] == 0.3
    assert "artifacts" not in entry
