"""Drift of the link physics: the profile block, reproducible offsets, and the Ornstein-Uhlenbeck wander's law."""

from __future__ import annotations

import numpy as np
import pytest

from harness.physics.drift import DriftState, SessionOffsets, Wander, drifted_source, is_active, ou_transition
from harness.profiles import ProfileError
from harness.profiles.schema import Drift
from tests.devices.test_aer_helpers import write_profile

SPEC = Drift.model_validate(
    {
        "between_sessions": {
            "visibility_sd": 0.005,
            "pair_rate_rel_sd": 0.03,
            "basis_angle_sd_deg": 1.0,
            "efficiency_rel_sd": 0.01,
        },
        "within_session": {"visibility_sd": 0.002, "pair_rate_rel_sd": 0.01, "correlation_time_s": 60},
    }
)


def _state(session: int = 0, *, seed: int = 1, profile: str = "p", build: str = "2.4.0", spec=SPEC) -> DriftState:
    return DriftState(spec, seed, profile, build, session)


# ---- the profile block -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("block", "key", "bad", "allowed"),
    [
        ("between_sessions", "visibility_sd", -0.001, "[0, 1]"),
        ("between_sessions", "visibility_sd", 1.5, "[0, 1]"),
        ("between_sessions", "pair_rate_rel_sd", -0.1, "[0, 1]"),
        ("between_sessions", "pair_rate_rel_sd", 2.0, "[0, 1]"),
        ("between_sessions", "basis_angle_sd_deg", -1.0, "[0, 45]"),
        ("between_sessions", "basis_angle_sd_deg", 90.0, "[0, 45]"),
        ("between_sessions", "efficiency_rel_sd", -0.01, "[0, 1]"),
        ("within_session", "visibility_sd", -0.002, "[0, 1]"),
        ("within_session", "pair_rate_rel_sd", 1.01, "[0, 1]"),
        ("within_session", "correlation_time_s", 0.0, "> 0"),
        ("within_session", "correlation_time_s", -60.0, "> 0"),
    ],
)
def test_each_drift_key_has_its_range(tmp_path, block, key, bad, allowed):
    with pytest.raises(ProfileError) as err:
        write_profile(tmp_path, {"drift": {block: {key: bad}}})
    message = str(err.value)
    assert f"drift.{block}.{key}: out of range, got {bad!r}; allowed: {allowed}" in message, message
    assert "aer-test.yaml" in message


@pytest.mark.parametrize(
    ("override", "where", "suggestion"),
    [
        ({"between_session": {}}, "drift.between_session", "between_sessions"),
        ({"within_session": {"visibilty_sd": 0.1}}, "drift.within_session.visibilty_sd", "visibility_sd"),
        ({"between_sessions": {"angle_sd_deg": 1}}, "drift.between_sessions.angle_sd_deg", "basis_angle_sd_deg"),
    ],
)
def test_unknown_drift_keys_are_named_with_a_suggestion(tmp_path, override, where, suggestion):
    with pytest.raises(ProfileError, match=rf"{where}: unknown key .*did you mean '{suggestion}'\?"):
        write_profile(tmp_path, {"drift": override})


def test_drift_values_are_strict_and_overridable_per_build(tmp_path):
    with pytest.raises(ProfileError, match=r"drift.within_session.pair_rate_rel_sd: must be a number, got True"):
        write_profile(tmp_path, {"drift": {"within_session": {"pair_rate_rel_sd": True}}})
    with pytest.raises(ProfileError, match=r'builds."2.4.0".drift.within_session.visibility_sd: out of range'):
        write_profile(tmp_path, {"builds": {"2.4.0": {"drift": {"within_session": {"visibility_sd": 2}}}}})
    loaded = write_profile(
        tmp_path,
        {"drift": {"between_sessions": {"visibility_sd": 0.01}}, "builds": {"2.4.0": {"drift": SPEC.model_dump()}}},
    )
    assert loaded.effective("2.3.0").drift.between_sessions.visibility_sd == 0.01
    assert loaded.effective("2.3.0").drift.within_session.correlation_time_s == 60.0  # the default
    assert loaded.effective("2.4.0").drift == SPEC


def test_every_key_is_optional_and_an_all_zero_block_moves_nothing():
    assert Drift.model_validate({}).within_session.correlation_time_s == 60.0
    assert not is_active(None)
    assert not is_active(Drift.model_validate({"within_session": {"correlation_time_s": 5}}))
    assert is_active(Drift.model_validate({"within_session": {"pair_rate_rel_sd": 1e-6}}))
    zero = _state(spec=Drift())
    assert zero.offsets == SessionOffsets()
    wander = zero.advance([1.0, 2.0])
    assert not wander.visibility.any() and not wander.pair_rate_rel.any()


# ---- reproducibility and keys ------------------------------------------------------------------------------------


def test_same_keys_give_the_same_drift_and_each_key_changes_it():
    a, b = _state(), _state()
    assert a.offsets == b.offsets
    np.testing.assert_array_equal(a.advance([0.5] * 9).visibility, b.advance([0.5] * 9).visibility)
    others = [_state(1), _state(seed=2), _state(profile="q"), _state(build="2.5.0")]
    for other in others:
        assert other.offsets != a.offsets
    # Consecutive sessions of one build are different occasions.
    assert len({_state(k).offsets for k in range(20)}) == 20


