"""What a release report shows, gathered from the results store: release runs, trends, stored analysis products."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from harness.gate import Verdict, overall_verdict
from harness.metrics import Estimate, metric_spec, parse_code
from harness.report.provenance import instrument_rows
from harness.report.versions import order_builds
from harness.store import RunRow, Store
from harness.summary import run_summary

# Runs whose metrics describe a build: finished, whatever the verdict (an errored run still measured something).
REPORTABLE_STATUSES = ("passed", "failed", "error")
COUNTED_VERDICTS = ("REGRESSION", "IMPROVED", "INCONCLUSIVE", "ERROR", "PASS", "NOT_GATED", "NO_BASELINE")
# The metric rows whose stored products hold the logical memories behind them (one row per QEC code).
LOGICAL_SUCCESS = "logical_success_"
NOT_RECORDED = "not recorded in this run"
_T = TypeVar("_T")


class ReportError(ValueError):
    """A report cannot be built as asked (unknown profile or build, empty store)."""


@dataclass(frozen=True)
class TrendPoint:
    """One build's estimate of one metric on a trend axis."""

    build: str
    value: float
    ci_low: float
    ci_high: float
    verdict: str | None
    run_id: int


@dataclass(frozen=True)
class Band:
    """The baseline estimate drawn behind a trend, and the tolerance limit on the worse side."""

    build: str | None
    value: float
    ci_low: float
    ci_high: float
    limit: float | None


@dataclass
class Trend:
    """A metric across the builds of a profile, in build order."""

    profile: str
    metric: str
    unit: str
    direction: str
    builds: list[str]
    points: list[TrendPoint]
    band: Band | None = None
    release_build: str | None = None


@dataclass
class LogicalPoint:
    """Logical error rate of one code family, basis and distance as stored (errors over shots, Wilson interval)."""

    family: str
    basis: str
    distance: int
    shots: int
    errors: int
    rate: float
    ci_low: float
    ci_high: float


@dataclass
class PlobPoint:
    """Measured ebits per channel use at the measured end-to-end transmissivity (heralding efficiency of B)."""

    eta: float
    ebits_per_use: float
    ebits_low: float
    ebits_high: float


@dataclass
class ProfileReport:
    """Everything the report shows for one profile."""

    profile: str
    run: RunRow
    summary: dict
    builds: list[str]
    baseline_build: str | None
    trends: dict[str, Trend]
    rho: np.ndarray | None = None
    rho_method: str = ""
    rho_note: str = NOT_RECORDED  # why there is no density matrix to show
    rho_fidelity: float | None = None
    logical: list[LogicalPoint] = field(default_factory=list)
    logical_note: str = NOT_RECORDED  # why there are no logical points to show
    plob: PlobPoint | None = None
    instruments: list[dict] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        """Return the profile's overall verdict (summary contract)."""
        return str(self.summary["verdict"])

    def counts(self) -> Counter:
        """Return how many metrics of the release run have each verdict."""
        return Counter(m["verdict"] for m in self.summary["metrics"])


def is_candidate(run: RunRow) -> bool:
    """Return True for a run of the build under test (not a baseline measured alongside it)."""
    return run.provenance.get("role") == "candidate"


def release_run(
    runs: list[RunRow], build: str | None = None, statuses: tuple[str, ...] = REPORTABLE_STATUSES
) -> RunRow | None:
    """Return the newest candidate run with one of `statuses` (of `build` when given), else None."""
    pick = [r for r in runs if is_candidate(r) and r.status in statuses]
    if build is not None:
        pick = [r for r in pick if r.build == build]
    return pick[-1] if pick else None


def _trend_runs(runs: list[RunRow], metric_runs: set[int], release: RunRow) -> dict[str, RunRow]:
    """Return per build the run a trend shows: the newest finished candidate with metrics, else any finished run."""
    chosen: dict[str, RunRow] = {}
    fallback: dict[str, RunRow] = {}
    for r in runs:  # oldest first, so later assignments keep the newest
        if r.id not in metric_runs or r.status not in REPORTABLE_STATUSES:
            continue
        if is_candidate(r):
            chosen[r.build] = r
        else:
            fallback[r.build] = r
    out = {**fallback, **chosen}
    out[release.build] = release
    return out


def _band(release_metric: dict | None, baseline_point: TrendPoint | None, baseline_build: str | None) -> Band | None:
    """Return the baseline band: the gate's baseline estimate of the release run, else the baseline build's point."""
    base = (release_metric or {}).get("baseline")
    if isinstance(base, dict) and base.get("value") is not None:
        value, lo, hi = float(base["value"]), float(base["ci_low"]), float(base["ci_high"])
    elif baseline_point is not None:
        value, lo, hi = baseline_point.value, baseline_point.ci_low, baseline_point.ci_high
    else:
        return None
    limit = None
    tol = (release_metric or {}).get("tolerance")
    direction = (release_metric or {}).get("direction")
    if tol is not None and direction in ("higher", "lower") and math.isfinite(float(tol)):
        limit = value - float(tol) if direction == "higher" else value + float(tol)
    return Band(baseline_build, value, lo, hi, limit)


