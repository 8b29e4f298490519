"""Gate statistics on aer-reference from the study (`harness.study`: records drawn from counts, real estimators,
real sequential gate): false alarms of an unchanged build, power against regressions, and bench time.

False alarms: 2.4.0 against 2.3.0 (identical physics) `runs_null` times at the quick and standard budgets, baseline
measured in the same session, and at standard against a stored baseline (measured once at the standard scale,
kept without replicates); the share of runs with any REGRESSION against alpha = 0.05.
Power: `runs_power` runs at `power_budget` (quick: the canary) against the shipped 2.5.0-rc1 and a 0.5% visibility
drop.
Efficiency: the coincidences per build the gate used until bell_fidelity's verdict (the scale of its deciding look,
the cap when undecided) against the one-metric fixed-sample limit with an estimated baseline: both builds measured
with n coincidences, a one-sided normal test of "worse by more than the tolerance" at alpha with the power the gate
reached, n = 2 ((z_{1-alpha} + z_power) sigma_1 / delta)^2; sigma_1 = bell_fidelity's per-coincidence SD (bootstrap
SE x sqrt(coincidences)), delta = true drop - tolerance (true values from the stand-in at 400x the standard scale).
"""

from __future__ import annotations

import math

from scipy.stats import norm

from benchmarks.common import Section, row, target_row

PROFILE = "aer-reference"
ALPHA = 0.05
BASELINE, CANDIDATE, RC = "2.3.0", "2.4.0", "2.5.0-rc1"


def _wilson(k: int, n: int) -> tuple[float, float]:
    from harness.analysis.intervals import wilson_interval

    low, high = wilson_interval(k, n, 0.95)
    return float(low), float(high)


def fixed_sample_size(sigma_1: float, delta: float, power: float, alpha: float = ALPHA) -> float:
    """Coincidences per build a one-sided two-sample normal test needs: 2 ((z_a + z_power) sigma_1 / delta)^2."""
    if delta <= 0 or power <= alpha:
        return float("nan")
    return float(2.0 * ((norm.ppf(1 - alpha) + norm.ppf(power)) * sigma_1 / delta) ** 2)


def _false_alarms(sec: Section, loaded: object, fam: list[str], runs: int, seed: int) -> None:
    from harness.gate import Verdict
    from harness.study import model, simulate

    base = model(loaded.effective(BASELINE), BASELINE)  # type: ignore[attr-defined]
    cand = model(loaded.effective(CANDIDATE), CANDIDATE)  # type: ignore[attr-defined]
    for budget, stored in (("quick", None), ("standard", None), ("standard", 1.0)):
        res = simulate(cand, base, fam, budget=budget, runs=runs, seed=seed, stored_scale=stored)
        k = res.count(Verdict.REGRESSION)
        low, high = _wilson(k, runs)
        where = "stored baseline" if stored else "baseline measured in the session"
        sec.rows.append(
            target_row(
                f"false alarms, unchanged {CANDIDATE} vs {BASELINE}, {budget}, {where}, {runs} runs "
                f"(Wilson 95% [{low:.4f}, {high:.4f}])",
                k / runs,
                ALPHA,
                k / runs / ALPHA,
                "share of runs with any REGRESSION (peer = alpha)",
                at_most=1.0,
            )
        )


def _scenarios(loaded: object) -> dict[str, tuple[object, str]]:
    ref = loaded.effective(CANDIDATE)  # type: ignore[attr-defined]
    vis = ref.model_copy(update={"source": ref.source.model_copy(update={"visibility": ref.source.visibility * 0.995})})
    return {f"shipped {RC}": (loaded.effective(RC), RC), "visibility x0.995": (vis, CANDIDATE)}  # type: ignore[attr-defined]


def _power_and_efficiency(sec: Section, loaded: object, fam: list[str], runs: int, seed: int, budget: str) -> list[str]:
    from harness.gate import Verdict
    from harness.physics import profile_rates
    from harness.profiles import BUDGET_CAPS, BUDGETS
    from harness.study import Side, model, simulate

    first = BUDGETS[budget]
    cap = first * BUDGET_CAPS[budget]
    base_model = model(loaded.effective(BASELINE), BASELINE)  # type: ignore[attr-defined]
    ref = loaded.effective(CANDIDATE)  # type: ignore[attr-defined]
    per_unit = 9 * profile_rates(ref).coincidence_hz * ref.measurement.integration_time_s
    unit = Side(base_model, ["bell_fidelity"], 1.0, seed, 0).estimates()["bell_fidelity"]
    sigma_1 = (unit.ci_high - unit.ci_low) / 3.92 * math.sqrt(unit.n)
    truth = Side(base_model, ["bell_fidelity"], 400.0, seed, 1).estimates()["bell_fidelity"].value
    tol = ref.gate_tolerances()["bell_fidelity"].margin(truth)
    notes = []
    for name, (prof, build) in _scenarios(loaded).items():
        cand = model(prof, build)
        res = simulate(cand, base_model, fam, budget=budget, runs=runs, seed=seed + 1)
        k = res.count(Verdict.REGRESSION)
        low, high = _wilson(k, runs)
        sec.rows.append(
            row(
                f"power: {name}, {budget}, {runs} runs (Wilson 95% [{low:.3f}, {high:.3f}])",
                k / runs,
                float("nan"),
                float("nan"),
                "share of runs with any REGRESSION",
            )
        )
        scales = []
        for o in res.outcomes:
            c = o.comparisons["bell_fidelity"]
            scales.append(min(cap, first * 2 ** (c.look - 1)) if c.look else cap)
        used = sum(scales) / len(scales) * per_unit
        drop = truth - Side(cand, ["bell_fidelity"], 400.0, seed, 1).estimates()["bell_fidelity"].value
        p_bell = min(res.count(Verdict.REGRESSION, "bell_fidelity") / runs, 1 - 0.5 / runs)
        limit = fixed_sample_size(sigma_1, drop - tol, p_bell)
        sec.rows.append(
            target_row(
                f"coincidences per build to bell_fidelity's verdict vs fixed-sample limit: {name}",
                used,
                limit,
                used / limit,
                "coincidences (ratio = gate / limit)",
                at_most=1.5,
            )
        )
        notes.append(
            f"- {name}: true bell_fidelity drop {drop:.5f} (tolerance {tol:.4g}); bell_fidelity REGRESSION in "
            f"{p_bell:.3f} of runs; mean scale to its verdict {used / per_unit:.2f} standard units."
        )
    return notes


def run(runs_null: int = 500, runs_power: int = 200, seed: int = 11, power_budget: str = "quick") -> Section:
    """Simulate the gate; return false-alarm rates, powers and the coincidence efficiency rows."""
    from harness.plan import suite_family
    from harness.profiles import load_profile

    loaded = load_profile(PROFILE)
    fam = suite_family(loaded.effective(CANDIDATE))
    sec = Section("gate", "5. Gate statistics (the study: counts, real estimators, real sequential gate)")
    _false_alarms(sec, loaded, fam, runs_null, seed)
    notes = _power_and_efficiency(sec, loaded, fam, runs_power, seed, power_budget)
    sec.notes = (__doc__ or "").split("\n\n", 1)[0].strip() + "\n\n" + "\n".join(notes)
    return sec
