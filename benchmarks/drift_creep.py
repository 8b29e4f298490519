"""Creep: releases each a little worse, caught by the pinned reference and by change points across builds.

What is simulated (benchmarks.drift_sessions): aer-reference with between-session visibility SD 0.005 and pair-rate
SD 3%. History h (seed = seed0 + h): the reference build 2.3.0 measured in 5 sessions (pooled, as `qharness baseline
measure --sessions 5` stores them), then 8 releases, one session each (their own builds, so their own drift offsets
and counts), at the standard budget through the real `bell` and `rates` protocols and estimators. Creep: release r
has the source's visibility 0.003 r lower than the reference (0.97 -> 0.946 at r = 8); unchanged: every release at
0.97. Both histories share the reference sessions and seeds.

Flags, for the family {bell_fidelity, pair_rate_hz} with the profile's tolerances:
- reference: release r compared with the pooled reference (harness.baselines.compare_family: REML tau^2 from the
  5 sessions, t with 4 df, Holm over the family) is a REGRESSION;
- change point: the history of bell_fidelity across builds (the reference's pooled mean, then releases 1..r) has
  a change point (harness.stats.changepoint.detect: PELT, sigma from the history, penalty calibrated to 5%).
"By the 5th" counts a flag at any release 1..5 (the harness looks after every release); the unchanged histories
are counted once at the 8th release (one look) and at any release 1..8 (every look). The last two rows run every
look of both detectors at 0.05 / 16 (Bonferroni over 8 releases and 2 detectors), which bounds the history-wise
false rate by 5% whatever the dependence between looks.
"""

from __future__ import annotations

from benchmarks.common import Section, row, target_row
from benchmarks.drift_sessions import METRICS, drifting, measure_session, reference_profile

REFERENCE = "2.3.0"
RELEASES = 8
STEP = 0.003
BY = 5
K = 5


def _flags(
    reference: list[dict], releases: list[dict], tolerances: dict, rate: float = 0.05
) -> tuple[list[bool], list[bool]]:
    """Per release: flagged by the reference comparison (alpha `rate`), by a change point (false rate `rate`)."""
    from harness.baselines import build_history, compare_family, pool_sessions
    from harness.gate import Verdict

    pooled = {m: pool_sessions(m, REFERENCE, [x[m] for x in reference]) for m in METRICS}
    ref_flags, cp_flags = [], []
    values = [pooled["bell_fidelity"].fit.mu]
    for r, cands in enumerate(releases, 1):
        found = compare_family(cands, pooled, tolerances, alpha=rate)
        ref_flags.append(any(c.verdict is Verdict.REGRESSION for c in found.values()))
        values.append(cands["bell_fidelity"].value)
        builds = [REFERENCE, *(f"3.{i}.0" for i in range(1, r + 1))]
        cp_flags.append(build_history(builds, values, false_rate=rate).changes.count > 0)
    return ref_flags, cp_flags


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


def run(histories: int = 100, seed: int = 5000) -> Section:
    """Simulate `histories` seeded creeping and unchanged release histories; return the detection rows."""
    ref_p = reference_profile(REFERENCE)
    tolerances = ref_p.gate_tolerances()
    v0 = ref_p.source.visibility
    keys = (
        "creep ref",
        "creep cp",
        "creep any",
        "null ref",
        "null cp",
        "null any",
        "null end",
        "creep split",
        "null split",
    )
    counts = dict.fromkeys(keys, 0)
    split = 0.05 / (2 * RELEASES)  # every look of both detectors at alpha / 16: at most 5% per history in all
    for h in range(histories):
        s = seed + h
        reference = [measure_session(ref_p, REFERENCE, seed=s, session=j) for j in range(K)]
        creep, null = [], []
        for r in range(1, RELEASES + 1):
            build = f"3.{r}.0"
            creep.append(measure_session(drifting(ref_p, visibility=v0 - STEP * r), build, seed=s, session=0))
            null.append(measure_session(ref_p, build, seed=s, session=0))
        c_ref, c_cp = _flags(reference, creep, tolerances)
        n_ref, n_cp = _flags(reference, null, tolerances)
        counts["creep ref"] += any(c_ref[:BY])
        counts["creep cp"] += any(c_cp[:BY])
        counts["creep any"] += any(c_ref[:BY]) or any(c_cp[:BY])
        counts["null ref"] += any(n_ref)
        counts["null cp"] += any(n_cp)
        counts["null any"] += any(n_ref) or any(n_cp)
        counts["null end"] += n_ref[-1] or n_cp[-1]
        counts["creep split"] += any(any(f[:BY]) for f in _flags(reference, creep, tolerances, split))
        counts["null split"] += any(any(f) for f in _flags(reference, null, tolerances, split))
    sec = Section("drift_creep", f"Creep: {RELEASES} releases each {STEP} lower in visibility, under drift")
    n = histories
    sec.rows += [
        _rate(f"creep flagged by release {BY}: reference or change point", counts["creep any"], n, ("least", 0.9)),
        _rate(f"creep flagged by release {BY}: reference comparison", counts["creep ref"], n, None),
        _rate(f"creep flagged by release {BY}: change point (bell_fidelity)", counts["creep cp"], n, None),
        _rate(
            f"unchanged flagged at any of {RELEASES} releases: reference or change point",
            counts["null any"],
            n,
            ("most", 0.05),
        ),
        _rate(f"unchanged flagged at release {RELEASES} (one look): either", counts["null end"], n, ("most", 0.05)),
        _rate("unchanged flagged at any release: reference comparison", counts["null ref"], n, None),
        _rate("unchanged flagged at any release: change point", counts["null cp"], n, None),
        _rate(f"creep flagged by release {BY}, every look at 0.05/16", counts["creep split"], n, ("least", 0.9)),
        _rate(
            f"unchanged flagged at any of {RELEASES} releases, every look at 0.05/16",
            counts["null split"],
            n,
            ("most", 0.05),
        ),
    ]
    sec.notes = __doc__.split("\n\n", 1)[1]
    return sec
