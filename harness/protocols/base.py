"""The protocol base class: a subclass says what to measure and how to estimate; the base does the rest.

As in qiskit-experiments (`BaseAnalysis.run()` calls `_run_analysis()`), the base owns the bookkeeping and a
subclass owns only its physics: `_measure(device, ctx)` returns one raw record and `_estimate(raw, ctx, deps)`
turns the (pooled) record into an `Analysis`. The base measures at a budget scale and hands the raw record to
the store before any analysis, pools a re-measurement into the earlier records (`prev + raw`, as the count
records add; a protocol whose runs stop on an error count supersedes instead), keeps the scale per protocol and
the call counter of the random streams in a per-build `Ledger`, and assembles the estimates of the metrics asked
for, with an explicit `Failure` for each one it could not produce.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from harness.metrics import Estimate, metrics_of, prefixes_of
from harness.streams import stream, stream_seed

RawSink = Callable[[str, dict], object]  # (protocol name, JSON-ready payload) -> anything; stores a raw record


@dataclass(frozen=True)
class MeasureContext:
    """What a protocol needs besides the device: the effective profile, the budget scale and a seed."""

    profile: Any  # harness.profiles.Profile
    scale: float
    seed: int
    n_boot: int
    build: str = ""
    call: int = 0
    qec_workers: int | None = None  # logical sampling processes (None: every core when the budget pays for them)
    resume_dir: Path | None = None  # where logical sampling keeps its sinter CSVs, to resume an interrupted run

    def rng(self, purpose: str) -> np.random.Generator:
        """An independent stream for this build, protocol step and call."""
        return stream(self.seed, self.profile.name, self.build, purpose, self.call)

    def int_seed(self, purpose: str) -> int:
        """An integer seed from the same stream, for libraries that take one."""
        return stream_seed(self.seed, self.profile.name, self.build, purpose, self.call)


class FailureKind(StrEnum):
    """Why a protocol or a metric has no estimate."""

    DEVICE = "device"  # the device could not deliver the measurement (instrument fault, identity, simulator)
    NOT_SUPPORTED = "not_supported"  # the device cannot perform the measurement: its tests are skipped
    PREREQUISITE = "prerequisite"  # a protocol this one needs failed
    ANALYSIS = "analysis"  # the records could not be turned into the metric (or it was not produced)


@dataclass(frozen=True)
class Failure:
    """An explicit 'no estimate' value: the reason (for the verdict's message) and its kind."""

    reason: str
    kind: FailureKind

    @classmethod
    def from_error(cls, exc: BaseException, kind: FailureKind) -> Failure:
        """The failure a typed error stands for (its message, else its type's name)."""
        return cls(str(exc) or type(exc).__name__, kind)


@dataclass(frozen=True)
class Analysis:
    """What an estimator makes of a record: metric -> Estimate, and metric -> JSON-ready analysis products."""

    estimates: dict[str, Estimate]
    artifacts: dict[str, dict] = field(default_factory=dict)


@dataclass
class Ledger:
    """The measurements of one build: pooled raw records or failures, budget scale per protocol, stream calls."""

    profile: Any  # harness.profiles.Profile, effective for `build`
    build: str
    seed: int
    raw: dict[str, object] = field(default_factory=dict)  # protocol -> pooled record, or its Failure
    scale: dict[str, float] = field(default_factory=dict)  # protocol -> total budget scale behind its record
    calls: int = 0
    qec_workers: int | None = None  # passed to every MeasureContext
    resume_dir: Path | None = None  # passed to every MeasureContext

    def context(self, scale: float) -> MeasureContext:
        """A fresh context at `scale`: every measurement and estimation draws from its own random stream."""
        self.calls += 1
        return MeasureContext(
            self.profile,
            scale,
            self.seed,
            self.profile.measurement.bootstrap,
            build=self.build,
            call=self.calls,
            qec_workers=self.qec_workers,
            resume_dir=self.resume_dir,
        )

    def failure(self, protocol: str) -> Failure | None:
        """The failure recorded for `protocol`, or None when it has a record (or was not measured)."""
        found = self.raw.get(protocol)
        return found if isinstance(found, Failure) else None


def matrix_payload(matrix: np.ndarray) -> dict:
    """A complex matrix as JSON-ready nested lists: {"real": [[...]], "imag": [[...]]}."""
    m = np.asarray(matrix, dtype=complex)
    return {"real": m.real.tolist(), "imag": m.imag.tolist()}


def raw_payload(raw: object, scale: float) -> dict:
    """The JSON-ready payload of a raw record as the store keeps it, with the budget scale it was taken at."""
    payload = raw.to_dict() if hasattr(raw, "to_dict") else {"value": raw}
    return {**payload, "budget_scale": scale}


class Protocol(ABC):
    """A measurement plan: what to measure on a device, for how long, and which metrics it yields.

    Subclasses set `name` (the protocol column of the metric registry, which gives `metrics` and `prefixes`),
    `requires` (protocols whose pooled records `_estimate` receives as `deps`) and `supersedes`, and implement
    `_measure` and `_estimate`.
    """

    name: ClassVar[str]
    requires: ClassVar[tuple[str, ...]] = ()
    # A re-measurement replaces the earlier records instead of pooling with them.
    supersedes: ClassVar[bool] = False

    @property
    def metrics(self) -> tuple[str, ...]:
        """The fixed metric names this protocol yields (from the metric registry)."""
        return metrics_of(self.name)

    @property
    def prefixes(self) -> tuple[str, ...]:
        """The parametrised metric-name prefixes this protocol yields (from the metric registry)."""
        return prefixes_of(self.name)

    def yields(self, metric: str) -> bool:
        """True if this protocol produces `metric`."""
        return metric in self.metrics or metric.startswith(self.prefixes)

    @abstractmethod
    def _measure(self, device: Any, ctx: MeasureContext) -> object:
        """Measure once on `device` at `ctx.scale`; return the raw record (with `to_dict()` for the store)."""

    @abstractmethod
    def _estimate(self, raw: Any, ctx: MeasureContext, deps: dict[str, Any]) -> Analysis:
        """Turn a pooled raw record (and the records of `requires`) into estimates and analysis products."""

    def measure(self, device: Any, ctx: MeasureContext) -> object:
        """Return the raw record of one measurement at `ctx.scale`."""
        return self._measure(device, ctx)

    def pool(self, prev: Any, raw: Any) -> object:
        """Return the record of two measurements: their sum, or the newer one for a superseding protocol."""
        return raw if self.supersedes else prev + raw

    def analyse(self, raw: Any, ctx: MeasureContext, deps: dict[str, Any]) -> Analysis:
        """Return the estimates and analysis products of a raw record."""
        return self._estimate(raw, ctx, deps)

    def estimate(self, raw: Any, ctx: MeasureContext, deps: dict[str, Any]) -> dict[str, Estimate]:
        """Return metric -> Estimate of a raw record."""
        return self.analyse(raw, ctx, deps).estimates

    def next_scale(self, ledger: Ledger, base: float, double: bool) -> float:
        """Return the next measurement's scale: `base`; to double the total, the total (pooling) or twice it."""
        if not double:
            return base
        current = ledger.scale.get(self.name, base)
        return 2 * current if self.supersedes else current

    def prerequisite_failure(self, ledger: Ledger) -> Failure | None:
        """Return the failure of a required protocol, restated as this protocol's own, or None."""
        for dep in self.requires:
            failed = ledger.failure(dep)
            if failed is not None:
                reason = f"{self.name}: prerequisite measurement {dep} failed: {failed.reason}"
                return Failure(reason, FailureKind.PREREQUISITE)
        return None

    def take(self, device: Any, ledger: Ledger, scale: float, sink: RawSink) -> None:
        """Measure at `scale`, give the raw record to `sink` before anything else, and pool it into `ledger`."""
        raw = self.measure(device, ledger.context(scale))
        sink(self.name, raw_payload(raw, scale))
        prev = ledger.raw.get(self.name)
        ledger.raw[self.name] = raw if prev is None else self.pool(prev, raw)
        ledger.scale[self.name] = scale if self.supersedes else ledger.scale.get(self.name, 0.0) + scale

    def assemble(self, ledger: Ledger, names: Iterable[str]) -> tuple[dict[str, Estimate | Failure], dict[str, dict]]:
        """Estimate `names` from the ledger's pooled record: metric -> Estimate or Failure, and the artifacts.

        The protocol's own failure becomes each metric's failure; a metric the estimator did not produce gets an
        analysis failure saying so. Errors of the estimator propagate (the caller decides which are verdicts).
        """
        names = list(names)
        raw = ledger.raw[self.name]
        if isinstance(raw, Failure):
            return dict.fromkeys(names, raw), {}
        deps = {d: ledger.raw[d] for d in self.requires}
        found = self.analyse(raw, ledger.context(ledger.scale[self.name]), deps)
        missing = f"protocol {self.name} did not yield metric {{}}"
        out = {
            m: found.estimates[m] if m in found.estimates else Failure(missing.format(m), FailureKind.ANALYSIS)
            for m in names
        }
        return out, {m: a for m, a in found.artifacts.items() if m in out}
