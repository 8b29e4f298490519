"""Sampling and matching-decoding of logical-memory experiments, and their metrics as Estimates.

`run_memory` samples detection events with stim's compiled detector sampler (bit-packed) and decodes each
batch with ONE `pymatching.Matching.decode_batch` call, stopping at `max_shots` or once `max_errors`
logical errors are seen (checked after each batch, like sinter). Shots whose syndrome is all zero are
not passed to the decoder: matching predicts no observable flip for them by construction, and at
realistic noise they are most shots.

Intervals:
- logical success 1 - p_L: Wilson score interval of p_L, mapped through 1 - p;
- logical error per round eps = (1 - (1 - 2 p_L)^(1/rounds)) / 2 (p_L clipped to 1/2), monotone in p_L, so
  the Wilson bounds map to bounds on eps; `rounds` counts the receiver's syndrome rounds;
- decode time per shot: the range of the per-batch times per shot (a single batch gives a point);
- surface-code headline (run_code): 1 - (p_fail_z + p_fail_x), a conservative bound on the logical
  entanglement fidelity (union bound over logical X and Z failures). Its interval adds the two Wilson
  intervals, each taken at confidence 1 - alpha/2 (Bonferroni), so the sum has coverage >= 1 - alpha.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pymatching
import stim
from scipy.stats import norm

from harness.analysis.intervals import make_estimate
from harness.metrics import Estimate, parse_code
from harness.qec.codes import CODES, PROTECTED_BASIS, MemoryCircuit, check_request, memory_circuit
from harness.qec.noise import QecError, QecNoise

CONFIDENCE = 0.95


def wilson_interval(k: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Return the Wilson score interval (low, high) of a binomial proportion k/n."""
    if n <= 0:
        return 0.0, 1.0
    z = float(norm.ppf(0.5 + confidence / 2))
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = 0.0 if k == 0 else max(0.0, centre - half)
    high = 1.0 if k == n else min(1.0, centre + half)
    return min(low, p), max(high, p)


def error_per_round(p_fail: float, rounds: int) -> float:
    """Return the logical error per round (1 - (1 - 2 p)^(1/rounds)) / 2, p clipped to [0, 1/2]."""
    p = min(max(p_fail, 0.0), 0.5)
    return (1.0 - (1.0 - 2.0 * p) ** (1.0 / rounds)) / 2.0


@dataclass(frozen=True)
class MemoryResult:
    """Outcome of one memory experiment: shots, logical errors, decode time and the code's size."""

    code: str
    distance: int
    basis: str
    rounds: int
    shots: int
    errors: int
    decode_time_us_per_shot: float
    physical_qubits: int
    batch_decode_us_per_shot: tuple[float, ...] = field(default=(), repr=False)

    @classmethod
    def from_decoding(
        cls, comp: CompiledMemory, shots: int, errors: int, decode_s: float, per_batch_us: tuple[float, ...] = ()
    ) -> MemoryResult:
        """The result of decoding `shots` shots of a compiled memory in `decode_s` seconds."""
        us = decode_s / shots * 1e6
        return cls(
            code=comp.layout.code,
            distance=comp.layout.distance,
            basis=comp.layout.basis,
            rounds=comp.layout.rounds,
            shots=shots,
            errors=errors,
            decode_time_us_per_shot=us,
            physical_qubits=comp.layout.num_qubits,
            batch_decode_us_per_shot=tuple(per_batch_us) or (us,),
        )

    @property
    def p_fail(self) -> float:
        """Logical failure probability p_L = errors / shots (NaN without shots)."""
        return self.errors / self.shots if self.shots else math.nan

    def estimates(self, name: str | None = None, confidence: float = CONFIDENCE) -> dict[str, Estimate]:
        """Return logical success, logical error per round and decode time (µs) keyed by metric name.

        `name` is the suffix of the metric names (default "<code>_d<distance>"), e.g.
        logical_success_<name>, logical_error_per_round_<name>, decode_time_us_<name>.
        """
        suffix = name or f"{self.code}_d{self.distance}"
        low, high = wilson_interval(self.errors, self.shots, confidence)
        p = self.p_fail
        times = self.batch_decode_us_per_shot or (self.decode_time_us_per_shot,)
        return {
            f"logical_success_{suffix}": make_estimate(
                f"logical_success_{suffix}", 1 - p, 1 - high, 1 - low, self.shots, confidence
            ),
            f"logical_error_per_round_{suffix}": make_estimate(
                f"logical_error_per_round_{suffix}",
                error_per_round(p, self.rounds),
                error_per_round(low, self.rounds),
                error_per_round(high, self.rounds),
                self.shots,
                confidence,
            ),
            f"decode_time_us_{suffix}": make_estimate(
                f"decode_time_us_{suffix}", self.decode_time_us_per_shot, min(times), max(times), self.shots, confidence
            ),
        }


@dataclass(frozen=True)
class CompiledMemory:
    """A memory experiment ready to sample: its circuit, matching graph and sizes."""

    layout: MemoryCircuit
    circuit: stim.Circuit
    matching: pymatching.Matching
    num_detectors: int


