"""Tests of the regression gate: verdict logic, tolerances, Holm adjustment and error control by simulation."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from scipy.stats import norm

from harness.gate import Comparison, Tolerance, Verdict, compare_one, evaluate, holm, overall_verdict
from harness.metrics import Direction, Estimate

H, L = Direction.HIGHER, Direction.LOWER
Z95 = float(norm.ppf(0.975))


def est(value: float, se: float, direction: Direction = H, n: int = 10_000, unit: str = "") -> Estimate:
    """An estimate with a 95 % normal interval of standard error `se`."""
    return Estimate(value, value - Z95 * se, value + Z95 * se, n, unit, direction)


def exact(value: float, direction: Direction = H) -> Estimate:
    """An estimate without uncertainty (se = 0)."""
    return Estimate(value, value, value, 1, "", direction)


# -- direction, tolerance, basic verdicts --------------------------------------------------------------


def test_higher_metric_that_drops_regresses() -> None:
    c = compare_one("bell_fidelity", est(0.90, 0.001), est(0.92, 0.001), Tolerance())
    assert c.verdict == Verdict.REGRESSION
    assert c.delta is not None and c.delta.value == pytest.approx(-0.02)
    # delta interval = delta +- 1.96 * sqrt(2) * 0.001
    assert c.delta.ci_high - c.delta.value == pytest.approx(Z95 * math.sqrt(2) * 0.001, rel=1e-9)
    assert c.p_regression == pytest.approx(norm.sf(0.02 / (math.sqrt(2) * 0.001)), rel=1e-6)


def test_lower_metric_that_drops_improves_and_that_rises_regresses() -> None:
    down = compare_one("qber_z", est(0.020, 0.001, L), est(0.030, 0.001, L), Tolerance())
    up = compare_one("qber_z", est(0.040, 0.001, L), est(0.030, 0.001, L), Tolerance())
    assert down.verdict == Verdict.IMPROVED
    assert up.verdict == Verdict.REGRESSION
    higher_up = compare_one("bell_fidelity", est(0.95, 0.001), est(0.92, 0.001), Tolerance())
    assert higher_up.verdict == Verdict.IMPROVED


def test_small_noisy_change_is_inconclusive_and_tight_equal_is_pass() -> None:
    # worse = 0.001, se = 0.0014: neither significant nor provably within a zero tolerance.
    c = compare_one("bell_fidelity", est(0.919, 0.001), est(0.920, 0.001), Tolerance())
    assert c.verdict == Verdict.INCONCLUSIVE
    # Same numbers with a tolerance of 0.01: upper bound 0.001 + 1.645 * 0.0014 = 0.0033 <= 0.01.
    c = compare_one("bell_fidelity", est(0.919, 0.001), est(0.920, 0.001), Tolerance(absolute=0.01))
    assert c.verdict == Verdict.PASS


def test_absolute_tolerance_absorbs_a_significant_but_small_drop() -> None:
    cand, base = est(0.915, 0.0005), est(0.920, 0.0005)  # drop 0.005 at ~7 sigma
    assert compare_one("f", cand, base, Tolerance()).verdict == Verdict.REGRESSION
    assert compare_one("f", cand, base, Tolerance(absolute=0.004)).verdict == Verdict.INCONCLUSIVE
    ok = compare_one("f", cand, base, Tolerance(absolute=0.01))
    assert ok.verdict == Verdict.PASS and ok.tolerance == 0.01


def test_relative_tolerance_scales_with_the_baseline_and_max_rule() -> None:
    assert Tolerance(relative=0.05).margin(-200.0) == pytest.approx(10.0)
    assert Tolerance(absolute=3.0, relative=0.01).margin(100.0) == pytest.approx(3.0)
    assert Tolerance(absolute=0.5, relative=0.01).margin(100.0) == pytest.approx(1.0)
    # pair rate 1000 Hz -> 960 Hz with se 5 Hz each: a 4 % drop.
    cand, base = est(960.0, 5.0, unit="Hz"), est(1000.0, 5.0, unit="Hz")
    assert compare_one("pair_rate_hz", cand, base, Tolerance(relative=0.01)).verdict == Verdict.REGRESSION
    passed = compare_one("pair_rate_hz", cand, base, Tolerance(relative=0.10))
    assert passed.verdict == Verdict.PASS and passed.tolerance == pytest.approx(100.0)
    with pytest.raises(ValueError, match="relative"):
        Tolerance(relative=-0.1)


def test_exact_numbers_decide_on_point_values() -> None:
    assert compare_one("x", exact(1.0), exact(1.0), Tolerance()).verdict == Verdict.PASS
    assert compare_one("x", exact(0.99), exact(1.0), Tolerance()).verdict == Verdict.REGRESSION
    assert compare_one("x", exact(0.99), exact(1.0), Tolerance(absolute=0.02)).verdict == Verdict.PASS
    assert compare_one("x", exact(1.01), exact(1.0), Tolerance()).verdict == Verdict.IMPROVED
    assert compare_one("x", exact(3.0, L), exact(2.0, L), Tolerance()).verdict == Verdict.REGRESSION


def test_no_baseline_and_error_never_regression() -> None:
    out = evaluate(
        {"a": est(0.5, 0.01), "b": RuntimeError("device timed out after 30 s"), "c": est(0.1, 0.01)},
        {"b": est(0.9, 0.001), "c": est(0.9, 0.001)},
        {},
    )
    assert out["a"].verdict == Verdict.NO_BASELINE and out["a"].delta is None
    assert out["b"].verdict == Verdict.ERROR and out["b"].error == "device timed out after 30 s"
    assert out["b"].p_regression is None and out["b"].candidate is None
    assert out["c"].verdict == Verdict.REGRESSION
    # b and a are outside the Holm family: c's adjusted p equals its raw p (a family of one).
    assert out["c"].p_regression_adjusted == out["c"].p_regression
    assert list(out) == ["a", "b", "c"]
    assert "device timed out" in out["b"].message("2.5.0", "2.3.0")
    assert "no baseline" in out["a"].message("2.5.0", "2.3.0")


def test_changed_direction_or_unit_or_nan_is_an_error() -> None:
    assert compare_one("q", est(0.5, 0.01, L), est(0.9, 0.01, H), Tolerance()).verdict == Verdict.ERROR
    hz = compare_one("r", est(5.0, 0.1, unit="kHz"), est(5000.0, 10.0, unit="Hz"), Tolerance())
    assert hz.verdict == Verdict.ERROR and "unit" in (hz.error or "")
    nan = Estimate(math.nan, math.nan, math.nan, 0, "", H)
    assert compare_one("n", nan, est(0.9, 0.01), Tolerance()).verdict == Verdict.ERROR


def test_overall_verdict_precedence() -> None:
    V = Verdict
    assert overall_verdict([V.PASS, V.INCONCLUSIVE, V.ERROR, V.REGRESSION, V.IMPROVED]) == V.REGRESSION
    assert overall_verdict([V.PASS, V.INCONCLUSIVE, V.ERROR, V.NO_BASELINE]) == V.ERROR
    assert overall_verdict([V.PASS, V.INCONCLUSIVE, V.IMPROVED]) == V.INCONCLUSIVE
    assert overall_verdict([V.PASS, V.NO_BASELINE, V.IMPROVED]) == V.PASS
    # Nothing compared is never a PASS.
    assert overall_verdict([V.NO_BASELINE, V.NO_BASELINE]) == V.NO_BASELINE
    assert overall_verdict([]) == V.NO_BASELINE
    assert overall_verdict(["REGRESSION", "PASS"]) == V.REGRESSION  # type: ignore[list-item]


# -- Holm ---------------------------------------------------------------------------------------------


def test_holm_hand_computed() -> None:
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> running max 0.02, 0.03, 0.06, 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6, 0.9]) == pytest.approx([1.0, 1.0, 1.0])
    assert holm([0.2]) == [0.2]
    assert holm([]) == []
    with pytest.raises(ValueError, match="p-values"):
        holm([0.1, 1.5])


def test_holm_changes_the_family_verdict() -> None:
    def with_p(p: float) -> tuple[Estimate, Estimate]:
        """Candidate/baseline pair whose one-sided regression p-value is exactly p (baseline exact)."""
        se = 0.001
        return est(0.9 - norm.isf(p) * se, se), exact(0.9)

    pairs = {"a": with_p(0.01), "b": with_p(0.04), "c": with_p(0.5)}
    fam = evaluate({k: v[0] for k, v in pairs.items()}, {k: v[1] for k, v in pairs.items()}, {})
    assert [fam[k].p_regression for k in "abc"] == pytest.approx([0.01, 0.04, 0.5], rel=1e-6)
    # Adjusted p: p times alpha over the level the metric is tested at (Holm's step: 0.05/3, then 0.05/2 for b
    # and c), capped at 1; at most alpha exactly when the test crossed.
    assert [fam[k].p_regression_adjusted for k in "abc"] == pytest.approx([0.03, 0.08, 1.0], rel=1e-6)
    assert fam["a"].verdict == Verdict.REGRESSION
    assert fam["b"].verdict != Verdict.REGRESSION  # 0.04 alone would regress, 0.08 after Holm does not
    assert compare_one("b", *pairs["b"], Tolerance()).verdict == Verdict.REGRESSION


def test_message_and_dict() -> None:
    cand = Estimate(0.9112, 0.9095, 0.9129, 20_000, "", H)
    base = Estimate(0.9225, 0.9208, 0.9242, 20_000, "", H)
    c = compare_one("bell_fidelity", cand, base, Tolerance(absolute=0.002))
    msg = c.message("2.5.0-rc1", "2.3.0")
    assert msg.startswith(
        "bell_fidelity REGRESSION: 2.5.0-rc1 0.9112 [0.9095, 0.9129] vs baseline 2.3.0 0.9225 [0.9208, 0.9242]; "
        "delta -0.0113 [-0.0137, -0.0089] (tolerance 0.002, worse-is-lower); worse by more than the tolerance at "
        "look 1 of 1: z 7.58 vs boundary 1.64 at level 0.05 (normal, one-sided interval halves); adjusted p = "
    )
    assert msg.endswith("<= alpha 0.05")
    d = c.to_dict()
    assert isinstance(c, Comparison)
    assert d["verdict"] == "REGRESSION" and d["direction"] == "higher" and d["n"] == 20_000
    assert d["baseline"] == {"value": 0.9225, "ci_low": 0.9208, "ci_high": 0.9242}
    assert d["delta"]["value"] == pytest.approx(-0.0113)
    assert d["p_adjusted"] == c.p_regression_adjusted and d["tolerance"] == 0.002
    import json

    json.dumps(d)


def test_the_gate_uses_the_replicates_not_the_interval_width() -> None:
    rng = np.random.default_rng(7)
    cs = tuple(rng.normal(0.90, 0.002, 4000))
    bs = tuple(rng.normal(0.91, 0.002, 4000))
    # Intervals claim se = 0.01 each (z = 0.71); the replicates say 0.002: z = 0.01 / (0.002 sqrt 2) = 3.5.
    c = Estimate(0.90, 0.90 - Z95 * 0.01, 0.90 + Z95 * 0.01, 1000, "", H, samples=cs)
    b = Estimate(0.91, 0.91 - Z95 * 0.01, 0.91 + Z95 * 0.01, 1000, "", H, samples=bs)
    boot = compare_one("f", c, b, Tolerance())
    assert boot.verdict == Verdict.REGRESSION and boot.method == "normal, bootstrap replicates"
    assert boot.z == pytest.approx(0.01 / (0.002 * math.sqrt(2)), rel=0.05)
    assert boot.delta is not None
    assert (boot.delta.ci_high - boot.delta.ci_low) / (2 * Z95) == pytest.approx(0.002 * math.sqrt(2), rel=0.05)
    # Without replicates, each side's one-sided half: a long upper tail on the candidate weakens only REGRESSION.
    skew = Estimate(0.90, 0.90 - Z95 * 0.002, 0.90 + Z95 * 0.02, 1000, "", H)
    base = Estimate(0.91, 0.91 - Z95 * 0.002, 0.91 + Z95 * 0.002, 1000, "", H)
    halves = compare_one("f", skew, base, Tolerance())
    assert halves.method == "normal, one-sided interval halves"
    assert halves.z == pytest.approx(0.01 / math.hypot(0.02, 0.002), rel=1e-6)
    assert halves.verdict == Verdict.INCONCLUSIVE


# -- simulations --------------------------------------------------------------------------------------

# A family of 12 metrics with binomial-like estimates: (truth, shots, direction).
TRUTH = np.array([0.92, 0.88, 0.95, 0.03, 0.05, 0.90, 0.60, 0.45, 0.97, 0.02, 0.75, 0.99])
SHOTS = np.array([20_000, 8_000, 50_000, 20_000, 20_000, 12_000, 5_000, 5_000, 30_000, 40_000, 10_000, 100_000])
DIRS = [H, H, H, L, L, H, H, H, H, L, H, H]
NAMES = [f"m{k:02d}" for k in range(12)]


def wilson(k: np.ndarray, n: np.ndarray, z: float = Z95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vectorised point estimate and Wilson 95 % interval of k successes in n trials."""
    p = k / n
    denom = 1 + z**2 / n
    centre = (p + z**2 / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    return p, np.minimum(centre - half, p), np.maximum(centre + half, p)


def draw(rng: np.random.Generator, families: int, truth: np.ndarray) -> list[dict[str, Estimate]]:
    """`families` independent measurements of all 12 metrics (binomial counts, Wilson intervals)."""
    k = rng.binomial(SHOTS, truth, size=(families, truth.size))
    p, lo, hi = wilson(k, np.broadcast_to(SHOTS, k.shape))
    return [
        {NAMES[j]: Estimate(p[i, j], lo[i, j], hi[i, j], int(SHOTS[j]), "", DIRS[j]) for j in range(truth.size)}
        for i in range(families)
    ]


def run_families(candidates: list[dict[str, Estimate]], baselines: list[dict[str, Estimate]]) -> list[dict]:
    """Evaluate each family with zero tolerance (the hardest case for false alarms)."""
    tol = dict.fromkeys(NAMES, Tolerance())
    return [evaluate(c, b, tol, alpha=0.05) for c, b in zip(candidates, baselines, strict=True)]


def test_family_wise_false_alarm_rate_of_an_unchanged_build() -> None:
    families, alpha = 2500, 0.05
    rng = np.random.default_rng(20240611)
    t0 = time.perf_counter()
    results = run_families(draw(rng, families, TRUTH), draw(rng, families, TRUTH))
    elapsed = time.perf_counter() - t0
    alarms = np.array([any(c.verdict == Verdict.REGRESSION for c in fam.values()) for fam in results])
    rate = alarms.mean()
    se = math.sqrt(alpha * (1 - alpha) / families)
    print(
        f"family-wise false-alarm rate {rate:.4f} of {families} families (bound {alpha + 2 * se:.4f}), {elapsed:.1f} s"
    )
    assert rate <= alpha + 2 * se
    # Holm over 12 independent tests sits just under alpha (1 - (1 - alpha/12)^12 = 0.049): the gate is not
    # trivially silent either.
    assert rate >= 0.02
    improved = np.mean([any(c.verdict == Verdict.IMPROVED for c in fam.values()) for fam in results])
    assert improved <= alpha + 2 * se


def test_power_for_a_five_sigma_shift_in_one_metric() -> None:
    families, alpha = 5000, 0.05
    rng = np.random.default_rng(99)
    shifted = TRUTH.copy()
    j = 0  # a HIGHER metric: 0.92 at 20 000 shots
    # The shift is 5 standard deviations of the delta, whose variance includes the shifted build's own.
    pb, n, shift = TRUTH[j], SHOTS[j], 0.0
    for _ in range(50):
        shift = 5 * math.sqrt((pb * (1 - pb) + (pb - shift) * (1 - pb + shift)) / n)
    shifted[j] = pb - shift
    results = run_families(draw(rng, families, shifted), draw(rng, families, TRUTH))
    caught = np.array([fam[NAMES[j]].verdict == Verdict.REGRESSION for fam in results])
    others = np.array(
        [any(c.verdict == Verdict.REGRESSION for n, c in fam.items() if n != NAMES[j]) for fam in results]
    )
    power = caught.mean()
    # Holm's first step is Bonferroni: expected power about Phi(5 - z_{1 - alpha/12}) = 0.991.
    expected = norm.cdf(5 - norm.isf(alpha / 12))
    print(f"power {power:.4f} (expected about {expected:.4f}); other metrics flagged in {others.mean():.4f}")
    assert power >= 0.99
    # The 0.99 target has little slack at exactly 5 sigma, so also check agreement with theory (3 binomial SE).
    assert abs(power - expected) <= 3 * math.sqrt(expected * (1 - expected) / families)
    # The 11 unchanged metrics keep their family-wise false-alarm control (binomial 2-SE allowance).
    assert others.mean() <= alpha + 2 * math.sqrt(alpha * (1 - alpha) / families)
