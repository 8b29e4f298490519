"""Logical sampling with sinter in seeded blocks: the same numbers on any number of workers, and resumable."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pymatching
import pytest
import sinter

from harness.qec.blocks import block_seed, blocks_of
from harness.qec.memory import MemorySpec, compiled_memory, run_codes, run_memories, run_memory
from harness.qec.noise import QecError, QecNoise
from harness.qec.sampling import PARALLEL_MIN_S, SamplingJob, _Tally, _workers, available_cores

NOISY = QecNoise(px=0.02, pz=0.02, gate_error_2q=0.01, measurement_error=0.01)


def sequential_reference(code: str, d: int, basis: str, seed: int, max_shots: int, max_errors: int, block: int):
    """The stopping rule written out: block k sampled with seed block_seed(seed, k), every shot decoded by plain
    pymatching, stop after the first block that brings the errors to max_errors or the shots to max_shots."""
    circuit = compiled_memory(code, d, basis, d, NOISY).circuit
    matching = pymatching.Matching.from_detector_error_model(
        circuit.detector_error_model(decompose_errors=True, approximate_disjoint_errors=True)
    )
    shots = errors = k = 0
    while shots < max_shots and errors < max_errors:
        n = min(block, max_shots - shots)
        dets, obs = circuit.compile_detector_sampler(seed=block_seed(seed, k)).sample(n, separate_observables=True)
        errors += int(np.count_nonzero(matching.decode_batch(dets)[:, 0] != obs[:, 0]))
        shots, k = shots + n, k + 1
    return shots, errors


@pytest.mark.parametrize(
    ("code", "basis", "max_shots", "max_errors", "block"),
    [
        ("surface", "Z", 50_000, 10**9, 100_000),  # one block: seeded with the seed itself, as the former loop
        ("surface", "X", 23_500, 10**9, 5_000),  # a short last block
        ("surface", "Z", 10**6, 700, 2_000),  # stops on max_errors mid-way
        ("repetition_bitflip", "Z", 30_000, 10**9, 7_000),
    ],
)
def test_in_process_sampling_equals_the_sequential_loop(code, basis, max_shots, max_errors, block) -> None:
    ours = run_memory(
        code, 3, basis, NOISY, max_shots=max_shots, max_errors=max_errors, seed=9, batch=block, num_workers=1
    )
    assert (ours.shots, ours.errors) == sequential_reference(code, 3, basis, 9, max_shots, max_errors, block)
    assert ours.sampled_shots == ours.shots and ours.resume_file is None
    assert ours.timing.chunks >= 8 and ours.decode_time_us_per_shot > 0
    if max_errors < 10**9:
        assert ours.errors >= max_errors and ours.shots < max_shots and ours.shots % block == 0


def test_two_sinter_workers_give_the_numbers_of_one_process() -> None:
    specs = [
        MemorySpec("surface", 3, "Z", 5),
        MemorySpec("surface", 3, "X", 6),
        MemorySpec("repetition_bitflip", 3, "Z", 7),
    ]
    budget = {"max_shots": 400_000, "max_errors": 2_500, "batch": 5_000}
    one = run_memories(specs, NOISY, num_workers=1, **budget)
    two = run_memories(specs, NOISY, num_workers=2, **budget)
    assert [(r.shots, r.errors) for r in two] == [(r.shots, r.errors) for r in one]
    # The surface memories stop on max_errors after a few blocks; the repetition code runs to max_shots.
    assert one[0].errors >= 2_500 and one[0].shots < 100_000 and one[2].shots == 400_000
    # Workers may sample blocks past the stopping point; they are counted as sampled but are not in the result.
    assert all(t.sampled_shots >= t.shots for t in two)


def test_rerun_reads_finished_memories_from_the_resume_files(tmp_path: Path) -> None:
    codes, budget = {"surface_d3": 3, "repetition_bitflip_d3": 4}, {"max_shots": 30_000, "max_errors": 10**9}
    first = run_codes(codes, NOISY, num_workers=1, resume_dir=tmp_path, **budget)
    files = sorted(tmp_path.glob("*.csv"))
    assert len(files) == 3 and all(m.sampled_shots == 30_000 for r in first.values() for m in r.memories)
    before = {f: f.read_bytes() for f in files}
    again = run_codes(codes, NOISY, num_workers=2, resume_dir=tmp_path, **budget)
    assert {f: f.read_bytes() for f in files} == before  # nothing sampled, nothing appended
    for name, rep in first.items():
        assert [(m.shots, m.errors, 0) for m in rep.memories] == [
            (m.shots, m.errors, m.sampled_shots) for m in again[name].memories
        ]
        assert dict(rep) == dict(again[name])  # every metric, decode time included (its sums are in the file)
    # The files are sinter's own CSV: sinter reads them.
    stats = sinter.read_stats_from_csv_files(*files)
    assert sorted(s.shots for s in stats) == [30_000] * 3


def _rows(path: Path) -> list[str]:
    return path.read_text().splitlines(keepends=True)


def test_resume_samples_only_missing_blocks_and_drops_a_row_cut_short(tmp_path: Path) -> None:
    kwargs = {"max_shots": 10_000, "max_errors": 10**9, "seed": 21, "batch": 1_000, "num_workers": 1}
    full = run_memory("surface", 3, "Z", NOISY, resume_dir=tmp_path, **kwargs)
    (path,) = tmp_path.glob("*.csv")
    rows = _rows(path)
    assert len(rows) == 11  # header and one row per block in one process
    # As a killed run leaves it: block 3 lost (a worker's unflushed block), blocks 7-9 never sampled, and half a row.
    path.write_text("".join(rows[:4] + rows[5:8]) + rows[8][:40])
    resumed = run_memory("surface", 3, "Z", NOISY, resume_dir=tmp_path, **kwargs)
    assert (resumed.shots, resumed.errors) == (full.shots, full.errors)
    assert resumed.sampled_shots == 4_000  # blocks 3, 7, 8 and 9
    assert sorted(blocks_of(sinter.read_stats_from_csv_files(path)[0].custom_counts)) == list(range(10))


def test_broken_resume_files_are_named_with_the_fix(tmp_path: Path) -> None:
    kwargs = {
        "max_shots": 3_000,
        "max_errors": 10**9,
        "seed": 2,
        "batch": 1_000,
        "num_workers": 1,
        "resume_dir": tmp_path,
    }
    run_memory("surface", 3, "X", NOISY, **kwargs)
    (path,) = tmp_path.glob("*.csv")
    rows = _rows(path)
    path.write_text("".join(rows + rows[1:2]))  # block 0 twice
    with pytest.raises(QecError, match=rf"{path.name}.*block 0 twice.*delete the file"):
        run_memory("surface", 3, "X", NOISY, **kwargs)
    path.write_text("shots,errors\n1,0\n")
    with pytest.raises(QecError, match=rf"resume file {path}.*not a sinter CSV.*delete it"):
        run_memory("surface", 3, "X", NOISY, **kwargs)
    path.write_text("")  # killed before its header was written: no data, sampled again
    assert run_memory("surface", 3, "X", NOISY, **kwargs).sampled_shots == 3_000
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    with pytest.raises(QecError, match=r"not-a-directory.*cannot be read or written.*without a resume directory"):
        run_memory("surface", 3, "X", NOISY, **{**kwargs, "resume_dir": blocked})


def test_worker_count_is_checked_and_chosen_from_the_work() -> None:
    with pytest.raises(QecError, match="num_workers must be a positive integer or None"):
        run_memory("surface", 3, "Z", NOISY, max_shots=10, max_errors=1, seed=0, num_workers=0)
    comp = compiled_memory("surface", 5, "Z", 5, NOISY)

    def tally(shots: int) -> _Tally:
        return _Tally(SamplingJob(comp.circuit, comp.dem, {}, 1, shots, 10**9, 100_000), None)

    # Starting workers costs seconds: a canary budget stays in this process, a release-scale one uses every core.
    assert _workers(None, [tally(200_000)]) == 1
    shots = int(PARALLEL_MIN_S / 10e-9 / comp.num_detectors) + 100_000
    assert _workers(None, [tally(shots)]) == available_cores()
    assert _workers(3, [tally(10)]) == 3


KILLED_RUN = """
import sys
from pathlib import Path
from harness.qec.memory import MemorySpec, run_memories
from harness.qec.noise import QecNoise
NOISY = QecNoise(px=0.02, pz=0.02, gate_error_2q=0.01, measurement_error=0.01)
specs = [MemorySpec("surface", 3, "Z", 1)] + [MemorySpec("surface", 3, b, s) for b, s in (("X", 2), ("Z", 3), ("X", 4))]
if __name__ == "__main__":
    run_memories(specs, NOISY, max_shots=int(sys.argv[2]), max_errors=10**9, batch=20_000, num_workers=2,
                 resume_dir=Path(sys.argv[1]))
