"""Section 6: the whole canary - wall time and peak memory of `qharness run ... --report` per budget and profiles.

Each run is the main-job command `qharness run --profile aer-reference --report <dir>` (as
`python -m harness.cli run`), in a fresh temporary directory with a fresh --db, under `/usr/bin/time -v` when it
exists (peak RSS of the largest process of the tree: the CLI, pytest, report building); otherwise the peak comes from
`resource.getrusage(RUSAGE_CHILDREN)`, which is a running maximum over every child so far and so only an upper bound.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import Section, row

PROFILES = ("aer-reference", "aer-long-haul", "aer-metro-extends", "aer-reference-copy")
GNU_TIME = "/usr/bin/time"


@dataclass(frozen=True)
class CanaryRun:
    """One canary run: wall time (s), peak resident memory (MiB), exit code and how the peak was measured."""

    wall_s: float
    peak_mib: float
    exit_code: int
    memory_source: str


def _write_copy_profile(cwd: Path) -> None:
    """A 4th profile: aer-reference under another name, in ./device_profiles of the run directory."""
    from harness.profiles import find_profile

    text = find_profile("aer-reference").read_text(encoding="utf-8")
    text = re.sub(r"^name: .*$", "name: aer-reference-copy", text, count=1, flags=re.MULTILINE)
    (cwd / "device_profiles").mkdir(exist_ok=True)
    (cwd / "device_profiles" / "aer-reference-copy.yaml").write_text(text, encoding="utf-8")


def run_canary(profiles: tuple[str, ...], budget: str, seed: int = 1) -> CanaryRun:
    """Run the main-job command once in a temporary directory; return its wall time, peak memory and exit code."""
    with tempfile.TemporaryDirectory(prefix="qharness-canary-") as tmp:
        cwd = Path(tmp)
        _write_copy_profile(cwd)
        cmd = [sys.executable, "-m", "harness.cli", "run"]
        for p in profiles:
            cmd += ["--profile", p]
        cmd += ["--budget", budget, "--seed", str(seed), "--db", "canary.db", "--summary", "summary.json"]
        cmd += ["--report", "report"]
        use_time = os.access(GNU_TIME, os.X_OK)
        if use_time:
            cmd = [GNU_TIME, "-v", *cmd]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - t0
        if use_time:
            m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
            peak, source = (int(m.group(1)) / 1024 if m else float("nan")), "/usr/bin/time -v"
        else:
            peak, source = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, "getrusage (running max)"
        if proc.returncode not in (0, 1):
            tail = (proc.stderr or proc.stdout)[-800:]
            raise RuntimeError(f"canary {' '.join(profiles)} at {budget} exited {proc.returncode}: {tail}")
        return CanaryRun(wall, peak, proc.returncode, source)


def repeated(profiles: tuple[str, ...], budget: str, repeats: int) -> tuple[float, float, list[int], str]:
    """Median wall time (s), largest peak RSS (MiB), exit codes and memory source of `repeats` canary runs."""
    runs = [run_canary(profiles, budget) for _ in range(max(1, repeats))]
    wall = statistics.median(r.wall_s for r in runs)
    return wall, max(r.peak_mib for r in runs), sorted({r.exit_code for r in runs}), runs[0].memory_source


def run(
    budgets: tuple[str, ...] = ("quick", "standard", "release"),
    scaling_budget: str = "quick",
    counts: tuple[int, ...] = (1, 2, 4),
    repeats: int = 5,
) -> Section:
    """Time the canary at each budget and for 1, 2, 4 profiles (medians of `repeats` after a warm-up run)."""
    sec = Section("canary", "6. The whole canary: qharness run --report")
    run_canary(PROFILES[:1], "quick")  # warm-up: byte-code caches and the OS file cache, paid once
    results: dict[tuple[int, str], tuple[float, float, list[int], str]] = {}
    for budget in budgets:
        results[(1, budget)] = repeated(PROFILES[:1], budget, repeats)
    for n in counts:
        if (n, scaling_budget) not in results:
            results[(n, scaling_budget)] = repeated(PROFILES[:n], scaling_budget, repeats)
    ref = results[(1, budgets[0])][0] if budgets else float("nan")
    for budget in budgets:
        wall, peak, codes, _ = results[(1, budget)]
        sec.rows.append(
            row(
                f"aer-reference, {budget} budget: wall time (ratio = vs {budgets[0]}; exit {codes})",
                wall,
                ref,
                wall / ref,
                "s",
            )
        )
        sec.rows.append(
            row(
                f"aer-reference, {budget} budget: peak RSS (largest of the runs)",
                peak,
                float("nan"),
                float("nan"),
                "MiB",
            )
        )
    one = results[(1, scaling_budget)]
    for n in counts:
        if n == 1:
            continue
        wall, peak, codes, _ = results[(n, scaling_budget)]
        sec.rows.append(
            row(
                f"{n} profiles vs 1, {scaling_budget} budget: wall time (ratio = scaling, linear = {n}; exit {codes})",
                wall,
                one[0],
                wall / one[0],
                "s",
            )
        )
        sec.rows.append(
            row(f"{n} profiles vs 1, {scaling_budget} budget: peak RSS", peak, one[1], peak / one[1], "MiB")
        )
    source = next(iter(results.values()))[3]
    sec.notes = (
        "Command per run: `qharness run --profile P [...] --budget B --seed 1 --db canary.db --summary summary.json "
        "--report report` (as `python -m harness.cli run`) in a fresh temporary directory, so with a fresh results "
        "store: the baseline build is measured in the same session. Profiles in order: "
        + ", ".join(PROFILES)
        + " (the last a copy of aer-reference under another name in ./device_profiles of the run directory). "
        f"Wall times are medians of {repeats} runs after one warm-up run; peak memory is the largest over those "
        f"runs, from {source}. Exit code 1 means the gate found a regression (a verdict, not a broken run). The "
        "run measures the candidate and the in-session baseline of every profile, builds the report and exits."
    )
    if shutil.which("qharness") is None:
        sec.notes += " (The `qharness` script is not on PATH here; `python -m harness.cli` is the same command.)"
    return sec
