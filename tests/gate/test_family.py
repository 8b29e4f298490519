"""The family design: primaries first, aliases gated once and reported twice, max-T within shared counts."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from harness.gate import GateDesign, MetricPlan, SequentialGate, default_plans, evaluate
from harness.gate.maxt import member_level
from harness.metrics import Direction, Estimate, Tolerance, Verdict, primary_metrics
from harness.stats.sequential import Spending

Z95 = float(norm.ppf(0.975))


def est(value: float, se: float, samples: np.ndarray | None = None) -> Estimate:
    s = None if samples is None else tuple(float(x) for x in samples)
    return Estimate(value, value - Z95 * se, value + Z95 * se, 10_000, "", Direction.HIGHER, samples=s)


def test_default_primaries_are_the_four_headlines():
    names = ["bell_fidelity", "concurrence", "pair_rate_hz", "capacity_ce_bits", "capacity_q1_bits", "car"]
    names += [f"logical_success_{c}" for c in ("repetition_bitflip_d3", "surface_d3", "surface_d5")]
    assert primary_metrics(names) == ("bell_fidelity", "pair_rate_hz", "capacity_ce_bits", "logical_success_surface_d5")


def _passing(z: float) -> tuple[Estimate, Estimate]:
    """A pair whose PASS statistic is z against a tolerance of 0.01 (a single look)."""
    se = 0.001
    return est(0.9 - (0.01 - z * se * np.sqrt(2)), se), est(0.9, se)


def test_secondaries_pass_only_after_every_primary_passed():
    plans = {
        "p": MetricPlan(tolerance=Tolerance(absolute=0.01), primary=True),
        "s": MetricPlan(tolerance=Tolerance(absolute=0.01)),
    }
    strong, weak = _passing(8.0), _passing(1.0)
    both = evaluate({"p": strong[0], "s": strong[0]}, {"p": strong[1], "s": strong[1]}, {}, plans=plans)
    assert both["p"].verdict is Verdict.PASS and both["s"].verdict is Verdict.PASS
    # The primary stays undecided: the secondary gets no alpha for PASS, however strong its own evidence.
    blocked = evaluate({"p": weak[0], "s": strong[0]}, {"p": weak[1], "s": strong[1]}, {}, plans=plans)
    assert blocked["p"].verdict is Verdict.INCONCLUSIVE and blocked["s"].verdict is Verdict.INCONCLUSIVE
    # The primary is tested at the full alpha: z = 1.7 > 1.645 PASSes although the family has two members.
    edge = _passing(1.7)
    alone = evaluate({"p": edge[0], "s": strong[0]}, {"p": edge[1], "s": strong[1]}, {}, plans=plans)
    assert alone["p"].verdict is Verdict.PASS


def test_a_regression_in_a_secondary_alone_is_still_found():
    plans = {n: MetricPlan(tolerance=Tolerance(absolute=0.01), primary=n.startswith("p")) for n in ("p1", "p2", "s")}
    ok = _passing(8.0)
    bad = (est(0.85, 0.001), est(0.9, 0.001))  # 0.05 worse: z about 28 against the tolerance
    out = evaluate({"p1": ok[0], "p2": ok[0], "s": bad[0]}, {"p1": ok[1], "p2": ok[1], "s": bad[1]}, {}, plans=plans)
    assert out["s"].verdict is Verdict.REGRESSION
    assert out["p1"].verdict is Verdict.PASS and out["p2"].verdict is Verdict.PASS


def test_an_alias_is_gated_once_and_reported_twice():
    rng = np.random.default_rng(1)
    reps = rng.normal(0.0, 0.001, 400)
    f_c, f_b = est(0.95, 0.001, 0.95 + reps), est(0.95, 0.001, 0.95 + reps[::-1])
    c_c, c_b = est(0.90, 0.002, 0.90 + 2 * reps), est(0.90, 0.002, 0.90 + 2 * reps[::-1])
    tol = {"bell_fidelity": Tolerance(absolute=0.01), "concurrence": Tolerance(absolute=0.02)}
    plans = default_plans(["bell_fidelity", "concurrence"], tol)
    assert plans["concurrence"].alias_of == "bell_fidelity"
    out = evaluate({"bell_fidelity": f_c, "concurrence": c_c}, {"bell_fidelity": f_b, "concurrence": c_b}, tol,
                   plans=plans)  # fmt: skip
    assert out["concurrence"].follows == "bell_fidelity"
    assert out["concurrence"].verdict is out["bell_fidelity"].verdict is Verdict.PASS
    assert out["concurrence"].candidate.value == 0.90  # its own numbers are reported
    # bell_fidelity is tested as if alone: the alias takes no alpha.
    single = evaluate({"bell_fidelity": f_c}, {"bell_fidelity": f_b}, tol)
    assert out["bell_fidelity"].level == single["bell_fidelity"].level


def test_replicates_correlated_at_099_make_an_alias_within_a_group_only():
    rng = np.random.default_rng(2)
    base = rng.normal(0.0, 1.0, 500)
    noise = rng.normal(0.0, 0.05, 500)
    tol = Tolerance(absolute=0.05)
    plans = {"x": MetricPlan(tolerance=tol, group="g", primary=True), "y": MetricPlan(tolerance=tol, group="g")}
    c = {"x": est(0.5, 0.01, 0.5 + 0.01 * base), "y": est(0.4, 0.01, 0.4 + 0.01 * (base + noise))}
    b = {"x": est(0.5, 0.01, 0.5 + 0.01 * base[::-1]), "y": est(0.4, 0.01, 0.4 + 0.01 * (base + noise)[::-1])}
    out = evaluate(c, b, {}, plans=plans)
    assert out["y"].follows == "x"
    split = {"x": plans["x"], "y": MetricPlan(tolerance=tol, group="h")}
    assert evaluate(c, b, {}, plans=split)["y"].follows is None


def test_max_t_gives_correlated_members_more_than_bonferroni_and_never_more_than_the_level():
    fractions = [(1.0,), (1.0,)]
    independent = member_level(0.05, np.eye(2), fractions, True, Spending.POCOCK)
    correlated = member_level(0.05, np.array([[1.0, 0.9], [0.9, 1.0]]), fractions, True, Spending.POCOCK)
    assert independent == pytest.approx(0.025, rel=0.2)
    assert 0.03 < correlated <= 0.05
    # Simulated family-wise error of the correlated pair at that level stays at most alpha.
    rng = np.random.default_rng(9)
    z = rng.multivariate_normal([0, 0], [[1, 0.9], [0.9, 1]], 400_000)
    assert float(np.mean(np.any(z >= norm.isf(correlated), axis=1))) <= 0.05 + 0.001
    assert member_level(0.05, None, fractions, True, Spending.POCOCK) == pytest.approx(0.025)


def test_the_family_wise_error_of_a_shared_count_group_stays_at_alpha_over_looks():
    # Three metrics of one protocol with correlated statistics, all exactly at their tolerance, over three looks.
    design, runs, corr = GateDesign(), 400, np.array([[1, 0.8, 0.6], [0.8, 1, 0.7], [0.6, 0.7, 1]])
    rng = np.random.default_rng(4)
    names = ("a", "b", "c")
    plans = {n: MetricPlan(tolerance=Tolerance(absolute=0.01), group="g", max_scale=4.0) for n in names}
    alarms = 0
    for _ in range(runs):
        gate = SequentialGate(design, plans)
        inc = rng.multivariate_normal(np.zeros(3), corr, size=(3, 1000))  # looks x replicates x metrics
        steps, scales = np.array([1.0, 1.0, 2.0]), np.array([1.0, 2.0, 4.0])
        draws = rng.multivariate_normal(np.zeros(3), corr, size=3) / np.sqrt(steps)[:, None]
        pooled = np.cumsum(draws * steps[:, None], axis=0) / scales[:, None]
        for k in range(3):
            se = 0.001 / np.sqrt(scales[k])
            # The candidate's replicates carry both builds' variance (the baseline is given as exact).
            cands = {n: est(0.9 - 0.01 + 0.001 * np.sqrt(2) * pooled[k, j], se * np.sqrt(2),
                            0.9 + se * np.sqrt(2) * inc[k, :, j])
                     for j, n in enumerate(names)}  # fmt: skip
            bases = {n: est(0.9, 1e-9) for n in names}
            out = gate.look(cands, bases, {n: (scales[k], scales[k]) for n in names}, final=k == 2)
            if not gate.pending():
                break
        alarms += any(c.verdict is Verdict.REGRESSION for c in out.values())
    assert alarms / runs <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / runs)