"""


@pytest.mark.slow
def test_a_killed_run_resumes_without_resampling_finished_memories(tmp_path: Path) -> None:
    # Four memories on two sinter workers; the process group is killed (SIGKILL, no clean-up) as soon as the first
    # memory's resume file is complete. The rerun must leave finished files untouched and give the exact numbers of
    # an uninterrupted run (seeded blocks make them reproducible).
    script = tmp_path / "killed_run.py"
    script.write_text(textwrap.dedent(KILLED_RUN))
    resume, shots = tmp_path / "sinter", 400_000
    proc = subprocess.Popen([sys.executable, str(script), str(resume), str(shots)], start_new_session=True)
    try:
        complete = _wait_for_a_complete_file(resume, shots // 20_000, proc)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    files = {f: f.read_bytes() for f in resume.glob("*.csv")}
    assert 1 <= len(complete) < 4, f"{len(complete)} of 4 memories complete when killed (expected 1 to 3)"
    sys.path.insert(0, str(tmp_path))
    try:
        import killed_run
    finally:
        sys.path.remove(str(tmp_path))
    kwargs = {"max_shots": shots, "max_errors": 10**9, "batch": 20_000}
    resumed = run_memories(killed_run.specs, NOISY, num_workers=2, resume_dir=resume, **kwargs)
    reference = run_memories(killed_run.specs, NOISY, num_workers=1, **kwargs)
    assert [(r.shots, r.errors) for r in resumed] == [(r.shots, r.errors) for r in reference]
    for res in resumed:
        if res.resume_file in complete:
            assert res.sampled_shots == 0 and res.resume_file.read_bytes() == files[res.resume_file]
        else:
            assert res.sampled_shots < shots or res.resume_file not in files


def _wait_for_a_complete_file(resume: Path, n_blocks: int, proc: subprocess.Popen, timeout_s: float = 120) -> set:
    """Poll the resume files until one holds every block; return the complete ones."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        complete = set()
        for f in resume.glob("*.csv"):
            text = f.read_text()
            text = text[: text.rfind("\n") + 1]
            if not text:
                continue  # created, header not yet flushed
            try:
                stats = sinter.read_stats_from_csv_files(io.StringIO(text))
            except ValueError:
                continue
            if stats and len(blocks_of(stats[0].custom_counts)) == n_blocks:
                complete.add(f)
        if complete:
            return complete
        time.sleep(0.02)
    return set()
