"""The regression gate: compares candidate estimates with baseline estimates under one-sided tests.

The gate is domain-blind: it sees only Estimates (value, interval, n, unit, direction) and tolerances.
A family of metrics is tested together and the p-values are Holm-adjusted, so the family-wise chance
of a false REGRESSION on an unchanged build stays at or below alpha.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

import numpy as np

from harness.metrics import Direction, Estimate, Tolerance, format_interval
from harness.stats import multiplicity


class Verdict(StrEnum):
    """Outcome of comparing one metric (or a family) with the baseline."""

    PASS = "PASS"
    REGRESSION = "REGRESSION"
    IMPROVED = "IMPROVED"
    INCONCLUSIVE = "INCONCLUSIVE"
    NO_BASELINE = "NO_BASELINE"
    ERROR = "ERROR"


@lru_cache(maxsize=64)
def _z(p: float) -> float:
    """Return the standard normal quantile at probability p."""
    from scipy.stats import norm

    return float(norm.ppf(p))


def _sf(x: float) -> float:
    """Return P(Z > x) for a standard normal Z."""
    return 0.5 * math.erfc(x / math.sqrt(2.0))


def _fmt(x: float) -> str:
    """Return a number formatted for a one-line message (4 decimals, scientific when tiny or huge)."""
    if not math.isfinite(x):
        return str(x)
    if x != 0.0 and (abs(x) >= 1e5 or abs(x) < 1e-4):
        return f"{x:.3e}"
    return f"{x:.4f}"


def _fmt_p(p: float | None) -> str:
    """Return a p-value formatted with two significant digits."""
    return "n/a" if p is None else f"{p:.2g}"


@dataclass(frozen=True)
class Comparison:
    """The comparison of one metric of a candidate build with the baseline build."""

    name: str
    candidate: Estimate | None
    baseline: Estimate | None
    delta: Estimate | None  # candidate - baseline, interval at the family's confidence
    tolerance: float
    p_regression: float | None
    p_regression_adjusted: float | None
    verdict: Verdict
    error: str | None = None
    p_improved: float | None = None
    p_improved_adjusted: float | None = None
    alpha: float = 0.05

    def worse_is(self) -> str:
        """Return 'worse-is-lower' or 'worse-is-higher' for the metric's direction."""
        est = self.candidate or self.baseline
        if est is None:
            return "worse-is-unknown"
        return "worse-is-lower" if est.direction == Direction.HIGHER else "worse-is-higher"

    def message(self, candidate_build: str, baseline_build: str) -> str:
        """Return a one-line human summary: both builds with intervals, delta, tolerance and significance."""
        head = f"{self.name} {self.verdict}:"
        if self.verdict == Verdict.ERROR or self.candidate is None:
            return f"{head} {candidate_build} could not be measured: {self.error or 'no estimate'}"
        c = self.candidate
        unit = f" {c.unit}" if c.unit else ""
        cand = f"{candidate_build} {format_interval(c.value, c.ci_low, c.ci_high, _fmt)}{unit}"
        if self.baseline is None or self.delta is None:
            return f"{head} {cand}; no baseline measurement of build {baseline_build} to compare with"
        b, d = self.baseline, self.delta
        base = f"baseline {baseline_build} {format_interval(b.value, b.ci_low, b.ci_high, _fmt)}{unit}"
        delta = f"delta {format_interval(d.value, d.ci_low, d.ci_high, _fmt)}"
        tol = f"(tolerance {self.tolerance:g}, {self.worse_is()})"
        if self.verdict == Verdict.IMPROVED:
            p, label = self.p_improved_adjusted, "Holm-adjusted p(improved)"
        else:
            p, label = self.p_regression_adjusted, "Holm-adjusted p"
        rel = "<=" if p is not None and p <= self.alpha else ">"
        return f"{head} {cand} vs {base}; {delta} {tol}; {label} = {_fmt_p(p)} {rel} alpha {self.alpha:g}"

    def to_dict(self) -> dict:
        """Return a JSON-ready dict of the candidate, baseline, delta, verdict, tolerance and adjusted p."""

        def interval(e: Estimate | None) -> dict | None:
            return None if e is None else {"value": e.value, "ci_low": e.ci_low, "ci_high": e.ci_high}

        c = self.candidate
        return {
            "name": self.name,
            "value": None if c is None else c.value,
            "ci_low": None if c is None else c.ci_low,
            "ci_high": None if c is None else c.ci_high,
            "n": None if c is None else c.n,
            "unit": None if c is None else c.unit,
            "direction": None if c is None else str(c.direction),
            "baseline": interval(self.baseline),
            "delta": interval(self.delta),
            "verdict": str(self.verdict),
            "tolerance": self.tolerance,
            "p_adjusted": self.p_regression_adjusted,
            "p_regression": self.p_regression,
            "p_improved_adjusted": self.p_improved_adjusted,
            "alpha": self.alpha,
            "error": self.error,
        }


