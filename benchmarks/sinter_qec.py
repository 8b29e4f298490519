"""Release-scale logical sampling: the sinter path on 2 workers against the single-process path, and agreement.

Run: python -m benchmarks.sinter_qec [--shots N] [--repeats R] [--out PATH]. Writes the section to
benchmarks/RESULTS-sinter.md (default) and prints it.

- Throughput: surface d5 at p = 1e-3 (every noise parameter, as benchmarks/bench_qec.py), the Z and X memories
  of `surface_d5` with N shots each and no error cap, sampled by run_memories with num_workers=2 (sinter, two
  worker processes, their start-up included) and num_workers=1 (the same block sampler in this process),
  alternately so both see the same load; the ratio of the median wall times is the speed-up (target >= 1.8).
- Reproducibility: both paths use the same seeds, so their (shots, errors) must be identical.
- Agreement with the former path: the removed single-process loop (one seeded stim sampler, batches of 100k
  shots, one pymatching decode_batch per batch, written out here) samples the same memories with other seeds;
  per basis, the two logical failure rates must agree (two-sample z-test at 95 %; both Wilson intervals shown).
- Load: the machine is shared; before each timed pair the benchmark waits (up to --max-wait s) until the
  1-minute load average is at most 1.5, and reports the load it saw.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import math
import os
import statistics
import time
from pathlib import Path

from benchmarks.common import Section, format_table, machine_info, row, target_row

# Only light imports at module level: sinter starts its workers with 'spawn', and each worker imports the main
# module again (here this one), so what it imports counts in the start-up time being measured. The harness's
# CLI pays the same for `harness.cli`; `python -m pytest` does not (a package's __main__ is not re-imported).

SPEEDUP_TARGET = 1.8
MAX_LOAD = 1.5
Z95 = 1.96
SHOTS = 20_000_000  # per memory: about a minute of single-core work, where starting workers is a small cost
OUT = Path(__file__).resolve().parent / "RESULTS-sinter.md"
MEMORIES = (("Z", 11), ("X", 12))  # surface d5 memories: basis and seed


def wait_for_low_load(max_wait_s: float, poll_s: float = 15.0) -> float:
    """Wait until the 1-minute load average is <= MAX_LOAD (at most `max_wait_s`); return the load seen last."""
    deadline = time.monotonic() + max_wait_s
    load = os.getloadavg()[0]
    while load > MAX_LOAD and time.monotonic() < deadline:
        time.sleep(poll_s)
        load = os.getloadavg()[0]
    return load


def _timed(workers: int, shots: int) -> tuple[float, list]:
    """Wall time (s) and results of sampling the surface d5 memories to `shots` each on `workers` workers."""
    from benchmarks.bench_qec import NOISE
    from harness.qec.memory import MemorySpec, run_memories

    specs = [MemorySpec("surface", 5, basis, seed) for basis, seed in MEMORIES]
    t0 = time.perf_counter()
    res = run_memories(specs, NOISE, max_shots=shots, max_errors=10**12, num_workers=workers)
    return time.perf_counter() - t0, res


def former_loop(basis: str, shots: int, seed: int) -> tuple[int, int]:
    """The removed single-process loop: one seeded sampler, batches of BATCH shots, one decode_batch each."""
    import numpy as np

    from benchmarks.bench_qec import BATCH, NOISE
    from harness.qec.memory import compiled_memory

    comp = compiled_memory("surface", 5, basis, 5, NOISE)
    sampler = comp.circuit.compile_detector_sampler(seed=seed)
    errors = 0
    for start in range(0, shots, BATCH):
        n = min(BATCH, shots - start)
        dets, obs = sampler.sample(n, separate_observables=True, bit_packed=True)
        pred = comp.matching.decode_batch(dets, bit_packed_shots=True, bit_packed_predictions=True)
        errors += int(np.count_nonzero((pred[:, 0] ^ obs[:, 0]) & 1))
    return shots, errors


def _agreement_row(basis: str, ours, former: tuple[int, int]) -> dict:
    """Two-sample z-test of equal failure rates (pooled), at 95 %: |z| <= 1.96; `ours` is a MemoryResult."""
    from harness.qec.intervals import wilson_interval

    n, k = former
    p_a, p_b = ours.p_fail, k / n
    pooled = (ours.errors + k) / (ours.shots + n)
    z = (p_a - p_b) / math.sqrt(pooled * (1 - pooled) * (1 / ours.shots + 1 / n))
    lo_a, hi_a = wilson_interval(ours.errors, ours.shots)
    lo_b, hi_b = wilson_interval(k, n)
    met = abs(z) <= Z95
    return row(
        f"surface d5 {basis} memory, p=1e-3: p_L of the sinter path {ours.errors}/{ours.shots} "
        f"[{lo_a:.3g}, {hi_a:.3g}] vs the former loop {k}/{n} [{lo_b:.3g}, {hi_b:.3g}] (other seed)",
        p_a,
        p_b,
        p_a / p_b if p_b else float("nan"),
        "p_L",
        f"equal rates, |z| <= {Z95}: z = {z:.2f}, " + ("met" if met else "MISSED"),
        met,
    )


def run(shots: int = SHOTS, repeats: int = 3, max_wait_s: float = 1800.0) -> Section:
    """Time the sinter path (2 workers) against the single-process path and check agreement; return the section."""
    sec = Section("sinter", "Logical sampling with sinter: 2 workers vs one process, surface d5")
    t_start = time.perf_counter()
    _timed(1, 20_000)  # warm-up: circuit and matching-graph cache, imports
    loads, t_two, t_one = [], [], []
    for _ in range(repeats):
        loads.append(wait_for_low_load(max_wait_s))
        t2, two = _timed(2, shots)
        t1, one = _timed(1, shots)
        t_two.append(t2)
        t_one.append(t1)
    loads.append(os.getloadavg()[0])
    m_two, m_one = statistics.median(t_two), statistics.median(t_one)
    total = 2 * shots
    sec.rows.append(
        target_row(
            f"surface d5 Z+X memories, 5 rounds, p=1e-3, {shots} shots each: sinter 2 workers vs one process",
            total / m_two,
            total / m_one,
            m_one / m_two,
            "shots/s (ratio = speed-up)",
            at_least=SPEEDUP_TARGET,
        )
    )
    same = [(r.shots, r.errors) for r in two] == [(r.shots, r.errors) for r in one]
    sec.rows.append(
        row(
            "same seeds: (shots, errors) of the 2-worker run identical to the one-process run, both memories",
            float(same),
            1.0,
            float(same),
            "1 = identical",
            "identical: " + ("met" if same else "MISSED"),
            same,
        )
    )
    t_small, _ = _timed(2, 20_000)
    sec.rows.append(row("fixed cost: sinter with 2 workers on 2 x 20000 shots (one block each)", t_small, 0, 0, "s"))
    for (basis, seed), ours in zip(MEMORIES, two, strict=True):
        sec.rows.append(_agreement_row(basis, ours, former_loop(basis, shots, seed=seed + 100)))
    sec.seconds = time.perf_counter() - t_start
    sec.notes = _notes(shots, repeats, t_two, t_one, loads)
    return sec


def _notes(shots: int, repeats: int, t_two: list[float], t_one: list[float], loads: list[float]) -> str:
    from benchmarks.bench_qec import BATCH

    fmt = ", ".join
    return (
        "Noise: every parameter 1e-3 (link px = py = pz, gates, measurement, idle), rounds = 5, blocks of "
        f"{BATCH} shots, no error cap (max_shots {shots} per memory). The 2-worker path is sinter.collect with "
        "the harness's block sampler (start-up of the worker processes included); the one-process path runs "
        "the same sampler in this process. Runs alternate (2 workers, then one process) so both see the same "
        f"load; medians of {repeats}. Wall times, 2 workers: {fmt(f'{t:.1f}' for t in t_two)} s; one process: "
        f"{fmt(f'{t:.1f}' for t in t_one)} s. 1-minute load average before each pair and at the end: "
        f"{fmt(f'{x:.2f}' for x in loads)} (the benchmark waits for <= {MAX_LOAD} up to a limit; a higher value "
        "means the machine stayed busy with other jobs and the speed-up is understated). The former loop "
        "(removed from run_memory) samples with one seeded stim sampler in batches and decodes every batch in "
        "one pymatching call; it runs once per basis with seeds other than the timed runs'."
    )


def main(argv: list[str] | None = None) -> Section:
    """Run the section, print it and write it to --out."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shots", type=int, default=SHOTS, help="shots per memory (default %(default)s)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-wait", type=float, default=1800.0, help="seconds to wait for a low load")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    sec = run(args.shots, args.repeats, args.max_wait)
    info = machine_info()
    text = (
        "<!-- Section produced by `python -m benchmarks.sinter_qec` (section key `sinter`). -->\n\n"
        f"## {sec.title}\n\n{format_table(sec.rows)}\n\n{sec.notes}\n\n"
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['os']}; Python {info['python']}; "
        f"{info['packages']}, sinter {importlib.metadata.version('sinter')}; {info['date']}; "
        f"section wall time {sec.seconds:.0f} s.\n"
    )
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return sec


if __name__ == "__main__":
    main()
