"""A sinter Sampler that samples memory experiments in seeded blocks, so any number of workers gives the same numbers.

sinter hands shots to worker processes as they free up and seeds each worker from system entropy, so neither
which shots a worker samples nor the seeds are reproducible, and with `max_errors` the number of shots taken
depends on timing. Here the shots of a memory are cut into fixed blocks: block k has `block` shots (the last
one what is left of max_shots), is sampled by stim with a seed derived from (seed, k) (block 0: the seed
itself) and decoded by pymatching in one process, and its shot and error counts travel in sinter's custom
counts (keys block_<k> and block_<k>_errors). Workers claim block indices in ascending order from one counter
shared by the worker processes. The parent (harness/qec/sampling.py) keeps the shortest prefix of blocks
0, 1, ... that reaches max_errors, or all blocks (max_shots): the stopping rule of a sequential loop that
checks after every block, evaluated after the fact, so the result does not depend on the number of workers,
on which worker sampled which block, or on an interruption and resumption in between. stim's own caveat
remains: one seed gives one sample only on the same stim version and SIMD width.

Blocks that workers sample beyond the prefix (they run ahead until the manager hears of the last errors) stay
in sinter's counts and resume file as valid samples, but are not part of the result. When every block is
claimed while sinter still expects shots from a worker, the worker waits briefly and samples single
"overflow" shots from system entropy (key overflow_shots), because a sinter sampler must return at least one
shot; they too are real samples outside the result.

This module is imported by sinter's worker processes: it imports stim, pymatching, numpy and sinter only.
"""

from __future__ import annotations

import collections
import hashlib
import math
import multiprocessing
import os
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pymatching
import sinter

CHUNK = 8192  # shots per decode call: the unit of the decode-time statistics
MIN_CHUNKS = 8  # a small block is still timed in this many chunks, so its time has an interval
OVERFLOW_WAIT_S = 0.01
_BLOCK = re.compile(r"block_(\d+)")


def block_seed(seed: int, k: int) -> int:
    """Return the stim seed of block k of a memory seeded with `seed` (block 0: the seed itself, mod 2^64)."""
    if k == 0:
        return seed % 2**64
    digest = hashlib.blake2b(f"{seed}:{k}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


@dataclass(frozen=True)
class BlockPlan:
    """The block layout of one memory and the order this run claims its blocks in: `gaps`, then `start`, ..."""

    seed: int
    max_shots: int
    block: int
    gaps: tuple[int, ...] = ()
    start: int = 0

    @property
    def n_blocks(self) -> int:
        """Number of blocks that make up max_shots."""
        return -(-self.max_shots // self.block)

    def size(self, k: int) -> int:
        """Shots of block k."""
        return min(self.block, self.max_shots - k * self.block)

    def index(self, position: int) -> int:
        """Block index of the `position`-th claim of this run (>= n_blocks: every block is claimed)."""
        if position < len(self.gaps):
            return self.gaps[position]
        return self.start + position - len(self.gaps)


def decode_errors(matching: pymatching.Matching, dets: np.ndarray, obs: np.ndarray) -> tuple[int, collections.Counter]:
    """Decode bit-packed shots in chunks; return the logical errors and the decode-time counts.

    Shots with an all-zero syndrome skip the decoder: matching predicts no flip for them by construction.
    The counts are decode_chunks, decode_ps (sum over chunks of the per-shot decode time in picoseconds)
    and decode_ps2 (sum of its squares): integers, so they add across rows of sinter's CSV.
    """
    flips = obs[:, 0] & 1
    n = len(dets)
    size = min(CHUNK, max(1, math.ceil(n / MIN_CHUNKS)))
    counts: collections.Counter = collections.Counter()
    for start in range(0, n, size):  # a loop over chunks of thousands of shots, not over shots
        stop = min(start + size, n)
        nonzero = start + np.flatnonzero(dets[start:stop].any(axis=1))
        t0 = time.perf_counter_ns()
        if nonzero.size:
            pred = matching.decode_batch(dets[nonzero], bit_packed_shots=True, bit_packed_predictions=True)
            flips[nonzero] ^= pred[:, 0] & 1
        ps = (time.perf_counter_ns() - t0) * 1000 // (stop - start)
        counts["decode_chunks"] += 1
        counts["decode_ps"] += ps
        counts["decode_ps2"] += ps * ps
    return int(np.count_nonzero(flips)), counts


def blocks_of(counts: collections.Counter) -> dict[int, tuple[int, int]]:
    """Return block index -> (shots, errors) from custom counts."""
    out = {}
    for key, shots in counts.items():
        found = _BLOCK.fullmatch(key)
        if found:
            out[int(found[1])] = (int(shots), int(counts.get(f"{key}_errors", 0)))
    return out


class _CompiledBlocks(sinter.CompiledSampler):
    """Samples the next claimed block of one memory per call."""

    def __init__(self, task: sinter.Task, plan: BlockPlan, claims: Any):
        self.circuit = task.circuit
        self.matching = pymatching.Matching.from_detector_error_model(task.detector_error_model)
        self.plan = plan
        self.claims = claims

    def handles_throttling(self) -> bool:
        """The block sizes are part of the result: sinter must not resize the batches."""
        return True

    def _claim(self) -> int:
        with self.claims.get_lock():
            position = self.claims.value
            self.claims.value = position + 1
        return self.plan.index(position)

    def sample(self, suggested_shots: int) -> sinter.AnonTaskStats:
        """Sample and decode the next unclaimed block (or one overflow shot once all are claimed)."""
        t0 = time.monotonic()
        k = self._claim()
        if k >= self.plan.n_blocks:
            time.sleep(OVERFLOW_WAIT_S)
            shots, seed, keys = 1, None, {"overflow_shots": 1}
        else:
            shots, seed = self.plan.size(k), block_seed(self.plan.seed, k)
            keys = {f"block_{k}": shots}
        sampler = self.circuit.compile_detector_sampler(seed=seed)
        dets, obs = sampler.sample(shots, separate_observables=True, bit_packed=True)
        errors, counts = decode_errors(self.matching, dets, obs)
        if seed is None:
            # One shot is timed by call overhead alone: keep it out of the decode-time statistics.
            counts = collections.Counter()
        elif errors:
            keys[f"block_{k}_errors"] = errors
        counts.update(keys)
        return sinter.AnonTaskStats(shots=shots, errors=errors, seconds=time.monotonic() - t0, custom_counts=counts)


class BlockSampler(sinter.Sampler):
    """sinter Sampler of memories in seeded blocks; plans are keyed by the sinter task's strong id."""

    def __init__(self, plans: dict[str, BlockPlan]):
        # sinter starts its workers with 'spawn'; a counter must come from that context to be handed to them.
        context = multiprocessing.get_context("spawn")
        self.plans = dict(plans)
        self.claims = {key: context.Value("q", 0) for key in self.plans}
        self.owner = os.getpid()

    def compiled_sampler_for_task(self, task: sinter.Task) -> sinter.CompiledSampler:
        """The sampler of one memory, claiming from the counter shared by all workers."""
        if os.getpid() != self.owner:
            _watch_parent(self.owner)
        key = task.strong_id()
        return _CompiledBlocks(task, self.plans[key], self.claims[key])


_watching: list[int] = []


def _watch_parent(owner: int) -> None:
    """Exit this worker when the process that started it is gone (killed hard, sinter could not stop us)."""
    if _watching:
        return
    _watching.append(owner)

    def watch() -> None:
        while os.getppid() == owner:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
