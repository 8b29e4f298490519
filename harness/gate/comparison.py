"""The gate's answer for one metric: a `Comparison`, its one-line message and its JSON form; the overall verdict."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from scipy.special import ndtr

from harness.metrics import Direction, Estimate, Verdict, format_interval


def _fmt(x: float) -> str:
    """Return a number formatted for a one-line message (4 decimals, scientific when tiny or huge)."""
    if not math.isfinite(x):
        return str(x)
    if x != 0.0 and (abs(x) >= 1e5 or abs(x) < 1e-4):
        return f"{x:.3e}"
    return f"{x:.4f}"


def adjusted_p(z: float, boundary: float, alpha: float) -> float:
    """Return the nominal p of z scaled by alpha over the nominal level of `boundary` (<= alpha iff z >= boundary)."""
    nominal = float(ndtr(-boundary)) if math.isfinite(boundary) else 0.0
    return 1.0 if nominal <= 0.0 else min(1.0, float(ndtr(-z)) * alpha / nominal)


def _fmt_p(p: float | None) -> str:
    """Return a p-value formatted with two significant digits."""
    return "n/a" if p is None else f"{p:.2g}"


@dataclass(frozen=True)
class Comparison:
    """The comparison of one metric of a candidate build with the baseline build.

    `look`/`looks`: the 1-based look at which the verdict was reached (the decisive crossing) and how many looks
    the metric had; `level` and `boundary`: the test's nominal level and z boundary there; `z`: the decisive test's
    statistic. `p_regression` is the nominal one-sided p of "worse by more than the tolerance" at the latest look
    and `p_regression_adjusted` that p scaled by alpha over the nominal level of its boundary, so it is at most
    alpha exactly when the test crossed. `reason` explains NOT_GATED (and what an alias follows), `follows` names
    the metric an alias is gated with, `min_detectable_regression` the smallest true worsening this run would have
    flagged with the design's power.
    """

    name: str
    candidate: Estimate | None
    baseline: Estimate | None
    delta: Estimate | None  # candidate - baseline, interval at the design's confidence
    tolerance: float
    p_regression: float | None
    p_regression_adjusted: float | None
    verdict: Verdict
    error: str | None = None
    p_improved: float | None = None
    p_improved_adjusted: float | None = None
    alpha: float = 0.05
    reason: str | None = None
    follows: str | None = None
    min_detectable_regression: float | None = None
    look: int | None = None
    looks: int = 0
    level: float | None = None
    boundary: float | None = None
    z: float | None = None
    method: str | None = None
    variance_model: str | None = None  # which variance the verdict accounted for (shot noise, between sessions)

    def worse_is(self) -> str:
        """Return 'worse-is-lower' or 'worse-is-higher' for the metric's direction."""
        est = self.candidate or self.baseline
        if est is None:
            return "worse-is-unknown"
        return "worse-is-lower" if est.direction == Direction.HIGHER else "worse-is-higher"

    def message(self, candidate_build: str, baseline_build: str) -> str:
        """Return a one-line human summary: both builds with intervals, delta, tolerance and the decision."""
        follows = f" (follows {self.follows})" if self.follows else ""
        head = f"{self.name} {self.verdict}{follows}:"
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
        return f"{head} {cand} vs {base}; {delta} {tol}; {self._decision()}"

    def _decision(self) -> str:
        """Return how the verdict was reached, in words and numbers."""
        if self.verdict == Verdict.NOT_GATED:
            return self.reason or "not gated"
        where = f"look {self.look} of {self.looks}" if self.look else f"{self.looks} look(s)"
        if self.z is None or self.boundary is None or self.level is None:
            return f"{self.verdict} after {where}"
        test = {
            Verdict.REGRESSION: "worse by more than the tolerance",
            Verdict.PASS: "within the tolerance",
            Verdict.IMPROVED: "better than the baseline",
        }.get(self.verdict, "undecided at the last look")
        p = adjusted_p(self.z, self.boundary, self.alpha)
        rel = "<=" if p <= self.alpha else ">"
        return (
            f"{test} at {where}: z {self.z:.2f} vs boundary {self.boundary:.2f} at level {self.level:.2g} "
            f"({self.method}); adjusted p = {_fmt_p(p)} {rel} alpha {self.alpha:g}"
        )

    def to_dict(self) -> dict:
        """Return a JSON-ready dict of the candidate, baseline, delta, verdict, tolerance and the decision."""

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
            "min_detectable_regression": self.min_detectable_regression,
            "reason": self.reason,
            "follows": self.follows,
            "look": self.look,
            "looks": self.looks,
            "level": self.level,
            "boundary": self.boundary,
            "z": self.z,
            "method": self.method,
            "variance_model": self.variance_model,
            "p_adjusted": self.p_regression_adjusted,
            "p_regression": self.p_regression,
            "p_improved_adjusted": self.p_improved_adjusted,
            "alpha": self.alpha,
            "binomial": None if c is None or c.binomial is None else list(c.binomial),
            "error": self.error,
        }


def error_comparison(
    name: str, candidate: Estimate | None, baseline: Estimate | None, msg: str, alpha: float = 0.05
) -> Comparison:
    """Return an ERROR comparison of a metric that cannot be gated, with the reason `msg` (never a REGRESSION)."""
    return Comparison(name, candidate, baseline, None, 0.0, None, None, Verdict.ERROR, error=msg, alpha=alpha)


def overall_verdict(verdicts: Iterable[Verdict | str]) -> Verdict:
    """Return REGRESSION if any, else ERROR, else INCONCLUSIVE, else PASS if any metric PASSed (or IMPROVED), else
    NOT_GATED if any metric was measured but not gated, else NO_BASELINE.

    Nothing compared (every metric NO_BASELINE or NOT_GATED, or none at all) is never a PASS.
    """
    seen = {Verdict(v) for v in verdicts}
    for v in (Verdict.REGRESSION, Verdict.ERROR, Verdict.INCONCLUSIVE):
        if v in seen:
            return v
    if seen & {Verdict.PASS, Verdict.IMPROVED}:
        return Verdict.PASS
    return Verdict.NOT_GATED if Verdict.NOT_GATED in seen else Verdict.NO_BASELINE
