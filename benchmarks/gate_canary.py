"""Canary table: the whole aer-reference family at the quick budget, unchanged 2.4.0 and the shipped 2.5.0-rc1.

`harness.study.simulate` draws each run's records from counts (the stand-in's exact outcome probabilities, Poisson
shots, multinomial outcomes, coincidences with their singles, binomial logical failures), analyses them with the
real estimators (joint bootstrap replicates) and gates them with the real `SequentialGate`, the session's plans,
looks and re-measurement rule; the baseline 2.3.0 is measured in the same session. Targets: 2.4.0 PASS in at least
95% of the runs, 2.5.0-rc1 REGRESSION in at least 99%.
"""

from __future__ import annotations

from collections import Counter

from benchmarks.common import Section, target_row

PROFILE = "aer-reference"
BASELINE = "2.3.0"


def _wilson(k: int, n: int) -> tuple[float, float]:
    from harness.analysis.intervals import wilson_interval

    low, high = wilson_interval(k, n, 0.95)
    return float(low), float(high)


def run(runs: int = 200, budget: str = "quick", seed: int = 1) -> Section:
    """Return the canary rows: P(PASS) of the unchanged build, P(REGRESSION) of the shipped regression."""
    from harness.gate import Verdict
    from harness.plan import suite_family
    from harness.profiles import load_profile
    from harness.study import model, simulate

    loaded = load_profile(PROFILE)
    base = model(loaded.effective(BASELINE), BASELINE)
    sec = Section("gate_canary", f"Gate canary: aer-reference at the {budget} budget (harness.study, from counts)")
    notes = []
    for build, verdict, target in (("2.4.0", Verdict.PASS, 0.95), ("2.5.0-rc1", Verdict.REGRESSION, 0.99)):
        prof = loaded.effective(build)
        res = simulate(model(prof, build), base, suite_family(prof), budget=budget, runs=runs, seed=seed)
        k = res.count(verdict)
        low, high = _wilson(k, runs)
        sec.rows.append(
            target_row(
                f"{build} vs {BASELINE}: share of runs {verdict}, {runs} seeded runs "
                f"(Wilson 95% [{low:.3f}, {high:.3f}])",
                k / runs,
                target,
                k / runs / target,
                "share of runs (peer = target)",
                at_least=1.0,
            )
        )
        overall = Counter(str(o.verdict) for o in res.outcomes)
        undecided = {m: n for m, n in res.per_metric(Verdict.INCONCLUSIVE).items() if n}
        regressed = {m: n for m, n in res.per_metric(Verdict.REGRESSION).items() if n}
        notes.append(
            f"- {build}: overall verdicts {dict(overall)}; runs with the metric INCONCLUSIVE {undecided or 'none'}; "
            f"with the metric REGRESSION {regressed or 'none'}."
        )
    sec.notes = (__doc__ or "").split("\n\n", 1)[1].strip() + "\n\n" + "\n".join(notes)
    return sec
