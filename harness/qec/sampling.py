"""Logical sampling with sinter: memories in seeded blocks on `num_workers` processes, resumable from sinter CSVs.

`sample_memories(jobs, num_workers=..., resume_dir=...)` returns, per job, the shots, logical errors and decode
timing of the shortest prefix of blocks that reaches max_errors, or of all blocks (max_shots); the blocks and
why the result does not depend on the workers are described in harness/qec/blocks.py. The same profile, build
and seed give the same numbers with 1 or 8 workers, and after an interruption and a resumption.

Workers (`num_workers`):
- 1: the blocks are sampled in this process by the same compiled sampler that sinter's workers run. A sinter
  worker is a new process importing numpy, stim, pymatching and sinter, which takes 1.4 s for one worker and
  2.0 s for two on the 2-core reference machine: tens of times the whole sampling work of a canary budget.
- >= 2: `sinter.collect` with that many worker processes, pinned to the cores this process may use.
- None (default): every core this process may use (os.sched_getaffinity), unless the budget's estimated
  single-core work (NS_PER_DETECTOR_SHOT per detector and shot, measured on the reference machine) is below
  PARALLEL_MIN_S, where starting workers would cost more than they save: then 1. The choice changes the wall
  time only, never the numbers.

Resume (`resume_dir`): every row is appended to the memory's sinter CSV (harness/qec/resume.py) as it arrives,
in both modes. A later call with the same jobs reads the files: a memory whose block prefix is complete is not
sampled again; otherwise only missing blocks are claimed, first the holes an interrupted worker left (its
unflushed blocks), then the blocks after the last one stored. sinter's own `save_resume_filepath` is not used
because it counts every stored shot and error against the budget: with holes in the block sequence it would
call a memory finished whose prefix is incomplete. Instead each task's sinter budget for this run is what is
missing: max_shots = the shots of the missing blocks, max_errors = max_errors minus the errors of the complete
prefix; sinter stops no earlier than the prefix is complete, and the prefix is checked after every run.
"""

from __future__ import annotations

import collections
import os
from dataclasses import dataclass
from pathlib import Path

import sinter
import stim

from harness.qec.blocks import BlockPlan, BlockSampler, blocks_of
from harness.qec.intervals import DecodeTiming
from harness.qec.noise import QecError
from harness.qec.resume import ResumeFile

DECODER = "harness_blocks_pymatching"  # stim sampling + pymatching in seeded blocks (harness/qec/blocks.py)
FORMAT = 1  # version of the block layout and custom-count keys; part of the strong id
FLUSH_S = 1.0  # cap of sinter's worker flush period: an interruption loses at most about this much work per worker
NS_PER_DETECTOR_SHOT = 10.0  # sample + decode cost per detector and shot, surface d3-d7 at p = 1e-3, one core
PARALLEL_MIN_S = 5.0  # below this estimated single-core time, one in-process worker is faster than spawning


@dataclass(frozen=True)
class SamplingJob:
    """One memory to sample: its circuit and error model, what it is (label), seed and budget."""

    circuit: stim.Circuit
    dem: stim.DetectorErrorModel
    label: dict  # JSON-ready description (code, distance, basis, rounds): part of sinter's json_metadata
    seed: int
    max_shots: int
    max_errors: int
    block: int

    def task(self, options: sinter.CollectionOptions | None = None) -> sinter.Task:
        """The sinter Task of this job (its strong id covers circuit, model, decoder, label, seed and budget)."""
        meta = {
            **self.label,
            "seed": self.seed,
            "max_shots": self.max_shots,
            "max_errors": self.max_errors,
            "block": self.block,
            "format": FORMAT,
        }
        return sinter.Task(
            circuit=self.circuit,
            detector_error_model=self.dem,
            decoder=DECODER,
            json_metadata=meta,
            collection_options=options or sinter.CollectionOptions(),
        )


@dataclass(frozen=True)
class Sampled:
    """The result of one job: prefix shots and errors, decode timing, and what this call sampled."""

    shots: int
    errors: int
    timing: DecodeTiming
    sampled_shots: int  # shots sampled by this call, inside or beyond the prefix (0: all read from the file)
    resume_file: Path | None


