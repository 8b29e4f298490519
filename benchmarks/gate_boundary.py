"""Boundary table: one metric gated alone at its tolerance, false REGRESSION and false PASS per budget.

A metric whose candidate is truly worse than the baseline by exactly its tolerance sits on the boundary of both
one-sided tests, where each test's error is largest. `harness.gate.simulate.alone` runs it through the real
`SequentialGate` over each budget's looks (both builds re-measured, counts pooled, the looks doubling up to the
cap), `runs` times per budget. Each error rate should be at most alpha; the Wilson 95% upper bound is reported.
The tolerance is 6 standard errors of the difference at the cap (any value the budget resolves gives the same z
paths). A second pair of rows per budget shows what the same runs would give with a fixed 1.645 boundary at every
look (the optimal stopping the gate corrects).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import norm

from benchmarks.common import Section, target_row

ALPHA = 0.05


def _wilson(k: int, n: int) -> tuple[float, float]:
    from harness.analysis.intervals import wilson_interval

    low, high = wilson_interval(k, n, 0.95)
    return float(low), float(high)


def _size(first: float, cap: float, seed: int, paths: int = 1_000_000) -> tuple[float, float]:
    """Sizes of the REGRESSION and PASS boundaries alone over `paths` pooled z paths (what the gate crosses)."""
    from harness.gate.design import look_bounds
    from harness.gate.simulate import pooled_paths
    from harness.stats.sequential import Spending

    tol = 1.0
    scales, pc, pb, se = pooled_paths(tol, first=first, cap=cap, runs=paths, seed=seed)
    z_pass = (tol + (pc - pb)) / (se * math.sqrt(2.0))
    bounds = np.asarray(look_bounds(tuple(s / cap for s in scales), ALPHA, Spending.POCOCK, True, True))
    return float(np.mean((-z_pass >= bounds).any(1))), float(np.mean((z_pass >= bounds).any(1)))


def _naive(pc: np.ndarray, pb: np.ndarray, se: np.ndarray, tol: float) -> tuple[float, float]:
    """Rates of REGRESSION and PASS when every look is tested at the fixed-sample 1.645 (first crossing wins)."""
    z_pass = (tol + (pc - pb)) / (se * math.sqrt(2.0))
    c = norm.isf(ALPHA)
    reg, ok = -z_pass >= c, z_pass >= c
    first_reg = np.where(reg.any(1), reg.argmax(1), 99)
    first_ok = np.where(ok.any(1), ok.argmax(1), 99)
    return float(np.mean((first_reg < 99) & (first_reg <= first_ok))), float(np.mean(first_ok < first_reg))


def run(runs: int = 20_000, seed: int = 11) -> Section:
    """Return the boundary table rows for quick, standard and release."""
    from harness.gate.simulate import alone, error_rates, pooled_paths
    from harness.profiles import BUDGET_CAPS, BUDGETS

    sec = Section("gate_boundary", "Gate boundary table: one metric alone at its tolerance (harness.gate.simulate)")
    for i, budget in enumerate(BUDGETS):
        first, cap = BUDGETS[budget], BUDGETS[budget] * BUDGET_CAPS[budget]
        tol = 6.0 * math.sqrt(2.0 / cap)
        verdicts = alone(tol, tol, first=first, cap=cap, runs=runs, seed=seed + i)
        reg, ok = error_rates(verdicts)
        looks = len(pooled_paths(tol, first=first, cap=cap, runs=1, seed=0)[0])
        for label, rate in (("false REGRESSION", reg), ("false PASS", ok)):
            low, high = _wilson(round(rate * runs), runs)
            sec.rows.append(
                target_row(
                    f"{label}, {budget} ({looks} looks max), {runs} runs; Wilson 95% [{low:.4f}, {high:.4f}] "
                    "(target: consistent with <= alpha, i.e. Wilson lower bound <= alpha)",
                    rate,
                    ALPHA,
                    low / ALPHA,
                    "share of runs (peer = alpha; ratio = Wilson lower / alpha)",
                    at_most=1.0,
                )
            )
        size_reg, size_pass = _size(first, cap, seed + 100 + i)
        _, pc, pb, se = pooled_paths(tol, first=first, cap=cap, runs=runs, seed=seed + i)
        naive_reg, naive_ok = _naive(pc, pb, se, tol)
        sec.notes += (
            f"- {budget}: the boundaries alone over 10^6 z paths: REGRESSION {size_reg:.5f}, PASS {size_pass:.5f} "
            f"(Monte Carlo SE 0.0002); the gate's runs tested at 1.645 at every look instead: false REGRESSION "
            f"{naive_reg:.4f}, false PASS {naive_ok:.4f}.\n"
        )
    sec.notes = (__doc__ or "").split("\n\n", 1)[1].strip() + "\n\n" + sec.notes
    return sec
