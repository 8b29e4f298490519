"""One profile's regression run: measure candidate and baseline, store raw records first, gate the family.

A `ProfileSession` owns the devices of one profile in a pytest session. The first metric test that needs a
verdict triggers the whole family's measurement, so that the gate's family design sees every metric of the
profile at once. The gate is group-sequential (`harness.gate.SequentialGate`): the budget's base scale is the
first look, and the protocols behind undecided metrics are re-measured, doubling their total scale, up to the
budget's cap; each re-measurement is a look, and a verdict freezes at the look that reaches it.

A metric without an estimate holds an explicit `Failure` (device, not supported, prerequisite, analysis).
Only typed errors become failures: a device's `DeviceError`, a `NotSupportedError`, and the analysis and QEC
layers' own errors. Anything else is a bug and propagates, so it crashes the run instead of passing as an ERROR.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

from harness.analysis.validation import AnalysisError
from harness.baselines import PooledBaseline, gate_against_sessions, pooled_baseline
from harness.devices import open_device
from harness.devices.base import Device
from harness.errors import DeviceError, IdentityMismatchError, NotSupportedError
from harness.gate import (
    Comparison,
    GateDesign,
    MetricPlan,
    SequentialGate,
    Verdict,
    error_comparison,
    overall_verdict,
    run_looks,
)
from harness.gate.plans import describe_budget, gate_plans, with_binomial
from harness.metrics import Estimate, metric_spec
from harness.physics.channels import ChannelError
from harness.profiles import BUDGET_CAPS, BUDGETS, LoadedProfile, Profile
from harness.protocols import Failure, FailureKind, Ledger, Protocol, protocol_for, protocols_for
from harness.qec.noise import QecError
from harness.store import RunStatus, Store

DeviceFactory = Callable[..., Device]
# Errors of the analysis and QEC layers: a record that cannot become its metric (an ERROR verdict, not a crash).
ANALYSIS_ERRORS = (AnalysisError, QecError, ChannelError)


class MeasurementError(Exception):
    """A metric without an estimate, as the gate sees it: its failure's reason (an ERROR verdict)."""


def unmeasured(metric: str) -> Estimate:
    """The stored stand-in of a metric that has no estimate: NaN value and interval, n = 0, the metric's unit."""
    spec = metric_spec(metric)
    return Estimate(math.nan, math.nan, math.nan, 0, spec.unit, spec.direction)


def resolve_baseline(loaded: LoadedProfile, store: Store, baseline_build: str | None) -> str | None:
    """The baseline build: the one asked for, else the store's marked baseline, else the profile's."""
    return baseline_build or store.baseline(loaded.name) or loaded.default_baseline


def status_of(comparisons: dict[str, Comparison] | None) -> RunStatus:
    """A candidate run's status from its verdicts: failed on REGRESSION, error on ERROR or none, else passed."""
    if comparisons is None:
        return RunStatus.ERROR
    top = overall_verdict(c.verdict for c in comparisons.values())
    return {Verdict.REGRESSION: RunStatus.FAILED, Verdict.ERROR: RunStatus.ERROR}.get(top, RunStatus.PASSED)


def pick_comparison(
    comparisons: dict[str, Comparison], skipped: dict[str, str], metric: str, profile: str, alpha: float
) -> Comparison:
    """One metric's comparison from a gated family; NotSupportedError (the reason) for a metric the device cannot
    measure, an ERROR comparison saying so for a metric that was not measured at all."""
    if metric in skipped:
        raise NotSupportedError(skipped[metric])
    found = comparisons.get(metric)
    if found is None:
        return error_comparison(metric, None, None, f"metric {metric!r} was not measured for profile {profile}", alpha)
    return found


def store_device_provenance(store: Store, run_id: int, device: Device) -> None:
    """Keep what a device reports about itself with a run: instrument fault statistics, applied drift."""
    for key, attr in (("instruments", "fault_stats"), ("drift", "drift_offsets")):
        with contextlib.suppress(Exception):
            report = getattr(device, attr, None)
            found = report() if report is not None else None
            if found:
                store.update_provenance(run_id, **{key: found})


