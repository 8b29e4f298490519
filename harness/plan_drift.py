"""The planner's between-session variance: where tau comes from, and what the pooled (stored-baseline) test resolves.

A session is one run of one build. On a drifting bench two sessions of the same build differ by a session effect
of SD tau on top of shot noise; the gate against a baseline pooled over k stored sessions is one look, t with
k + M - 2 degrees of freedom, where M is the number of candidate sessions pooled (today one: k - 1 df). Its
difference has variance (tau^2 + v) (1/M + 1/k), v the shot-noise variance of one session at the budget's base.

tau per metric comes from, in order:
- the store: the baseline build's stored sessions pooled by `harness.baselines.pooled_baseline` (REML tau^2), when
  it has two or more;
- a simulated profile's `drift` block: the stand-in measured over seeded drift sessions through the real path (the
  Aer device's exact probabilities at each session's offsets, counts drawn as the device draws them, the real
  estimators), at a scale large enough that shot noise is negligible. The session values are regressed on the
  session's standard-normal offsets z_j (linear and (z_j^2 - 1)/sqrt 2 terms, orthonormal under the drift's law), so
  Var = sum of squared coefficients + residual variance: the spread of 24 sessions then gives tau to about 1 %
  where their raw SD would give it to about 15 %. The within-session wander's stationary variance is counted in
  full as between-session variance (exact for a session much shorter than the wander's correlation time: a
  standard aer-reference session integrates about 1.6 s against a default 60 s);
- else 0, and the plan says "between-session variance unknown".

Power and passing of the pooled test use the noncentral t: with sigma the true SD of the difference and the
estimated one scaled by sqrt(chi2_df / df), (worse - tol) / se_hat is noncentral t with noncentrality
(delta - tol) / sigma (exact for equal sessions; the gate's HKSJ floor only widens it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from scipy import optimize, stats

from harness.profiles import Profile

UNKNOWN = "between-session variance unknown"
# Scale at which the stand-in measures drift sessions: shot noise 1/100 of the standard budget's SE.
DRIFT_SCALE = 1.0e4
MAX_SESSIONS = 50


@dataclass(frozen=True)
class Between:
    """Per metric between-session variance tau^2 (metric units squared), where it came from, and stored sessions."""

    tau2: dict[str, float]
    source: str
    stored_sessions: int | None = None


def stored_between(store: object, profile: str, build: str, family: list[str]) -> Between | None:
    """tau^2 from the build's stored sessions pooled with REML (None: fewer than 2 sessions of every metric)."""
    from harness.baselines import pooled_baseline

    pooled = pooled_baseline(store, profile, build, family)  # type: ignore[arg-type]
    fitted = {n: p for n, p in pooled.items() if p.fit.tau2 is not None}
    if not fitted:
        return None
    k = max(p.fit.k for p in fitted.values())
    tau2 = {n: float(p.fit.tau2) for n, p in fitted.items()}  # type: ignore[arg-type]
    return Between(tau2, f"stored sessions of build {build} ({k}, REML)", k)


def folded_drift(profile: Profile) -> object:
    """The profile's drift with the within-session wander's stationary SDs added (in quadrature) to the offsets."""
    b, w = profile.drift.between_sessions, profile.drift.within_session  # type: ignore[union-attr]
    between = b.model_copy(
        update={
            "visibility_sd": math.hypot(b.visibility_sd, w.visibility_sd),
            "pair_rate_rel_sd": math.hypot(b.pair_rate_rel_sd, w.pair_rate_rel_sd),
        }
    )
    within = w.model_copy(update={"visibility_sd": 0.0, "pair_rate_rel_sd": 0.0})
    return profile.drift.model_copy(update={"between_sessions": between, "within_session": within})  # type: ignore[union-attr]


def _offset_sds(drift: object) -> np.ndarray:
    """The SDs of the five session offsets, in `SessionOffsets` order."""
    b = drift.between_sessions  # type: ignore[attr-defined]
    return np.array(
        [b.visibility_sd, b.pair_rate_rel_sd, b.efficiency_rel_sd, b.efficiency_rel_sd, b.basis_angle_sd_deg]
    )


def _session(base: object, profile: Profile, build: str, seed: int, session: int) -> tuple[object, np.ndarray]:
    """One drift session of the stand-in as a study model, and its five offsets (SessionOffsets order)."""
    from harness.devices.aer import AerDevice
    from harness.devices.aer_drift import drifted_rates, first_rates
    from harness.physics.drift import DriftState, Wander, drifted_source
    from harness.records import INPUTS_6

    with AerDevice(profile, build, seed=seed, session=session) as dev:
        bell, link = dev.bell_probabilities(), dev.link_probabilities(INPUTS_6)
    offsets = DriftState(profile.drift, seed, profile.name, build, session).offsets
    s, d = profile.source, profile.detectors
    src = drifted_source(s.visibility, s.pair_rate_hz, d.efficiency_a, d.efficiency_b, offsets, Wander.none([1.0]))  # type: ignore[union-attr]
    rates = first_rates(drifted_rates(profile, src))
    return replace(base, bell=bell, link=link, rates=rates), np.array(list(offsets.to_dict().values()))  # type: ignore[type-var]


