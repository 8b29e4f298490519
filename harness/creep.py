"""Creep: a slow decline across releases, each step under the tolerance, tested as a trend from the reference.

A release compared only with the release before it never fails when each step is small. Here every stored session
of the pinned reference build (position 0) and of each release after it, in the order the builds were first
measured (positions 1, 2, ...), goes into one meta-regression on the release position
(`harness.stats.meta_regression.trend_change`: REML between-session variance shared by all builds, HKSJ t). The
fitted change from the reference to the release at position r, r x slope, is tested against the tolerance: a
REGRESSION when it is worse than the tolerance allows (one-sided at alpha, Holm over the family). A trend uses
every release measured so far, so it sees a steady decline sooner than the release-against-reference comparison,
and releases measured in several sessions (`qharness baseline measure --sessions K`) sharpen it further.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from harness.baselines import baseline_sessions, session_estimates
from harness.gate import holm
from harness.metrics import Direction, Estimate, Tolerance
from harness.stats.meta_regression import trend_change
from harness.store import Store


@dataclass(frozen=True)
class CreepTest:
    """One metric's trend from the reference to a release: fitted change, its test and verdict."""

    name: str
    change: float  # fitted change from the reference to the release, metric units (negative: lower)
    se: float
    tol: float
    df: float
    p: float  # H0: worse by at most the tolerance, unadjusted
    p_adjusted: float
    flagged: bool
    sessions: int
    releases: int
    variance_model: str


def release_order(store: Store, profile: str, reference: str, release: str) -> list[str]:
    """The reference, then the builds first measured after it, up to `release`, in the order of their first run."""
    seen: list[str] = []
    for run in store.runs(profile):
        if run.status.completed and run.build not in seen:
            seen.append(run.build)
    if reference not in seen or release not in seen:
        raise LookupError(f"{profile}: no completed run of {reference if reference not in seen else release!r}")
    start, end = seen.index(reference), seen.index(release)
    if end <= start:
        raise LookupError(f"{profile}: {release!r} was first measured before the reference {reference!r}")
    return seen[start : end + 1]


def _sessions(store: Store, profile: str, builds: list[str], wanted: set[str]) -> dict[str, list[tuple[int, Estimate]]]:
    """Per metric, (position, estimate) for every usable stored session of each build."""
    position = {b: i for i, b in enumerate(builds)}
    runs = [run for build in builds for run in baseline_sessions(store, profile, build)]
    found = session_estimates(store, runs, wanted)
    return {name: [(position[run.build], est) for run, est in rows] for name, rows in found.items()}


def trend_family(
    sessions: Mapping[str, list[tuple[int, Estimate]]],
    at: int,
    tolerances: Mapping[str, Tolerance],
    alpha: float = 0.05,
) -> dict[str, CreepTest]:
    """Per metric, the trend test of its (position, estimate) sessions to position `at`; Holm over the metrics.

    Position 0 is the reference; a metric without a tolerance, without reference sessions, with fewer than 3
    sessions or with one position only is left out.
    """
    raw = {}
    for name, rows in sorted(sessions.items()):
        positions = [p for p, _ in rows]
        if name not in tolerances or len(rows) < 3 or len(set(positions)) < 2 or 0 not in positions:
            continue
        higher = rows[-1][1].direction == Direction.HIGHER
        ref_mean = sum(e.value for p, e in rows if p == 0) / positions.count(0)
        tol = tolerances[name].margin(ref_mean)
        values = [e.value for _, e in rows]
        variances = [e.standard_error**2 for _, e in rows]
        res = trend_change(positions, values, variances, at, shift=-tol if higher else tol)
        raw[name] = (res, tol, res.p_less if higher else res.p_greater, len(rows))
    adjusted = holm([r[2] for r in raw.values()])
    return {
        name: CreepTest(name, res.difference, res.se, tol, res.df, p, adj, adj <= alpha, k, at, res.variance_model)
        for (name, (res, tol, p, k)), adj in zip(raw.items(), adjusted, strict=True)
    }


def creep_family(
    store: Store,
    profile: str,
    reference: str,
    release: str,
    tolerances: Mapping[str, Tolerance],
    metrics: Iterable[str],
    alpha: float = 0.05,
) -> dict[str, CreepTest]:
    """Per metric with a tolerance, the trend test from `reference` to `release` over their stored sessions."""
    builds = release_order(store, profile, reference, release)
    found = _sessions(store, profile, builds, set(metrics))
    return trend_family(found, len(builds) - 1, tolerances, alpha)
