"""`python -m benchmarks`: run every benchmark section and write benchmarks/RESULTS.md.

Options: --only a,b / --skip a,b (section keys: see SECTIONS), --smoke (tiny sizes, for checking the runner itself;
its numbers are not results) and --out PATH. Sections not run keep their block of the existing file (a smoke run
starts from an empty file), so one section can be re-measured on its own.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from benchmarks import results_file
from benchmarks.common import BenchmarkSetupError, Section, format_table, machine_info

DEFAULT_OUT = Path(__file__).resolve().parent / "RESULTS.md"


def _tomography(smoke: bool) -> Section:
    from benchmarks import tomography

    return tomography.run(shots=200, repeats=1) if smoke else tomography.run(shots=2000, repeats=7)


def _bell(smoke: bool) -> Section:
    from benchmarks import e2e_bell

    return e2e_bell.run(repeats=1, budget_scale=0.05) if smoke else e2e_bell.run(repeats=5)


def _qec(smoke: bool) -> Section:
    from benchmarks import qec

    if smoke:
        return qec.run(shots={3: 20_000}, aer_shots=200, repeats=1)
    return qec.run(repeats=5)


def _capacities(smoke: bool) -> Section:
    from benchmarks import capacities

    return capacities.run(n_channels=3, repeats=1) if smoke else capacities.run(n_channels=50, repeats=7)


def _gate(smoke: bool) -> Section:
    from benchmarks import gate_stats

    return gate_stats.run(runs_null=2, runs_rc=2, runs_vis=2, jobs=1) if smoke else gate_stats.run()


def _gate_boundary(smoke: bool) -> Section:
    from benchmarks import gate_boundary

    return gate_boundary.run(runs=200) if smoke else gate_boundary.run()


def _canary(smoke: bool) -> Section:
    from benchmarks import canary

    if smoke:
        return canary.run(budgets=("quick",), counts=(1,), repeats=1)
    return canary.run()


def _mle(smoke: bool) -> Section:
    from benchmarks import mle

    if smoke:
        return mle.run(replicates=4, n_boot=10, n_states=2, repeats=1)
    return mle.run()


def _estimators(smoke: bool) -> Section:
    from benchmarks import estimator_bias

    return estimator_bias.run(reps=20, n_boot=50, jobs=1) if smoke else estimator_bias.run()


def _sinter(smoke: bool) -> Section:
    from benchmarks import sinter_qec

    return sinter_qec.run(shots=100_000, repeats=1, max_wait_s=0) if smoke else sinter_qec.run()


def _store(smoke: bool) -> Section:
    from benchmarks import store_load

    return store_load.run(2, 3, 50, ("sqlite",)) if smoke else store_load.run()


def _interleave(smoke: bool) -> Section:
    from benchmarks import interleave

    return interleave.run(sessions=2, blocks=2, budget="quick") if smoke else interleave.run()


def _drift_baseline(smoke: bool) -> Section:
    from benchmarks import drift_baseline

    return drift_baseline.run(trials=3) if smoke else drift_baseline.run(trials=200)


def _drift_creep(smoke: bool) -> Section:
    from benchmarks import drift_creep

    return drift_creep.run(histories=1) if smoke else drift_creep.run(histories=100)


SECTIONS: dict[str, Callable[[bool], Section]] = {
    "tomography": _tomography,
    "bell": _bell,
    "qec": _qec,
    "capacities": _capacities,
    "gate": _gate,
    "gate_boundary": _gate_boundary,
    "canary": _canary,
    "mle": _mle,
    "estimators": _estimators,
    "sinter": _sinter,
    "store": _store,
    "interleave": _interleave,
    "drift_baseline": _drift_baseline,
    "drift_creep": _drift_creep,
}


def run_section(key: str, smoke: bool = False) -> Section:
    """Run one section by key; a missing peer or a failure becomes the section's `error`, timed in s."""
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():
            # Peers' deprecation chatter is not a result; it would drown the per-section progress lines.
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", PendingDeprecationWarning)
            sec = SECTIONS[key](smoke)
    except BenchmarkSetupError as exc:
        sec = Section(key, key, error=str(exc))
    except Exception as exc:
        sec = Section(key, key, error=f"{type(exc).__name__}: {exc}")
    sec.seconds = time.perf_counter() - t0
    return sec


def _keys(text: str | None, option: str) -> list[str]:
    if not text:
        return []
    keys = [k.strip() for k in text.split(",") if k.strip()]
    bad = [k for k in keys if k not in SECTIONS]
    if bad:
        raise SystemExit(f"python -m benchmarks: {option} {','.join(bad)}: unknown section; use {', '.join(SECTIONS)}")
    return keys


def main(argv: list[str] | None = None) -> int:
    """Run the selected sections, print per-section times, write the results file; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated sections to run")
    parser.add_argument("--skip", help="comma-separated sections to leave out")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (checks the runner; not results)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results file (default benchmarks/RESULTS.md)")
    args = parser.parse_args(argv)
    try:
        only, skip = _keys(args.only, "--only"), _keys(args.skip, "--skip")
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        return 2
    keys = [k for k in (only or SECTIONS) if k not in skip]
    t0 = time.perf_counter()
    blocks = []
    failed = False
    for key in keys:
        print(f"[{key}] running ...", file=sys.stderr, flush=True)
        sec = run_section(key, smoke=args.smoke)
        blocks.append(results_file.block_of(sec, machine_info()))
        status = f"NOT RUN: {sec.error}" if sec.error else f"{len(sec.rows)} figures"
        failed |= sec.error is not None
        print(f"[{key}] {sec.seconds:.1f} s, {status}", file=sys.stderr, flush=True)
        if not sec.error:
            print(sec.table or format_table(sec.rows), flush=True)
    total = time.perf_counter() - t0
    # Read the file only now: another section may have been re-measured (and written) while these ran.
    kept = [] if args.smoke or not args.out.exists() else results_file.parse(args.out.read_text(encoding="utf-8"))
    merged = results_file.merge(kept, blocks, list(SECTIONS))
    args.out.write_text(results_file.render(merged, smoke=args.smoke), encoding="utf-8")
    print(f"total {total:.0f} s; wrote {args.out}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