@dataclass
class _Side:
    """Measurements of one build (candidate or in-session baseline): its run, device, records and estimates."""

    ledger: Ledger
    run_id: int | None = None
    device: Device | None = None
    estimates: dict[str, Estimate | Failure] = field(default_factory=dict)
    artifacts: dict[str, dict] = field(default_factory=dict)  # metric -> analysis products stored with it

    @property
    def build(self) -> str:
        """The build measured on this side."""
        return self.ledger.build

    @property
    def profile(self) -> Profile:
        """The effective profile of this side's build."""
        return self.ledger.profile

    def measured(self) -> dict[str, Estimate]:
        """The metrics that have an estimate."""
        return {m: e for m, e in self.estimates.items() if isinstance(e, Estimate)}


class ProfileSession:
    """Measure, store and gate the metric family of one device profile."""

    def __init__(
        self,
        loaded: LoadedProfile,
        store: Store,
        *,
        build: str | None = None,
        baseline_build: str | None = None,
        seed: int = 1,
        budget: str = "standard",
        alpha: float = 0.05,
        session_id: str | None = None,
        recorder: object | None = None,
        device_factory: DeviceFactory = open_device,
        session: int = 0,
        qec_workers: int | None = None,
        resume_dir: Path | None = None,
    ) -> None:
        self.loaded = loaded
        self.qec_workers, self.resume_dir = qec_workers, resume_dir
        # Numbers repeated sessions of one build (a stand-in draws that session's drift and shot noise).
        self.session = int(session)
        self.store, self.seed, self.budget, self.alpha = store, seed, budget, alpha
        self.design = GateDesign(alpha=alpha)
        self.session_id = session_id
        self.recorder = recorder
        self._factory = device_factory
        self.family: set[str] = set()
        self.build = build or loaded.default_build
        self.candidate = self._side(self.build)
        self.baseline_build = resolve_baseline(loaded, store, baseline_build)
        self.baseline: _Side | None = None
        self.baseline_source = "none"
        self.comparisons: dict[str, Comparison] | None = None
        self.skipped: dict[str, str] = {}
        self._open_error: Exception | None = None

    def _side(self, build: str) -> _Side:
        ledger = Ledger(self.loaded.effective(build), build, self.seed)
        ledger.qec_workers, ledger.resume_dir = self.qec_workers, self.resume_dir
        return _Side(ledger)

    # -- devices -----------------------------------------------------------------------------

    @property
    def profile(self) -> Profile:
        """The effective profile of the build under test."""
        return self.candidate.profile

    def open_candidate(self) -> Device:
        """Open the device under test once and check that it runs the build under test.

        A failure is remembered and raised again on every later call: a dead bench is not retried by every test.
        """
        if self._open_error is not None:
            raise self._open_error
        side = self.candidate
        if side.device is None:
            try:
                self._open_candidate(side)
            except Exception as exc:
                self._open_error = exc
                raise
        return side.device

    def _open_candidate(self, side: _Side) -> None:
        side.run_id = self._start_run(side)
        # A bench reports each completed setting here, so it is stored before anything else can fail.
        on_record = partial(self.store.add_raw, side.run_id)
        device = self._factory(
            side.profile, side.build, self.seed, on_record=on_record, recorder=self.recorder, **self._session_kw()
        )
        side.device = device  # closed (with its fault statistics kept) by close(), however opening ends
        device.open()
        ident = device.identify()
        if ident.build != side.build:
            raise IdentityMismatchError(
                f"{self.loaded.name}: device reports firmware build {ident.build!r} but the build under test "
                f"is {side.build!r}; flash {side.build!r} or pass --firmware-build {ident.build!r}"
            )

    def _session_kw(self) -> dict[str, int]:
        # Session 0 is not passed, so a factory that predates sessions still works.
        return {"session": self.session} if self.session else {}

    def _start_run(self, side: _Side) -> int:
        return self.store.start_run(
            profile=self.loaded.name,
            profile_hash=self.loaded.content_hash,
            build=side.build,
            baseline_build=self.baseline_build if side is self.candidate else None,
            seed=self.seed,
            budget=self.budget,
            session_id=self.session_id,
            provenance={"kind": side.profile.kind, "role": "candidate" if side is self.candidate else "baseline"},
        )

    def close(self, status: RunStatus | None = None) -> None:
        """Close every device (never raises) and finish the runs: with `status` if given, else each its own."""
        for side in (self.candidate, self.baseline):
            if side is None:
                continue
            if side.device is not None:
                if side.run_id is not None:
                    store_device_provenance(self.store, side.run_id, side.device)
                with contextlib.suppress(Exception):
                    side.device.close()
            if side.run_id is not None:
                own = self.run_status() if side is self.candidate else self._baseline_status(side)
                self.store.finish_run(side.run_id, status or own)

    def run_status(self) -> RunStatus:
        """The candidate run's status from the verdicts: failed on REGRESSION, error on ERROR, else passed."""
        return status_of(self.comparisons)

    @staticmethod
    def _baseline_status(side: _Side) -> RunStatus:
        """An in-session baseline run's own status: passed when it measured every metric, else error.

        The baseline is not gated, so the session's REGRESSION is not its failure.
        """
        failures = [e for e in side.estimates.values() if isinstance(e, Failure)]
        failed = any(f.kind is not FailureKind.NOT_SUPPORTED for f in failures)
        return RunStatus.ERROR if failed or not side.estimates else RunStatus.PASSED

    # -- measurement -------------------------------------------------------------------------

    def _measure(self, side: _Side, protocols: list[Protocol], double: bool = False) -> None:
        """Measure the protocols on one side (doubling the budget if asked), store raw first, then estimate."""
        for proto in protocols:
            if side.ledger.failure(proto.name) is not None:
                continue  # a failed protocol is not retried
            failed = proto.prerequisite_failure(side.ledger) or self._take(side, proto, double)
            if failed is not None:
                side.ledger.raw[proto.name] = failed
            if failed is None or failed.kind is not FailureKind.NOT_SUPPORTED:
                self._estimate(side, proto)

    def _take(self, side: _Side, proto: Protocol, double: bool) -> Failure | None:
        """Measure one protocol once and pool it; return the failure a typed error stands for, else None."""
        scale = proto.next_scale(side.ledger, BUDGETS[self.budget], double)
        try:
            proto.take(side.device, side.ledger, scale, partial(self.store.add_raw, side.run_id))
        except NotSupportedError as exc:
            for m in self.family:
                if proto.yields(m):
                    self.skipped[m] = str(exc)
            return Failure.from_error(exc, FailureKind.NOT_SUPPORTED)
        except DeviceError as exc:
            return Failure.from_error(exc, FailureKind.DEVICE)
        except ANALYSIS_ERRORS as exc:
            return Failure.from_error(exc, FailureKind.ANALYSIS)
        return None

    def _estimate(self, side: _Side, proto: Protocol) -> None:
        names = [m for m in self.family if proto.yields(m)]
        try:
            found, artifacts = proto.assemble(side.ledger, names)
        except ANALYSIS_ERRORS as exc:
            found, artifacts = dict.fromkeys(names, Failure.from_error(exc, FailureKind.ANALYSIS)), {}
        side.estimates.update(with_binomial(found, side.ledger.raw.get(proto.name)))
        for m in names:
            side.artifacts.pop(m, None)
        side.artifacts.update(artifacts)

    def _acquire_baseline(self, protocols: list[Protocol]) -> dict[str, Estimate]:
        """Baseline metrics from the store, else measured now on a simulated device, else none."""
        name = self.loaded.name
        if self.build == self.baseline_build:
            # Measuring the baseline build itself: comparing it with itself would be a PASS that means nothing.
            self.baseline_source = "none"
            return {}
        if self.store.has_build(name, self.baseline_build):
            self.baseline_source = "store"
            stored = self.store.latest_metrics(name, self.baseline_build)
            # A metric its run could not measure is stored unmeasured (n = 0): there is nothing to compare with.
            return self._with_counts({m: e for m, e in stored.items() if e.n > 0})
        if self.profile.kind != "aer":
            self.baseline_source = "none"
            return {}
        self.baseline_source = "measured"
        side = self._side(self.baseline_build)
        self.baseline = side
        side.run_id = self._start_run(side)
        side.device = self._factory(side.profile, side.build, self.seed, **self._session_kw())
        side.device.open()
        self._measure(side, protocols)
        return side.measured()

    def _with_counts(self, stored: dict[str, Estimate]) -> dict[str, Estimate]:
        """Stored baseline estimates with the binomial counts their run kept in the metric's detail."""
        runs = [r for r in self.store.runs(self.loaded.name, self.baseline_build) if r.status.completed]
        need = set(stored)
        for run in reversed(runs):
            for m, (est, _, detail) in self.store.metrics(run.id).items():
                counts = (detail or {}).get("binomial")
                if m in need and counts and est.value == stored[m].value:
                    stored[m] = replace(stored[m], binomial=(int(counts[0]), int(counts[1])))
                    need.discard(m)
        return stored

    def evaluate(self) -> dict[str, Comparison]:
        """Measure the whole family once, then gate it look by look, re-measuring undecided metrics up to the cap.

        A device that cannot be opened or identified ends the profile at once: every metric of the family is an
        ERROR naming that one cause (stored, so the table and summary list them all).
        """
        if self.comparisons is not None:
            return self.comparisons
        try:
            self.open_candidate()
        except DeviceError as exc:
            reason = str(exc) or type(exc).__name__
            self.comparisons = {m: error_comparison(m, None, None, reason, self.alpha) for m in sorted(self.family)}
            self._store_metrics()
            return self.comparisons
        protocols = protocols_for(self.family)
        self._measure(self.candidate, protocols)
        baselines = self._acquire_baseline(protocols)
        # Where the baseline came from (store, measured now, none) is part of the verdict's provenance.
        self.store.update_provenance(self.candidate.run_id, baseline_source=self.baseline_source)
        gate = SequentialGate(self.design, self._plans(protocols), describe_scale=describe_budget)
        state = {"baselines": baselines}

        def remeasure(pending: set[str]) -> bool:
            retry = self._to_remeasure(protocols, pending)
            for side in (self.candidate, self.baseline) if retry else ():
                if side is not None:
                    self._measure(side, retry, double=True)
            if retry and self.baseline is not None:
                state["baselines"] = self.baseline.measured()
            return bool(retry)

        pooled = self._pooled_sessions()
        if pooled:
            comparisons = self._gate_pooled(pooled)
        else:
            comparisons = run_looks(gate, lambda: self._observations(state["baselines"]), remeasure)
        comparisons = {
            m: replace(c, variance_model=c.variance_model or self._variance_model(m, pooled))
            for m, c in comparisons.items()
        }
        self.comparisons = {m: c for m, c in comparisons.items() if m not in self.skipped}
        self._store_metrics()
        return self.comparisons

    def _pooled_sessions(self) -> dict[str, PooledBaseline]:
        """The stored baseline pooled over its sessions, when the store holds two or more of them; else {}."""
        if self.baseline_source != "store":
            return {}
        pooled = pooled_baseline(self.store, self.loaded.name, self.baseline_build, sorted(self.family))
        return pooled if any(p.fit.k >= 2 for p in pooled.values()) else {}

    def _gate_pooled(self, pooled: dict[str, PooledBaseline]) -> dict[str, Comparison]:
        """Gate against the pooled sessions: one look (re-measuring cannot shrink the between-session variance)."""
        cands, _, _ = self._observations({})
        # The drift applied now tells the store which earlier runs repeat this one's draws (not new sessions).
        store_device_provenance(self.store, self.candidate.run_id, self.candidate.device)
        args = (self.store, self.loaded.name, self.build, self.candidate.run_id)
        return gate_against_sessions(*args, cands, pooled, self.profile.gate_tolerances(), self.alpha)

    def _variance_model(self, metric: str, pooled: dict[str, PooledBaseline]) -> str:
        """Which variance a metric's verdict accounted for (the summary's `variance_model`)."""
        if metric in pooled:
            return pooled[metric].variance_model
        if self.baseline_source == "store":
            return "between-session variance unknown (1 stored session): shot noise only"
        if self.baseline_source == "measured":
            return "shot noise only (baseline measured in this session)"
        return "none (no baseline)"

    def _plans(self, protocols: list[Protocol]) -> dict[str, MetricPlan]:
        """Each family metric's gate plan (see `gate_plans`)."""
        return gate_plans(self.profile, self.family, self.budget, fixed_baseline=self.baseline_source == "store")

    def _observations(self, baselines: dict[str, Estimate]) -> tuple[dict, dict[str, Estimate], dict]:
        """The gate's input: candidate estimates (a failure as an exception), baselines, and per metric the
        candidate's and baseline's total scales of its protocol."""
        cands: dict[str, Estimate | Exception] = {}
        scales: dict[str, tuple[float, float]] = {}
        for m, e in self.candidate.estimates.items():
            if m not in self.family or m in self.skipped:
                continue
            cands[m] = e if isinstance(e, Estimate) else MeasurementError(e.reason)
            proto = protocol_for(m).name
            base = self.baseline.ledger.scale.get(proto, 1.0) if self.baseline is not None else 1.0
            scales[m] = (self.candidate.ledger.scale.get(proto, 1.0), base)
        return cands, baselines, scales

    def _to_remeasure(self, protocols: list[Protocol], pending: set[str]) -> list[Protocol]:
        """The protocols behind undecided metrics whose doubled budget stays within the cap, with dependants."""
        cap = BUDGETS[self.budget] * BUDGET_CAPS[self.budget]
        retry = {p.name for p in protocols if any(p.yields(m) for m in pending)}
        retry = {n for n in retry if 2 * self.candidate.ledger.scale.get(n, cap) <= cap + 1e-9}
        return [p for p in protocols if p.name in retry or set(p.requires) & retry]

    def _store_metrics(self) -> None:
        assert self.comparisons is not None
        side = self.candidate
        for name, comp in self.comparisons.items():
            detail = comp.to_dict()
            if name in side.artifacts:
                detail["artifacts"] = side.artifacts[name]
            # A metric without an estimate (an ERROR) is stored too, so every report lists it with its reason.
            estimate = comp.candidate or unmeasured(name)
            self.store.add_metric(side.run_id, name, estimate, str(comp.verdict), detail)
        if self.baseline is not None:
            for name, est in self.baseline.measured().items():
                detail = {"artifacts": self.baseline.artifacts[name]} if name in self.baseline.artifacts else {}
                if est.binomial is not None:
                    detail["binomial"] = list(est.binomial)  # a later run's stored baseline is tested exactly
                self.store.add_metric(self.baseline.run_id, name, est, detail=detail or None)

    def comparison(self, metric: str) -> Comparison:
        """Return the gate's comparison of one metric, measuring and gating the family first if needed (see
        `pick_comparison`)."""
        return pick_comparison(self.evaluate(), self.skipped, metric, self.loaded.name, self.alpha)

    def raw_counts(self, metric: str) -> dict:
        """The pooled raw records behind a metric, JSON-ready (for attachments)."""
        proto = protocol_for(metric)
        out = {}
        for pname in (*proto.requires, proto.name):
            raw = self.candidate.ledger.raw.get(pname)
            if raw is not None and not isinstance(raw, Failure):
                out[pname] = raw.to_dict() if hasattr(raw, "to_dict") else raw
        return out
