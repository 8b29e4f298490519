"""The group-sequential gate: error rates at the tolerance over each budget's looks, and frozen verdicts."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from harness.gate import GateDesign, MetricPlan, SequentialGate
from harness.gate.design import crossing_probability, doubling_scales, look_bounds
from harness.gate.simulate import alone, error_rates, pooled_paths
from harness.metrics import Direction, Estimate, Tolerance, Verdict
from harness.profiles import BUDGET_CAPS, BUDGETS
from harness.stats.sequential import Spending

Z95 = float(norm.ppf(0.975))
ALPHA = 0.05


def est(value: float, se: float) -> Estimate:
    return Estimate(value, value - Z95 * se, value + Z95 * se, 10_000, "", Direction.HIGHER)


@pytest.mark.parametrize("budget", list(BUDGETS))
def test_a_metric_alone_at_its_tolerance_crosses_exactly_the_group_sequential_boundaries(budget):
    # The gate's verdict on each run equals the first crossing of the two one-sided tests' boundaries on the same
    # pooled numbers; those boundaries spend exactly alpha (next test), so false REGRESSION and false PASS are each
    # at most alpha at every budget. The rates over many runs are in benchmarks/gate_boundary.py.
    first = BUDGETS[budget]
    cap = first * BUDGET_CAPS[budget]
    tol, runs = 6.0 * math.sqrt(2.0 / cap), 1500  # resolvable at the cap: the metric is gated
    verdicts = alone(tol, tol, first=first, cap=cap, runs=runs, seed=11)
    scales, pc, pb, se = pooled_paths(tol, first=first, cap=cap, runs=runs, seed=11)
    z_pass = (tol + (pc - pb)) / (se * math.sqrt(2.0))
    bounds = np.asarray(look_bounds(tuple(s / cap for s in scales), ALPHA, Spending.POCOCK, True, True))
    first_reg = np.where((-z_pass >= bounds).any(1), (-z_pass >= bounds).argmax(1), 99)
    first_pass = np.where((z_pass >= bounds).any(1), (z_pass >= bounds).argmax(1), 99)
    expected = np.where(
        (first_reg < 99) & (first_reg <= first_pass), "REGRESSION", np.where(first_pass < 99, "PASS", "INCONCLUSIVE")
    )
    got = np.asarray([str(v) if v is not Verdict.IMPROVED else "PASS" for v in verdicts])
    assert (got == expected).all()
    reg, ok = error_rates(verdicts)
    allowance = ALPHA + 3.0 * math.sqrt(ALPHA * (1 - ALPHA) / runs)
    print(f"{budget}: false REGRESSION {reg:.4f}, false PASS {ok:.4f} over {runs} runs")
    assert reg <= allowance and ok <= allowance


def test_the_boundaries_spend_exactly_alpha_over_the_looks():
    t = (0.25, 0.5, 1.0)
    bounds = look_bounds(t, ALPHA, Spending.POCOCK, True, True)
    # Repeated testing at 1.645 would not: the same paths cross 1.645 at some look far more often than alpha.
    rng = np.random.default_rng(3)
    steps = np.diff(np.concatenate([[0.0], t]))
    z = np.cumsum(rng.standard_normal((200_000, 3)) * np.sqrt(steps), axis=1) / np.sqrt(t)
    spent = float(np.mean(np.any(z >= np.asarray(bounds), axis=1)))
    naive = float(np.mean(np.any(z >= norm.isf(ALPHA), axis=1)))
    assert spent == pytest.approx(ALPHA, abs=0.0015)
    assert naive > 0.075
    # The design's own crossing probability (used by the planner) agrees.
    assert crossing_probability(0.0, t, ALPHA, 1e-9, Spending.POCOCK) == pytest.approx(ALPHA, abs=1e-3)


def test_an_unchanged_build_passes_early_and_a_regressed_one_regresses():
    first, cap = 1.0, 4.0
    tol = 6.0 * math.sqrt(2.0 / cap)
    _, unchanged = error_rates(alone(0.0, tol, first=first, cap=cap, runs=500, seed=5))
    regressed, _ = error_rates(alone(2.0 * tol, tol, first=first, cap=cap, runs=500, seed=6))
    assert unchanged >= 0.95 and regressed >= 0.99


def _pair_plan(cap: float) -> dict[str, MetricPlan]:
    tol = Tolerance(absolute=0.01)
    return {
        "a": MetricPlan(tolerance=tol, group="bell", max_scale=cap, primary=True),
        "b": MetricPlan(tolerance=tol, group="bell", max_scale=cap),
    }


def test_a_frozen_verdict_survives_a_sibling_remeasurement():
    gate = SequentialGate(GateDesign(), _pair_plan(4.0))
    # a is clearly within its tolerance at the first look; b sits on its tolerance and needs more data.
    first = gate.look({"a": est(0.9, 0.0005), "b": est(0.89, 0.003)}, {"a": est(0.9, 0.0005), "b": est(0.9, 0.003)},
                      {"a": (1.0, 1.0), "b": (1.0, 1.0)})  # fmt: skip
    assert first["a"].verdict is Verdict.PASS and first["a"].look == 1
    assert gate.pending() == {"b"}
    # b's protocol is re-measured; a's new numbers (now far worse) come with it, but a's verdict is frozen.
    second = gate.look({"a": est(0.8, 0.0003), "b": est(0.89, 0.002)}, {"a": est(0.9, 0.0003), "b": est(0.9, 0.002)},
                       {"a": (2.0, 2.0), "b": (2.0, 2.0)})  # fmt: skip
    assert second["a"] is first["a"] and second["a"].verdict is Verdict.PASS
    assert second["a"].candidate.value == 0.9


def test_a_regression_freezes_too_and_the_decisive_look_is_reported():
    gate = SequentialGate(GateDesign(), _pair_plan(4.0))
    out = gate.look({"a": est(0.95, 0.001), "b": est(0.85, 0.001)}, {"a": est(0.95, 0.001), "b": est(0.9, 0.001)},
                    {"a": (1.0, 1.0), "b": (1.0, 1.0)})  # fmt: skip
    assert out["b"].verdict is Verdict.REGRESSION and out["b"].look == 1 and out["b"].looks == 1
    later = gate.look({"a": est(0.95, 0.001), "b": est(0.95, 0.0005)}, {"a": est(0.95, 0.001), "b": est(0.9, 0.0005)},
                      {"a": (2.0, 2.0), "b": (2.0, 2.0)})  # fmt: skip
    assert later["b"].verdict is Verdict.REGRESSION and later["b"].delta.value == pytest.approx(-0.05)


def test_looks_double_to_the_cap():
    assert doubling_scales(0.25, 1.0) == (0.25, 0.5, 1.0)
    assert doubling_scales(1.0, 4.0) == (1.0, 2.0, 4.0)
    assert doubling_scales(4.0, 32.0) == (4.0, 8.0, 16.0, 32.0)
    assert doubling_scales(1.0, 3.0) == (1.0, 2.0, 3.0)
