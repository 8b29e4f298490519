"""The planner: its figures on the stand-in, the shipped tolerances it produced, and the command's errors."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from harness.cli import app
from harness.plan import plan_profile
from harness.profiles import BUDGET_CAPS, BUDGETS, load_profile

KEYS = {"name", "standard_error", "min_detectable_regression", "budget_to_pass", "recommended_tolerance"}


@pytest.fixture(scope="module")
def plans():
    loaded = load_profile("aer-reference")
    return {b: plan_profile(loaded, budget=b) for b in ("quick", "standard")}


def test_every_metric_has_the_figures_and_they_are_consistent(plans):
    standard = {m.name: m for m in plans["standard"].metrics}
    quick = {m.name: m for m in plans["quick"].metrics}
    assert "bell_fidelity" in standard and "logical_success_surface_d5" in standard
    for name, m in standard.items():
        assert set(plans["standard"].to_dict()["metrics"][0]) >= KEYS
        assert m.standard_error > 0 and m.min_detectable_regression > m.tolerance >= 0
        # Four times the scale at the base: half the standard error; a longer budget needs a smaller margin.
        assert quick[name].standard_error == pytest.approx(2 * m.standard_error, rel=0.25)
        if m.note.startswith("never gated"):
            continue
        assert quick[name].recommended_tolerance > m.recommended_tolerance
        assert quick[name].min_detectable_regression > m.min_detectable_regression
    # The NOT_GATED rule and budget_to_pass agree: gated exactly when the budget's cap reaches the needed budget.
    cap = BUDGETS["quick"] * BUDGET_CAPS["quick"] / (BUDGETS["standard"] * BUDGET_CAPS["standard"])
    for m in quick.values():
        if m.note.startswith(("gated once", "never gated")):
            continue
        assert m.gated == (m.budget_to_pass <= cap), m
    chi = quick["capacity_chi_bits"]
    assert not chi.gated and chi.recommended_tolerance is None and chi.note.startswith("never gated: Holevo chi")


def test_aliases_are_gated_once(plans):
    rows = {m.name: m for m in plans["standard"].metrics}
    assert rows["concurrence"].note == "gated once with bell_fidelity" and not rows["concurrence"].gated
    assert rows["capacity_q1_bits"].note == "gated once with capacity_ce_bits"


def test_shipped_capacity_tolerance_detects_a_002_bit_drop_at_standard_with_power_09():
    plan = plan_profile(load_profile("aer-reference"), budget="standard", power=0.9)
    row = next(m for m in plan.metrics if m.name == "capacity_ce_bits")
    assert row.gated and row.min_detectable_regression <= 0.02


def test_write_tolerances_gives_a_loadable_profile_with_the_recommendations(tmp_path):
    out = tmp_path / "recalibrated.yaml"
    result = CliRunner().invoke(app, ["plan", "--profile", "aer-reference", "--json", "--write-tolerances", str(out)])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    rows = {m["name"]: m for m in plan["metrics"]}
    assert all(set(m) >= KEYS for m in plan["metrics"])
    written = yaml.safe_load(out.read_text())["tolerances"]
    assert written["bell_fidelity"] == {"absolute": float(f"{rows['bell_fidelity']['recommended_tolerance']:.2g}")}
    assert set(written["pair_rate_hz"]) == {"relative"}  # the form the profile used is kept
    load_profile(out)  # valid


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--profile", "no-such-profile"], "--profile no-such-profile"),
        (["--profile", "aer-reference", "--budget", "huge"], "--budget 'huge'"),
        (["--profile", "aer-reference", "--power", "1.5"], "--power 1.5"),
    ],
)
def test_bad_input_is_one_line_and_exit_4(args, message):
    result = CliRunner().invoke(app, ["plan", *args])
    assert result.exit_code == 4
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"qharness plan: {message}")
