"""Measurement plans: what to measure on a device, for how long, and which metrics it yields.

A protocol measures raw records on a `Device` (stored before any analysis), can pool a
re-measurement into earlier records, and turns records into `Estimate`s.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from harness.devices.base import Device
from harness.errors import NotSupportedError
from harness.records import INPUTS_6, CoincidenceCounts, ProcessCounts, TomographyCounts
from harness.streams import stream, stream_seed

BELL_METRICS = ("bell_fidelity", "concurrence", "chsh_s", "qber_z", "qber_x")
LINK_METRICS = ("link_process_fidelity", "capacity_ce_bits", "capacity_q1_bits", "capacity_chi_bits")
RATE_METRICS = (
    "pair_rate_hz",
    "heralding_efficiency_a",
    "heralding_efficiency_b",
    "car",
    "ebit_rate_hz",
    "secret_key_rate_bps",
    "plob_fraction",
)


@dataclass(frozen=True)
class MeasureContext:
    """What a protocol needs besides the device: the effective profile, the budget scale and a seed."""

    profile: object  # harness.profiles.Profile
    scale: float
    seed: int
    n_boot: int
    build: str = ""
    call: int = 0

    def rng(self, purpose: str) -> np.random.Generator:
        """An independent stream for this build, protocol step and call."""
        return stream(self.seed, self.profile.name, self.build, purpose, self.call)

    def int_seed(self, purpose: str) -> int:
        """An integer seed from the same stream, for libraries that take one."""
        return stream_seed(self.seed, self.profile.name, self.build, purpose, self.call)


@dataclass(frozen=True)
class Protocol:
    """A measurement plan: `measure` returns raw records, `estimate` turns them into metrics."""

    name: str
    metrics: tuple[str, ...]
    measure: Callable[[Device, MeasureContext], object]
    estimate: Callable[[object, MeasureContext, dict[str, object]], dict]
    pool: Callable[[object, object], object]
    requires: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()
    supersedes: bool = False  # a re-measurement replaces the earlier records instead of pooling with them

    def yields(self, metric: str) -> bool:
        """True if this protocol produces `metric`."""
        return metric in self.metrics or metric.startswith(self.prefixes or ("\0",))


def _pool_tomography(a: TomographyCounts, b: TomographyCounts) -> TomographyCounts:
    if a.settings != b.settings:
        raise ValueError(f"cannot pool tomography over different settings {a.settings} and {b.settings}")
    return replace(a, counts=np.asarray(a.counts) + np.asarray(b.counts), duration_s=a.duration_s + b.duration_s)


def _pool_process(a: ProcessCounts, b: ProcessCounts) -> ProcessCounts:
    if (a.inputs, a.bases) != (b.inputs, b.bases):
        raise ValueError("cannot pool process tomography over different inputs or bases")
    return replace(a, counts=np.asarray(a.counts) + np.asarray(b.counts), duration_s=a.duration_s + b.duration_s)


def _pool_coincidences(a: CoincidenceCounts, b: CoincidenceCounts) -> CoincidenceCounts:
    if a.window_s != b.window_s:
        raise ValueError("cannot pool coincidence counts taken with different windows")
    return replace(
        a,
        singles_a=a.singles_a + b.singles_a,
        singles_b=a.singles_b + b.singles_b,
        coincidences=a.coincidences + b.coincidences,
        duration_s=a.duration_s + b.duration_s,
    )


def _measure_bell(device: Device, ctx: MeasureContext) -> TomographyCounts:
    return device.bell_tomography(ctx.profile.measurement.integration_time_s * ctx.scale)


def _estimate_bell(raw: TomographyCounts, ctx: MeasureContext, deps: dict) -> dict:
    from harness.analysis.estimators import estimate_bell_metrics

    return estimate_bell_metrics(raw, rng=ctx.rng("bell-bootstrap"), n_boot=ctx.n_boot)


def _measure_link(device: Device, ctx: MeasureContext) -> ProcessCounts:
    # The over-complete six inputs condition the Choi fit far better than four (C_E spread ~3x smaller).
    return device.link_tomography(ctx.profile.measurement.integration_time_s * ctx.scale, INPUTS_6)


def _estimate_link(raw: ProcessCounts, ctx: MeasureContext, deps: dict) -> dict:
    from harness.analysis.estimators import estimate_link_metrics

    return estimate_link_metrics(raw, rng=ctx.rng("link-bootstrap"), n_boot=ctx.n_boot)


def _measure_rates(device: Device, ctx: MeasureContext) -> CoincidenceCounts:
    return device.coincidences(ctx.profile.measurement.coincidence_time_s * ctx.scale)


def _estimate_rates(raw: CoincidenceCounts, ctx: MeasureContext, deps: dict) -> dict:
    from harness.analysis.rates import estimate_rate_metrics

    return estimate_rate_metrics(raw, deps["bell"], rng=ctx.rng("rates-bootstrap"), n_boot=ctx.n_boot)


@dataclass(frozen=True)
class LogicalRecord:
    """Shots and logical errors of each memory experiment behind the logical metrics."""

    link_choi: np.ndarray
    reports: dict  # code name -> harness.qec.memory.CodeReport

    def to_dict(self) -> dict:
        """JSON-ready form for the store."""
        return {
            "link_choi": {"real": self.link_choi.real.tolist(), "imag": self.link_choi.imag.tolist()},
            "memories": [
                {
                    "code": name,
                    "basis": m.basis,
                    "distance": m.distance,
                    "rounds": m.rounds,
                    "shots": m.shots,
                    "errors": m.errors,
                    "physical_qubits": m.physical_qubits,
                    "decode_time_us_per_shot": m.decode_time_us_per_shot,
                }
                for name, rep in self.reports.items()
                for m in rep.memories
            ],
        }


def _link_choi(device: Device, ctx: MeasureContext) -> np.ndarray:
    """The link's own channel (without analyser readout errors) for a simulated link."""
    if ctx.profile.kind != "aer":
        # Link tomography of a bench sees the link through its analysers' readout errors and carries an estimation
        # error that a memory experiment's binomial interval would not include: gating on it would cry wolf.
        raise NotSupportedError(
            "logical memories run over a modelled link (kind: aer); for a bench, run them on the Aer profile "
            "calibrated from this bench"
        )
    from harness.physics import link_block_choi

    return link_block_choi(ctx.profile.link)


