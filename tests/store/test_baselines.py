"""Tests of the pooled stored baseline: sessions read back from both engines, closed-form random effects, the test."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from store_support import RUN_KW

from harness.baselines import (
    PooledBaseline,
    SessionValue,
    baseline_sessions,
    candidate_sessions,
    change_point_count,
    compare_candidate,
    compare_family,
    compare_with_reference,
    metric_histories,
    pooled_baseline,
    variance_model_of,
)
from harness.gate import Verdict
from harness.metrics import Direction, Estimate, Tolerance
from harness.stats.random_effects import pool
from harness.store import RunStatus, Store

Z975 = float(stats.norm.ppf(0.975))
BUILD = "2.3.0"
H = Direction.HIGHER


def _estimate(value: float, se: float, n: int = 10_000, direction: Direction = Direction.HIGHER) -> Estimate:
    return Estimate(value, value - Z975 * se, value + Z975 * se, n, "", direction)


def _session(
    s: Store, value: float, se: float, *, seed: int, status: str = "passed", kind: str = "bench", name: str = "v"
) -> int:
    kw = {**RUN_KW, "build": BUILD, "baseline_build": None, "seed": seed}
    rid = s.start_run(**kw, provenance={"kind": kind, "role": "baseline"})
    s.add_metric(rid, name, _estimate(value, se))
    s.finish_run(rid, status)
    return rid


def test_five_equal_sessions_pool_to_the_closed_form(store_url: str) -> None:
    # Equal within-session variances: REML tau^2 = s^2 - v (when positive) and mu = the plain mean, exactly.
    y = np.array([0.951, 0.957, 0.944, 0.962, 0.949])
    se = 0.002
    with Store(store_url) as s:
        ids = [_session(s, float(v), se, seed=i) for i, v in enumerate(y)]
        pooled = pooled_baseline(s, RUN_KW["profile"], BUILD)["v"]
    assert [x.run_id for x in pooled.sessions] == ids
    s2 = float(np.var(y, ddof=1))
    assert pooled.fit.mu == pytest.approx(float(y.mean()), rel=1e-12)
    assert pooled.fit.tau2 == pytest.approx(s2 - se**2, rel=1e-6)
    assert pooled.variance_model == "REML over 5 sessions, HKSJ t with 4 df"
    # A candidate with the baseline sessions' own variance: T = (y - ybar) / (s sqrt(1 + 1/k)), t with k - 1 df.
    cand = _estimate(0.93, se)
    tol = 0.005
    t = compare_candidate(cand, pooled, Tolerance(absolute=tol))
    scale = math.sqrt(s2 * (1 + 1 / 5))
    assert t.se == pytest.approx(scale, rel=1e-6)
    assert t.p_regression == pytest.approx(float(stats.t.cdf((0.93 - y.mean() + tol) / scale, 4)), rel=1e-6)
    assert t.p_improved == pytest.approx(float(stats.t.sf((0.93 - y.mean()) / scale, 4)), rel=1e-6)
    assert t.worse == pytest.approx(y.mean() - 0.93) and t.df == 4
    assert t.upper(0.05) == pytest.approx(t.worse + float(stats.t.ppf(0.95, 4)) * scale, rel=1e-9)


def test_one_session_is_shot_noise_only_and_says_so(store_url: str) -> None:
    with Store(store_url) as s:
        _session(s, 0.95, 0.002, seed=1)
        pooled = pooled_baseline(s, RUN_KW["profile"], BUILD)["v"]
    assert pooled.fit.tau2 is None and math.isinf(pooled.df)
    assert pooled.variance_model == "between-session variance unknown (1 session): shot noise only"
    t = compare_candidate(_estimate(0.94, 0.002), pooled, Tolerance(absolute=0.005))
    # Today's gate: a normal test on the difference with both shot noises.
    se = math.hypot(0.002, 0.002)
    assert t.se == pytest.approx(se, rel=1e-9)
    assert t.p_regression == pytest.approx(float(stats.norm.cdf((0.94 - 0.95 + 0.005) / se)), rel=1e-9)
    assert t.variance_model == pooled.variance_model


def test_a_lower_is_better_metric_regresses_upwards(store_url: str) -> None:
    with Store(store_url) as s:
        for i, v in enumerate((0.020, 0.021, 0.019)):
            rid = s.start_run(**{**RUN_KW, "build": BUILD, "seed": i}, provenance={"kind": "bench"})
            s.add_metric(rid, "qber_z", _estimate(v, 0.0005, direction=Direction.LOWER))
            s.finish_run(rid, "passed")
        pooled = pooled_baseline(s, RUN_KW["profile"], BUILD)["qber_z"]
    worse = compare_candidate(_estimate(0.03, 0.0005, direction=Direction.LOWER), pooled, Tolerance(absolute=0.001))
    better = compare_candidate(_estimate(0.01, 0.0005, direction=Direction.LOWER), pooled, Tolerance(absolute=0.001))
    assert worse.worse == pytest.approx(0.01) and worse.p_regression < 0.05 < worse.p_improved
    assert better.worse == pytest.approx(-0.01) and better.p_improved < 0.05 < better.p_regression


def test_only_completed_sessions_with_an_interval_count(store_url: str) -> None:
    with Store(store_url) as s:
        keep = [_session(s, 0.95, 0.002, seed=1), _session(s, 0.96, 0.002, seed=2, status="failed")]
        _session(s, 0.10, 0.002, seed=3, status="error")
        _session(s, 0.10, 0.002, seed=4, status="aborted")
        rid = s.start_run(**{**RUN_KW, "build": BUILD, "seed": 5}, provenance={"kind": "bench"})
        s.add_metric(rid, "v", Estimate(math.nan, math.nan, math.nan, 0, "", Direction.HIGHER))  # unmeasured
        s.finish_run(rid, RunStatus.PASSED)
        _session(s, 0.50, 0.002, seed=6, name="other")
        pooled = pooled_baseline(s, RUN_KW["profile"], BUILD, metrics=["v"])
    assert set(pooled) == {"v"}
    assert [x.run_id for x in pooled["v"].sessions] == keep
    assert pooled["v"].fit.mu == pytest.approx(0.955)


def test_repeated_simulations_count_once_and_benches_never_merge(store_url: str) -> None:
    with Store(store_url) as s:
        _session(s, 0.95, 0.002, seed=1, kind="aer")
        newer = _session(s, 0.95, 0.002, seed=1, kind="aer")  # the same seed, session and budget: the same draws
        other = _session(s, 0.96, 0.002, seed=2, kind="aer")
        bench = [_session(s, 0.95, 0.002, seed=1, kind="bench") for _ in range(2)]  # a bench repeats for real
        runs = baseline_sessions(s, RUN_KW["profile"], BUILD)
    assert [r.id for r in runs] == [newer, other, *bench]


def test_a_changed_direction_is_refused(store_url: str) -> None:
    with Store(store_url) as s:
        _session(s, 0.95, 0.002, seed=1)
        pooled = pooled_baseline(s, RUN_KW["profile"], BUILD)["v"]
    with pytest.raises(ValueError, match="differ in direction or unit; re-baseline"):
        compare_candidate(_estimate(0.95, 0.002, direction=Direction.LOWER), pooled, Tolerance())


def test_under_drift_the_pooled_test_holds_its_size_where_shot_noise_does_not() -> None:
    # Seeded ground truth: 5 baseline sessions and an unchanged candidate, session SD 5x the shot noise.
    rng = np.random.default_rng(7)
    runs, k, se, tau = 2000, 5, 0.001, 0.005
    y = 0.95 + rng.normal(0, tau, (runs, k)) + rng.normal(0, se, (runs, k))
    c = 0.95 + rng.normal(0, tau, runs) + rng.normal(0, se, runs)
    alarms = 0
    for i in range(runs):
        sessions = tuple(SessionValue(j, float(y[i, j]), se**2, 1) for j in range(k))
        base = PooledBaseline("v", BUILD, pool(y[i], np.full(k, se**2)), sessions, "", Direction.HIGHER)
        alarms += compare_candidate(_estimate(float(c[i]), se), base, Tolerance()).p_regression <= 0.05
    shot = np.mean(stats.norm.cdf((c - y[:, -1]) / math.hypot(se, se)) <= 0.05)
    assert alarms / runs <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / runs)
    assert shot > 0.3  # the newest single session with shot noise only cries wolf


def _release(s: Store, build: str, value: float, se: float = 0.002, seed: int = 1, name: str = "v") -> int:
    rid = s.start_run(**{**RUN_KW, "build": build, "seed": seed}, provenance={"kind": "bench", "role": "candidate"})
    s.add_metric(rid, name, _estimate(value, se))
    s.finish_run(rid, "passed")
    return rid


def test_the_reference_build_is_pinned_and_replaced(store_url: str) -> None:
    with Store(store_url) as s:
        assert s.reference("p") is None and s.references() == {}
        s.set_reference("p", "1.0")
        s.set_reference("q", "2.0")
        s.set_reference("p", "1.1")
        assert s.reference("p") == "1.1" and s.references() == {"p": "1.1", "q": "2.0"}
        assert s.baseline("p") is None  # the reference is not the baseline


def test_a_release_is_compared_with_the_pooled_reference(store_url: str) -> None:
    profile = RUN_KW["profile"]
    tol = {"v": Tolerance(absolute=0.005)}
    with Store(store_url) as s:
        with pytest.raises(LookupError, match="no reference build; pin one"):
            compare_with_reference(s, profile, "3.0", tol)
        for i, v in enumerate((0.951, 0.957, 0.944, 0.962, 0.949)):
            _session(s, v, 0.002, seed=i)
        s.set_reference(profile, BUILD)
        with pytest.raises(LookupError, match=r"'3\.0' has no completed run"):
            compare_with_reference(s, profile, "3.0", tol)
        _release(s, "3.0", 0.952)
        _release(s, "3.1", 0.900)
        same = compare_with_reference(s, profile, "3.0", tol)
        worse = compare_with_reference(s, profile, "3.1", tol)
    assert same.reference == BUILD and same.pooled["v"].fit.k == 5
    assert same.comparisons["v"].verdict in (Verdict.PASS, Verdict.INCONCLUSIVE)
    c = worse.comparisons["v"]
    assert c.verdict is Verdict.REGRESSION and c.baseline.value == pytest.approx(0.9526)
    assert c.delta.value == pytest.approx(0.900 - 0.9526) and c.tolerance == 0.005


def test_a_family_without_a_baseline_or_with_a_changed_unit() -> None:
    pooled = {"v": PooledBaseline("v", BUILD, pool([0.95], [4e-6]), (SessionValue(1, 0.95, 4e-6, 1),), "", H)}
    cands = {"v": Estimate(0.95, 0.94, 0.96, 10, "Hz", H), "w": _estimate(0.5, 0.01)}
    out = compare_family(cands, pooled, {})
    assert out["w"].verdict is Verdict.NO_BASELINE
    assert out["v"].verdict is Verdict.ERROR and "re-baseline" in (out["v"].error or "")


def test_histories_across_builds_show_a_step_and_count_it(store_url: str) -> None:
    profile = RUN_KW["profile"]
    rng = np.random.default_rng(8)
    values = np.r_[np.full(6, 0.95), np.full(5, 0.93)] + 0.002 * rng.standard_normal(11)
    with Store(store_url) as s:
        for i, v in enumerate(values):
            _release(s, f"3.{i}", float(v))
            _release(s, f"3.{i}", 0.5, name="flat")  # another metric: constant, no change
        rid = s.start_run(**{**RUN_KW, "build": "3.99"}, provenance={"kind": "bench"})
        s.add_metric(rid, "v", _estimate(0.1, 0.002))
        s.finish_run(rid, "error")  # an ERROR run is no point of the history
        hist = metric_histories(s, profile)
        count = change_point_count(s, profile)
    assert hist["v"].builds == tuple(f"3.{i}" for i in range(11))
    assert hist["v"].change_builds() == ("3.6",) and hist["flat"].changes.count == 0
    assert count == 1


def test_a_metric_without_a_pooled_baseline_names_one_session() -> None:
    fit = pool([0.95, 0.96], [4e-6, 4e-6])
    pooled = {"v": PooledBaseline("v", BUILD, fit, (), "", H)}
    assert variance_model_of(pooled, "v") == "REML over 2 sessions, HKSJ t with 1 df"
    assert variance_model_of(pooled, "w") == "between-session variance unknown (1 session): shot noise only"


def test_a_candidate_pooled_over_its_sessions_is_a_two_sample_test(store_url: str) -> None:
    # Equal sessions with a spread well above their shot noise: the closed form is Student's two-sample t.
    base = np.array([0.951, 0.957, 0.944, 0.962, 0.949])
    cand = np.array([0.941, 0.930, 0.947])
    se = 1e-4
    with Store(store_url) as s:
        for i, v in enumerate(base):
            _session(s, float(v), se, seed=i)
        for i, v in enumerate(cand[:2]):
            _release(s, "3.0", float(v), se, seed=10 + i)
        current = s.run(_release(s, "3.0", float(cand[2]), se, seed=12))
        earlier = candidate_sessions(s, RUN_KW["profile"], "3.0", current, ["v"])
        pooled = pooled_baseline(s, RUN_KW["profile"], BUILD)
    assert [e.value for e in earlier["v"]] == pytest.approx(list(cand[:2]))
    out = compare_family({"v": _estimate(float(cand[2]), se)}, pooled, {"v": Tolerance(absolute=0.002)}, 0.05, earlier)
    ref = stats.ttest_ind(cand + 0.002, base, equal_var=True, alternative="less")
    c = out["v"]
    assert c.p_regression == pytest.approx(float(ref.pvalue), rel=1e-5)
    assert c.delta.value == pytest.approx(cand.mean() - base.mean(), rel=1e-9)
    assert c.variance_model == "REML over 5 baseline + 3 candidate sessions, HKSJ t with 6 df"
    # Without the earlier sessions the same candidate is one session against the pool: less sure, 4 df.
    alone = compare_family({"v": _estimate(float(cand[2]), se)}, pooled, {"v": Tolerance(absolute=0.002)})["v"]
    assert alone.variance_model == "REML over 5 sessions, HKSJ t with 4 df"


def test_earlier_sessions_leave_out_the_current_run_and_its_repeats(store_url: str) -> None:
    with Store(store_url) as s:
        repeat = _session(s, 0.95, 0.002, seed=1, kind="aer")  # the same seed and session as the current run
        other = _session(s, 0.96, 0.002, seed=2, kind="aer")
        rid = s.start_run(**{**RUN_KW, "build": BUILD, "seed": 1}, provenance={"kind": "aer"})
        s.add_metric(rid, "v", _estimate(0.94, 0.002))  # the current run: still running
        earlier = candidate_sessions(s, RUN_KW["profile"], BUILD, s.run(rid), ["v"])
    assert repeat != other and [e.value for e in earlier["v"]] == [0.96]


def test_a_release_measured_in_sessions_is_pooled_against_the_reference(store_url: str) -> None:
    profile = RUN_KW["profile"]
    with Store(store_url) as s:
        for i, v in enumerate((0.951, 0.957, 0.944, 0.962, 0.949)):
            _session(s, v, 0.002, seed=i)
        s.set_reference(profile, BUILD)
        for i, v in enumerate((0.93, 0.94, 0.935)):
            _release(s, "3.0", v, seed=20 + i)
        found = compare_with_reference(s, profile, "3.0", {"v": Tolerance(absolute=0.005)})
    c = found.comparisons["v"]
    assert c.variance_model == "REML over 5 baseline + 3 candidate sessions, HKSJ t with 6 df"
    assert c.delta.value == pytest.approx(0.935 - 0.9526, abs=1e-6)
