"""The session's outputs: the verdict table, the summary JSON and what the summary keeps of a metric's detail."""

import json
from pathlib import Path

import allure_commons.utils
import numpy as np
import pytest

from harness.metrics import Direction, Estimate
from harness.pytest_plugin.allure import Plain
from harness.pytest_plugin.sinks import format_causes, format_table, json_default, write_summary
from harness.session import unmeasured
from harness.store import RunStatus, Store
from harness.summary import candidate_runs, run_summary

FIDELITY = Estimate(0.9, 0.8, 0.95, 100, "", Direction.HIGHER)


def _store_one_run(
    store: Store,
    detail: dict | None = None,
    *,
    verdicts: tuple[str, ...] = ("PASS",),
    build: str = "2",
    status: RunStatus = RunStatus.PASSED,
) -> None:
    """A finished candidate run of profile "p" in session "s1" (baseline build "1") with one metric per verdict."""
    run = store.start_run(
        profile="p",
        profile_hash="h",
        build=build,
        baseline_build="1",
        seed=1,
        budget="quick",
        session_id="s1",
        provenance={"role": "candidate"},
    )
    for name, verdict in zip(("bell_fidelity", "concurrence", "qber_x"), verdicts, strict=False):
        store.add_metric(run, name, FIDELITY, verdict, detail)
    store.finish_run(run, status)


def test_table_rows_show_value_interval_baseline_and_delta():
    metric = {
        "name": "bell_fidelity",
        "value": 0.95,
        "ci_low": 0.94,
        "ci_high": 0.96,
        "baseline": {"value": 0.951},
        "delta": {"value": -0.001, "ci_low": -0.003, "ci_high": 0.001},
        "verdict": "PASS",
        "min_detectable_regression": 0.00512345,
    }
    header, row, bare = format_table([metric, {"name": "chsh_s", "value": None, "verdict": "ERROR"}])
    assert header.split()[:2] == ["metric", "value"] and header.endswith("detectable  verdict")
    fields = ["bell_fidelity", "0.95", "[0.94,", "0.96]", "0.951", "-0.001", "[-0.003,", "+0.001]", "0.005123", "PASS"]
    assert row.split() == fields
    assert bare.split() == ["chsh_s", "-", "-", "-", "-", "ERROR"]


def test_table_says_why_a_metric_is_not_gated_and_which_metric_an_alias_follows():
    reason = "not gated at this budget: needs budget standard"
    not_gated = {"name": "car", "value": None, "verdict": "NOT_GATED", "reason": reason}
    alias = {"name": "concurrence", "value": None, "verdict": "PASS", "follows": "bell_fidelity"}
    _, first, second = format_table([not_gated, alias])
    assert first.endswith(f"NOT_GATED: {reason}")
    assert second.endswith("PASS (follows bell_fidelity)")


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


def test_the_metric_column_fits_the_longest_name():
    long = "logical_success_repetition_bitflip_d5"
    header, short, longest = format_table(
        [{"name": "car", "value": None, "verdict": "PASS"}, {"name": long, "value": None, "verdict": "PASS"}]
    )
    assert len(long) > 34  # the width the table had before
    assert header.index("value") == short.index("-") == longest.index("-") == len(long) + 1
    assert format_table([]) == []


def test_each_error_cause_is_one_line_under_the_table():
    metrics = [
        {"name": "bell_fidelity", "verdict": "ERROR", "error": "bench: wrong build"},
        {"name": "qber_x", "verdict": "ERROR", "error": "bench: wrong build"},
        {"name": "car", "verdict": "ERROR", "error": "counter: timed out"},
        {"name": "chsh_s", "verdict": "PASS", "error": None},
    ]
    assert format_causes(metrics) == ["ERROR (2 metrics): bench: wrong build", "ERROR (car): counter: timed out"]


@pytest.mark.parametrize(
    ("verdicts", "build", "status", "verdict", "headline"),
    [
        (("PASS", "NO_BASELINE"), "2", RunStatus.PASSED, "PASS", "build 2 vs 1: PASS"),
        (
            ("NO_BASELINE", "NO_BASELINE"),
            "2",
            RunStatus.PASSED,
            "NO_BASELINE",
            "build 2: NO_BASELINE (no measurement of baseline 1 to compare with)",
        ),
        (("NO_BASELINE",), "1", RunStatus.PASSED, "NO_BASELINE", "measured baseline 1; nothing compared"),
        (("REGRESSION", "ERROR"), "2", RunStatus.FAILED, "REGRESSION", "build 2 vs 1: REGRESSION"),
        (("PASS",), "2", RunStatus.ERROR, "ERROR", "build 2 vs 1: ERROR"),
        ((), "2", RunStatus.ABORTED, "ERROR", "build 2 vs 1: aborted (interrupted; raw records kept)"),
    ],
)
def test_the_headline_says_what_was_compared(tmp_path: Path, verdicts, build, status, verdict, headline):
    with Store(tmp_path / "q.db") as store:
        _store_one_run(store, verdicts=verdicts, build=build, status=status)
        [run] = candidate_runs(store, "s1")
        summary = run_summary(store, run)
    assert (summary["verdict"], summary["headline"], summary["status"]) == (verdict, headline, str(status))


def test_an_unmeasured_metric_is_null_in_the_summary_with_its_unit_and_reason(tmp_path: Path):
    with Store(tmp_path / "q.db") as store:
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
        store.add_metric(run, "pair_rate_hz", unmeasured("pair_rate_hz"), "ERROR", {"error": "counter: timed out"})
        store.finish_run(run, RunStatus.ERROR)
        summary = run_summary(store, store.run(run))
    (entry,) = summary["metrics"]
    assert {k: entry[k] for k in ("value", "ci_low", "ci_high", "n", "unit", "direction", "verdict", "error")} == {
        "value": None,
        "ci_low": None,
        "ci_high": None,
        "n": 0,
        "unit": "Hz",
        "direction": "higher",
        "verdict": "ERROR",
        "error": "counter: timed out",
    }
    json.dumps(summary, allow_nan=False)  # plain JSON: no NaN


def test_allure_shows_a_parameter_as_given():
    assert allure_commons.utils.represent("2.4.0") == "'2.4.0'"  # what a str would show
    assert allure_commons.utils.represent(Plain("2.4.0")) == "2.4.0"
    assert allure_commons.utils.represent(Plain(7)) == "7"
