"""The planner: what a budget can resolve per metric, and the tolerances that make a decisive canary.

Standard errors come from measurements: for a simulated profile (kind aer), the stand-in is measured at the
budget's base scale with the real estimators (`harness.study`, `runs` independent draws, variances averaged); for
a bench, from the newest completed runs of the profile in the results store (each metric's interval, scaled by the
budget scale its protocol was measured at). Variances scale as 1 / budget scale. The baseline is measured in the
same session (both builds re-measured at the same looks) or stored (fixed, at a stored scale).

Per metric, at the budget's looks (base doubling to its cap) and the gate's design:
- `standard_error`: the SE of one build's estimate at the budget's base scale;
- `min_detectable_regression`: the smallest true worsening (from the baseline, in the metric's unit) the gate
  flags as REGRESSION with probability `power` by the cap, with the profile's tolerance, at the level the family
  design gives the metric first (its node's share, Bonferroni within the node); null when the metric is not gated
  at this budget;
- `budget_to_pass`: the budget, as a multiple of the standard budget, at which an unchanged build PASSes the
  metric, gated alone at alpha, with probability `power` (the gate's rule for NOT_GATED);
- `recommended_tolerance`: the smallest margin with which an unchanged build's whole gated family PASSes with
  probability at least `power` at this budget: every gated metric PASSes with probability power^(1/m) (m gated
  metrics; exact for independent metrics, conservative under the positive correlation of shared counts) at the
  level gatekeeping gives it first; when the metric's between-session SD is above 0, no less than the margin with
  which it PASSes the pooled test with that probability (`recommended_tolerance_basis` says which set it).

With the between-session variance (`harness.plan_drift`: stored sessions, else a simulated profile's drift, else
unknown and 0), for the gate against a baseline pooled over `sessions` stored sessions (one look, t on k + M - 2 df,
M = `candidate_sessions`):
- `between_session_sd`: tau, in the metric's unit, and `between_session_source`: where it came from;
- `min_detectable_regression_pooled`: the smallest true worsening that test flags with probability `power`, at
  alpha / m (Holm's first step over the m metrics it tests: what a lone regression must clear);
- `sessions_to_detect`: the fewest baseline sessions (<= 50) with which it flags a worsening of 2 x the tolerance
  with probability `power`; null when none does (a candidate's own session SD too large for the tolerance).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import numpy as np
from scipy.special import ndtri

from harness.errors import DeviceError
from harness.gate import GateDesign
from harness.gate.design import doubling_scales, drift_for, pass_drift
from harness.gate.family import Track, build_nodes, levels, regression_weighting
from harness.metrics import Estimate, alias_of, metric_spec, primary_metrics
from harness.plan_drift import (
    UNKNOWN,
    Between,
    pooled_mdr,
    pooled_pass_margin,
    sessions_to_detect,
    simulated_between,
    stored_between,
)
from harness.profiles import BUDGET_CAPS, BUDGETS, LoadedProfile, Profile

# Baseline sessions the pooled test is planned for when the store holds fewer than two.
DEFAULT_SESSIONS = 5
# What set a recommended tolerance: the sequential test's shot noise, or the pooled one-look test over sessions.
SHOT_BASIS = "shot noise"
POOLED_BASIS = "pooled test (between-session variance)"


class PlanError(ValueError):
    """The planner has nothing to plan from (e.g. a bench profile without stored runs); the message says why."""


@dataclass(frozen=True)
class MetricRow:
    """The planner's figures for one metric (units: the metric's own; budgets: multiples of the standard)."""

    name: str
    unit: str
    standard_error: float | None
    min_detectable_regression: float | None
    budget_to_pass: float | None
    recommended_tolerance: float | None
    tolerance: float | None
    gated: bool
    note: str = ""
    between_session_sd: float | None = None
    between_session_source: str = UNKNOWN
    min_detectable_regression_pooled: float | None = None
    sessions_to_detect: int | None = None
    recommended_tolerance_basis: str = SHOT_BASIS


@dataclass(frozen=True)
class Plan:
    """A profile's plan at one budget."""

    profile: str
    budget: str
    power: float
    baseline: str
    source: str
    metrics: list[MetricRow]
    between_session_source: str = UNKNOWN
    sessions: int = DEFAULT_SESSIONS
    candidate_sessions: int = 1

    def to_dict(self) -> dict:
        """JSON-ready form (`qharness plan --json`)."""
        head = {k: v for k, v in asdict(self).items() if k != "metrics"}
        return {**head, "metrics": [asdict(m) for m in self.metrics]}