def session_variance(values: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Per column of `values` (sessions x metrics), its variance over standard-normal offsets `z` (sessions x j):
    the squared coefficients on z_j and (z_j^2 - 1)/sqrt 2 plus the residual variance (unbiased)."""
    x = np.column_stack([np.ones(len(z)), z, (z * z - 1.0) / math.sqrt(2.0)])
    coef, *_ = np.linalg.lstsq(x, values, rcond=None)
    resid = values - x @ coef
    dof = max(1, len(z) - x.shape[1])
    return np.sum(coef[1:] ** 2, axis=0) + np.sum(resid**2, axis=0) / dof


def simulated_between(
    profile: Profile, build: str, v1: dict[str, float], *, sessions: int = 24, seed: int = 1
) -> Between | None:
    """tau^2 of a drifting stand-in from `sessions` seeded drift sessions (None: the profile does not drift);
    `v1` (metric -> shot-noise variance at scale 1) names the metrics and bounds the shot noise left at the scale."""
    from harness.physics.drift import is_active
    from harness.study import Side, model

    if not is_active(profile.drift):
        return None
    family = list(v1)
    drifting = profile.model_copy(update={"drift": folded_drift(profile)})
    sds = _offset_sds(drifting.drift)
    # Only values matter here: the fewest bootstrap replicates the estimators take.
    quick = drifting.model_copy(update={"measurement": profile.measurement.model_copy(update={"bootstrap": 50})})
    # The nominal model (as the planner's standard errors use it) for what drift does not move: the memories.
    base = replace(model(profile.model_copy(update={"drift": None}), build), profile=quick)
    rows, offsets = [], []
    for i in range(sessions):
        m, off = _session(base, drifting, build, seed, i)
        est = Side(m, family, DRIFT_SCALE, seed, 0).estimates()
        rows.append([est[n].value if n in est else math.nan for n in family])
        offsets.append(off)
    values, moved = np.asarray(rows, dtype=float), sds > 0
    z = np.asarray(offsets)[:, moved] / sds[moved]
    ok = np.all(np.isfinite(values), axis=0)
    var = np.full(len(family), math.nan)
    var[ok] = session_variance(values[:, ok], z)
    # What shot noise can add at DRIFT_SCALE is taken off, so a metric drift does not move reads as 0, not 1e-16.
    tau2 = {n: max(0.0, float(v) - v1[n] / DRIFT_SCALE) for n, v in zip(family, var, strict=True) if math.isfinite(v)}
    return Between(tau2, f"drift block: {sessions} simulated sessions of build {build}")


def _noncentrality(quantile: float, df: float, prob: float) -> float:
    """The noncentrality at which a noncentral t with `df` exceeds `quantile` with probability `prob`."""
    z = float(stats.norm.ppf(prob))
    hi = quantile + z + 10.0
    while stats.nct.sf(quantile, df, hi) < prob:
        hi *= 2.0
    return float(optimize.brentq(lambda d: stats.nct.sf(quantile, df, d) - prob, quantile + z - 50.0, hi, xtol=1e-10))


def pooled_sd(tau2: float, shot: float, k: int, m: int = 1) -> float:
    """SD of the pooled test's difference: sqrt((tau^2 + v) (1/M + 1/k)), metric units."""
    return math.sqrt((tau2 + shot) * (1.0 / m + 1.0 / k))


def pooled_mdr(tol: float, tau2: float, shot: float, k: int, m: int, level: float, power: float) -> float:
    """Smallest true worsening the pooled test flags as REGRESSION at `level` with probability `power`."""
    df = k + m - 2
    q = float(stats.t.ppf(1.0 - level, df))
    return tol + _noncentrality(q, df, power) * pooled_sd(tau2, shot, k, m)


def pooled_pass_margin(tau2: float, shot: float, k: int, m: int, alpha: float, prob: float) -> float:
    """Smallest margin at which an unchanged build PASSes the pooled test (upper bound at alpha) with `prob`."""
    df = k + m - 2
    q = float(stats.t.ppf(1.0 - alpha, df))
    return _noncentrality(q, df, prob) * pooled_sd(tau2, shot, k, m)


def pooled_power(delta: float, tol: float, tau2: float, shot: float, k: np.ndarray, m: int, level: float) -> np.ndarray:
    """Probability the pooled test flags a true worsening `delta` as REGRESSION, per baseline session count k."""
    k = np.asarray(k, dtype=float)
    df = k + m - 2
    sd = np.sqrt((tau2 + shot) * (1.0 / m + 1.0 / k))
    return stats.nct.sf(stats.t.ppf(1.0 - level, df), df, (delta - tol) / sd)


def sessions_to_detect(tol: float, tau2: float, shot: float, m: int, level: float, power: float) -> int | None:
    """Fewest baseline sessions (<= 50) with which the pooled test flags a worsening of 2 x tol with `power`."""
    if tol <= 0.0:
        return None
    k = np.arange(max(2, 3 - m), MAX_SESSIONS + 1)
    hit = np.nonzero(pooled_power(2.0 * tol, tol, tau2, shot, k, m, level) >= power)[0]
    return int(k[hit[0]]) if hit.size else None