@lru_cache(maxsize=64)
def compiled_memory(code: str, distance: int, basis: str, rounds: int, noise: QecNoise) -> CompiledMemory:
    """Return the (cached) stim circuit and matching graph of a memory experiment."""
    layout = memory_circuit(code, distance, basis, rounds)
    circuit = layout.to_stim(noise)
    # PAULI_CHANNEL_1 with several non-zero terms needs the disjoint-to-independent approximation; it only
    # sets the matching weights (to second order in p), sampling stays exact.
    dem = circuit.detector_error_model(decompose_errors=True, approximate_disjoint_errors=True)
    matching = pymatching.Matching.from_detector_error_model(dem)
    return CompiledMemory(layout, circuit, matching, circuit.num_detectors)


def count_logical_errors(matching: pymatching.Matching, dets: np.ndarray, obs: np.ndarray) -> tuple[int, float]:
    """Decode bit-packed detection events; return (logical errors, decode seconds) against bit-packed obs."""
    flips = obs[:, 0] & 1
    nonzero = np.flatnonzero(dets.any(axis=1))
    t0 = time.perf_counter()
    if nonzero.size:
        pred = matching.decode_batch(dets[nonzero], bit_packed_shots=True, bit_packed_predictions=True)
        flips[nonzero] ^= pred[:, 0] & 1
    elapsed = time.perf_counter() - t0
    return int(np.count_nonzero(flips)), elapsed


def _check_budget(max_shots: int, max_errors: int, batch: int) -> None:
    for key, value in (("max_shots", max_shots), ("max_errors", max_errors), ("batch", batch)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise QecError(f"{key} must be a positive integer, got {value!r}")


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
    batch: int = 100_000,
) -> MemoryResult:
    """Return the logical error count of a memory experiment sampled with stim and decoded by matching."""
    if not isinstance(noise, QecNoise):
        raise QecError(f"noise must be a QecNoise, got {type(noise).__name__}; build one with QecNoise(...)")
    code, distance, basis, rounds = check_request(code, distance, basis, rounds)
    _check_budget(max_shots, max_errors, batch)
    comp = compiled_memory(code, distance, basis, rounds, noise)
    sampler = comp.circuit.compile_detector_sampler(seed=seed)
    shots = errors = 0
    decode_s = 0.0
    per_batch: list[float] = []
    while shots < max_shots and errors < max_errors:
        n = min(batch, max_shots - shots)
        dets, obs = sampler.sample(n, separate_observables=True, bit_packed=True)
        e, dt = count_logical_errors(comp.matching, dets, obs)
        shots += n
        errors += e
        decode_s += dt
        per_batch.append(dt / n * 1e6)
    return MemoryResult.from_decoding(comp, shots, errors, decode_s, tuple(per_batch))


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


def run_code(code_name: str, noise: QecNoise, *, max_shots: int, max_errors: int, seed: int) -> CodeReport:
    """Return the metrics of a named code ("repetition_bitflip_d3", ..., "surface_d7") under `noise`.

    A repetition code runs its protected basis only (bit-flip: Z, phase-flip: X). A surface code runs both
    memories with seeds `seed` (Z) and `seed + 1` (X), reports each with suffix _z/_x, and the headline
    logical_success_surface_d<d> = 1 - (p_fail_z + p_fail_x), its error per round and the mean decode time.
    """
    code, d = _parse_code_name(code_name)
    if code in PROTECTED_BASIS:
        basis = PROTECTED_BASIS[code]
        res = run_memory(code, d, basis, noise, max_shots=max_shots, max_errors=max_errors, seed=seed)
        return CodeReport(code_name, basis, (res,), res.estimates(code_name))
    rz = run_memory(code, d, "Z", noise, max_shots=max_shots, max_errors=max_errors, seed=seed)
    rx = run_memory(code, d, "X", noise, max_shots=max_shots, max_errors=max_errors, seed=seed + 1)
    metrics: dict[str, Estimate] = {}
    metrics.update(rz.estimates(f"{code_name}_z"))
    metrics.update(rx.estimates(f"{code_name}_x"))
    metrics.update(_combined(code_name, rz, rx))
    return CodeReport(code_name, "ZX", (rz, rx), metrics)


def _combined(name: str, rz: MemoryResult, rx: MemoryResult, confidence: float = CONFIDENCE) -> dict[str, Estimate]:
    """Headline metrics of a Z and an X memory: union-bound failure 1 - (p_z + p_x) with a Bonferroni interval."""
    each = 1 - (1 - confidence) / 2
    lz, hz = wilson_interval(rz.errors, rz.shots, each)
    lx, hx = wilson_interval(rx.errors, rx.shots, each)
    p = rz.p_fail + rx.p_fail
    low, high = min(lz + lx, 1.0), min(hz + hx, 1.0)
    n = rz.shots + rx.shots
    rounds = rz.rounds
    dt = (rz.decode_time_us_per_shot * rz.shots + rx.decode_time_us_per_shot * rx.shots) / n
    times = rz.batch_decode_us_per_shot + rx.batch_decode_us_per_shot or (dt,)
    return {
        f"logical_success_{name}": make_estimate(f"logical_success_{name}", 1 - p, 1 - high, 1 - low, n, confidence),
        f"logical_error_per_round_{name}": make_estimate(
            f"logical_error_per_round_{name}",
            error_per_round(p, rounds),
            error_per_round(low, rounds),
            error_per_round(high, rounds),
            n,
            confidence,
        ),
        f"decode_time_us_{name}": make_estimate(f"decode_time_us_{name}", dt, min(times), max(times), n, confidence),
    }
