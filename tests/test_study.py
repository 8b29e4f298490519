"""The study: whole gate runs simulated from counts through the real estimators and the real gate."""

from __future__ import annotations

import pytest

from harness.gate import Verdict
from harness.profiles import load_profile
from harness.study import Side, model, simulate, stored

FAMILY = ["bell_fidelity", "concurrence", "chsh_s", "pair_rate_hz", "car"]


@pytest.fixture(scope="module")
def builds():
    loaded = load_profile("aer-reference")
    return {b: model(loaded.effective(b), b) for b in ("2.3.0", "2.4.0", "2.5.0-rc1")}


def test_a_side_draws_joint_replicates_and_pools_its_looks(builds):
    side = Side(builds["2.3.0"], FAMILY, 1.0, seed=3, run=0)
    first = side.estimates()
    assert len(first["bell_fidelity"].samples) == len(first["concurrence"].samples)  # one joint resample
    side.scale["bell"] = 2.0
    pooled = side.estimates()["bell_fidelity"]
    assert pooled.n == pytest.approx(2 * first["bell_fidelity"].n, rel=0.05)
    kept = stored(first)
    assert kept["bell_fidelity"].samples is None and kept["bell_fidelity"].value == first["bell_fidelity"].value


def test_the_shipped_regression_regresses_and_an_unchanged_build_does_not(builds):
    bad = simulate(builds["2.5.0-rc1"], builds["2.3.0"], FAMILY, budget="standard", runs=3, seed=1)
    assert bad.count(Verdict.REGRESSION, "bell_fidelity") == 3
    good = simulate(builds["2.4.0"], builds["2.3.0"], FAMILY, budget="standard", runs=3, seed=1)
    assert good.count(Verdict.REGRESSION) == 0
    assert good.rate(Verdict.PASS, "bell_fidelity") + good.rate(Verdict.IMPROVED, "bell_fidelity") > 0


def test_a_stored_baseline_is_fixed_and_a_shift_is_found(builds):
    shift = {"car": 40.0}  # 8% of CAR, far beyond its 1.5% margin
    result = simulate(builds["2.4.0"], builds["2.3.0"], FAMILY, budget="standard", runs=2, seed=2, stored_scale=1.0,
                      shift=shift)  # fmt: skip
    assert result.count(Verdict.REGRESSION, "car") == 2
    assert result.interval(Verdict.REGRESSION, "car")[1] == pytest.approx(1.0)