class _Tally:
    """What is known of one job: its blocks, its decode-time counts and the complete prefix so far."""

    def __init__(self, job: SamplingJob, resume_dir: Path | None):
        self.job = job
        self.task = job.task()
        self.strong_id = self.task.strong_id()
        self.layout = BlockPlan(job.seed, job.max_shots, job.block)
        self.file = None if resume_dir is None else ResumeFile(resume_dir, self.strong_id)
        self.counts: collections.Counter = collections.Counter()
        self.blocks: dict[int, tuple[int, int]] = {}
        self.next = self.shots = self.errors = self.sampled = 0
        self.complete = False
        stored = None if self.file is None else self.file.load()
        if stored is not None:
            self.add(stored.custom_counts, 0)

    def add(self, counts: collections.Counter, new_shots: int) -> None:
        """Count one row's blocks and timing, and move the complete prefix forward."""
        for k, (shots, errors) in blocks_of(counts).items():
            if k in self.blocks or shots != self.layout.size(k):
                where = f"resume file {self.file.path}" if self.file else "the sampled rows"
                raise QecError(f"{where} holds block {k} twice or with a wrong size; delete the file to re-sample")
            self.blocks[k] = (shots, errors)
        self.counts.update({k: v for k, v in counts.items() if k.startswith("decode_")})
        self.sampled += new_shots
        n_blocks = self.layout.n_blocks
        while not self.complete and self.next in self.blocks:
            shots, errors = self.blocks[self.next]
            self.shots, self.errors, self.next = self.shots + shots, self.errors + errors, self.next + 1
            self.complete = self.errors >= self.job.max_errors or self.next == n_blocks

    def plan(self) -> tuple[BlockPlan, sinter.CollectionOptions]:
        """This run's claim order (holes first, then after the last stored block) and its sinter budget."""
        n_blocks = self.layout.n_blocks
        stored = sorted(k for k in self.blocks if self.next <= k < n_blocks)
        last = stored[-1] if stored else self.next - 1
        gaps = tuple(sorted(set(range(self.next, last)) - set(stored)))
        missing_shots = self.job.max_shots - self.next * self.job.block - sum(self.layout.size(k) for k in stored)
        plan = BlockPlan(self.job.seed, self.job.max_shots, self.job.block, gaps, max(last + 1, self.next))
        return plan, sinter.CollectionOptions(max_shots=missing_shots, max_errors=self.job.max_errors - self.errors)

    def record(self, stats: sinter.TaskStats | sinter.AnonTaskStats) -> None:
        """Add a row sampled by this call and append it to the resume file."""
        self.add(stats.custom_counts, stats.shots)
        if self.file is not None:
            row = stats
            if isinstance(stats, sinter.AnonTaskStats):
                row = sinter.TaskStats(self.strong_id, DECODER, self.task.json_metadata, **_fields(stats))
            self.file.append(row)

    def result(self) -> Sampled:
        """The job's result; raises if the prefix is incomplete (a bug: every run completes it)."""
        if not self.complete:
            raise RuntimeError(f"sampling stopped before block {self.next} of {self.job.label} was sampled")
        path = None if self.file is None else self.file.path
        return Sampled(self.shots, self.errors, timing_of(self.counts), self.sampled, path)


def timing_of(counts: collections.Counter) -> DecodeTiming:
    """The decode timing held in custom counts (harness/qec/blocks.py `decode_errors`), in µs per shot."""
    return DecodeTiming(counts["decode_chunks"], counts["decode_ps"] / 1e6, counts["decode_ps2"] / 1e12)


def _fields(stats: sinter.AnonTaskStats) -> dict:
    return {
        "shots": stats.shots,
        "errors": stats.errors,
        "discards": stats.discards,
        "seconds": stats.seconds,
        "custom_counts": stats.custom_counts,
    }


def available_cores() -> int:
    """Number of cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _check_workers(num_workers: int | None) -> None:
    if num_workers is not None and (
        isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 1
    ):
        raise QecError(f"num_workers must be a positive integer or None (all cores), got {num_workers!r}")


def _workers(num_workers: int | None, pending: list[_Tally]) -> int:
    """The number of workers to use (see the module docstring)."""
    if num_workers is not None:
        return num_workers
    work = sum(t.plan()[1].max_shots * t.job.circuit.num_detectors for t in pending)
    return available_cores() if work * NS_PER_DETECTOR_SHOT * 1e-9 >= PARALLEL_MIN_S else 1


def sample_memories(
    jobs: list[SamplingJob], *, num_workers: int | None = None, resume_dir: Path | None = None
) -> list[Sampled]:
    """Sample every job to its budget with sinter (or in this process for one worker); return results in order."""
    _check_workers(num_workers)
    tallies = [_Tally(job, resume_dir) for job in jobs]
    if len({t.strong_id for t in tallies}) < len(tallies):
        raise QecError("the same memory with the same seed and budget was asked for twice; give each its own seed")
    pending = [t for t in tallies if not t.complete]
    try:
        workers = _workers(num_workers, pending) if pending else 0
        if workers == 1:
            _sample_here(pending)
        elif workers > 1:
            _sample_with_sinter(pending, workers)
    finally:
        for t in tallies:
            if t.file is not None:
                t.file.close()
    return [t.result() for t in tallies]


def _sample_here(pending: list[_Tally]) -> None:
    """Sample block after block in this process until every prefix is complete."""
    plans = {t.strong_id: t.plan()[0] for t in pending}
    sampler = BlockSampler(plans)
    for t in pending:
        compiled = sampler.compiled_sampler_for_task(t.task)
        while not t.complete:
            t.record(compiled.sample(t.job.block))


def _sample_with_sinter(pending: list[_Tally], workers: int) -> None:
    """Sample with sinter.collect on `workers` processes, recording each flushed row as it arrives."""
    plans, tasks = {}, []
    for t in pending:
        plan, options = t.plan()
        plans[t.strong_id] = plan
        tasks.append(t.job.task(options))
    by_id = {t.strong_id: t for t in pending}

    def on_progress(progress: sinter.Progress) -> None:
        for stats in progress.new_stats:
            by_id[stats.strong_id].record(stats)

    sinter.collect(
        num_workers=workers,
        tasks=tasks,
        custom_decoders={DECODER: BlockSampler(plans)},
        max_batch_seconds=FLUSH_S,
        progress_callback=on_progress,
        allowed_cpu_affinity_ids=sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
    )
