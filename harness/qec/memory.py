"""Logical-memory experiments: sample with stim, decode with pymatching (through sinter), report as Estimates.

`run_memory` and `run_codes` build the stim circuit and matching graph of each memory and hand them to
harness/qec/sampling.py, which samples them in seeded blocks with sinter on `num_workers` processes (default:
every core when the budget is large enough to pay for starting them), stops at `max_shots` or once
`max_errors` logical errors are seen (checked after each block of `batch` shots, as a sequential loop would),
and resumes from sinter CSVs in `resume_dir`. The numbers depend on the code, noise, seed and budget only,
never on the number of workers or on an interruption (harness/qec/blocks.py says how; as for any stim seed, on
the same stim version and SIMD width). Block 0 is seeded with the seed itself, so a budget of at most one
block gives the numbers of the former single-process loop.

Intervals (harness/qec/intervals.py):
- logical success 1 - p_L: Wilson score interval of p_L, mapped through 1 - p;
- logical error per round eps = (1 - (1 - 2 p_L)^(1/rounds)) / 2 (p_L clipped to 1/2), monotone in p_L, so
  the bounds of p_L map to bounds on eps; `rounds` counts the receiver's syndrome rounds;
- surface-code headline (run_code): 1 - (p_fail_z + p_fail_x), a conservative bound on the logical
  entanglement fidelity (union bound over logical X and Z failures); the interval of the sum of the two
  independent failure probabilities is the Fay-Feuer gamma interval, valid with zero failures on a basis;
- decode time per shot: host wall clock of the matching decoder (µs), a property of the machine that runs
  the harness, not of the device under test; the Student-t interval of the mean over decode chunks.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pymatching
import stim

from harness.analysis.intervals import make_estimate
from harness.metrics import Estimate, parse_code
from harness.qec.codes import CODES, PROTECTED_BASIS, MemoryCircuit, check_request, memory_circuit
from harness.qec.intervals import CONFIDENCE, DecodeTiming, sum_interval, wilson_interval
from harness.qec.noise import QecError, QecNoise
from harness.qec.sampling import Sampled, SamplingJob, sample_memories

BATCH = 100_000  # shots per block: the stopping rule is checked after each block


def error_per_round(p_fail: float, rounds: int) -> float:
    """Return the logical error per round (1 - (1 - 2 p)^(1/rounds)) / 2, p clipped to [0, 1/2]."""
    p = min(max(p_fail, 0.0), 0.5)
    return (1.0 - (1.0 - 2.0 * p) ** (1.0 / rounds)) / 2.0


@dataclass(frozen=True)
class MemoryResult:
    """Outcome of one memory experiment: shots, logical errors, decode timing and the code's size."""

    code: str
    distance: int
    basis: str
    rounds: int
    shots: int
    errors: int
    physical_qubits: int
    timing: DecodeTiming = field(default=DecodeTiming(), repr=False)
    sampled_shots: int = 0  # shots this run sampled (0: read back from a resume file)
    resume_file: Path | None = field(default=None, repr=False)

    @classmethod
    def of(cls, layout: MemoryCircuit, sampled: Sampled) -> MemoryResult:
        """The result of sampling the memory `layout`."""
        return cls(
            code=layout.code,
            distance=layout.distance,
            basis=layout.basis,
            rounds=layout.rounds,
            shots=sampled.shots,
            errors=sampled.errors,
            physical_qubits=layout.num_qubits,
            timing=sampled.timing,
            sampled_shots=sampled.sampled_shots,
            resume_file=sampled.resume_file,
        )

    @property
    def p_fail(self) -> float:
        """Logical failure probability p_L = errors / shots (NaN without shots)."""
        return self.errors / self.shots if self.shots else math.nan

    @property
    def decode_time_us_per_shot(self) -> float:
        """Mean host decode time per shot over the decode chunks, µs."""
        return self.timing.mean_us

    def estimates(self, name: str | None = None, confidence: float = CONFIDENCE) -> dict[str, Estimate]:
        """Return logical success, logical error per round and decode time (µs) keyed by metric name.

        `name` is the suffix of the metric names (default "<code>_d<distance>"), e.g.
        logical_success_<name>, logical_error_per_round_<name>, decode_time_us_<name>.
        """
        suffix = name or f"{self.code}_d{self.distance}"
        low, high = wilson_interval(self.errors, self.shots, confidence)
        return _logical_estimates(suffix, self.p_fail, low, high, self.shots, self.rounds, self.timing, confidence)