def test_the_wander_depends_on_the_integration_durations_only():
    whole, split = _state(), _state()
    one = whole.advance([0.05] * 9 + [0.2])
    parts = [split.advance([0.05] * 4), split.advance([0.05] * 5), split.advance([0.2])]
    np.testing.assert_array_equal(one.visibility, np.concatenate([p.visibility for p in parts]))
    np.testing.assert_allclose(one.start_s, np.concatenate([p.start_s for p in parts]), rtol=0, atol=1e-12)
    assert whole.clock_s == pytest.approx(split.clock_s) == pytest.approx(0.65)
    np.testing.assert_allclose(one.start_s[:3], [0.0, 0.05, 0.1])


def test_a_new_spec_rescales_the_same_draws():
    state = _state()
    before = state.offsets
    state.spec = Drift.model_validate(
        {"between_sessions": {"visibility_sd": 0.01, "basis_angle_sd_deg": 0.0, "pair_rate_rel_sd": 0.03}}
    )
    after = state.offsets
    assert after.visibility == pytest.approx(2 * before.visibility)
    assert after.pair_rate_rel == pytest.approx(before.pair_rate_rel)
    assert after.basis_angle_deg == 0.0 and after.efficiency_a_rel == 0.0


# ---- the laws of the offsets and the wander -----------------------------------------------------------------------


def test_between_session_offsets_have_the_stated_sds():
    n = 4000
    offsets = np.array([list(_state(k).offsets.to_dict().values()) for k in range(n)])
    stated = np.array([0.005, 0.03, 0.01, 0.01, 1.0])
    # SE of a sample SD is sd / sqrt(2n) (1.1 %); of a mean sd / sqrt(n). Allow 4 SE.
    np.testing.assert_allclose(offsets.std(axis=0, ddof=1) / stated, 1.0, atol=4 / np.sqrt(2 * n))
    np.testing.assert_allclose(offsets.mean(axis=0) / stated, 0.0, atol=4 / np.sqrt(n))
    # The two arms' efficiencies drift independently.
    assert abs(np.corrcoef(offsets[:, 2], offsets[:, 3])[0, 1]) < 4 / np.sqrt(n)


def test_wander_has_the_stated_variance_and_correlation_time():
    n, tau = 3000, 60.0
    durations = [2.0, 40.0, 2.0, 118.0]  # midpoints at 1, 22, 43 and 103 s
    mids = np.array([1.0, 22.0, 43.0, 103.0])
    vis = np.empty((n, 4))
    rate = np.empty((n, 4))
    for k in range(n):
        w = _state(k).advance(durations)
        vis[k], rate[k] = w.visibility, w.pair_rate_rel
    for path, sd in ((vis, 0.002), (rate, 0.01)):
        # Stationary from t = 0: every sample has variance sd^2 (SE of a variance ratio sqrt(2/n) = 2.6 %).
        np.testing.assert_allclose(path.var(axis=0, ddof=1) / sd**2, 1.0, atol=4 * np.sqrt(2 / n))
        corr = np.corrcoef(path.T)[0]
        # Exact OU: corr = exp(-lag / tau); SE of a correlation <= 1/sqrt(n) = 0.018.
        np.testing.assert_allclose(corr[1:], np.exp(-(mids[1:] - mids[0]) / tau), atol=4 / np.sqrt(n))
    # Visibility and rate wander independently.
    assert abs(np.corrcoef(vis[:, 0], rate[:, 0])[0, 1]) < 4 / np.sqrt(n)


def test_ou_transition_is_the_exact_kernel():
    rng = np.random.default_rng(3)
    x0 = np.full(200_000, 1.5)
    x1 = ou_transition(x0, 30.0, 60.0, rng.standard_normal(x0.size))
    rho = np.exp(-0.5)
    # Conditional law N(x0 rho, 1 - rho^2): mean SE 0.002, SD SE 0.0016.
    assert x1.mean() == pytest.approx(1.5 * rho, abs=0.01)
    assert x1.std() == pytest.approx(np.sqrt(1 - rho**2), abs=0.01)


def test_drifted_source_adds_multiplies_and_clips():
    offsets = SessionOffsets(visibility=0.05, pair_rate_rel=-0.1, efficiency_a_rel=0.5, efficiency_b_rel=-0.5)
    wander = Wander(
        np.zeros(3), np.ones(3), visibility=np.array([0.0, -0.04, -2.0]), pair_rate_rel=np.array([0.0, 0.2, -1.5])
    )
    src = drifted_source(0.97, 1.0e6, 0.8, 0.8, offsets, wander)
    np.testing.assert_allclose(src.visibility, [1.0, 0.98, 0.0])  # additive, clipped to [0, 1]
    np.testing.assert_allclose(src.pair_rate_hz, [0.9e6, 0.9e6 * 1.2, 0.0])  # multiplicative, never negative
    assert src.efficiency_a == 1.0 and src.efficiency_b == pytest.approx(0.4)  # clipped at 1
