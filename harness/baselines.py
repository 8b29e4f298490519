"""A baseline build pooled over all of its stored sessions, and the test of a candidate against it.

A session is one completed run of a build. Each stored session gives, per metric, a value and its within-session
(shot-noise) variance, read off its interval. `pooled_baseline` pools the sessions with a random-effects model
(REML between-session variance, `harness.stats.random_effects`); `compare_candidate` tests a candidate session
against the pooled mean, one-sided, with the gate's tolerance as the shift: t with k - 1 degrees of freedom and
the modified Hartung–Knapp factor when the between-session variance is estimated, the normal shot-noise test of
today's gate when one session is all there is. Every result carries a `variance_model` that says which.

Sessions of a simulated device that share seed, session index, budget and profile content are the same draws
(a run and a later re-run, or a stored in-session baseline and a candidate run of that build): only the newest of
them counts, so a repeated simulation never poses as independent evidence of a small between-session variance.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from scipy import stats

from harness.gate import Comparison, Verdict, error_comparison, holm
from harness.metrics import Direction, Estimate, Tolerance
from harness.stats.changepoint import ChangePoints, detect
from harness.stats.meta_regression import compare_groups
from harness.stats.random_effects import PooledComparison, RandomEffectsFit, compare_to_pooled, pool, with_shift
from harness.store import RunRow, RunStatus, Store

SIMULATED_KINDS = frozenset({"aer"})
ONE_SESSION = "between-session variance unknown (1 session): shot noise only"


@dataclass(frozen=True)
class SessionValue:
    """One stored session of one metric: its run, value and within-session variance (from the interval)."""

    run_id: int
    value: float
    variance: float
    n: int


@dataclass(frozen=True)
class PooledBaseline:
    """One metric of a baseline build pooled over its sessions."""

    name: str
    build: str
    fit: RandomEffectsFit
    sessions: tuple[SessionValue, ...]
    unit: str
    direction: Direction
    confidence: float = 0.95

    @property
    def df(self) -> float:
        """Degrees of freedom of the test: k - 1 with an estimated between-session variance, else inf (normal)."""
        return math.inf if self.fit.tau2 is None else float(self.fit.k - 1)

    @property
    def variance_model(self) -> str:
        """Which variance the test accounts for, in words (the summary JSON's `variance_model`)."""
        k = self.fit.k
        if self.fit.tau2 is None:
            return ONE_SESSION if k == 1 else f"between-session variance unknown ({k} sessions): shot noise only"
        return f"{self.fit.method} over {k} sessions, HKSJ t with {k - 1} df"

    def estimate(self) -> Estimate:
        """The pooled mean as an Estimate (interval from its variance, t quantile with k - 1 df; n summed)."""
        q = _quantile(0.5 + self.confidence / 2.0, self.df)
        half = q * math.sqrt(self.fit.var_mu)
        n = sum(s.n for s in self.sessions)
        mu = self.fit.mu
        return Estimate(mu, mu - half, mu + half, n, self.unit, self.direction, self.confidence)

    def to_dict(self) -> dict:
        """JSON-ready: pooled mean, tau^2 and its SE, sessions, method and variance model."""
        return {
            "value": self.fit.mu,
            "se": math.sqrt(self.fit.var_mu),
            "tau2": self.fit.tau2,
            "tau2_se": self.fit.tau2_se,
            "sessions": self.fit.k,
            "runs": [s.run_id for s in self.sessions],
            "method": self.fit.method,
            "df": None if math.isinf(self.df) else self.df,
            "variance_model": self.variance_model,
        }


@dataclass(frozen=True)
class CandidateTest:
    """A candidate tested against a pooled baseline: the gate's quantities, with a t reference of `df`."""

    name: str
    delta: Estimate  # candidate - pooled mean, interval at the baseline's confidence
    worse: float  # how much worse the candidate measured (negative when better), metric units
    se: float  # sqrt of the predictive variance of the difference
    tol: float  # the tolerance margin at the pooled mean
    df: float
    p_regression: float  # H0: worse <= tol (one-sided), unadjusted
    p_improved: float  # H0: worse >= 0 (one-sided), unadjusted
    variance_model: str

    def upper(self, alpha: float) -> float:
        """The one-sided (1 - alpha) upper bound of `worse` (PASS when it is within the tolerance)."""
        return self.worse + _quantile(1.0 - alpha, self.df) * self.se


def variance_model_of(pooled: Mapping[str, PooledBaseline], name: str) -> str:
    """The variance model of metric `name`: its pooled baseline's, else one session's (a baseline measured now)."""
    found = pooled.get(name)
    return found.variance_model if found is not None else ONE_SESSION


def _quantile(p: float, df: float) -> float:
    """Return the p quantile of Student's t with `df` degrees of freedom (normal when df is inf)."""
    return float(stats.norm.ppf(p) if math.isinf(df) else stats.t.ppf(p, df))


def _session_key(run: RunRow) -> tuple | None:
    """Return what makes a simulated run's draws (None for a device whose sessions are physically distinct)."""
    if run.provenance.get("kind") not in SIMULATED_KINDS:
        return None
    drift = run.provenance.get("drift") or {}
    return run.seed, int(drift.get("session", 0)), run.budget, run.profile_hash


def baseline_sessions(store: Store, profile: str, build: str) -> list[RunRow]:
    """Return the completed runs of `build` that count as sessions, oldest first (simulated repeats: the newest).

    Interleaved runs (ABBA blocks within one session) are left out: each is a part of one session, not a session.
    """
    # The runs of an interleaved session are parts of one session (and its verdict run sums them): not sessions.
    done = [r for r in store.runs(profile, build) if r.status.completed and "interleave" not in r.provenance]
    newest: dict[tuple, RunRow] = {}
    kept = []
    for run in done:
        key = _session_key(run)
        if key is None:
            kept.append(run)
        else:
            newest[key] = run
    kept += newest.values()
    return sorted(kept, key=lambda r: (r.started_at, r.id))


def candidate_sessions(
    store: Store, profile: str, build: str, current: RunRow, metrics: Iterable[str]
) -> dict[str, list[Estimate]]:
    """Per metric, the earlier completed sessions of the build under test, to pool with the `current` run.

    A simulated session that repeats the current run's draws (same seed, session index, budget and profile) is not
    independent evidence and is left out, as are sessions without a usable estimate.
    """
    key = _session_key(current)
    runs = [r for r in baseline_sessions(store, profile, build) if r.id != current.id]
    runs = [r for r in runs if key is None or _session_key(r) != key]
    return {name: [est for _, est in rows] for name, rows in session_estimates(store, runs, metrics).items()}


def session_estimates(
    store: Store, runs: Iterable[RunRow], metrics: Iterable[str] | None = None
) -> dict[str, list[tuple[RunRow, Estimate]]]:
    """Per metric (all, or those in `metrics`), (run, estimate) for each run with a usable estimate of it, in order."""
    wanted = None if metrics is None else set(metrics)
    found: dict[str, list[tuple[RunRow, Estimate]]] = {}
    for run in runs:
        for name, (est, _, _) in store.metrics(run.id).items():
            if (wanted is None or name in wanted) and usable(est):
                found.setdefault(name, []).append((run, est))
    return found


def usable(e: Estimate) -> bool:
    """True for a stored estimate with a finite value and a positive, finite standard error."""
    return e.n > 0 and all(math.isfinite(x) for x in (e.value, e.ci_low, e.ci_high)) and e.standard_error > 0


def pooled_baseline(
    store: Store,
    profile: str,
    build: str,
    metrics: Iterable[str] | None = None,
    *,
    method: str = "REML",
    min_sessions: int = 2,
) -> dict[str, PooledBaseline]:
    """Return per metric the baseline `build` pooled over all its stored sessions (metrics never measured: absent)."""
    found = session_estimates(store, baseline_sessions(store, profile, build), metrics)
    return {
        name: pool_sessions(name, build, [e for _, e in rows], [r.id for r, _ in rows], method, min_sessions)
        for name, rows in sorted(found.items())
    }


def pool_sessions(
    name: str,
    build: str,
    estimates: Sequence[Estimate],
    run_ids: Sequence[int] | None = None,
    method: str = "REML",
    min_sessions: int = 2,
) -> PooledBaseline:
    """Return one metric of `build` pooled over its session estimates, oldest first (unit, direction: the last)."""
    if not estimates:
        raise ValueError(f"metric {name}: no session of build {build} to pool")
    ids = range(len(estimates)) if run_ids is None else run_ids
    values = tuple(SessionValue(i, e.value, e.standard_error**2, e.n) for i, e in zip(ids, estimates, strict=True))
    fit = pool([s.value for s in values], [s.variance for s in values], method, min_sessions=min_sessions)
    last = estimates[-1]
    return PooledBaseline(name, build, fit, values, last.unit, last.direction, last.confidence)


def _pooled_tests(
    candidate: Estimate, baseline: PooledBaseline, earlier: Sequence[Estimate], shift: float
) -> tuple[PooledComparison, PooledComparison]:
    """The tests of "candidate = baseline + shift" and of "candidate = baseline": one session, or both pooled."""
    if not earlier:
        plain = compare_to_pooled(baseline.fit, candidate.value, candidate.standard_error**2)
    else:
        y_a = [s.value for s in baseline.sessions]
        v_a = [s.variance for s in baseline.sessions]
        y_b = [e.value for e in (*earlier, candidate)]
        plain = compare_groups(y_a, v_a, y_b, [e.standard_error**2 for e in (*earlier, candidate)])
    # One fit: the shift moves the statistic only, not the difference or its variance.
    return with_shift(plain, shift), plain


def compare_candidate(
    candidate: Estimate, baseline: PooledBaseline, tolerance: Tolerance, earlier: Sequence[Estimate] = ()
) -> CandidateTest:
    """Return the one-sided tests of a candidate against the pooled baseline, shifted by the tolerance.

    With `earlier` sessions of the candidate build, the candidate is pooled over them and this session, and both
    builds share one between-session variance (`harness.stats.meta_regression`); else this one session is tested.
    """
    if any(e.direction != baseline.direction or e.unit != baseline.unit for e in (*earlier, candidate)):
        raise ValueError(
            f"metric {baseline.name}: candidate ({candidate.direction}, {candidate.unit!r}) and baseline "
            f"({baseline.direction}, {baseline.unit!r}) differ in direction or unit; re-baseline"
        )
    higher = candidate.direction == Direction.HIGHER
    tol = tolerance.margin(baseline.fit.mu)
    # Regression: H0 "worse by at most tol"; in the value's own terms a shift of the pooled mean by -/+ tol.
    reg, imp = _pooled_tests(candidate, baseline, earlier, -tol if higher else tol)
    p_reg, p_imp = (reg.p_less, imp.p_greater) if higher else (reg.p_greater, imp.p_less)
    d = reg.difference
    half = _quantile(0.5 + baseline.confidence / 2.0, reg.df) * reg.se
    n = min(candidate.n + sum(e.n for e in earlier), sum(s.n for s in baseline.sessions))
    delta = Estimate(d, d - half, d + half, n, candidate.unit, candidate.direction, baseline.confidence)
    worse = -d if higher else d
    model = reg.variance_model if earlier else baseline.variance_model
    return CandidateTest(baseline.name, delta, worse, reg.se, tol, reg.df, p_reg, p_imp, model)


def verdict_of(test: CandidateTest, p_regression_adjusted: float, p_improved_adjusted: float, alpha: float) -> Verdict:
    """Return the gate's verdict rule with this test's reference distribution (t with `df`, or normal)."""
    if p_regression_adjusted <= alpha:
        return Verdict.REGRESSION
    if p_improved_adjusted <= alpha:
        return Verdict.IMPROVED
    return Verdict.PASS if test.upper(alpha) <= test.tol else Verdict.INCONCLUSIVE


def compare_family(
    candidates: Mapping[str, Estimate],
    pooled: Mapping[str, PooledBaseline],
    tolerances: Mapping[str, Tolerance],
    alpha: float = 0.05,
    earlier: Mapping[str, Sequence[Estimate]] | None = None,
) -> dict[str, Comparison]:
    """Return the gate's Comparison per candidate metric against pooled baselines, Holm-adjusted over the family.

    `earlier`: per metric, the candidate build's earlier sessions, pooled with this one (`compare_candidate`).
    A metric without a pooled baseline is NO_BASELINE; one whose direction or unit changed is an ERROR.
    """
    earlier = earlier or {}
    out: dict[str, Comparison] = {}
    tests: dict[str, CandidateTest] = {}
    for name, cand in candidates.items():
        base = pooled.get(name)
        if base is None:
            out[name] = Comparison(name, cand, None, None, 0.0, None, None, Verdict.NO_BASELINE, alpha=alpha)
            continue
        try:
            tests[name] = compare_candidate(cand, base, tolerances.get(name, Tolerance()), earlier.get(name, ()))
        except ValueError as exc:
            out[name] = error_comparison(name, cand, base.estimate(), str(exc), alpha)
    names = list(tests)
    p_reg = holm([tests[n].p_regression for n in names])
    p_imp = holm([tests[n].p_improved for n in names])
    for name, pr, pi in zip(names, p_reg, p_imp, strict=True):
        t = tests[name]
        base = pooled[name].estimate()
        verdict = verdict_of(t, pr, pi, alpha)
        out[name] = replace(
            Comparison(
                name, candidates[name], base, t.delta, t.tol, t.p_regression, pr, verdict, None, t.p_improved, pi, alpha
            ),
            variance_model=t.variance_model,
        )
    return {name: out[name] for name in candidates}


def gate_against_sessions(
    store: Store,
    profile: str,
    build: str,
    run_id: int,
    candidates: Mapping[str, object],
    pooled: Mapping[str, PooledBaseline],
    tolerances: Mapping[str, Tolerance],
    alpha: float = 0.05,
) -> dict[str, Comparison]:
    """Gate run `run_id` against a pooled stored baseline: one look, the build's earlier sessions pooled in.

    A candidate metric without an Estimate (a failure, whose str is its reason) is an ERROR.
    """
    found = {m: e for m, e in candidates.items() if isinstance(e, Estimate)}
    # A candidate in one session carries its session's drift: the build's earlier sessions pool with this one.
    earlier = candidate_sessions(store, profile, build, store.run(run_id), found)
    out = compare_family(found, pooled, tolerances, alpha, earlier)
    for m, e in candidates.items():
        if not isinstance(e, Estimate):
            out[m] = error_comparison(m, None, pooled[m].estimate() if m in pooled else None, str(e), alpha)
    return {m: replace(c, look=1, looks=1, method="pooled sessions (random effects)") for m, c in out.items()}


@dataclass(frozen=True)
class ReferenceComparison:
    """A release compared with the pinned reference build, pooled over the reference's sessions."""

    reference: str
    release: str
    comparisons: dict[str, Comparison]
    pooled: dict[str, PooledBaseline]


def compare_with_reference(
    store: Store, profile: str, release: str, tolerances: Mapping[str, Tolerance], alpha: float = 0.05
) -> ReferenceComparison:
    """Return the release compared with the pinned reference build, each pooled over its stored sessions.

    Raises LookupError when no reference is pinned or the release has no completed run.
    """
    reference = store.reference(profile)
    if reference is None:
        raise LookupError(f"{profile} has no reference build; pin one with `qharness baseline set --reference`")
    if not store.has_build(profile, release):
        raise LookupError(f"build {release!r} has no completed run of {profile}")
    candidates = store.latest_metrics(profile, release)
    sessions = baseline_sessions(store, profile, release)
    earlier: dict[str, list[Estimate]] = {}
    if sessions:
        # The release pooled over its sessions: the newest one's metrics, with the others as earlier sessions.
        own = {n: e for n, (e, _, _) in store.metrics(sessions[-1].id).items() if usable(e)}
        candidates = {**candidates, **own}
        earlier = candidate_sessions(store, profile, release, sessions[-1], own)
    pooled = pooled_baseline(store, profile, reference, candidates)
    found = compare_family(candidates, pooled, tolerances, alpha, earlier)
    return ReferenceComparison(reference, release, found, pooled)


@dataclass(frozen=True)
class BuildHistory:
    """One metric across the builds of a profile (oldest first, one value per build) and its change points."""

    metric: str
    builds: tuple[str, ...]
    values: tuple[float, ...]  # per build: the mean over its completed sessions
    changes: ChangePoints

    def change_builds(self) -> tuple[str, ...]:
        """The builds at which a new segment starts."""
        return tuple(self.builds[i] for i in self.changes.indices)


def build_history(
    builds: Sequence[str], values: Sequence[float], metric: str = "", false_rate: float = 0.05
) -> BuildHistory:
    """Return the history of one metric from per-build values in build order (non-finite values left out)."""
    kept = [(b, float(v)) for b, v in zip(builds, values, strict=True) if math.isfinite(v)]
    names, ys = tuple(b for b, _ in kept), tuple(v for _, v in kept)
    return BuildHistory(metric, names, ys, detect(ys, false_rate=false_rate))


def metric_histories(
    store: Store, profile: str, metrics: Iterable[str] | None = None, false_rate: float = 0.05
) -> dict[str, BuildHistory]:
    """Return per metric its history across builds (completed runs, builds in order of their first run)."""
    per: dict[str, dict[str, list[float]]] = {}
    for r in store.history(profile):
        if RunStatus(r["status"]).completed and int(r["n"]) > 0 and math.isfinite(r["value"]):
            per.setdefault(r["name"], {}).setdefault(r["build"], []).append(r["value"])
    wanted = set(per) if metrics is None else set(metrics) & set(per)
    return {
        m: build_history(list(per[m]), [sum(v) / len(v) for v in per[m].values()], m, false_rate)
        for m in sorted(wanted)
    }


def change_point_count(store: Store, profile: str, metrics: Iterable[str] | None = None) -> int:
    """Return the number of change points over the histories of a profile's metrics (the summary's count)."""
    return sum(h.changes.count for h in metric_histories(store, profile, metrics).values())
