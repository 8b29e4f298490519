"""From a profile to the gate's plans: each metric's tolerance, count group, looks and role, and the counts of
binomial metrics that the gate tests exactly. The session and the study gate with the same plans."""

from __future__ import annotations

from dataclasses import replace

from harness.gate.looks import MetricPlan
from harness.metrics import Estimate, alias_of, metric_spec, primary_metrics
from harness.profiles import BUDGET_CAPS, BUDGETS, Profile
from harness.protocols import protocols_for


def describe_budget(scale: float) -> str:
    """Name the smallest budget whose cap reaches `scale` (standard budget units), else the multiple needed."""
    for name in BUDGETS:
        if BUDGETS[name] * BUDGET_CAPS[name] >= scale * (1.0 - 1e-9):
            return f"budget {name}"
    standard = BUDGETS["standard"] * BUDGET_CAPS["standard"]
    return f"{scale / standard:.3g}x the standard budget (more than release)"


def gate_plans(profile: Profile, family: set[str], budget: str, *, fixed_baseline: bool) -> dict[str, MetricPlan]:
    """Each metric's gate plan: tolerance, count group (its protocol), the budget's cap, kind of looks, primary."""
    tolerances = profile.gate_tolerances()
    chosen = profile.gate.primary if profile.gate is not None else None
    primary = set(chosen) if chosen is not None else set(primary_metrics(sorted(family)))
    cap = BUDGETS[budget] * BUDGET_CAPS[budget]
    plans = {}
    for proto in protocols_for(family):
        for m in (m for m in family if proto.yields(m)):
            plans[m] = MetricPlan(
                tolerance=tolerances.get(m),
                group=proto.name,
                max_scale=cap,
                cumulative=not proto.supersedes,
                baseline_fixed=fixed_baseline,
                timing=metric_spec(m).timing,
                informational=metric_spec(m).informational,
                primary=m in primary,
                alias_of=alias_of(m),
                resolve=True,
            )
    return plans


def with_binomial(found: dict, record: object) -> dict:
    """Estimates with the counts (failures, shots) of each logical success that rests on one memory run.

    A repetition code's logical success is one binomial share, so the gate can test it exactly (valid at zero
    failures). A surface code's headline adds two memories' failure rates: it is no single binomial and keeps its
    interval.
    """
    reports = getattr(record, "reports", None)
    if not isinstance(reports, dict):
        return found
    out = dict(found)
    for code, report in reports.items():
        name = f"logical_success_{code}"
        memories = getattr(report, "memories", ())
        if isinstance(out.get(name), Estimate) and len(memories) == 1 and memories[0].shots > 0:
            out[name] = replace(out[name], binomial=(int(memories[0].errors), int(memories[0].shots)))
    return out
