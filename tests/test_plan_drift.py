"""The planner with between-session variance: tau from a drift block and from stored sessions, the pooled test's
figures against closed forms and against the real pooled test, and the command's new options."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from typer.testing import CliRunner

from harness.baselines import compare_candidate, pool_sessions, pooled_baseline
from harness.cli import app
from harness.metrics import Direction, Estimate, Tolerance
from harness.plan import POOLED_BASIS, PlanError, plan_profile, simulated_variances, suite_family
from harness.plan_drift import (
    UNKNOWN,
    pooled_mdr,
    pooled_pass_margin,
    pooled_power,
    session_variance,
    sessions_to_detect,
    simulated_between,
)
from harness.profiles import load_profile
from harness.store import Store

NEW_KEYS = {"between_session_sd", "between_session_source", "min_detectable_regression_pooled", "sessions_to_detect"}
DRIFT = """name: aer-drift
extends: aer-reference
drift:
  between_sessions:
    visibility_sd: 0.005
    pair_rate_rel_sd: 0.03
"""


@pytest.fixture(scope="module")
def drifting(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("drift") / "aer-drift.yaml"
    path.write_text(DRIFT)
    loaded = load_profile(path)
    return loaded, plan_profile(loaded)


def test_a_drift_block_gives_the_session_sd_that_its_physics_implies(drifting) -> None:
    _, plan = drifting
    rows = {m.name: m for m in plan.metrics}
    assert plan.between_session_source == "drift block: 24 simulated sessions of build 2.3.0"
    # Ground truth from the physics, not from the planner: the drift-free stand-in's values through the estimators.
    still = load_profile("aer-reference").effective("2.3.0")
    _, est = simulated_variances(still, "2.3.0", suite_family(still))
    # The emitted pair rate scales with the source's rate: a 3 % relative SD is 3 % of the rate.
    assert rows["pair_rate_hz"].between_session_sd == pytest.approx(0.03 * est["pair_rate_hz"].value, rel=0.05)
    # Werner source: F = 1/4 + (F(V) - 1/4) V' / V is affine in V, so SD(F) = SD(V) (F - 1/4) / V.
    truth = 0.005 * (est["bell_fidelity"].value - 0.25) / still.source.visibility
    assert rows["bell_fidelity"].between_session_sd == pytest.approx(truth, rel=0.05)
    # Drift moves neither the detectors' heralding nor the logical memories.
    for name in ("heralding_efficiency_a", "logical_success_surface_d5"):
        assert rows[name].between_session_sd < 0.01 * rows[name].standard_error
    assert rows["logical_success_surface_d5"].between_session_sd == 0.0


def test_an_analyser_angle_drift_is_caught_though_its_effect_is_quadratic(tmp_path: Path) -> None:
    path = tmp_path / "aer-angle.yaml"
    path.write_text("name: aer-angle\nextends: aer-reference\ndrift: {between_sessions: {basis_angle_sd_deg: 3.0}}\n")
    profile = load_profile(path).effective("2.3.0")
    still = load_profile("aer-reference").effective("2.3.0")
    v1, est = simulated_variances(still, "2.3.0", ["bell_fidelity"])
    tau2 = simulated_between(profile, "2.3.0", v1).tau2["bell_fidelity"]
    # Arm B's analyser turned by theta: F = F0 - w sin^2(theta), w = (4 F0 - 1) / 3 the Werner weight, and for
    # theta ~ N(0, s^2) Var(sin^2 theta) = (1 - exp(-4 s^2))^2 / 8. A linear (delta-method) rule would give 0.
    s, w = math.radians(3.0), (4 * est["bell_fidelity"].value - 1) / 3
    assert math.sqrt(tau2) == pytest.approx(w * (1 - math.exp(-4 * s * s)) / math.sqrt(8), rel=0.03)


def test_drift_sets_the_recommended_tolerance_above_what_shot_noise_alone_allows(drifting) -> None:
    _, plan = drifting
    row = next(m for m in plan.metrics if m.name == "bell_fidelity")
    shot_only = next(m for m in plan_profile(load_profile("aer-reference")).metrics if m.name == "bell_fidelity")
    assert row.recommended_tolerance_basis == POOLED_BASIS
    assert row.recommended_tolerance > 3 * shot_only.recommended_tolerance
    # It is the margin an unchanged build needs to PASS the pooled test with its family share of the power.
    # An alias is gated with its lead; an informational metric never.
    gated = [m for m in plan.metrics if not m.note.startswith(("gated once", "never gated"))]
    share = plan.power ** (1 / len(gated))
    shot = row.standard_error**2
    expected = pooled_pass_margin(row.between_session_sd**2, shot, plan.sessions, 1, 0.05, share)
    assert row.recommended_tolerance == pytest.approx(expected, rel=1e-9)
    # The shipped 0.0036 cannot be reached over a session SD of 0.0035 with one candidate session.
    assert row.sessions_to_detect is None
    assert set(plan.to_dict()["metrics"][0]) >= NEW_KEYS


def test_session_variance_recovers_linear_and_quadratic_effects_exactly() -> None:
    z = np.random.default_rng(5).standard_normal((24, 2))
    # f = 0.3 z0 + 0.2 (z1^2 - 1) / sqrt 2: variance 0.09 + 0.04 under the drift's law.
    values = (0.3 * z[:, 0] + 0.2 * (z[:, 1] ** 2 - 1) / math.sqrt(2))[:, None]
    assert session_variance(values, z)[0] == pytest.approx(0.13, rel=1e-9)


# -- stored sessions ------------------------------------------------------------------------------------------


# Stored sessions of the baseline build as a bench stores them (each physically distinct).
SESSION = {"profile": "aer-reference", "profile_hash": "h", "build": "2.3.0", "baseline_build": None}


def _store_sessions(db: Path, values: list[float]) -> None:
    with Store(db) as s:
        for seed, v in enumerate(values):
            rid = s.start_run(**SESSION, seed=seed, budget="standard", provenance={"kind": "bench"})
            s.add_metric(rid, "bell_fidelity", Estimate(v, v - 0.002, v + 0.002, 1000, "", Direction.HIGHER))
            s.finish_run(rid, "passed")


def test_stored_sessions_give_tau_and_the_default_session_count(tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    values = [0.951, 0.957, 0.944, 0.962, 0.949, 0.955]
    _store_sessions(db, values)
    with Store(db) as store:
        fit = pooled_baseline(store, "aer-reference", "2.3.0", ["bell_fidelity"])["bell_fidelity"].fit
        plan = plan_profile(load_profile("aer-reference"), store=store)
    rows = {m.name: m for m in plan.metrics}
    assert plan.between_session_source == "stored sessions of build 2.3.0 (6, REML)"
    assert plan.sessions == 6
    assert fit.tau2 > 0 and rows["bell_fidelity"].between_session_sd == pytest.approx(math.sqrt(fit.tau2))
    # The other metrics have no stored sessions: 0, and the row says so.
    assert rows["chsh_s"].between_session_sd == 0.0 and rows["chsh_s"].between_session_source == UNKNOWN


# -- the pooled test's figures --------------------------------------------------------------------------------


def test_pooled_mdr_tends_to_the_normal_closed_form() -> None:
    tau2, shot, tol, level, power = 4e-6, 1e-6, 0.003, 0.01, 0.9
    k = m = 10**6
    z = stats.norm.ppf(1 - level) + stats.norm.ppf(power)
    closed = tol + z * math.sqrt((tau2 + shot) * (1 / m + 1 / k))
    assert pooled_mdr(tol, tau2, shot, k, m, level, power) == pytest.approx(closed, rel=1e-3)
    # One candidate, k sessions: df k - 1 and (tau^2 + v)(1 + 1/k); more sessions, smaller MDR, above z's limit.
    mdrs = [pooled_mdr(tol, tau2, shot, k, 1, level, power) for k in (3, 5, 10, 50)]
    assert mdrs == sorted(mdrs, reverse=True)
    assert mdrs[-1] > tol + z * math.sqrt(tau2 + shot)


def _simulate(tau: float, v: float, k: int, delta: float, tol: float, runs: int, seed: int) -> list:
    """Pooled tests of one candidate session `delta` worse than k baseline sessions, through harness.baselines."""
    rng = np.random.default_rng(seed)
    sd = math.sqrt(v)
    base = rng.normal(0, tau, (runs, k)) + rng.normal(0, sd, (runs, k))
    cand = 1.0 - delta + rng.normal(0, tau, runs) + rng.normal(0, sd, runs)
    half = 1.96 * sd

    def est(x: float) -> Estimate:
        return Estimate(x, x - half, x + half, 1000, "", Direction.HIGHER)

    out = []
    for r in range(runs):
        pooled = pool_sessions("m", "b", [est(1.0 + x) for x in base[r]])
        out.append(compare_candidate(est(cand[r]), pooled, Tolerance(absolute=tol)))
    return out


def test_pooled_mdr_and_pass_margin_hold_on_the_real_pooled_test() -> None:
    tau, v, k, level, power = 0.004, 0.002**2, 6, 0.05, 0.8
    tol = pooled_pass_margin(tau**2, v, k, 1, level, power)
    passed = np.mean([t.upper(level) <= t.tol for t in _simulate(tau, v, k, 0.0, tol, 2000, 1)])
    mdr = pooled_mdr(tol, tau**2, v, k, 1, level, power)
    caught = np.mean([t.p_regression <= level for t in _simulate(tau, v, k, mdr, tol, 2000, 2)])
    # Exact for equal sessions up to the gate's HKSJ floor, which only widens the test; MC SE about 0.009.
    assert passed == pytest.approx(power, abs=0.035)
    assert caught == pytest.approx(power, abs=0.035)


def test_sessions_to_detect_is_the_first_k_with_the_power_and_monotone() -> None:
    tau2, shot, level, power = 1e-6, 1e-6, 0.05, 0.9
    # With infinitely many sessions the SD is sqrt(2e-6) = 0.0014: tol / SD = 4.2 > z_0.95 + z_0.9 = 2.9.
    tol = 0.006
    k = sessions_to_detect(tol, tau2, shot, 1, level, power)
    assert k is not None and 2 <= k <= 50
    ks = np.arange(2, 51)
    p = pooled_power(2 * tol, tol, tau2, shot, ks, 1, level)
    assert np.all(np.diff(p) >= 0)
    assert p[k - 2] >= power and (k == 2 or p[k - 3] < power)
    # A wider tolerance needs no more sessions; a candidate's own session SD too large for it: none does.
    assert sessions_to_detect(2 * tol, tau2, shot, 1, level, power) <= k
    assert sessions_to_detect(0.001, 1e-4, shot, 1, level, power) is None
    assert sessions_to_detect(0.0, tau2, shot, 1, level, power) is None
    # More candidate sessions shrink the candidate's own share: fewer baseline sessions needed.
    assert sessions_to_detect(tol, tau2, shot, 4, level, power) < k


def test_the_command_reports_the_new_figures_and_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QHARNESS_DB", str(tmp_path / "absent.db"))  # no default store: nothing stored to pool
    args = ["plan", "-p", "aer-reference", "--budget", "quick", "--sessions", "8", "--candidate-sessions", "2"]
    result = CliRunner().invoke(app, [*args, "--json", "--db", str(tmp_path / "none.db")])
    assert result.exit_code == 4 and "none.db" in result.stderr  # a named store that does not exist
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert (plan["sessions"], plan["candidate_sessions"]) == (8, 2)
    assert plan["between_session_source"].startswith(UNKNOWN)
    for m in plan["metrics"]:
        assert set(m) >= NEW_KEYS and m["between_session_sd"] == 0.0
        assert m["min_detectable_regression_pooled"] > m["tolerance"]
    text = CliRunner().invoke(app, args)
    assert text.exit_code == 0 and "session SD" in text.stdout and "pooled test over 8 baseline" in text.stdout


@pytest.mark.parametrize(
    ("kw", "message"),
    [({"sessions": 1}, "--sessions 1"), ({"candidate_sessions": 0}, "--candidate-sessions 0")],
)
def test_bad_session_counts_are_plan_errors(kw: dict, message: str) -> None:
    with pytest.raises(PlanError, match=message):
        plan_profile(load_profile("aer-reference"), **kw)


@pytest.mark.parametrize("drift", [True, False])
def test_a_stand_in_without_exact_probabilities_is_one_line_and_exit_4(tmp_path: Path, drift: bool) -> None:
    path = tmp_path / "z.yaml"
    head = DRIFT if drift else "name: aer-drift\nextends: aer-reference\n"
    path.write_text(head.replace("name: aer-drift", "name: z") + "aer: {method: statevector}\n")
    result = CliRunner().invoke(app, ["plan", "-p", str(path)])
    assert result.exit_code == 4
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("qharness plan: profile z: the stand-in of build 2.3.0 cannot")
    assert "needs the exact 'density_matrix' method" in lines[0]
