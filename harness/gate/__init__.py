"""The regression gate: compares candidate estimates with baseline estimates under group-sequential tests.

The gate is domain-blind: it sees Estimates (value, interval, replicates, counts, n, unit, direction), tolerances
and, per metric, a plan (which metrics share counts, which are primary, the cap of its looks). Modules:
`design` (spending, boundaries, power), `statistic` (one look of one metric), `maxt` (max-T within a count
group), `family` (primaries, secondaries, aliases, the closed test), `looks` (the family over looks, frozen
verdicts), `comparison` (the answer per metric). `evaluate` gates a family at a single look (a fixed-sample
comparison, e.g. of two stored runs).
"""

from __future__ import annotations

from harness.gate.comparison import Comparison, error_comparison, overall_verdict
from harness.gate.design import GateDesign
from harness.gate.looks import MetricPlan, SequentialGate, run_looks
from harness.metrics import Estimate, Tolerance, Verdict, alias_of, is_known_metric, metric_spec, primary_metrics
from harness.stats import multiplicity

__all__ = [
    "Comparison",
    "GateDesign",
    "MetricPlan",
    "SequentialGate",
    "Tolerance",
    "Verdict",
    "compare_one",
    "default_plans",
    "error_comparison",
    "evaluate",
    "holm",
    "overall_verdict",
    "run_looks",
]


def holm(p_values: list[float]) -> list[float]:
    """Return Holm step-down adjusted p-values (same order as given, monotone, capped at 1)."""
    return list(multiplicity.holm(p_values))


def default_plans(names: list[str], tolerances: dict[str, Tolerance]) -> dict[str, MetricPlan]:
    """Return single-look plans from the metric registry: count group = protocol, primaries, aliases, timing."""
    primary = set(primary_metrics(names))
    plans = {}
    for name in names:
        spec = metric_spec(name) if is_known_metric(name) else None
        plans[name] = MetricPlan(
            tolerance=tolerances.get(name),
            group=spec.protocol if spec else name,
            primary=name in primary,
            alias_of=alias_of(name),
            timing=spec.timing if spec else None,
            informational=spec.informational if spec else None,
        )
    return plans


def evaluate(
    candidates: dict[str, Estimate | Exception],
    baselines: dict[str, Estimate],
    tolerances: dict[str, Tolerance],
    alpha: float = 0.05,
    confidence: float = 0.95,
    *,
    plans: dict[str, MetricPlan] | None = None,
) -> dict[str, Comparison]:
    """Return a comparison per candidate metric from one look at both builds (the last look: all alpha is spent).

    Plans default to the metric registry (`default_plans`); a metric missing from `tolerances` is NOT_GATED.
    Baselines without a candidate are ignored.
    """
    design = GateDesign(alpha=alpha, confidence=confidence)
    gate = SequentialGate(design, plans or default_plans(list(candidates), tolerances))
    return gate.look(candidates, baselines, final=True)


def compare_one(
    name: str,
    candidate: Estimate,
    baseline: Estimate | None,
    tolerance: Tolerance | None,
    *,
    alpha: float = 0.05,
    confidence: float = 0.95,
) -> Comparison:
    """Return the comparison of one metric gated alone (a family of one, tested at the full alpha)."""
    baselines = {} if baseline is None else {name: baseline}
    plans = {name: MetricPlan(tolerance=tolerance, primary=True)}
    return evaluate({name: candidate}, baselines, {}, alpha, confidence, plans=plans)[name]
