"""A metric family gated over looks: classified at its first look, tested at every look, each verdict frozen once.

`SequentialGate.look` takes the family's current estimates (after the first measurement, then after each
re-measurement); `pending()` names the metrics that need more data. At the first look each metric is classified:

- ERROR (no estimate) and NO_BASELINE as always;
- an alias of another metric of the family (declared in the registry, or replicates correlated at |r| >= 0.99)
  follows that metric's verdict: it is gated once and reported twice;
- NOT_GATED with its reason: an informational metric (the registry's `informational`: host wall-clock timing,
  Holevo chi's biased estimator), never gated; device latency without a
  tolerance in the profile (any other metric without one has a margin of 0);
- watched (a budgeted run only, `MetricPlan.resolve`): a tolerance this budget cannot resolve - one that an
  unchanged build, gated alone at alpha, would not PASS with the design's power by the last look. It is tested for
  REGRESSION only (a gross regression is still caught) and is otherwise NOT_GATED with "not gated at this budget:
  needs budget X", never INCONCLUSIVE; it is re-measured only while it measures worse than its tolerance;
- otherwise gated: a track of looks in the family design of `harness.gate.family`.

A verdict freezes at the first look that reaches it (REGRESSION, PASS, IMPROVED, or INCONCLUSIVE at the last look):
a later look, made because a sibling metric of the same protocol is re-measured, does not change it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.special import ndtr

from harness.gate.comparison import Comparison, adjusted_p, error_comparison
from harness.gate.design import (
    GateDesign,
    doubling_scales,
    information_fractions,
    look_bounds,
    min_detectable,
    needed_scale,
    pass_drift,
)
from harness.gate.family import (
    Decision,
    Track,
    build_nodes,
    find_aliases,
    levels,
    pass_weighting,
    regression_weighting,
    reject,
)
from harness.gate.statistic import LookStat, is_exact, look_stat, side_errors
from harness.metrics import Estimate, Tolerance, Verdict


@dataclass(frozen=True)
class MetricPlan:
    """How one metric is gated: tolerance (None: the profile gives none), count group, cap and kind of looks."""

    tolerance: Tolerance | None = None
    group: str = ""  # metrics of one group share counts (max-T, aliases); "" is the metric's own group
    max_scale: float = 1.0  # the candidate's total scale at the last look
    cumulative: bool = True  # False: each look is a new measurement that replaces the last
    baseline_fixed: bool = False  # a stored baseline: never re-measured
    timing: str | None = None  # "device": gated only with a tolerance
    informational: str | None = None  # why the metric is never gated (host timing, a biased estimator)
    primary: bool = False
    alias_of: str | None = None  # declared: gated with that metric
    resolve: bool = False  # a budgeted run: NOT_GATED when its cap cannot resolve the tolerance


@dataclass
class _State:
    """What the gate keeps of one metric between looks."""

    plan: MetricPlan
    variances: tuple[float, float] = (0.0, 0.0)
    scales: list[tuple[float, float]] = field(default_factory=list)
    stats: list[LookStat] = field(default_factory=list)
    track: Track | None = None
    reason: str | None = None  # NOT_GATED
    follows: str | None = None  # alias
    frozen: Comparison | None = None
    decision: tuple[Verdict, Decision] | None = None
    latest: tuple[Estimate, Estimate] | None = None  # the estimates of the latest look


def _check(name: str, candidate: Estimate, baseline: Estimate) -> str | None:
    """Return why the two estimates cannot be compared, or None when they can."""
    if candidate.direction != baseline.direction:
        return (
            f"metric {name}: direction changed from {baseline.direction} (baseline) to {candidate.direction}; "
            "a changed definition needs a new baseline"
        )
    if candidate.unit != baseline.unit:
        return f"metric {name}: unit changed from {baseline.unit!r} (baseline) to {candidate.unit!r}; re-baseline"
    for label, e in (("candidate", candidate), ("baseline", baseline)):
        if not all(math.isfinite(x) for x in (e.value, e.ci_low, e.ci_high)):
            return f"metric {name}: {label} estimate is not finite ({e.value} [{e.ci_low}, {e.ci_high}])"
    return None


def _replicates(candidate: Estimate, baseline: Estimate) -> np.ndarray | None:
    """Return replicates of the difference (paired sets), else the candidate's own, else None."""
    cs, bs = candidate.samples, baseline.samples
    if cs is None or len(cs) < 10:
        return None
    c = np.asarray(cs, dtype=float)
    if bs is not None and len(bs) == len(cs):
        return c - np.asarray(bs, dtype=float)
    return c