def _trends(
    store: Store,
    profile: str,
    runs: list[RunRow],
    release: RunRow,
    summary: dict,
    builds_filter: list[str] | None,
    baseline_build: str | None,
    names: list[str] | None = None,
) -> tuple[list[str], dict[str, Trend]]:
    """Return the ordered builds and a Trend per metric (default: the metrics of the release run)."""
    # Only the run shown per build is read in full: a fleet store holds thousands of runs a trend never shows.
    per_build = _trend_runs(runs, store.metric_run_ids(profile), release)
    rows = store.history(profile, run_ids={r.id for r in per_build.values()})
    by_run: dict[int, dict[str, dict]] = defaultdict(dict)
    for row in rows:
        by_run[int(row["run_id"])][row["name"]] = row  # newest row per name wins
    if builds_filter is not None:
        builds = [b for b in builds_filter if b in per_build]
    else:
        first_seen: dict[str, str] = {}
        for r in runs:
            first_seen.setdefault(r.build, r.started_at)
        builds = order_builds(per_build, first_seen)
        # A release's history ends at its own build: a later build was not part of it when it was released.
        builds = builds[: builds.index(release.build) + 1]
    release_metrics = {m["name"]: m for m in summary["metrics"]}
    any_row = {row["name"]: row for row in rows}
    trends: dict[str, Trend] = {}
    for name in names if names is not None else list(release_metrics):
        rm = release_metrics.get(name)
        ref = rm or any_row.get(name)
        if ref is None:
            continue
        points = []
        for b in builds:
            row = by_run.get(per_build[b].id, {}).get(name)
            if row is None or not math.isfinite(row["value"]):
                continue
            points.append(
                TrendPoint(b, row["value"], row["ci_low"], row["ci_high"], row["verdict"], int(row["run_id"]))
            )
        base_pt = next((p for p in points if p.build == baseline_build), None)
        trends[name] = Trend(
            profile=profile,
            metric=name,
            unit=ref["unit"],
            direction=ref["direction"],
            builds=builds,
            points=points,
            band=_band(rm, base_pt, baseline_build),
            release_build=release.build,
        )
    return builds, trends


def collect_trends(
    store: Store,
    profile: str,
    builds: list[str] | None = None,
    names: list[str] | None = None,
    *,
    include_running: bool = False,
    release_build: str | None = None,
) -> tuple[RunRow, dict, list[str], dict[str, Trend], str | None]:
    """Return (release run, its summary, ordered builds, trends per metric, baseline build) of one profile.

    The release run is the newest candidate run of the last of `builds`, else of `release_build`, else of any build;
    the trends hold the builds up to the release run's build in build order (or `builds` as given).
    """
    runs = store.runs(profile)
    if not runs:
        raise ReportError(f"profile {profile!r} has no runs in results store {store.path}; check --profile")
    if builds:
        known = {r.build for r in runs}
        unknown = [b for b in builds if b not in known]
        if unknown:
            raise ReportError(
                f"--builds: profile {profile!r} has no runs of build(s) {', '.join(unknown)} "
                f"(known: {', '.join(order_builds(known))})"
            )
    statuses = (*REPORTABLE_STATUSES, "running") if include_running else REPORTABLE_STATUSES
    target = builds[-1] if builds else release_build
    release = release_run(runs, target, statuses)
    if release is None:
        which = f" of build {target!r}" if target else ""
        raise ReportError(
            f"profile {profile!r} has no finished candidate run{which} in results store {store.path}; "
            "run `qharness run` first or choose another --release or --builds"
        )
    summary = run_summary(store, release)
    baseline_build = release.baseline_build or store.baseline(profile)
    ordered, trends = _trends(store, profile, runs, release, summary, builds, baseline_build, names)
    return release, summary, ordered, trends, baseline_build


def stored_artifacts(rows: Mapping[str, tuple[Estimate, str | None, dict | None]]) -> dict[str, dict]:
    """Return the analysis products the session stored with each metric row (its detail["artifacts"]), by name."""
    out = {}
    for name, (_, _, detail) in rows.items():
        products = (detail or {}).get("artifacts")
        if isinstance(products, dict):
            out[name] = products
    return out


