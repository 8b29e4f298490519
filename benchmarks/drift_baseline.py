"""Stored-baseline mode under drift: false REGRESSION of an unchanged build and power, pooled over K sessions.

What is simulated (benchmarks.drift_sessions): aer-reference with a drift block of between-session visibility SD
0.005 (additive) and pair-rate SD 3% (relative). Trial t (seed = seed0 + t) measures K sessions (5 by default)
of the baseline build 2.3.0 (AerDevice sessions 0..K-1: each its own drift offsets and counts) and one session
of the candidate 2.4.0 (identical physics; another build, so its own offsets and counts), each at the standard
budget through the real `bell` and `rates` protocols and estimators. The family gated is {bell_fidelity,
pair_rate_hz} with the profile's tolerances (0.002 absolute, 1% relative). The power candidates are 2.4.0 with
the source's visibility 0.02 lower (0.97 -> 0.95) or its pair rate 10% lower (2.0 -> 1.8 MHz), under the same
drift, in the same trials.

The stored-baseline test (harness.baselines): each metric pooled over the K sessions (REML tau^2), the candidate
tested one-sided against the pooled mean shifted by the tolerance, t with K - 1 df and the modified HKSJ factor; the
two p-values Holm-adjusted; REGRESSION when an adjusted p <= alpha. For contrast, today's gate
(harness.gate.evaluate, shot noise only) against the newest single baseline session of the same trials.
"""

from __future__ import annotations

from benchmarks.common import Section, row, target_row
from benchmarks.drift_sessions import METRICS, drifting, measure_session, reference_profile

ALPHA = 0.05
BASELINE, CANDIDATE = "2.3.0", "2.4.0"
K = 5


def _regressed(cands: dict, pooled: dict, tolerances: dict) -> set[str]:
    """The metrics the pooled test calls REGRESSION (Holm over the family)."""
    from harness.baselines import compare_candidate
    from harness.gate import holm

    names = sorted(cands)
    tests = [compare_candidate(cands[n], pooled[n], tolerances[n]) for n in names]
    adjusted = holm([t.p_regression for t in tests])
    return {n for n, p in zip(names, adjusted, strict=True) if p <= ALPHA}


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


def run(trials: int = 200, seed: int = 1000, sessions: int = K) -> Section:
    """Simulate `trials` seeded stored-baseline gates over `sessions` baseline sessions; return rate and power rows."""
    from harness.baselines import pool_sessions

    base_p = reference_profile(BASELINE)
    cand_p = reference_profile(CANDIDATE)
    scenarios = {
        "unchanged": cand_p,
        "visibility -0.02": drifting(cand_p, visibility=cand_p.source.visibility - 0.02),
        "pair rate -10%": drifting(cand_p, pair_rate_hz=cand_p.source.pair_rate_hz * 0.9),
    }
    tolerances = cand_p.gate_tolerances()
    hits = dict.fromkeys(scenarios, 0)
    per_metric = {name: dict.fromkeys(METRICS, 0) for name in scenarios}
    today = 0
    for t in range(trials):
        s = seed + t
        stored = [measure_session(base_p, BASELINE, seed=s, session=j) for j in range(sessions)]
        pooled = {m: pool_sessions(m, BASELINE, [x[m] for x in stored]) for m in METRICS}
        for name, prof in scenarios.items():
            cands = measure_session(prof, CANDIDATE, seed=s, session=0)
            found = _regressed(cands, pooled, tolerances)
            hits[name] += bool(found)
            for m in found:
                per_metric[name][m] += 1
            if name == "unchanged":
                today += _today(cands, stored[-1], tolerances)
    sec = Section("drift_baseline", f"Stored baseline under drift: {sessions} pooled sessions vs the newest single one")
    sec.rows.append(
        _rate_row(
            f"false REGRESSION, unchanged build, {sessions} pooled sessions (REML, HKSJ t)",
            hits["unchanged"],
            trials,
            target=True,
        )
    )
    sec.rows.append(
        _rate_row("false REGRESSION, unchanged build, today's gate vs newest session", today, trials, target=False)
    )
    for name in ("visibility -0.02", "pair rate -10%"):
        rate = hits[name] / trials
        sec.rows.append(
            target_row(
                f"power: {name}, {sessions} pooled sessions, {trials} candidate sessions",
                rate,
                0.9,
                rate / 0.9,
                "share",
                at_least=1.0,
            )
        )
    sec.notes = (
        __doc__.split("\n\n", 1)[1]
        + "\n\nREGRESSIONs per metric: "
        + "; ".join(
            f"{name}: " + ", ".join(f"{m} {c}" for m, c in counts.items()) for name, counts in per_metric.items()
        )
    )
    return sec