# The reason of a metric the budget cannot resolve: it is watched for REGRESSION only (never INCONCLUSIVE).
UNRESOLVED = "not gated at this budget"

Observation = tuple[dict[str, "Estimate | BaseException"], dict[str, Estimate], dict[str, tuple[float, float]]]


def run_looks(
    gate: SequentialGate, observe: Callable[[], Observation], remeasure: Callable[[set[str]], bool]
) -> dict[str, Comparison]:
    """Gate the family look by look: `observe()` gives the current estimates, `remeasure(pending)` measures more
    for the undecided metrics (False when nothing more can be measured: the latest look is then the last)."""
    gate.look(*observe())
    while pending := gate.pending():
        if not remeasure(pending):
            break
        gate.look(*observe())
    # The latest look is every metric's last: watched metrics and those whose protocol stopped spend what is left.
    return gate.look(*observe(), final=True)


def _needs_more(track: Track) -> bool:
    """An undecided track before its last look needs more data; a watched one only while it measures worse than
    its tolerance (stopping a one-sided test where it cannot cross never raises its error)."""
    if track.final:
        return False
    return not track.watch or (bool(track.z_reg) and track.z_reg[-1] > 0.0)


def _default_scale(scale: float) -> str:
    return f"{scale:.3g} budget units"


