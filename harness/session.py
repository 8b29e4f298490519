"""One profile's regression run: measure candidate and baseline, store raw records first, gate the family.

A `ProfileSession` owns the devices of one profile in a pytest session. The first metric
test that needs a verdict triggers the whole family's measurement, so that Holm's method sees
every metric of the profile at once, and INCONCLUSIVE metrics can be re-measured with more budget.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from harness.devices import open_device
from harness.devices.base import Device
from harness.errors import DeviceError, IdentityMismatchError
from harness.gate import Comparison, Verdict, evaluate, overall_verdict
from harness.metrics import Estimate, Tolerance
from harness.profiles import BUDGET_CAPS, BUDGETS, LoadedProfile, Profile
from harness.protocols import PROTOCOLS, MeasureContext, NotSupportedError, Protocol, protocol_for
from harness.store import Store

DeviceFactory = Callable[..., Device]


@dataclass
class _Side:
    """Measurements of one build (candidate or in-session baseline)."""

    build: str
    profile: Profile
    run_id: int | None = None
    device: Device | None = None
    raw: dict[str, object] = field(default_factory=dict)
    estimates: dict[str, Estimate | Exception] = field(default_factory=dict)
    scale: dict[str, float] = field(default_factory=dict)
    calls: int = 0


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
    ) -> None:
        self.loaded = loaded
        self.store = store
        self.seed = seed
        self.budget = budget
        self.alpha = alpha
        self.session_id = session_id
        self.recorder = recorder
        self._factory = device_factory
        self.family: set[str] = set()
        self.build = build or loaded.default_build
        self.candidate = _Side(self.build, loaded.effective(self.build))
        self.baseline_build = baseline_build or store.baseline(loaded.name) or loaded.default_baseline
        self.baseline: _Side | None = None
        self.baseline_source = "none"
        self.comparisons: dict[str, Comparison] | None = None
        self.skipped: dict[str, str] = {}
        self._failure: Exception | None = None

    # -- devices -----------------------------------------------------------------------------

    @property
    def profile(self) -> Profile:
        """The effective profile of the build under test."""
        return self.candidate.profile

    def open_candidate(self) -> Device:
        """Open the device under test once and check that it runs the build under test."""
        side = self.candidate
        if side.device is None:
            side.run_id = self._start_run(side)
            run_id = side.run_id
            device = self._factory(
                side.profile,
                side.build,
                self.seed,
                # A bench reports each completed setting here, so it is stored before anything else can fail.
                on_record=lambda protocol, payload: self.store.add_raw(run_id, protocol, payload),
                recorder=self.recorder,
            )
            side.device = device
            device.open()
            ident = device.identify()
            if ident.build != side.build:
                raise IdentityMismatchError(
                    f"{self.loaded.name}: device reports firmware build {ident.build!r} but the build under test "
                    f"is {side.build!r}; flash {side.build!r} or pass --firmware-build {ident.build!r}"
                )
        return side.device

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

    def close(self, status: str | None = None) -> None:
        """Close every device (never raises) and finish the runs with their status."""
        for side in (self.candidate, self.baseline):
            if side is None:
                continue
            if side.device is not None:
                with contextlib.suppress(Exception):
                    stats = getattr(side.device, "fault_stats", None)
                    if stats is not None and side.run_id is not None:
                        self.store.update_provenance(side.run_id, instruments=stats())
                with contextlib.suppress(Exception):
                    side.device.close()
            if side.run_id is not None:
                self.store.finish_run(side.run_id, status or self.run_status())

    def run_status(self) -> str:
        """Run status from the verdicts: failed on REGRESSION, error on ERROR, else passed."""
        if self.comparisons is None:
            return "error"
        top = overall_verdict(c.verdict for c in self.comparisons.values())
        return {Verdict.REGRESSION: "failed", Verdict.ERROR: "error"}.get(top, "passed")

    # -- measurement -------------------------------------------------------------------------

    def _protocols(self, metrics: Iterable[str]) -> list[Protocol]:
        needed: dict[str, Protocol] = {}

        def add(p: Protocol) -> None:
            for dep in p.requires:
                add(PROTOCOLS[dep])
            needed.setdefault(p.name, p)

        for m in sorted(metrics):
            add(protocol_for(m))
        return list(needed.values())

    def _context(self, side: _Side, scale: float) -> MeasureContext:
        side.calls += 1
        return MeasureContext(
            side.profile, scale, self.seed, side.profile.measurement.bootstrap, build=side.build, call=side.calls
        )

    def _measure(self, side: _Side, protocols: list[Protocol], double: bool = False) -> None:
        """Measure the protocols on one side (doubling and pooling if asked), store raw first, then estimate."""
        for proto in protocols:
            if isinstance(side.raw.get(proto.name), Exception):
                continue
            base = BUDGETS[self.budget]
            current = side.scale.get(proto.name, base)
            scale = (2 * current if proto.supersedes else current) if double else base
            try:
                if any(isinstance(side.raw.get(dep), Exception) for dep in proto.requires):
                    raise DeviceError(f"{proto.name}: prerequisite measurement {proto.requires} failed")
                if side.device is None:
                    raise DeviceError(f"{self.loaded.name}: device for build {side.build} is not open")
                raw = proto.measure(side.device, self._context(side, scale))
                self.store.add_raw(side.run_id, proto.name, _raw_payload(raw, scale))
                prev = side.raw.get(proto.name)
                side.raw[proto.name] = raw if prev is None else proto.pool(prev, raw)
                side.scale[proto.name] = scale if proto.supersedes else side.scale.get(proto.name, 0.0) + scale
            except NotSupportedError as exc:
                for m in self.family:
                    if proto.yields(m):
                        self.skipped[m] = str(exc)
                side.raw[proto.name] = exc
                continue
            except (DeviceError, OSError, ValueError) as exc:
                side.raw[proto.name] = exc
            self._estimate(side, proto)

    def _estimate(self, side: _Side, proto: Protocol) -> None:
        raw = side.raw[proto.name]
        names = [m for m in self.family if proto.yields(m)]
        if isinstance(raw, Exception):
            for m in names:
                side.estimates[m] = raw
            return
        deps = {d: side.raw[d] for d in proto.requires}
        ctx = self._context(side, side.scale[proto.name])
        try:
            found = proto.estimate(raw, ctx, deps)
        except ValueError as exc:
            found = {m: exc for m in names}
        for m in names:
            side.estimates[m] = found.get(m, KeyError(f"protocol {proto.name} did not yield metric {m}"))

    def _acquire_baseline(self, protocols: list[Protocol]) -> dict[str, Estimate]:
        """Baseline metrics from the store, else measured now on a simulated device, else none."""
        name = self.loaded.name
        if self.store.has_build(name, self.baseline_build):
            self.baseline_source = "store"
            return self.store.latest_metrics(name, self.baseline_build)
        if self.profile.kind != "aer":
            self.baseline_source = "none"
            return {}
        self.baseline_source = "measured"
        side = _Side(self.baseline_build, self.loaded.effective(self.baseline_build))
        self.baseline = side
        side.run_id = self._start_run(side)
        side.device = self._factory(side.profile, side.build, self.seed)
        side.device.open()
        self._measure(side, protocols)
        return {m: e for m, e in side.estimates.items() if isinstance(e, Estimate)}

    def evaluate(self) -> dict[str, Comparison]:
        """Measure the whole family once, gate it (Holm), re-measure INCONCLUSIVE metrics up to the budget cap."""
        if self.comparisons is not None:
            return self.comparisons
        if self._failure is not None:
            # A device that could not be opened is not retried by every test (a dead bench would cost minutes).
            raise self._failure
        try:
            self.open_candidate()
        except Exception as exc:
            self._failure = exc
            raise
        protocols = self._protocols(self.family)
        self._measure(self.candidate, protocols)
        baselines = self._acquire_baseline(protocols)
        # Where the baseline came from (store, measured now, none) is part of the verdict's provenance.
        self.store.update_provenance(self.candidate.run_id, baseline_source=self.baseline_source)
        tolerances = self._tolerances()
        comparisons = self._gate(baselines, tolerances)
        cap = BUDGETS[self.budget] * BUDGET_CAPS[self.budget]
        while True:
            retry = [
                p
                for p in protocols
                if any(c.verdict is Verdict.INCONCLUSIVE and p.yields(c.name) for c in comparisons.values())
            ]
            retry = [p for p in retry if 2 * self.candidate.scale.get(p.name, cap) <= cap + 1e-9]
            if not retry:
                break
            for side in (self.candidate, self.baseline):
                if side is not None:
                    self._measure(side, self._with_dependants(retry, protocols), double=True)
            if self.baseline is not None:
                baselines = {m: e for m, e in self.baseline.estimates.items() if isinstance(e, Estimate)}
            comparisons = self._gate(baselines, tolerances)
        self.comparisons = comparisons
        self._store_metrics()
        return comparisons

    def _with_dependants(self, retry: list[Protocol], protocols: list[Protocol]) -> list[Protocol]:
        names = {p.name for p in retry}
        return [p for p in protocols if p.name in names or set(p.requires) & names]

    def _gate(self, baselines: dict[str, Estimate], tolerances: dict[str, Tolerance]) -> dict[str, Comparison]:
        candidates = {m: e for m, e in self.candidate.estimates.items() if m in self.family and m not in self.skipped}
        return evaluate(candidates, baselines, tolerances, alpha=self.alpha)

    def _tolerances(self) -> dict[str, Tolerance]:
        return self.profile.gate_tolerances()

    def _store_metrics(self) -> None:
        assert self.comparisons is not None
        for name, comp in self.comparisons.items():
            if comp.candidate is not None:
                self.store.add_metric(self.candidate.run_id, name, comp.candidate, str(comp.verdict), comp.to_dict())
        if self.baseline is not None:
            for name, est in self.baseline.estimates.items():
                if isinstance(est, Estimate):
                    self.store.add_metric(self.baseline.run_id, name, est)

    def comparison(self, metric: str) -> Comparison:
        """Return the gate's comparison of one metric, measuring and gating the family first if needed.

        Raises NotSupportedError (with the reason) when the device cannot measure the metric; a metric that
        was not measured at all comes back as an ERROR comparison saying so.
        """
        comparisons = self.evaluate()
        if metric in self.skipped:
            raise NotSupportedError(self.skipped[metric])
        found = comparisons.get(metric)
        if found is None:
            return Comparison(
                metric,
                None,
                None,
                None,
                0.0,
                None,
                None,
                Verdict.ERROR,
                error=f"metric {metric!r} was not measured for profile {self.loaded.name}",
                alpha=self.alpha,
            )
        return found

    def raw_counts(self, metric: str) -> dict:
        """The pooled raw records behind a metric, JSON-ready (for attachments)."""
        proto = protocol_for(metric)
        out = {}
        for pname in (*proto.requires, proto.name):
            raw = self.candidate.raw.get(pname)
            if raw is not None and not isinstance(raw, Exception):
                out[pname] = raw.to_dict() if hasattr(raw, "to_dict") else raw
        return out


def _raw_payload(raw: object, scale: float) -> dict:
    payload = raw.to_dict() if hasattr(raw, "to_dict") else {"value": raw}
    return {**payload, "budget_scale": scale}
