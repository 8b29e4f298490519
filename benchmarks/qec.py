"""Section 3: logical memory - run_memory against direct stim + pymatching, and the stim path against Aer.

The circuits, noise and peers are those of `benchmarks.bench_qec` (every noise parameter 1e-3, Z-basis surface-code
memories with d rounds); this module runs them at the given sizes and attaches the targets.
"""

from __future__ import annotations

from benchmarks import bench_qec
from benchmarks.common import Section, median_time, paired_median_times, target_row

OVERHEAD_TARGET = 0.8
AER_SPEEDUP_TARGET = 100.0


def run(shots: dict[int, int] | None = None, aer_shots: int = bench_qec.AER_SHOTS, repeats: int = 5) -> Section:
    """Time run_memory against direct stim + pymatching (d = 3, 5, 7) and against run_memory_aer (rep. d = 3)."""
    from harness.qec.aer_memory import run_memory_aer

    shots = dict(shots or bench_qec.SHOTS)
    sec = Section("qec", "3. Logical memory vs direct stim + pymatching and vs the Aer path")
    for d, n in shots.items():
        t_ours, t_peer = paired_median_times(bench_qec._ours("surface", d, n), bench_qec._direct(d, n), repeats)
        ours, peer = n / t_ours, n / t_peer
        sec.rows.append(
            target_row(
                f"surface d={d} Z memory, {d} rounds, p=1e-3, {n} shots: run_memory vs direct (throughput ratio)",
                ours,
                peer,
                ours / peer,
                "shots/s",
                at_least=OVERHEAD_TARGET,
            )
        )
        if d == 3:
            sec.rows.append(
                target_row(
                    "surface d=3 sample+decode throughput vs the 1M shots/s target",
                    ours,
                    bench_qec.TARGET_SHOTS_PER_S,
                    ours / bench_qec.TARGET_SHOTS_PER_S,
                    "shots/s (peer = target)",
                    at_least=1.0,
                )
            )
    n3 = shots.get(3, bench_qec.SHOTS[3])
    stim_rate = n3 / median_time(bench_qec._ours("repetition_bitflip", 3, n3), repeats)
    aer_rate = aer_shots / median_time(
        lambda: run_memory_aer("repetition_bitflip", 3, "Z", bench_qec.NOISE, shots=aer_shots, seed=1), repeats
    )
    sec.rows.append(
        target_row(
            f"repetition bit-flip d=3, p=1e-3: stim path ({n3} shots) vs Aer path ({aer_shots} shots)",
            stim_rate,
            aer_rate,
            stim_rate / aer_rate,
            "shots/s (ratio = speed-up)",
            at_least=AER_SPEEDUP_TARGET,
        )
    )
    sec.notes = (
        "Noise: every parameter 1e-3 (link px = py = pz, gates, measurement, idle); Z-basis memories, rounds = d. "
        "The direct peer samples the same stim circuit bit-packed in batches of "
        f"{bench_qec.BATCH} and decodes each batch with one pymatching `decode_batch` call, written without the "
        "harness; run_memory (num_workers=1: its block sampler in this process) adds the circuit cache, seeded "
        "blocks, the stopping rule, chunked decode timing and the Estimate. Ours and "
        f"the peer run alternately (median of {repeats} after a warm-up) so both see the same load. The Aer row "
        "compares throughputs, since the Aer path is too slow to run the same number of shots."
    )
    return sec
