"""Throughput of logical-memory experiments: run_memory against direct stim + pymatching, and stim against Aer.

Run: python benchmarks/bench_qec.py. Prints a Markdown table and returns rows
{"figure", "ours", "peer", "ratio", "unit"}; ratio = ours / peer (higher is better for shots/s).

Noise: every parameter 1e-3 (link px = py = pz = 1e-3, gates, measurement and idle 1e-3); Z-basis memories
with rounds = d. Times are medians of REPEATS runs after one warm-up run (which also fills the circuit cache);
ours and the peer run alternately so that both see the same load on a shared machine.

- run_memory vs direct: run_memory in one process (num_workers=1); the peer samples the same stim circuit
  bit-packed in batches of the same size and decodes every shot with one pymatching decode_batch call per
  batch, written out here without the harness. benchmarks/sinter_qec.py times the sinter workers.
- d = 3 target: run_memory's sample + decode throughput against the 1M shots/s target.
- stim vs Aer: run_memory against run_memory_aer for the d = 3 bit-flip repetition code.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pymatching

from benchmarks.common import format_table, median_time, paired_median_times
from harness.qec.memory import compiled_memory, run_memory
from harness.qec.noise import QecNoise

REPEATS = 5  # medians of this many runs (benchmarks.common.median_time)
BATCH = 100_000
TARGET_SHOTS_PER_S = 1e6
NOISE = QecNoise(
    px=1e-3, py=1e-3, pz=1e-3, gate_error_1q=1e-3, gate_error_2q=1e-3, measurement_error=1e-3, idle_error=1e-3
)
SHOTS = {3: 1_000_000, 5: 300_000, 7: 100_000}
AER_SHOTS = 10_000


def _direct(d: int, shots: int) -> Callable[[], int]:
    """Plain stim + pymatching on the same circuit: sample bit-packed, decode every shot, count errors."""
    circuit = compiled_memory("surface", d, "Z", d, NOISE).circuit
    dem = circuit.detector_error_model(decompose_errors=True, approximate_disjoint_errors=True)
    matching = pymatching.Matching.from_detector_error_model(dem)

    def run() -> int:
        sampler = circuit.compile_detector_sampler(seed=1)
        errors = 0
        for start in range(0, shots, BATCH):
            n = min(BATCH, shots - start)
            dets, obs = sampler.sample(n, separate_observables=True, bit_packed=True)
            pred = matching.decode_batch(dets, bit_packed_shots=True, bit_packed_predictions=True)
            errors += int(np.count_nonzero((pred[:, 0] ^ obs[:, 0]) & 1))
        return errors

    return run


def _ours(code: str, d: int, shots: int) -> Callable[[], object]:
    basis = "Z"
    # One process: the peer is single-threaded too (benchmarks/sinter_qec.py times the sinter workers).
    return lambda: run_memory(
        code, d, basis, NOISE, max_shots=shots, max_errors=10**12, seed=1, batch=BATCH, num_workers=1
    )


def main() -> list[dict]:
    """Time the memory experiments; print and return the benchmark rows (throughputs in shots/s)."""
    from harness.qec.aer_memory import run_memory_aer  # qiskit: imported by the Aer row only

    rows = []
    for d, shots in SHOTS.items():
        t_ours, t_peer = paired_median_times(_ours("surface", d, shots), _direct(d, shots))
        ours, peer = shots / t_ours, shots / t_peer
        rows.append(
            {
                "figure": f"surface d={d} Z memory, {d} rounds, p=1e-3, {shots} shots: run_memory vs direct",
                "ours": ours,
                "peer": peer,
                "ratio": ours / peer,
                "unit": "shots/s",
            }
        )
        if d == 3:
            rows.append(
                {
                    "figure": "surface d=3 sample+decode throughput vs 1M shots/s target",
                    "ours": ours,
                    "peer": TARGET_SHOTS_PER_S,
                    "ratio": ours / TARGET_SHOTS_PER_S,
                    "unit": "shots/s (peer = target)",
                }
            )
    stim_rate = SHOTS[3] / median_time(_ours("repetition_bitflip", 3, SHOTS[3]))
    aer_rate = AER_SHOTS / median_time(
        lambda: run_memory_aer("repetition_bitflip", 3, "Z", NOISE, shots=AER_SHOTS, seed=1)
    )
    rows.append(
        {
            "figure": "repetition bit-flip d=3, p=1e-3: stim path (run_memory) vs Aer path (run_memory_aer)",
            "ours": stim_rate,
            "peer": aer_rate,
            "ratio": stim_rate / aer_rate,
            "unit": "shots/s",
        }
    )
    print(format_table(rows))
    return rows


if __name__ == "__main__":
    main()
