"""Operating characteristics of the whole gate on aer-reference (metric-level simulation, real gate code)."""

import math

import pytest

from harness.gate import Tolerance
from harness.profiles import load_profile
from harness.study import model_family, simulate_gate

pytestmark = pytest.mark.slow
ALPHA = 0.05


def _family(loaded) -> list[str]:
    from harness.protocols import BELL_METRICS, LINK_METRICS, RATE_METRICS

    codes = loaded.effective().qec.codes
    return [*BELL_METRICS, *LINK_METRICS, *RATE_METRICS, *(f"logical_success_{c}" for c in codes)]


def _tolerances(profile) -> dict[str, Tolerance]:
    return profile.gate_tolerances()


@pytest.fixture(scope="module")
def reference():
    loaded = load_profile("aer-reference")
    return loaded, _family(loaded)


@pytest.mark.parametrize("budget", ["quick", "standard"])
def test_false_alarm_rate_of_an_unchanged_build(reference, budget):
    loaded, family = reference
    base = model_family(loaded.effective("2.3.0"), "2.3.0", family, budget=budget, seed=11)
    cand = model_family(loaded.effective("2.4.0"), "2.4.0", family, budget=budget, seed=12)
    runs = 400
    result = simulate_gate(cand, base, _tolerances(loaded.effective("2.4.0")), runs=runs, budget=budget, seed=5)
    bound = ALPHA + 2 * math.sqrt(ALPHA * (1 - ALPHA) / runs)
    print(f"{budget}: false-alarm rate {result.rate:.4f} {result.interval()} over {runs} runs; bound {bound:.4f}")
    assert result.rate <= bound, result.regressions


def test_power_to_catch_the_shipped_regression_at_quick_budget(reference):
    loaded, family = reference
    base = model_family(loaded.effective("2.3.0"), "2.3.0", family, budget="quick", seed=21)
    cand = model_family(loaded.effective("2.5.0-rc1"), "2.5.0-rc1", family, budget="quick", seed=22)
    result = simulate_gate(cand, base, _tolerances(loaded.effective("2.5.0-rc1")), runs=300, budget="quick", seed=6)
    print(f"power {result.rate:.4f} {result.interval()}; per metric {result.regressions}")
    assert result.rate >= 0.99
    # The regression is found where the physics put it (lower visibility), not in the untouched link or logic.
    assert result.regressions["bell_fidelity"] >= 0.9 * result.runs
    assert result.regressions["capacity_ce_bits"] <= 0.05 * result.runs