def suite_family(profile: Profile) -> list[str]:
    """The metrics the product's suites gate for a profile: Bell, link, rates, logical success (simulated links)
    and decoder-in-the-loop (a bench with a decoder)."""
    from harness.protocols import BELL_METRICS, DECODER_METRICS, LINK_METRICS, RATE_METRICS

    names = [*BELL_METRICS, *LINK_METRICS, *RATE_METRICS]
    if profile.kind == "aer" and profile.link is not None:
        names += [f"logical_success_{c}" for c in profile.qec.codes]
    if profile.kind != "aer" and profile.bench is not None and profile.bench.decoder is not None:
        names += list(DECODER_METRICS)
    return names


def variance(e: Estimate) -> float:
    """One estimate's variance: from its replicates, else from its interval's half-width."""
    if e.samples is not None and len(e.samples) > 1:
        return float(np.var(np.asarray(e.samples, dtype=float), ddof=1))
    q = float(ndtri(0.5 + e.confidence / 2.0))
    return ((e.ci_high - e.ci_low) / (2.0 * q)) ** 2


def simulated_variances(
    profile: Profile, build: str, family: list[str], *, runs: int = 2, seed: int = 1
) -> tuple[dict[str, float], dict[str, Estimate]]:
    """Per metric, the variance of one build's estimate at scale 1 (standard) on the stand-in, averaged over `runs`
    draws through the real estimators, and the first draw's estimates (the baseline values)."""
    from harness.study import Side, model

    m = model(profile, build)
    draws = [Side(m, family, 1.0, seed, run).estimates() for run in range(runs)]
    names = [n for n in draws[0] if n in family]
    return {n: float(np.mean([variance(d[n]) for d in draws])) for n in names}, draws[0]


def stored_variances(store: object, profile: str, family: list[str]) -> tuple[dict[str, float], dict[str, Estimate]]:
    """Per metric, the variance at scale 1 from the newest completed runs in the store (interval half-widths
    times the scale the metric's protocol was measured at), and the newest estimates."""
    from harness.protocols import protocol_for

    runs = [r for r in store.runs(profile) if r.status.completed]  # type: ignore[attr-defined]
    if not runs:
        raise PlanError(
            f"the results store has no completed run of profile {profile}: run the suites once (for example "
            f"`qharness run --profile {profile}`) so the planner has standard errors"
        )
    per_unit: dict[str, list[float]] = {}
    latest: dict[str, Estimate] = {}
    for run in runs[-3:]:
        scales: dict[str, float] = {}
        for rec in store.raw_records(run.id):  # type: ignore[attr-defined]
            scales[rec["protocol"]] = scales.get(rec["protocol"], 0.0) + float(rec["payload"].get("budget_scale", 0))
        for name, (est, _, _) in store.metrics(run.id).items():  # type: ignore[attr-defined]
            proto = protocol_for(name).name if name in family else None
            if proto is None or est.n <= 0 or not scales.get(proto) or not math.isfinite(est.value):
                continue
            per_unit.setdefault(name, []).append(variance(est) * scales[proto])
            latest[name] = est
    return {n: float(np.median(v)) for n, v in per_unit.items()}, latest


@dataclass(frozen=True)
class _Design:
    """What the planner needs of a budget: its first scale, cap, look fractions and the gate's design."""

    gate: GateDesign
    first: float
    cap: float
    fractions: tuple[float, ...]
    stored: bool

    def se_at_cap(self, v1: float) -> float:
        """SE of the difference at the cap: both builds re-measured, or a baseline stored at the standard scale."""
        return math.sqrt(v1 / self.cap + (v1 if self.stored else v1 / self.cap))


def _design(budget: str, power: float, alpha: float, stored: bool) -> _Design:
    first = BUDGETS[budget]
    cap = first * BUDGET_CAPS[budget]
    fractions = tuple(round(s / cap, 4) for s in doubling_scales(first, cap))
    return _Design(GateDesign(alpha=alpha, power=power), first, cap, fractions, stored)


def first_levels(gated: list[str], primary: set[str], groups: dict[str, str], alpha: float) -> dict[str, float]:
    """Each gated metric's REGRESSION level before anything is rejected (its node's share, Bonferroni within)."""
    tracks = {n: Track(n, groups[n], n in primary, True, fractions=[1.0]) for n in gated}
    nodes = build_nodes(list(tracks.values()), {})
    return levels(nodes, regression_weighting(nodes), tracks, (), alpha) if nodes else {}