def _logical_estimates(
    suffix: str, p: float, low: float, high: float, n: int, rounds: int, timing: DecodeTiming, confidence: float
) -> dict[str, Estimate]:
    """The three metrics of a failure probability p in [low, high] from n shots, and of the decode timing."""
    t_low, t_high = timing.interval(confidence)
    return {
        f"logical_success_{suffix}": make_estimate(
            f"logical_success_{suffix}", 1 - p, 1 - high, 1 - low, n, confidence
        ),
        f"logical_error_per_round_{suffix}": make_estimate(
            f"logical_error_per_round_{suffix}",
            error_per_round(p, rounds),
            error_per_round(low, rounds),
            error_per_round(high, rounds),
            n,
            confidence,
        ),
        # n: the decode chunks the interval rests on.
        f"decode_time_us_{suffix}": make_estimate(
            f"decode_time_us_{suffix}", timing.mean_us, t_low, t_high, timing.chunks, confidence
        ),
    }


@dataclass(frozen=True)
class CompiledMemory:
    """A memory experiment ready to sample: its circuit, error model, matching graph and sizes."""

    layout: MemoryCircuit
    circuit: stim.Circuit
    dem: stim.DetectorErrorModel
    matching: pymatching.Matching
    num_detectors: int


@lru_cache(maxsize=64)
def compiled_memory(code: str, distance: int, basis: str, rounds: int, noise: QecNoise) -> CompiledMemory:
    """Return the (cached) stim circuit, error model and matching graph of a memory experiment."""
    layout = memory_circuit(code, distance, basis, rounds)
    circuit = layout.to_stim(noise)
    # PAULI_CHANNEL_1 with several non-zero terms needs the disjoint-to-independent approximation; it only
    # sets the matching weights (to second order in p), sampling stays exact.
    dem = circuit.detector_error_model(decompose_errors=True, approximate_disjoint_errors=True)
    matching = pymatching.Matching.from_detector_error_model(dem)
    return CompiledMemory(layout, circuit, dem, matching, circuit.num_detectors)