def holm(p_values: Sequence[float]) -> list[float]:
    """Return Holm step-down adjusted p-values (same order as given, monotone, capped at 1)."""
    return list(multiplicity.holm(p_values))


@dataclass(frozen=True)
class _Test:
    """Unadjusted test quantities of one metric with a usable baseline."""

    delta: Estimate
    worse: float
    se: float
    tol: float
    p_regression: float
    p_improved: float


def _check(name: str, candidate: Estimate, baseline: Estimate) -> str | None:
    """Return why the two estimates cannot be compared, or None when they can."""
    if candidate.direction != baseline.direction:
        return (
            f"metric {name}: direction changed from {baseline.direction} (baseline) to {candidate.direction}; "
            "a changed definition needs a new baseline"
        )
    if candidate.unit != baseline.unit:
        return f"metric {name}: unit changed from {baseline.unit!r} (baseline) to {candidate.unit!r}; re-baseline"
    for label, e in (("candidate", candidate), ("baseline", baseline)):
        if not all(math.isfinite(x) for x in (e.value, e.ci_low, e.ci_high)):
            return f"metric {name}: {label} estimate is not finite ({e.value} [{e.ci_low}, {e.ci_high}])"
    return None


def _test(candidate: Estimate, baseline: Estimate, tolerance: Tolerance, confidence: float, bootstrap: bool) -> _Test:
    """Return delta, its standard error and the one-sided p-values of regression and improvement."""
    d = candidate.value - baseline.value
    se = math.hypot(candidate.standard_error, baseline.standard_error)
    cs, bs = candidate.samples, baseline.samples
    if bootstrap and cs is not None and bs is not None and len(cs) == len(bs) and len(cs) > 1:
        # Independent bootstrap replicates paired by index: their differences sample the delta's spread.
        se = float(np.std(np.asarray(cs, float) - np.asarray(bs, float), ddof=1))
    worse = -d if candidate.direction == Direction.HIGHER else d
    tol = tolerance.margin(baseline.value)
    if se > 0.0:
        p_reg = _sf((worse - tol) / se)
        p_imp = _sf(-worse / se)
    else:
        # Exact numbers: the point values decide.
        p_reg = 0.0 if worse > tol else 1.0
        p_imp = 0.0 if worse < 0.0 else 1.0
    half = _z(0.5 + confidence / 2.0) * se
    delta = Estimate(
        value=d,
        ci_low=d - half,
        ci_high=d + half,
        n=min(candidate.n, baseline.n),
        unit=candidate.unit,
        direction=candidate.direction,
        confidence=confidence,
    )
    return _Test(delta, worse, se, tol, p_reg, p_imp)


def _decide(t: _Test, p_reg_adj: float, p_imp_adj: float, alpha: float) -> Verdict:
    """Return the verdict of one metric from its adjusted p-values and one-sided upper bound."""
    if p_reg_adj <= alpha:
        return Verdict.REGRESSION
    if p_imp_adj <= alpha:
        return Verdict.IMPROVED
    if t.worse + _z(1.0 - alpha) * t.se <= t.tol:
        return Verdict.PASS
    return Verdict.INCONCLUSIVE