def pass_levels(gated: list[str], primary: set[str], alpha: float) -> dict[str, float]:
    """Each gated metric's PASS level at its first test: primaries share alpha, then secondaries (gatekeeping)."""
    prim = [n for n in gated if n in primary]
    sec = [n for n in gated if n not in primary]
    out = {n: alpha / len(prim) for n in prim}
    out.update({n: alpha / len(sec) for n in sec})
    return out


def _needed_scale(v1: float, tol: float, theta: float, stored: bool) -> float | None:
    """The cap scale at which the difference's SE falls to tol / theta (None: a stored baseline alone is too noisy)."""
    if tol <= 0.0:
        return None
    target = (tol / theta) ** 2
    if not stored:
        return 2.0 * v1 / target
    return None if target <= v1 else v1 / (target - v1)


def _row(name: str, v1: float, est: Estimate, tol: float, d: _Design, lv: tuple[float, float, float]) -> MetricRow:
    """One metric's figures; `lv` = (REGRESSION level, PASS level, PASS probability each gated metric needs)."""
    reg_level, pass_level, share = lv
    spending, power = d.gate.spending, d.gate.power
    se_cap = d.se_at_cap(v1)
    theta = pass_drift(power, d.fractions, d.gate.alpha, spending)
    gated = tol > 0.0 and tol >= theta * se_cap
    need = _needed_scale(v1, tol, theta, d.stored)
    standard = BUDGETS["standard"] * BUDGET_CAPS["standard"]
    # Not gated: only REGRESSION is tested (the gate's watched metrics), so PASS takes no share of its crossings.
    mdr = tol + drift_for(power, d.fractions, reg_level, pass_level if gated else 0.0, spending) * se_cap
    rec = drift_for(share, d.fractions, pass_level, reg_level, spending) * se_cap
    return MetricRow(
        name=name,
        unit=est.unit,
        standard_error=math.sqrt(v1 / d.first),
        min_detectable_regression=mdr,
        budget_to_pass=None if need is None else need / standard,
        recommended_tolerance=rec,
        tolerance=tol,
        gated=gated,
        note="" if gated else "not gated at this budget (watched for REGRESSION only)",
    )


@dataclass(frozen=True)
class _Sessions:
    """What the pooled test is planned with: baseline and candidate sessions, its levels and the PASS share."""

    k: int
    m: int
    level: float  # REGRESSION: Holm's first step over the metrics the pooled gate tests
    alpha: float  # PASS: the upper bound at alpha
    power: float
    share: float  # PASS probability each gated metric needs


def _with_sessions(row: MetricRow, v1: float, between: Between, first: float, s: _Sessions) -> MetricRow:
    """The row with its between-session SD, the pooled test's figures and a tolerance no tighter than drift allows."""
    tau2 = between.tau2.get(row.name)
    tau2_known = tau2 if tau2 is not None and math.isfinite(tau2) else 0.0
    shot = v1 / first  # one session at the budget's base: the pooled gate is one look
    tol = row.tolerance or 0.0
    mdr = pooled_mdr(tol, tau2_known, shot, s.k, s.m, s.level, s.power)
    k_needed = sessions_to_detect(tol, tau2_known, shot, s.m, s.level, s.power)
    rec, basis = row.recommended_tolerance, SHOT_BASIS
    if tau2_known > 0.0:
        drift = pooled_pass_margin(tau2_known, shot, s.k, s.m, s.alpha, s.share)
        if rec is None or drift > rec:
            rec, basis = drift, POOLED_BASIS
    return MetricRow(
        **{
            **asdict(row),
            "between_session_sd": math.sqrt(tau2_known),
            "between_session_source": between.source if tau2 is not None else UNKNOWN,
            "min_detectable_regression_pooled": mdr,
            "sessions_to_detect": k_needed,
            "recommended_tolerance": rec,
            "recommended_tolerance_basis": basis,
        }
    )


@contextlib.contextmanager
def stand_in(name: str, build: str) -> Iterator[None]:
    """Within the block a stand-in that cannot be measured (a DeviceError) is a PlanError naming the cause."""
    try:
        yield
    except DeviceError as exc:  # e.g. a sampling method, which has no exact probabilities, or one that cannot drift
        raise PlanError(f"profile {name}: the stand-in of build {build} cannot be measured: {exc}") from None