def stored_rho(artifacts: Mapping[str, dict]) -> tuple[np.ndarray, str] | None:
    """Return the 4x4 density matrix (qubit A first) stored with bell_fidelity and its method, or None if absent."""
    bell = artifacts.get("bell_fidelity", {})
    if "rho" not in bell:
        return None
    rho = np.asarray(bell["rho"]["real"], dtype=float) + 1j * np.asarray(bell["rho"]["imag"], dtype=float)
    if rho.shape != (4, 4):
        raise ValueError(f"its shape is {rho.shape}, not (4, 4)")
    return rho, str(bell.get("method") or "method not recorded")


def stored_logical(artifacts: Mapping[str, dict]) -> list[LogicalPoint]:
    """Return the logical error rates stored with the logical_success metrics, by code family, basis and distance."""
    points = [
        LogicalPoint(
            parse_code(m["code"]).family,
            str(m["basis"]),
            int(m["distance"]),
            int(m["shots"]),
            int(m["errors"]),
            float(m["p_fail"]),
            float(m["ci_low"]),
            float(m["ci_high"]),
        )
        for name, products in artifacts.items()
        if name.startswith(LOGICAL_SUCCESS)
        for m in products.get("memories", [])
        if int(m["shots"]) > 0  # a memory that ran no shot has no rate to plot
    ]
    return sorted(points, key=lambda p: (p.family, p.basis, p.distance))


def plob_point(metrics: list[dict]) -> PlobPoint | None:
    """Return ebits per channel use = heralding_efficiency_b * ebit_rate_hz / pair_rate_hz, or None if missing."""
    by = {m["name"]: m for m in metrics}
    try:
        eta, ebit, pair = by["heralding_efficiency_b"], by["ebit_rate_hz"], by["pair_rate_hz"]
    except KeyError:
        return None
    vals = [eta["value"], ebit["value"], pair["value"]]
    if not all(v is not None and math.isfinite(v) for v in vals) or pair["value"] <= 0 or not 0 < eta["value"] < 1:
        return None
    y = eta["value"] * ebit["value"] / pair["value"]

    def rel(m: dict) -> float:
        v = m["value"]
        return 0.0 if v == 0 else (m["ci_high"] - m["ci_low"]) / (2 * abs(v))

    # Relative half-widths add in quadrature for a product/quotient of independent estimates.
    r = math.sqrt(rel(eta) ** 2 + rel(ebit) ** 2 + rel(pair) ** 2)
    return PlobPoint(float(eta["value"]), float(y), float(max(y * (1 - r), 0.0)), float(y * (1 + r)))


def _read(
    reader: Callable[[Mapping[str, dict]], _T], artifacts: Mapping[str, dict], what: str
) -> tuple[_T | None, str]:
    """Return (what reader finds, '') or (None, why there is nothing to show: not recorded, or unreadable)."""
    try:
        found = reader(artifacts)
    except (KeyError, TypeError, ValueError) as exc:  # one unreadable product costs its own plot, not the report
        return None, f"the stored {what} is unreadable ({type(exc).__name__}: {exc})"
    return (found, "") if found else (None, NOT_RECORDED)


def collect_profile(
    store: Store, profile: str, builds: list[str] | None = None, release_build: str | None = None
) -> ProfileReport:
    """Return the report data of one profile: its release run (see collect_trends) and trends."""
    release, summary, ordered, trends, baseline_build = collect_trends(
        store, profile, builds, release_build=release_build
    )
    rep = ProfileReport(profile, release, summary, ordered, baseline_build, trends)
    rows = store.metrics(release.id)
    artifacts = stored_artifacts(rows)
    rho, rep.rho_note = _read(stored_rho, artifacts, "density matrix")
    if rho is not None:
        rep.rho, rep.rho_method = rho
        # The stored estimate is the fidelity of this very matrix; the report shows it, never recomputes it.
        fidelity = rows["bell_fidelity"][0].value
        rep.rho_fidelity = fidelity if math.isfinite(fidelity) else None
    logical, rep.logical_note = _read(stored_logical, artifacts, "logical memories")
    rep.logical = logical or []
    rep.plob = plob_point(summary["metrics"])
    rep.instruments = instrument_rows(release.provenance)
    return rep


def verdict_counts(reports: list[ProfileReport]) -> dict[str, int]:
    """Return the number of release-run metrics per verdict over all profiles (every verdict listed)."""
    total: Counter = Counter()
    for r in reports:
        total.update(r.counts())
    return {v: int(total.get(v, 0)) for v in COUNTED_VERDICTS}


def release_verdict(reports: list[ProfileReport]) -> str:
    """Return the release's headline verdict: the worst of the profiles' verdicts."""
    return str(overall_verdict(Verdict(r.verdict) for r in reports)) if reports else str(Verdict.ERROR)


def describe(metric: str) -> str:
    """Return the registered description of a metric, or '' when it is not registered."""
    try:
        return metric_spec(metric).description
    except KeyError:
        return ""