def _check_budget(max_shots: int, max_errors: int, batch: int) -> None:
    for key, value in (("max_shots", max_shots), ("max_errors", max_errors), ("batch", batch)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise QecError(f"{key} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class MemorySpec:
    """One memory experiment to run: code, distance, basis, rounds (None: the distance) and seed."""

    code: str
    distance: int
    basis: str
    seed: int
    rounds: int | None = None


def run_memories(
    specs: Iterable[MemorySpec],
    noise: QecNoise,
    *,
    max_shots: int,
    max_errors: int,
    batch: int = BATCH,
    num_workers: int | None = None,
    resume_dir: Path | None = None,
) -> list[MemoryResult]:
    """Return the results of several memory experiments, sampled together (one sinter collection)."""
    if not isinstance(noise, QecNoise):
        raise QecError(f"noise must be a QecNoise, got {type(noise).__name__}; build one with QecNoise(...)")
    _check_budget(max_shots, max_errors, batch)
    comps, jobs = [], []
    for spec in specs:
        code, distance, basis, rounds = check_request(spec.code, spec.distance, spec.basis, spec.rounds)
        comp = compiled_memory(code, distance, basis, rounds, noise)
        label = {"code": code, "d": distance, "basis": basis, "rounds": rounds}
        comps.append(comp)
        jobs.append(SamplingJob(comp.circuit, comp.dem, label, int(spec.seed), max_shots, max_errors, batch))
    sampled = sample_memories(jobs, num_workers=num_workers, resume_dir=resume_dir)
    return [MemoryResult.of(c.layout, s) for c, s in zip(comps, sampled, strict=True)]


def run_memory(
    code: str,
    distance: int,
    basis: str,
    noise: QecNoise,
    *,
    rounds: int | None = None,
    max_shots: int,
    max_errors: int,
    seed: int,
    batch: int = BATCH,
    num_workers: int | None = None,
    resume_dir: Path | None = None,
) -> MemoryResult:
    """Return the logical error count of a memory experiment sampled with stim and decoded by matching."""
    spec = MemorySpec(code, distance, basis, seed, rounds)
    (res,) = run_memories(
        [spec],
        noise,
        max_shots=max_shots,
        max_errors=max_errors,
        batch=batch,
        num_workers=num_workers,
        resume_dir=resume_dir,
    )
    return res


class CodeReport(dict[str, Estimate]):
    """Metrics of one code (name -> Estimate) plus the memory runs behind them and the protected basis."""

    def __init__(self, code_name: str, protected_basis: str, memories: tuple[MemoryResult, ...], metrics: dict):
        super().__init__(metrics)
        self.code_name = code_name
        self.protected_basis = protected_basis
        self.memories = memories


_CODE_HINT = "use repetition_bitflip_d<d>, repetition_phaseflip_d<d> or surface_d<d>, d an odd integer >= 3"


def _parse_code_name(code_name: str) -> tuple[str, int]:
    """Return (code, distance) of a code name such as 'surface_d5'; raise QecError naming the known codes."""
    try:
        parsed = parse_code(code_name)
    except ValueError as exc:
        raise QecError(f"{exc}; {_CODE_HINT} (e.g. surface_d5)") from None
    if parsed.family not in CODES:
        raise QecError(f"unknown code name {code_name!r}; {_CODE_HINT} (e.g. surface_d5)")
    return parsed.family, parsed.distance


def _code_specs(code_name: str, seed: int) -> list[MemorySpec]:
    """The memories of a named code: its protected basis (repetition), or Z (seed) and X (seed + 1) (surface)."""
    code, d = _parse_code_name(code_name)
    if code in PROTECTED_BASIS:
        return [MemorySpec(code, d, PROTECTED_BASIS[code], seed)]
    return [MemorySpec(code, d, "Z", seed), MemorySpec(code, d, "X", seed + 1)]


def run_codes(
    seeds: Mapping[str, int],
    noise: QecNoise,
    *,
    max_shots: int,
    max_errors: int,
    num_workers: int | None = None,
    resume_dir: Path | None = None,
) -> dict[str, CodeReport]:
    """Return the metrics of named codes (code name -> its seed) under `noise`, sampled in one collection.

    A repetition code runs its protected basis only (bit-flip: Z, phase-flip: X). A surface code runs both
    memories with seeds `seed` (Z) and `seed + 1` (X), reports each with suffix _z/_x, and the headline
    logical_success_surface_d<d> = 1 - (p_fail_z + p_fail_x), its error per round and the pooled decode time.
    """
    specs = {name: _code_specs(name, seed) for name, seed in seeds.items()}
    flat = [spec for group in specs.values() for spec in group]
    results = iter(
        run_memories(
            flat, noise, max_shots=max_shots, max_errors=max_errors, num_workers=num_workers, resume_dir=resume_dir
        )
    )
    reports = {}
    for name, group in specs.items():
        memories = tuple(next(results) for _ in group)
        reports[name] = _report(name, memories)
    return reports


def run_code(
    code_name: str,
    noise: QecNoise,
    *,
    max_shots: int,
    max_errors: int,
    seed: int,
    num_workers: int | None = None,
    resume_dir: Path | None = None,
) -> CodeReport:
    """Return the metrics of a named code ("repetition_bitflip_d3", ..., "surface_d7") under `noise` (see run_codes)."""
    reports = run_codes(
        {code_name: seed},
        noise,
        max_shots=max_shots,
        max_errors=max_errors,
        num_workers=num_workers,
        resume_dir=resume_dir,
    )
    return reports[code_name]


def _report(code_name: str, memories: tuple[MemoryResult, ...]) -> CodeReport:
    """The CodeReport of a code's memory runs (one: repetition; Z and X: surface)."""
    if len(memories) == 1:
        return CodeReport(code_name, memories[0].basis, memories, memories[0].estimates(code_name))
    rz, rx = memories
    metrics: dict[str, Estimate] = {}
    metrics.update(rz.estimates(f"{code_name}_z"))
    metrics.update(rx.estimates(f"{code_name}_x"))
    metrics.update(_combined(code_name, rz, rx))
    return CodeReport(code_name, "ZX", memories, metrics)


def _combined(name: str, rz: MemoryResult, rx: MemoryResult, confidence: float = CONFIDENCE) -> dict[str, Estimate]:
    """Headline metrics of a Z and an X memory: union-bound failure p_z + p_x with the Fay-Feuer interval."""
    low, high = sum_interval(rz.errors, rz.shots, rx.errors, rx.shots, confidence)
    p = rz.p_fail + rx.p_fail
    return _logical_estimates(
        name, p, min(low, 1.0), min(high, 1.0), rz.shots + rx.shots, rz.rounds, rz.timing + rx.timing, confidence
    )