def _validate(alpha: float, confidence: float) -> None:
    """Raise ValueError unless alpha and confidence lie in (0, 1)."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def error_comparison(
    name: str, candidate: Estimate | None, baseline: Estimate | None, msg: str, alpha: float = 0.05
) -> Comparison:
    """Return an ERROR comparison of a metric that cannot be gated, with the reason `msg` (never a REGRESSION)."""
    return Comparison(name, candidate, baseline, None, 0.0, None, None, Verdict.ERROR, error=msg, alpha=alpha)


def compare_one(
    name: str,
    candidate: Estimate,
    baseline: Estimate | None,
    tolerance: Tolerance,
    *,
    alpha: float = 0.05,
    confidence: float = 0.95,
    bootstrap: bool = False,
) -> Comparison:
    """Return the unadjusted comparison of one metric (a family of one)."""
    baselines = {} if baseline is None else {name: baseline}
    family = evaluate({name: candidate}, baselines, {name: tolerance}, alpha, confidence, bootstrap=bootstrap)
    return family[name]


def evaluate(
    candidates: dict[str, Estimate | Exception],
    baselines: dict[str, Estimate],
    tolerances: dict[str, Tolerance],
    alpha: float = 0.05,
    confidence: float = 0.95,
    *,
    bootstrap: bool = False,
) -> dict[str, Comparison]:
    """Return a comparison per candidate metric, Holm-adjusting over those with a baseline and no error.

    Metrics missing from `tolerances` get a zero tolerance; baselines without a candidate are ignored.
    """
    _validate(alpha, confidence)
    out: dict[str, Comparison] = {}
    tests: dict[str, _Test] = {}
    for name, cand in candidates.items():
        base = baselines.get(name)
        if isinstance(cand, BaseException):
            out[name] = error_comparison(name, None, base, str(cand) or type(cand).__name__, alpha)
            continue
        if not isinstance(cand, Estimate):
            out[name] = error_comparison(name, None, base, f"not an Estimate: {type(cand).__name__}", alpha)
            continue
        if base is None:
            out[name] = Comparison(name, cand, None, None, 0.0, None, None, Verdict.NO_BASELINE, alpha=alpha)
            continue
        problem = _check(name, cand, base)
        if problem is not None:
            out[name] = error_comparison(name, cand, base, problem, alpha)
            continue
        tests[name] = _test(cand, base, tolerances.get(name, Tolerance()), confidence, bootstrap)

    names = list(tests)
    p_reg_adj = holm([tests[n].p_regression for n in names])
    p_imp_adj = holm([tests[n].p_improved for n in names])
    for name, pr, pi in zip(names, p_reg_adj, p_imp_adj, strict=True):
        t = tests[name]
        out[name] = Comparison(
            name=name,
            candidate=candidates[name],  # type: ignore[arg-type]
            baseline=baselines[name],
            delta=t.delta,
            tolerance=t.tol,
            p_regression=t.p_regression,
            p_regression_adjusted=pr,
            verdict=_decide(t, pr, pi, alpha),
            p_improved=t.p_improved,
            p_improved_adjusted=pi,
            alpha=alpha,
        )
    return {name: out[name] for name in candidates}


def overall_verdict(verdicts: Iterable[Verdict]) -> Verdict:
    """Return REGRESSION if any, else ERROR if any, else INCONCLUSIVE if any, else PASS if any metric was compared.

    With nothing compared (every metric NO_BASELINE, or none at all) the verdict is NO_BASELINE, never a PASS.
    """
    seen = {Verdict(v) for v in verdicts}
    for v in (Verdict.REGRESSION, Verdict.ERROR, Verdict.INCONCLUSIVE):
        if v in seen:
            return v
    return Verdict.PASS if seen & {Verdict.PASS, Verdict.IMPROVED} else Verdict.NO_BASELINE
