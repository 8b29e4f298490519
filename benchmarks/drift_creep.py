"""Creep: releases each a little worse, caught by a trend from the pinned reference and by the reference itself.

What is simulated (benchmarks.drift_sessions): aer-reference with between-session visibility SD 0.005 and pair-rate
SD 3%. History h (seed = seed0 + h): the reference build 2.3.0 measured in 5 sessions (pooled, as `qharness baseline
measure --sessions 5` stores them), then 8 releases, each measured in M sessions (their own builds, so their own
drift offsets and counts), at the standard budget through the real `bell` and `rates` protocols and estimators.
Creep: release r has the source's visibility 0.003 r lower than the reference (0.97 -> 0.946 at r = 8), each step
under the bell_fidelity tolerance; unchanged: every release at 0.97. Both histories share the reference sessions
and seeds; M = 1 and M = 5 use the same draws (the first M sessions of each release).

Flags after each release r, for the family {bell_fidelity, pair_rate_hz} with the profile's tolerances, each
at alpha = 0.05 with Holm over the family, as a release's gate is:
- trend, the creep detector (harness.creep.trend_family, what `qharness baseline check` prints as `creep:`): the
  meta-regression of every session of the reference (position 0) and of releases 1..r on the release position;
  the fitted change to release r, worse than the tolerance;
- reference (harness.baselines.compare_family): release r pooled over its M sessions against the pooled reference
  (a REGRESSION of that release, at 5% per release, so its false rate adds up over 8 releases);
- change point (harness.stats.changepoint.detect, PELT, penalty calibrated to 5% per history): on the history of
  bell_fidelity's per-build means; shown, not part of the flag.
"By the 5th" counts a flag at any release 1..5; the unchanged histories count a flag at any of the 8 releases.
"""

from __future__ import annotations

from benchmarks.common import Section, row, target_row
from benchmarks.drift_sessions import METRICS, drifting, measure_session, reference_profile

REFERENCE = "2.3.0"
RELEASES = 8
STEP = 0.003
BY = 5
K = 5
ALPHA = 0.05


def _flags(reference: list[dict], releases: list[list[dict]], m: int, tolerances: dict) -> tuple[list, list, list]:
    """Per release: flagged by the trend, by the reference comparison, by a change point (releases in m sessions)."""
    from harness.baselines import build_history, compare_family, pool_sessions
    from harness.creep import trend_family
    from harness.gate import Verdict

    pooled = {n: pool_sessions(n, REFERENCE, [x[n] for x in reference]) for n in METRICS}
    sessions = {n: [(0, x[n]) for x in reference] for n in METRICS}
    trend, ref, cp = [], [], []
    means = [pooled["bell_fidelity"].fit.mu]
    for r, runs in enumerate(releases, 1):
        for n in METRICS:
            sessions[n] += [(r, x[n]) for x in runs[:m]]
        trend.append(any(t.flagged for t in trend_family(sessions, r, tolerances, ALPHA).values()))
        earlier = {n: [x[n] for x in runs[: m - 1]] for n in METRICS}
        found = compare_family(runs[m - 1], pooled, tolerances, ALPHA, earlier)
        ref.append(any(c.verdict is Verdict.REGRESSION for c in found.values()))
        means.append(sum(x["bell_fidelity"].value for x in runs[:m]) / m)
        builds = [REFERENCE, *(f"3.{i}.0" for i in range(1, r + 1))]
        cp.append(build_history(builds, means, false_rate=ALPHA).changes.count > 0)
    return trend, ref, cp


def _rate(label: str, hits: int, n: int, target: tuple[str, float] | None) -> dict:
    """A rate row with its Wilson 95% interval, against a target share when given ('most' or 'least', share)."""
    from harness.analysis.intervals import wilson_interval

    low, high = wilson_interval(hits, n, 0.95)
    figure = f"{label}, {n} seeded histories (Wilson 95%: [{low:.3f}, {high:.3f}])"
    rate = hits / n
    if target is None:
        return row(figure, rate, float("nan"), float("nan"), "share of histories")
    kind, share = target
    bound = {"at_most": 1.0} if kind == "most" else {"at_least": 1.0}
    return target_row(figure, rate, share, rate / share, f"share (peer = {share:g})", **bound)


def run(histories: int = 100, seed: int = 5000, sessions: tuple = (1, 5)) -> Section:
    """Simulate `histories` seeded creeping and unchanged release histories; return the detection rows."""
    ref_p = reference_profile(REFERENCE)
    tolerances = ref_p.gate_tolerances()
    v0 = ref_p.source.visibility
    counts: dict[tuple, int] = {}
    for h in range(histories):
        s = seed + h
        reference = [measure_session(ref_p, REFERENCE, seed=s, session=j) for j in range(K)]
        creep, null = [], []
        for r in range(1, RELEASES + 1):
            build, prof = f"3.{r}.0", drifting(ref_p, visibility=v0 - STEP * r)
            creep.append([measure_session(prof, build, seed=s, session=j) for j in range(max(sessions))])
            null.append([measure_session(ref_p, build, seed=s, session=j) for j in range(max(sessions))])
        for m in sessions:
            for kind, releases, upto in (("creep", creep, BY), ("null", null, RELEASES)):
                trend, ref, cp = _flags(reference, releases, m, tolerances)
                for name, flags in (("trend", trend), ("ref", ref), ("cp", cp)):
                    counts[kind, m, name] = counts.get((kind, m, name), 0) + any(flags[:upto])
                either = any(trend[:upto]) or any(ref[:upto])
                counts[kind, m, "either"] = counts.get((kind, m, "either"), 0) + either
    sec = Section("drift_creep", f"Creep: {RELEASES} releases each {STEP} lower in visibility, under drift")
    n = histories
    for m in sessions:
        each = f"releases in {m} session{'s' * (m > 1)}"
        sec.rows += [
            _rate(f"creep flagged by release {BY}, {each}: trend", counts["creep", m, "trend"], n, ("least", 0.9)),
            _rate(
                f"unchanged flagged at any of {RELEASES} releases, {each}: trend",
                counts["null", m, "trend"],
                n,
                ("most", 0.05),
            ),
        ]
        for name, label in (("ref", "reference comparison"), ("either", "trend or reference"), ("cp", "change point")):
            sec.rows += [
                _rate(f"creep flagged by release {BY}, {each}: {label}", counts["creep", m, name], n, None),
                _rate(f"unchanged flagged at any release, {each}: {label}", counts["null", m, name], n, None),
            ]
    sec.notes = __doc__.split("\n\n", 1)[1]
    return sec