def between_sessions(
    loaded: LoadedProfile, profile: Profile, build: str, v1: dict[str, float], store: object | None
) -> Between:
    """The between-session variance per metric: stored sessions of `build`, else a simulated drift, else unknown."""
    found = stored_between(store, loaded.name, build, list(v1)) if store is not None else None
    if found is None and profile.kind == "aer":
        with stand_in(loaded.name, build):
            found = simulated_between(profile, build, v1)
    return found or Between({}, f"{UNKNOWN}: no stored sessions of build {build} and no drift block")


def _check(budget: str, power: float, sessions: int | None, candidate_sessions: int) -> None:
    """PlanError naming the option unless the options are usable."""
    if budget not in BUDGETS:
        raise PlanError(f"--budget {budget!r}: choose one of {', '.join(BUDGETS)}")
    if not 0.5 < power < 1.0:
        raise PlanError(f"--power {power}: must be between 0.5 and 1 (exclusive), e.g. 0.95")
    if sessions is not None and not 2 <= sessions <= 1000:
        raise PlanError(f"--sessions {sessions}: the pooled test needs 2 to 1000 baseline sessions, e.g. 5")
    if not 1 <= candidate_sessions <= 1000:
        raise PlanError(f"--candidate-sessions {candidate_sessions}: must be 1 to 1000 (1: one candidate run)")


def plan_profile(
    loaded: LoadedProfile,
    *,
    budget: str = "standard",
    power: float = 0.95,
    alpha: float = 0.05,
    store: object | None = None,
    build: str | None = None,
    sessions: int | None = None,
    candidate_sessions: int = 1,
) -> Plan:
    """Return the plan of a profile's suite family at `budget` (see the module docstring)."""
    _check(budget, power, sessions, candidate_sessions)
    build = build or loaded.base.firmware.baseline or loaded.builds[0]
    profile = loaded.effective(build)
    family = suite_family(profile)
    if profile.kind == "aer":
        # Shot noise at the nominal physics: a drift block moves sessions, not the standard error.
        with stand_in(loaded.name, build):
            v1, est = simulated_variances(profile.model_copy(update={"drift": None}), build, family)
        source, baseline, stored = f"stand-in of build {build}, real estimators", "measured in the same session", False
    else:
        if store is None:
            raise PlanError(f"profile {loaded.name} is a bench: the planner needs the results store (--db)")
        v1, est = stored_variances(store, loaded.name, family)
        source, baseline, stored = "newest stored runs", "stored (fixed)", True
    d = _design(budget, power, alpha, stored)
    chosen = profile.gate.primary if profile.gate is not None else None
    primary = set(chosen) if chosen is not None else set(primary_metrics(family))
    follows = {n: alias_of(n) for n in family if alias_of(n) in family}
    gated = [n for n in family if n in v1 and n not in follows and not metric_spec(n).informational]
    from harness.protocols import protocol_for

    reg = first_levels(gated, primary, {n: protocol_for(n).name for n in gated}, alpha)
    ok = pass_levels(gated, primary, alpha)
    share = power ** (1.0 / max(1, len(gated)))
    between = between_sessions(loaded, profile, build, v1, store)
    k = sessions or (between.stored_sessions if (between.stored_sessions or 0) >= 2 else DEFAULT_SESSIONS)
    pooled = _Sessions(k, candidate_sessions, alpha / max(1, len(v1)), alpha, power, share)
    tolerances = profile.gate_tolerances()
    rows = []
    for name in family:
        if name not in v1:
            rows.append(MetricRow(name, metric_spec(name).unit, None, None, None, None, None, False, "not measured"))
            continue
        lead = follows.get(name, name)
        tol = tolerances[name].margin(est[name].value) if name in tolerances else 0.0
        row = _row(name, v1[name], est[name], tol, d, (reg.get(lead, alpha), ok.get(lead, alpha), share))
        if name in follows:
            row = MetricRow(**{**asdict(row), "gated": False, "note": f"gated once with {lead}"})
        elif metric_spec(name).informational:
            never = {"gated": False, "recommended_tolerance": None, "budget_to_pass": None}
            row = MetricRow(**{**asdict(row), **never, "note": f"never gated: {metric_spec(name).informational}"})
        rows.append(_with_sessions(row, v1[name], between, d.first, pooled))
    return Plan(loaded.name, budget, power, baseline, source, rows, between.source, k, candidate_sessions)