class SequentialGate:
    """Gate a metric family over looks; see the module docstring."""

    def __init__(
        self,
        design: GateDesign,
        plans: dict[str, MetricPlan],
        *,
        describe_scale: Callable[[float], str] = _default_scale,
    ) -> None:
        self.design = design
        self.plans = plans
        self.describe_scale = describe_scale
        self._states: dict[str, _State] = {}
        self._nodes: list = []
        self._pass_nodes: list = []
        self._reg_w = self._pass_w = None
        self._replicates: dict[str, np.ndarray] = {}

    def pending(self) -> set[str]:
        """Return the gated metrics still undecided before their last look (they need more data)."""
        return {n for n, s in self._states.items() if s.track is not None and s.frozen is None and _needs_more(s.track)}

    def look(
        self,
        candidates: dict[str, Estimate | BaseException],
        baselines: dict[str, Estimate],
        scales: dict[str, tuple[float, float]] | None = None,
        *,
        final: bool = False,
    ) -> dict[str, Comparison]:
        """Return each metric's comparison after this look; `scales` gives each metric's (candidate, baseline) total
        scale (a look is new when the candidate's grew), `final` makes this look every metric's last."""
        scales = scales or {}
        out: dict[str, Comparison] = {}
        fresh = []
        for name, cand in candidates.items():
            state = self._states.get(name)
            if state is not None and state.frozen is not None:
                out[name] = state.frozen
                continue
            problem = self._problem(name, cand, baselines.get(name))
            if problem is not None:
                out[name] = problem
            elif state is None:
                fresh.append(name)
        live = [n for n in candidates if n not in out]
        if fresh:
            self._classify(fresh, candidates, baselines, scales)
        for name in live:
            self._add_look(name, candidates[name], baselines[name], scales.get(name, (1.0, 1.0)), final)
        self._decide()
        aliases = [n for n in live if self._states[n].follows is not None]
        for name in live:
            if name not in aliases:
                out[name] = self._comparison(name)
        for name in aliases:
            out[name] = self._alias(name, candidates[name], baselines[name], out.get(self._states[name].follows))
        return {n: out[n] for n in candidates}

    # -- classification -------------------------------------------------------------------------------------

    def _problem(self, name: str, cand: object, base: Estimate | None) -> Comparison | None:
        """Return an ERROR or NO_BASELINE comparison when the metric cannot be compared, else None."""
        alpha = self.design.alpha
        if isinstance(cand, BaseException):
            return error_comparison(name, None, base, str(cand) or type(cand).__name__, alpha)
        if not isinstance(cand, Estimate):
            return error_comparison(name, None, base, f"not an Estimate: {type(cand).__name__}", alpha)
        if base is None:
            return Comparison(name, cand, None, None, 0.0, None, None, Verdict.NO_BASELINE, alpha=alpha)
        problem = _check(name, cand, base)
        return None if problem is None else error_comparison(name, cand, base, problem, alpha)

    def _classify(self, fresh: list[str], candidates: dict, baselines: dict, scales: dict) -> None:
        """First look: aliases, NOT_GATED reasons and tracks; then the family's nodes and weightings."""
        plans = {n: self.plans.get(n, MetricPlan()) for n in fresh}
        groups = {n: plans[n].group or n for n in fresh}
        for n in fresh:
            rep = _replicates(candidates[n], baselines[n])
            if rep is not None:
                self._replicates[n] = rep
        order = sorted(fresh, key=lambda n: (not plans[n].primary, fresh.index(n)))
        declared = {n: p.alias_of for n, p in plans.items() if p.alias_of}
        aliases = find_aliases(order, declared, self._replicates, groups)
        for n in fresh:
            state = _State(plans[n])
            self._states[n] = state
            cand, base = candidates[n], baselines[n]
            c_reg, b_reg, c_pass, b_pass, _ = side_errors(cand, base)
            state.variances = ((c_reg**2 + c_pass**2) / 2.0, (b_reg**2 + b_pass**2) / 2.0)
            if n in aliases:
                state.follows = aliases[n]
                continue
            state.reason = self._not_gated(n, state, cand, base, scales.get(n, (1.0, 1.0)))
            unresolved = state.reason is not None and state.reason.startswith(UNRESOLVED)
            if state.reason is not None and not unresolved:
                stat = look_stat(cand, base, self._margin(n, base), self.design.confidence, self.design.exact_below)
                state.frozen = Comparison(
                    n, cand, base, stat.delta, stat.tol, None, None, Verdict.NOT_GATED,
                    alpha=self.design.alpha, reason=state.reason, method=stat.method,
                )  # fmt: skip
            else:
                exact = is_exact(cand, base, self._margin(n, base), self.design.exact_below)
                cumulative = state.plan.cumulative and not exact
                state.track = Track(n, groups[n], state.plan.primary, cumulative, watch=unresolved)
                state.track.planned = self._planned(state, scales.get(n, (1.0, 1.0)))
        tracks = [s.track for s in self._states.values() if s.track is not None]
        self._nodes = build_nodes(tracks, self._replicates)
        self._pass_nodes = build_nodes([t for t in tracks if not t.watch], self._replicates)
        if self._nodes:
            self._reg_w = regression_weighting(self._nodes)
        if self._pass_nodes:
            self._pass_w = pass_weighting(self._pass_nodes)

    def _planned(self, state: _State, scale: tuple[float, float]) -> tuple[float, ...]:
        """Return the information fractions of the looks planned at the first look: doubling up to the cap."""
        plan, (s_c, s_b) = state.plan, scale
        pairs = [(s, s_b if plan.baseline_fixed else s * s_b / s_c) for s in doubling_scales(s_c, plan.max_scale)]
        fractions = information_fractions(state.variances, pairs, pairs[-1])
        # Rounding may tie two looks; keep them strictly increasing, as the boundaries need.
        out: list[float] = []
        for t in fractions:
            out.append(t if not out or t > out[-1] else min(1.0, out[-1] + 1e-4))
        return tuple(out)

    def _margin(self, name: str, base: Estimate) -> float:
        tol = (
            self._states[name].plan.tolerance if name in self._states else self.plans.get(name, MetricPlan()).tolerance
        )
        return 0.0 if tol is None else tol.margin(base.value)

    def _not_gated(self, name: str, state: _State, cand: Estimate, base: Estimate, scale: tuple) -> str | None:
        """Return why a metric is not gated, or None when it is."""
        plan = state.plan
        if plan.informational:
            return f"informational: {plan.informational}"
        if plan.tolerance is None and plan.timing == "device":
            return "device latency: gated only when the profile gives it a tolerance"
        # Any other metric without a tolerance has a margin of 0 (docs/baselines.md).
        if not plan.resolve:
            return None
        return self._unresolved(state, self._margin(name, base), scale)

    def _unresolved(self, state: _State, tol: float, scale: tuple[float, float]) -> str | None:
        """Return "not gated at this budget: needs ..." when an unchanged build would not PASS by the cap, else None."""
        plan, d = state.plan, self.design
        v_c, v_b = state.variances
        if v_c + v_b <= 0.0:
            return None  # exact numbers: the point values decide
        s_c, s_b = scale
        v_cap = v_c * s_c / plan.max_scale + (v_b if plan.baseline_fixed else v_b * s_b / plan.max_scale)
        planned = doubling_scales(s_c, plan.max_scale)
        t = tuple(round(s / planned[-1], 4) for s in planned)
        theta = pass_drift(d.power, t, d.alpha, d.spending, plan.cumulative)
        if tol >= theta * math.sqrt(v_cap):
            return None
        need = needed_scale(tol, state.variances, scale, plan.baseline_fixed, tol / theta)
        if need is None:
            if tol <= 0.0:
                return (
                    f"{UNRESOLVED}: a margin of 0 can never PASS; give it a tolerance (`qharness plan` recommends one)"
                )
            return (
                f"{UNRESOLVED}: the stored baseline alone is too uncertain for this tolerance; "
                "re-measure the baseline build at a larger budget"
            )
        return f"{UNRESOLVED}: needs {self.describe_scale(need)}"

    # -- looks and decisions ---------------------------------------------------------------------------------

    def _add_look(self, name: str, cand: Estimate, base: Estimate, scale: tuple[float, float], final: bool) -> None:
        """Append a look to a gated metric when its candidate's scale grew (or mark its last look final)."""
        state = self._states[name]
        track = state.track
        if track is None or state.frozen is not None:
            return
        scale = (float(scale[0]), float(scale[1]))
        if state.scales and scale[0] <= state.scales[-1][0]:
            track.final = track.final or final
            return
        plan = state.plan
        stat = look_stat(cand, base, self._margin(name, base), self.design.confidence, self.design.exact_below)
        state.scales.append(scale)
        state.stats.append(stat)
        state.latest = (cand, base)
        last = (plan.max_scale, state.scales[0][1] if plan.baseline_fixed else plan.max_scale)
        fractions = information_fractions(state.variances, state.scales, last)
        if len(fractions) > 1 and fractions[-1] <= fractions[-2]:
            fractions = (*fractions[:-1], min(1.0, fractions[-2] + 1e-4))
        track.fractions = list(fractions)
        track.z_reg.append(stat.z_reg)
        track.z_pass.append(stat.z_pass)
        track.final = final or fractions[-1] >= 1.0 or scale[0] >= plan.max_scale * (1.0 - 1e-9)

    def _decide(self) -> None:
        """Run both families over every track and freeze the metrics that reached a verdict."""
        tracks = {n: s.track for n, s in self._states.items() if s.track is not None and s.track.fractions}
        if not tracks:
            return
        frozen = {n: s.decision for n, s in self._states.items() if s.decision is not None}
        reg_done = {n: d for n, (v, d) in frozen.items() if v is Verdict.REGRESSION}
        pass_done = {n: d for n, (v, d) in frozen.items() if v in (Verdict.PASS, Verdict.IMPROVED)}
        stuck = {n for n, s in self._states.items() if s.frozen is not None and s.decision is None}
        d = self.design
        reg = reject(
            self._nodes, self._reg_w, tracks, lambda t: t.z_reg, d.alpha, d.spending,
            rejected=reg_done, barred={*pass_done, *stuck},
        )  # fmt: skip
        ok = {}
        if self._pass_nodes:
            ok = reject(
                self._pass_nodes, self._pass_w, tracks, lambda t: t.z_pass, d.alpha, d.spending,
                rejected=pass_done, barred={*reg_done, *stuck},
            )  # fmt: skip
        self._levels = levels(self._nodes, self._reg_w, tracks, reg, d.alpha)
        for name, track in tracks.items():
            state = self._states[name]
            if state.frozen is not None:
                continue
            r, p = reg.get(name), ok.get(name)
            if r is not None and (p is None or r.look <= p.look):
                state.decision = (Verdict.REGRESSION, r)
            elif p is not None:
                improved = state.stats[p.look].z_sup >= p.boundary
                state.decision = (Verdict.IMPROVED if improved else Verdict.PASS, p)
            elif not track.final:
                continue
            state.frozen = self._gated_comparison(name, state)

    def _gated_comparison(self, name: str, state: _State) -> Comparison:
        """Return the comparison of a gated metric from its latest look and its decision (if any)."""
        track, stat, d = state.track, state.stats[-1], self.design
        assert track is not None and state.latest is not None
        undecided = Verdict.NOT_GATED if track.watch else Verdict.INCONCLUSIVE
        verdict, decision = state.decision or (undecided, None)
        level = decision.level if verdict is Verdict.REGRESSION else self._levels.get(name, 0.0)
        bounds = look_bounds(tuple(track.fractions), level, d.spending, True, track.cumulative)
        reg_c = decision.boundary if verdict is Verdict.REGRESSION else bounds[-1]
        p_reg = float(ndtr(-stat.z_reg))
        p_sup = float(ndtr(-stat.z_sup))
        if decision is not None:
            z = {Verdict.REGRESSION: track.z_reg, Verdict.IMPROVED: [s.z_sup for s in state.stats]}.get(
                verdict, track.z_pass
            )[decision.look]
            level, boundary, look = decision.level, decision.boundary, decision.look + 1
        else:
            z, boundary, look = stat.z_reg, reg_c, None
        return Comparison(
            name=name,
            candidate=state.latest[0],
            baseline=state.latest[1],
            delta=stat.delta,
            tolerance=stat.tol,
            p_regression=p_reg,
            p_regression_adjusted=adjusted_p(stat.z_reg, reg_c, d.alpha),
            verdict=verdict,
            p_improved=p_sup,
            p_improved_adjusted=adjusted_p(stat.z_sup, boundary, d.alpha) if verdict is Verdict.IMPROVED else None,
            alpha=d.alpha,
            min_detectable_regression=min_detectable(
                stat.tol, stat.se_reg, self._levels.get(name, level), bounds, d.power
            ),
            reason=state.reason if verdict is Verdict.NOT_GATED else None,
            look=look,
            looks=len(track.fractions),
            level=level,
            boundary=boundary,
            z=z,
            method=stat.method,
        )

    def _comparison(self, name: str) -> Comparison:
        """Return a metric's comparison now: frozen, or pending (INCONCLUSIVE until a later look decides)."""
        state = self._states[name]
        return state.frozen if state.frozen is not None else self._gated_comparison(name, state)

    def _alias(self, name: str, cand: Estimate, base: Estimate, target: Comparison | None) -> Comparison:
        """Return an alias's comparison: its own numbers, the verdict of the metric it follows (frozen with it)."""
        state = self._states[name]
        stat = look_stat(cand, base, self._margin(name, base), self.design.confidence, self.design.exact_below)
        done = target is not None and self._states.get(target.name) is not None
        done = done and self._states[target.name].frozen is target
        verdict = target.verdict if done else Verdict.INCONCLUSIVE
        if target is not None and target.verdict in (Verdict.ERROR, Verdict.NO_BASELINE):
            verdict = target.verdict
        comp = Comparison(
            name, cand, base, stat.delta, stat.tol, float(ndtr(-stat.z_reg)), None, verdict,
            alpha=self.design.alpha, reason=target.reason if done else None, follows=state.follows,
            method=stat.method, error=target.error if target is not None else None,
        )  # fmt: skip
        if done:
            state.frozen = comp
        return comp
