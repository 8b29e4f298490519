"""Gate statistics on aer-reference from the study (`harness.study`: records drawn from counts, real estimators,
real sequential gate, baseline 2.3.0 measured in the same session): the quick canary, false alarms, power and
bench time.

Canary and false alarms: the unchanged 2.4.0 (physics identical to 2.3.0) `runs_null` times at `budget`: the share
of runs whose overall verdict is PASS (target >= 0.95) and the share with any REGRESSION (target <= alpha = 0.05,
Wilson upper bound shown). The shipped 2.5.0-rc1 `runs_rc` times: the share of runs REGRESSION (target >= 0.99).
Power: source visibility x0.99 of 2.4.0, `runs_vis` runs. Source visibility x0.995 lowers bell_fidelity by 0.0034,
within the shipped tolerance (0.0036), where REGRESSION is the wrong verdict; it is measured at the tolerance the
first figures of the gate used (0.002) and at the release budget, which gates it (`runs_vis` runs).
Efficiency: the coincidences per build the gate used until bell_fidelity's verdict (the scale of its deciding look,
the cap when undecided) against the one-metric fixed-sample limit with an estimated baseline: both builds measured
with n coincidences, a one-sided normal test of "worse by more than the tolerance" at alpha with the power the gate
reached on bell_fidelity (capped at 1 - 0.5 / runs), n = 2 ((z_{1-alpha} + z_power) sigma_1 / delta)^2; sigma_1 =
bell_fidelity's per-coincidence SD (bootstrap SE x sqrt(coincidences)), delta = true drop - tolerance (true values
from the stand-in at 400x the standard scale). A drop within the tolerance has no such limit: REGRESSION is then
the wrong verdict, and its rate is the false-REGRESSION rate.
Runs are split over `jobs` processes; run i draws from (seed, i) alone, so the split does not change the numbers.
"""

from __future__ import annotations

import functools
import math
from concurrent.futures import ProcessPoolExecutor

from scipy.stats import norm

from benchmarks.common import Section, row, target_row

PROFILE = "aer-reference"
ALPHA = 0.05
BASELINE, CANDIDATE, RC = "2.3.0", "2.4.0", "2.5.0-rc1"
UNCHANGED = f"unchanged {CANDIDATE}"


def _wilson(k: int, n: int) -> tuple[float, float]:
    from harness.analysis.intervals import wilson_interval

    low, high = wilson_interval(k, n, 0.95)
    return float(low), float(high)


def fixed_sample_size(sigma_1: float, delta: float, power: float, alpha: float = ALPHA) -> float:
    """Coincidences per build a one-sided two-sample normal test needs: 2 ((z_a + z_power) sigma_1 / delta)^2."""
    if delta <= 0 or power <= alpha:
        return float("nan")
    return float(2.0 * ((norm.ppf(1 - alpha) + norm.ppf(power)) * sigma_1 / delta) ** 2)


TIGHT = 0.002  # bell_fidelity's tolerance in the gate's first figures, at which visibility x0.995 regresses


def _profiles(budget: str) -> dict[str, tuple[object, str, str]]:
    """Scenario name -> (effective profile, build, budget) of the candidate."""
    from harness.profiles import load_profile

    loaded = load_profile(PROFILE)
    ref = loaded.effective(CANDIDATE)
    out = {UNCHANGED: (ref, CANDIDATE, budget), f"shipped {RC}": (loaded.effective(RC), RC, budget)}
    for factor, tol, at in ((0.99, None, budget), (0.995, TIGHT, "release")):
        src = ref.source.model_copy(update={"visibility": ref.source.visibility * factor})
        prof = ref.model_copy(update={"source": src})
        name = f"visibility x{factor:g}"
        if tol is not None:
            spec = prof.tolerances["bell_fidelity"].model_copy(update={"absolute": tol})
            prof = prof.model_copy(update={"tolerances": {**prof.tolerances, "bell_fidelity": spec}})
            name += f", bell_fidelity tolerance {tol:g}, {at} budget"
        out[name] = (prof, CANDIDATE, at)
    return out


def _chunk(task: tuple) -> tuple[str, list[tuple[str, dict[str, tuple[str, int]]]]]:
    """Simulate runs first .. first + n - 1 of one scenario: per run the overall verdict, per metric (verdict, look)."""
    from harness.plan import suite_family
    from harness.profiles import load_profile
    from harness.study import model, simulate

    name, budget, first, n, seed = task
    prof, build, budget = _profiles(budget)[name]
    base = model(load_profile(PROFILE).effective(BASELINE), BASELINE)
    res = simulate(model(prof, build), base, suite_family(prof), budget=budget, runs=n, seed=seed, first_run=first)
    return name, [
        (str(o.verdict), {m: (str(c.verdict), c.look) for m, c in o.comparisons.items()}) for o in res.outcomes
    ]


def _simulate_all(plan: dict[str, int], budget: str, seed: int, jobs: int) -> dict[str, list]:
    """Every scenario's runs, split into chunks over `jobs` processes (the same outcomes as one process)."""
    size = 25
    tasks = [(name, budget, i, min(size, n - i), seed) for name, n in plan.items() for i in range(0, n, size)]
    out: dict[str, list] = {name: [] for name in plan}
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as pool:
            done = list(pool.map(_chunk, tasks))
    else:
        done = [_chunk(t) for t in tasks]
    for name, runs in done:
        out[name] += runs
    return out


def _share_row(figure: str, k: int, runs: int, target: float, *, at_least: bool) -> dict:
    low, high = _wilson(k, runs)
    rate = k / runs
    bound = {"at_least": 1.0} if at_least else {"at_most": 1.0}
    return target_row(
        f"{figure}, {runs} runs (Wilson 95% [{low:.4f}, {high:.4f}])",
        rate,
        target,
        rate / target,
        "share of runs (peer = target)",
        **bound,
    )


