"""Stored-baseline mode under drift: false REGRESSION of an unchanged build and power, pooled over K sessions.

What is simulated (benchmarks.drift_sessions): aer-reference with a drift block of between-session visibility SD
0.005 (additive) and pair-rate SD 3% (relative). Trial t (seed = seed0 + t) measures K sessions (5 by default)
of the baseline build 2.3.0 (AerDevice sessions 0..K-1: each its own drift offsets and counts) and up to 5
sessions of the candidate 2.4.0 (identical physics; another build, so its own offsets and counts), each at the
standard budget through the real `bell` and `rates` protocols and estimators. The family gated is {bell_fidelity,
pair_rate_hz} with the profile's tolerances. The power candidates are 2.4.0 with the source's visibility 0.02
lower (0.97 -> 0.95) or its pair rate 10% lower (2.0 -> 1.8 MHz), under the same drift, in the same trials.

The stored-baseline test (harness.baselines.compare_family): each metric of the baseline pooled over the K sessions
(REML tau^2). With M = 1 candidate session, the candidate is tested one-sided against the pooled mean shifted by
the tolerance, t with K - 1 df and the modified HKSJ factor; with M > 1 sessions (sessions 0..M-1 of the
candidate, as `qharness baseline measure --build 2.4.0 --sessions M` stores them, then the run), both builds are
pooled under one between-session variance (harness.stats.meta_regression), t with K + M - 2 df. Holm over the
two metrics; REGRESSION when an adjusted p <= alpha. For contrast, today's gate (harness.gate.evaluate, shot noise
only) against the newest single baseline session of the same trials.

Why more candidate sessions: one candidate session carries its own session offset, so even with the baseline known
exactly a 10% pair-rate drop is 3.3 session SDs, and at alpha = 0.05 with Holm over two metrics a one-session
test cannot reach power 0.9 however many baseline sessions are stored.
"""

from __future__ import annotations

from benchmarks.common import Section, row, target_row
from benchmarks.drift_sessions import METRICS, drifting, measure_session, reference_profile

ALPHA = 0.05
BASELINE, CANDIDATE = "2.3.0", "2.4.0"
K = 5


def _today(cands: dict, newest: dict, tolerances: dict) -> bool:
    """True when today's gate (newest single session, shot noise only) finds any REGRESSION."""
    from harness.gate import Verdict, evaluate

    return any(c.verdict is Verdict.REGRESSION for c in evaluate(cands, newest, tolerances, ALPHA).values())


def _rate_row(label: str, hits: int, n: int, *, target: bool) -> dict:
    """A rate row with its Wilson 95% interval; against alpha when `target`."""
    from harness.analysis.intervals import wilson_interval

    low, high = wilson_interval(hits, n, 0.95)
    figure = f"{label}, {n} seeded sessions (Wilson 95%: [{low:.4f}, {high:.4f}])"
    if target:
        return target_row(figure, hits / n, ALPHA, hits / n / ALPHA, "share (peer = alpha)", at_most=1.0)
    return row(figure, hits / n, float("nan"), float("nan"), "share of sessions")


def run(trials: int = 200, seed: int = 1000, sessions: int = K, candidate_sessions: tuple = (1, 3, 5)) -> Section:
    """Simulate `trials` seeded stored-baseline gates over `sessions` baseline sessions; return rate and power rows."""
    from harness.baselines import compare_family, pool_sessions
    from harness.gate import Verdict

    base_p = reference_profile(BASELINE)
    cand_p = reference_profile(CANDIDATE)
    scenarios = {
        "unchanged": cand_p,
        "visibility -0.02": drifting(cand_p, visibility=cand_p.source.visibility - 0.02),
        "pair rate -10%": drifting(cand_p, pair_rate_hz=cand_p.source.pair_rate_hz * 0.9),
    }
    tolerances = cand_p.gate_tolerances()
    hits = {(name, m): 0 for name in scenarios for m in candidate_sessions}
    per_metric = {key: dict.fromkeys(METRICS, 0) for key in hits}
    today = 0
    for t in range(trials):
        s = seed + t
        stored = [measure_session(base_p, BASELINE, seed=s, session=j) for j in range(sessions)]
        pooled = {m: pool_sessions(m, BASELINE, [x[m] for x in stored]) for m in METRICS}
        for name, prof in scenarios.items():
            cands = [measure_session(prof, CANDIDATE, seed=s, session=j) for j in range(max(candidate_sessions))]
            for m in candidate_sessions:
                earlier = {n: [c[n] for c in cands[: m - 1]] for n in METRICS}
                found = compare_family(cands[m - 1], pooled, tolerances, ALPHA, earlier)
                regressed = [n for n, c in found.items() if c.verdict is Verdict.REGRESSION]
                hits[name, m] += bool(regressed)
                for n in regressed:
                    per_metric[name, m][n] += 1
            if name == "unchanged":
                today += _today(cands[0], stored[-1], tolerances)
    sec = Section("drift_baseline", f"Stored baseline under drift: {sessions} pooled sessions vs the newest single one")
    for m in candidate_sessions:
        label = f"{sessions} pooled baseline sessions, candidate in {m} session{'s' * (m > 1)}"
        sec.rows.append(
            _rate_row(f"false REGRESSION, unchanged build, {label}", hits["unchanged", m], trials, target=True)
        )
        for name in ("visibility -0.02", "pair rate -10%"):
            rate = hits[name, m] / trials
            figure = f"power: {name}, {label}, {trials} trials"
            sec.rows.append(target_row(figure, rate, 0.9, rate / 0.9, "share", at_least=1.0))
    sec.rows.append(
        _rate_row("false REGRESSION, unchanged build, today's gate vs newest session", today, trials, target=False)
    )
    counts = "; ".join(
        f"{name} (M={m}): " + ", ".join(f"{n} {c}" for n, c in per.items()) for (name, m), per in per_metric.items()
    )
    sec.notes = __doc__.split("\n\n", 1)[1] + "\n\nREGRESSIONs per metric: " + counts
    return sec