def _measure_logical(device: Device, ctx: MeasureContext) -> LogicalRecord:
    from harness.qec.memory import run_code
    from harness.qec.noise import QecNoise

    choi = _link_choi(device, ctx)
    noise = QecNoise.from_profile(ctx.profile, choi)
    m = ctx.profile.measurement
    shots, errors = int(m.qec_max_shots * ctx.scale), int(m.qec_max_errors * ctx.scale)
    reports = {
        code: run_code(code, noise, max_shots=shots, max_errors=errors, seed=ctx.int_seed(f"logical-{code}"))
        for code in ctx.profile.qec.codes
    }
    return LogicalRecord(choi, reports)


def _estimate_logical(raw: LogicalRecord, ctx: MeasureContext, deps: dict) -> dict:
    return {name: est for rep in raw.reports.values() for name, est in rep.items()}


def _pool_logical(a: LogicalRecord, b: LogicalRecord) -> LogicalRecord:
    # Memory runs stop on max_errors, so adding their shots would bias p_L: the larger
    # re-measurement replaces the first instead.
    return b


PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in (
        Protocol("bell", BELL_METRICS, _measure_bell, _estimate_bell, _pool_tomography),
        Protocol("link", LINK_METRICS, _measure_link, _estimate_link, _pool_process),
        Protocol("rates", RATE_METRICS, _measure_rates, _estimate_rates, _pool_coincidences, requires=("bell",)),
        Protocol(
            "logical",
            (),
            _measure_logical,
            _estimate_logical,
            _pool_logical,
            prefixes=("logical_success_", "logical_error_per_round_", "decode_time_us_"),
            supersedes=True,
        ),
    )
}


def register_protocol(protocol: Protocol) -> None:
    """Add a protocol (and so its metrics) to the registry; names must be new."""
    clash = set(protocol.metrics) & {m for p in PROTOCOLS.values() for m in p.metrics}
    if protocol.name in PROTOCOLS or clash:
        raise ValueError(f"protocol {protocol.name!r} or its metrics {sorted(clash)} are already registered")
    PROTOCOLS[protocol.name] = protocol


def protocol_for(metric: str) -> Protocol:
    """Return the protocol that yields `metric`; raise KeyError naming the known metrics."""
    for p in PROTOCOLS.values():
        if p.yields(metric):
            return p
    known = sorted(m for p in PROTOCOLS.values() for m in p.metrics)
    raise KeyError(f"no protocol yields metric {metric!r}; known metrics: {', '.join(known)}")


from harness.protocols import decoder as _decoder  # noqa: E402,F401  (registers the decoder protocol)