@functools.cache
def _reference(budget: str, seed: int) -> dict[str, float]:
    """bell_fidelity's per-coincidence SD and true value, coincidences per standard unit, the budget's first look
    and cap."""
    from harness.physics import profile_rates
    from harness.profiles import BUDGET_CAPS, BUDGETS, load_profile
    from harness.study import Side, model

    loaded = load_profile(PROFILE)
    base_model = model(loaded.effective(BASELINE), BASELINE)
    ref = loaded.effective(CANDIDATE)
    unit = Side(base_model, ["bell_fidelity"], 1.0, seed, 0).estimates()["bell_fidelity"]
    truth = Side(base_model, ["bell_fidelity"], 400.0, seed, 1).estimates()["bell_fidelity"].value
    return {
        "per_unit": 9 * profile_rates(ref).coincidence_hz * ref.measurement.integration_time_s,
        "sigma_1": (unit.ci_high - unit.ci_low) / 3.92 * math.sqrt(unit.n),
        "truth": truth,
        "first": BUDGETS[budget],
        "cap": BUDGETS[budget] * BUDGET_CAPS[budget],
    }


def _efficiency(name: str, runs: list, budget: str, seed: int) -> tuple[dict, str]:
    """The coincidences-to-verdict row of one scenario and its note."""
    from harness.study import Side, model

    prof, build, budget = _profiles(budget)[name]
    ref = _reference(budget, seed)
    tol = prof.gate_tolerances()["bell_fidelity"].margin(ref["truth"])
    true = Side(model(prof, build), ["bell_fidelity"], 400.0, seed, 1).estimates()["bell_fidelity"].value
    drop = ref["truth"] - true
    looks = [r[1]["bell_fidelity"][1] for r in runs]
    scales = [min(ref["cap"], ref["first"] * 2 ** (look - 1)) if look else ref["cap"] for look in looks]
    used = sum(scales) / len(scales) * ref["per_unit"]
    k = sum(r[1]["bell_fidelity"][0] == "REGRESSION" for r in runs)
    p_bell = min(k / len(runs), 1 - 0.5 / len(runs))
    limit = fixed_sample_size(ref["sigma_1"], drop - tol, p_bell)
    figure = f"coincidences per build to bell_fidelity's verdict vs fixed-sample limit: {name}"
    if drop <= tol:
        out = row(figure, used, limit, limit, "coincidences (the drop is within the tolerance: no limit)")
    elif math.isnan(limit):
        out = row(figure, used, limit, limit, "coincidences (bell_fidelity's power <= alpha: no limit)")
    else:
        out = target_row(figure, used, limit, used / limit, "coincidences (ratio = gate / limit)", at_most=1.5)
    note = (
        f"- {name}: true bell_fidelity drop {drop:.5f} (tolerance {tol:.4g}); bell_fidelity REGRESSION in "
        f"{k}/{len(runs)} runs; mean scale to its verdict {used / ref['per_unit']:.3f} standard units."
    )
    return out, note


def _verdict_note(name: str, runs: list) -> str:
    overall: dict[str, int] = {}
    per: dict[str, dict[str, int]] = {}
    for verdict, metrics in runs:
        overall[verdict] = overall.get(verdict, 0) + 1
        for m, (v, _) in metrics.items():
            if v in ("REGRESSION", "INCONCLUSIVE"):
                per.setdefault(v, {}).setdefault(m, 0)
                per[v][m] += 1
    return f"- {name}: overall verdicts {overall}; metrics REGRESSION/INCONCLUSIVE in runs: {per or 'none'}."


def run(
    runs_null: int = 500,
    runs_rc: int = 200,
    runs_vis: int = 100,
    budget: str = "quick",
    seed: int = 11,
    jobs: int = 2,
) -> Section:
    """Simulate the gate; return the canary, false-alarm, power and coincidence-efficiency rows."""
    names = list(_profiles(budget))
    plan = dict(zip(names, (runs_null, runs_rc, runs_vis, runs_vis), strict=True))
    outcomes = _simulate_all(plan, budget, seed, jobs)
    sec = Section("gate", f"Gate statistics at the {budget} budget (the study: counts, real estimators, real gate)")
    null, rc = outcomes[UNCHANGED], outcomes[names[1]]
    passed = sum(v == "PASS" for v, _ in null)
    alarms = sum(v == "REGRESSION" for v, _ in null)
    caught = sum(v == "REGRESSION" for v, _ in rc)
    sec.rows.append(_share_row(f"canary: {UNCHANGED} vs {BASELINE} PASS", passed, len(null), 0.95, at_least=True))
    sec.rows.append(_share_row(f"false alarms: {UNCHANGED} any REGRESSION", alarms, len(null), ALPHA, at_least=False))
    sec.rows.append(_share_row(f"canary: {names[1]} REGRESSION", caught, len(rc), 0.99, at_least=True))
    notes = [_verdict_note(name, outcomes[name]) for name in names]
    for name in names[1:]:
        if name != names[1]:
            k = sum(v == "REGRESSION" for v, _ in outcomes[name])
            low, high = _wilson(k, len(outcomes[name]))
            figure = f"power: {name}, {len(outcomes[name])} runs (Wilson 95% [{low:.3f}, {high:.3f}])"
            sec.rows.append(row(figure, k / len(outcomes[name]), math.nan, math.nan, "share of runs REGRESSION"))
        eff, note = _efficiency(name, outcomes[name], budget, seed)
        sec.rows.append(eff)
        notes.append(note)
    sec.notes = (__doc__ or "").split("\n\n", 1)[1].strip() + "\n\n" + "\n".join(notes)
    return sec
