"""Exact tests of logical rates at zero failures; timing metrics; metrics a budget cannot resolve."""

from __future__ import annotations

import math

import pytest
from scipy.stats import norm

from harness.gate import GateDesign, MetricPlan, SequentialGate, compare_one, default_plans, evaluate
from harness.metrics import Direction, Estimate, Tolerance, Verdict

Z95 = float(norm.ppf(0.975))
CODE = "logical_success_repetition_bitflip_d3"


def logical(failures: int, shots: int) -> Estimate:
    p = failures / shots
    half = Z95 * math.sqrt(max(p * (1 - p), 0.0) / shots)
    return Estimate(
        1 - p, 1 - p - half, min(1.0, 1 - p + half), shots, "", Direction.HIGHER, binomial=(failures, shots)
    )


def test_zero_failures_on_both_builds_pass_exactly():
    # A Wald interval at zero failures has zero width: a normal test would call any change exact.
    c = compare_one(CODE, logical(0, 20_000), logical(0, 20_000), Tolerance(absolute=3e-4))
    assert c.method == "exact binomial (unconditional)" and c.verdict is Verdict.PASS
    # With fewer shots the same zero failures cannot show the rate is within 3e-4: not a PASS.
    few = compare_one(CODE, logical(0, 2_000), logical(0, 2_000), Tolerance(absolute=3e-4))
    assert few.verdict is Verdict.INCONCLUSIVE


def test_failures_against_a_zero_failure_baseline_regress_exactly():
    c = compare_one(CODE, logical(30, 20_000), logical(0, 20_000), Tolerance(absolute=3e-4))
    assert c.verdict is Verdict.REGRESSION and c.method == "exact binomial (unconditional)"
    # Two failures in 20k against none is well within what chance gives: no alarm.
    assert compare_one(CODE, logical(2, 20_000), logical(0, 20_000), Tolerance(absolute=3e-4)).verdict in (
        Verdict.PASS,
        Verdict.INCONCLUSIVE,
    )


@pytest.mark.parametrize(
    ("name", "cand", "base", "tol", "reason"),
    [
        # Host wall-clock time: it times this machine, not the device.
        (
            "decode_time_us_surface_d3",
            Estimate(50.0, 49.0, 51.0, 20, "us", Direction.LOWER),
            Estimate(10.0, 9.9, 10.1, 20, "us", Direction.LOWER),
            Tolerance(relative=0.01),
            "wall-clock",
        ),
        # Holevo chi: its bias correction leaves +0.4-0.5 SE near the identity channel (RESULTS.md, estimators).
        (
            "capacity_chi_bits",
            Estimate(0.80, 0.79, 0.81, 10_000, "bit/use", Direction.HIGHER),
            Estimate(0.99, 0.98, 1.00, 10_000, "bit/use", Direction.HIGHER),
            Tolerance(absolute=0.01),
            "never gated",
        ),
    ],
)
def test_an_informational_metric_is_never_gated_even_with_a_tolerance(name, cand, base, tol, reason):
    out = evaluate({name: cand}, {name: base}, {name: tol})
    assert out[name].verdict is Verdict.NOT_GATED and reason in out[name].reason
    assert default_plans([name], {})[name].informational


def test_device_latency_is_gated_only_with_a_tolerance():
    name = "decoder_latency_p99_us"
    cand = Estimate(50.0, 49.0, 51.0, 2000, "us", Direction.LOWER)
    base = Estimate(10.0, 9.9, 10.1, 2000, "us", Direction.LOWER)
    untolerated = evaluate({name: cand}, {name: base}, {})
    assert untolerated[name].verdict is Verdict.NOT_GATED and "tolerance" in untolerated[name].reason
    assert evaluate({name: cand}, {name: base}, {name: Tolerance(relative=0.5)})[name].verdict is Verdict.REGRESSION


def _budgeted(tol: float) -> dict[str, MetricPlan]:
    return {"bell_fidelity": MetricPlan(tolerance=Tolerance(absolute=tol), max_scale=1.0, primary=True, resolve=True)}


def test_a_tolerance_the_budget_cannot_resolve_is_not_gated_and_names_the_budget_needed():
    gate = SequentialGate(GateDesign(), _budgeted(0.004), describe_scale=lambda s: f"budget x{s:.3g}")
    se = 0.004  # one build's SE at the first look (scale 0.25); at the cap (1.0) the difference has SE 0.0028
    out = gate.look({"bell_fidelity": Estimate(0.9, 0.9 - Z95 * se, 0.9 + Z95 * se, 9000, "", Direction.HIGHER)},
                    {"bell_fidelity": Estimate(0.9, 0.9 - Z95 * se, 0.9 + Z95 * se, 9000, "", Direction.HIGHER)},
                    {"bell_fidelity": (0.25, 0.25)}, final=True)["bell_fidelity"]  # fmt: skip
    assert out.verdict is Verdict.NOT_GATED
    assert out.reason.startswith("not gated at this budget: needs budget x")
    assert not gate.pending()  # measuring better than its tolerance, it drives no re-measurement


def test_a_regression_of_an_unresolved_metric_is_re_measured_and_caught():
    gate = SequentialGate(GateDesign(), _budgeted(0.004))
    se, plan = 0.004, _budgeted(0.004)["bell_fidelity"]
    assert plan.max_scale == 1.0

    def look(worse: float, scale: float, final: bool = False):
        s = se * math.sqrt(0.25 / scale)
        cand = Estimate(0.9 - worse, 0.9 - worse - Z95 * s, 0.9 - worse + Z95 * s, 9000, "", Direction.HIGHER)
        base = Estimate(0.9, 0.9 - Z95 * s, 0.9 + Z95 * s, 9000, "", Direction.HIGHER)
        return gate.look({"bell_fidelity": cand}, {"bell_fidelity": base}, {"bell_fidelity": (scale, scale)},
                         final=final)["bell_fidelity"]  # fmt: skip

    # Worse than its tolerance but not yet significantly: it asks for more data, and the later looks decide.
    assert look(0.011, 0.25).verdict is Verdict.NOT_GATED and gate.pending() == {"bell_fidelity"}
    look(0.011, 0.5)
    assert look(0.011, 1.0, final=True).verdict is Verdict.REGRESSION


def test_default_plans_gate_a_metric_without_a_tolerance_at_a_margin_of_zero():
    plans = default_plans(["bell_fidelity"], {})
    assert plans["bell_fidelity"].tolerance is None
    cand = Estimate(0.8, 0.79, 0.81, 9000, "", Direction.HIGHER)
    base = Estimate(0.9, 0.89, 0.91, 9000, "", Direction.HIGHER)
    assert evaluate({"bell_fidelity": cand}, {"bell_fidelity": base}, {})["bell_fidelity"].verdict is Verdict.REGRESSION
