"""Exact one-sided tests of binomial failure rates, valid at zero failures.

Logical failure rates of a good code are small: a run of 200k shots may see no failure at all, where a Wald
interval collapses to a point and any z test is meaningless. Everything here is exact: the size is at most alpha
for every true rate, which the tests check by exact enumeration and by simulation.

One sample (`binomial_test`): x failures in n shots against a fixed rate p0 (for example a specified ceiling, or
a baseline rate plus tolerance taken as known). REGRESSION rejects H0: p <= p0 with P(X >= x | p0); PASS rejects
H0: p >= p0 with P(X <= x | p0), which is below alpha exactly when the Clopper–Pearson upper bound is below p0
(at zero failures the bound is 1 - alpha^(1/n), about 3/n at alpha = 0.05). When the shots stopped at the r-th
failure (a max-errors rule, as in sinter), the count of shots is the random quantity; the same two p-values are
P(N <= n) = P(Bin(n, p0) >= r) and P(N >= n) = P(Bin(n - 1, p0) <= r - 1).

Two samples (`two_sample_test`): candidate x1 of n1 against baseline x0 of n0, with the tolerance as a margin on
the difference: REGRESSION rejects H0: p1 - p0 <= margin, PASS rejects H0: p1 - p0 >= margin. Why this test:
- Fisher's exact conditional test eliminates the baseline rate only for a zero margin (or a margin on the ratio
  under a Poisson approximation); with the gate's additive tolerance the conditional distribution still depends
  on the unknown rate, and at a zero margin it is known to be conservative.
- Score tests (Farrington–Manning, Miettinen–Nurminen, Wilson-type intervals) are defined at zero failures but are
  asymptotic: their size exceeds alpha at small counts, which is exactly where logical rates live.
- The exact unconditional test (Chan 1998; Röhmel & Mansmann 1999) orders the outcomes by the Farrington–Manning
  score statistic T and takes the p-value as the largest probability of the region {T >= t_obs} over the unknown
  baseline rate. It is valid for every rate and margin, and at least as powerful as the conditional test in
  practice. We make the rejection region Barnard-convex (more candidate failures or fewer baseline failures never
  leave it), so the worst case over H0 lies on its boundary p1 = p0 + margin, and we use the Berger–Boos
  restriction: the supremum runs over a 1 - gamma Clopper–Pearson interval of p0 and gamma is added to the
  p-value (gamma = 1e-4 by default). That keeps the computation local (a few hundred counts around the observed
  ones), so it is fast at 200k shots, and it stays valid. Probabilities beyond 1e-13 in the binomial tails are
  counted as rejections (conservative).
The PASS test is the REGRESSION test applied to the successes: p1 - p0 < margin iff (1-p1) - (1-p0) > -margin.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats
from scipy.special import bdtrc, gammaln, xlog1py, xlogy

_TAIL = 1e-13
_NUISANCE_GRID = 41
_ZOOMS = 4
_BISECTIONS = 60


def _check_counts(x: int, n: int) -> None:
    """Raise ValueError unless 0 <= x <= n and n >= 1 are integers."""
    if int(x) != x or int(n) != n or not 0 <= x <= n or n < 1:
        raise ValueError(f"failures must be integers with 0 <= failures <= shots and shots >= 1, got {x} of {n}")


def clopper_pearson_upper(failures: int, n: int, confidence: float = 0.95) -> float:
    """Return the one-sided Clopper–Pearson upper confidence bound of a failure rate (1 - (1-c)^(1/n) at zero)."""
    _check_counts(failures, n)
    return 1.0 if failures == n else float(stats.beta.ppf(confidence, failures + 1, n - failures))


def clopper_pearson_lower(failures: int, n: int, confidence: float = 0.95) -> float:
    """Return the one-sided Clopper–Pearson lower confidence bound of a failure rate (0 at zero failures)."""
    _check_counts(failures, n)
    return 0.0 if failures == 0 else float(stats.beta.ppf(1.0 - confidence, failures, n - failures + 1))


@dataclass(frozen=True)
class RateTest:
    """One-sided p-values of a failure-rate comparison."""

    p_regression: float  # H0: rate <= reference (+ margin); small when the candidate fails more
    p_pass: float  # H0: rate >= reference (+ margin); small when the candidate is within its tolerance
    method: str


def binomial_test(failures: int, n: int, p0: float, *, stopped_on_failures: bool = False) -> RateTest:
    """Return the exact one-sample tests of a failure rate against p0 (optionally under a stop-at-r-failures rule)."""
    _check_counts(failures, n)
    if not 0.0 <= p0 <= 1.0:
        raise ValueError(f"p0 must be in [0, 1], got {p0}")
    x = int(failures)
    p_reg = float(stats.binom.sf(x - 1, n, p0))
    if stopped_on_failures:
        if x < 1:
            raise ValueError("a run stopped on failures has at least one failure")
        p_pass = float(stats.binom.cdf(x - 1, n - 1, p0))
        return RateTest(p_reg, p_pass, "exact binomial (inverse sampling: stopped at the last failure)")
    return RateTest(p_reg, float(stats.binom.cdf(x, n, p0)), "exact binomial")


def _restricted_mle_bisection(x1: np.ndarray, n1: int, x0: np.ndarray, n0: int, margin: float) -> np.ndarray:
    """Return the baseline rate maximising the likelihood under p1 = p0 + margin (bisection on the score)."""
    lo = np.full(np.broadcast(x1, x0).shape, max(0.0, -margin))
    hi = np.full(lo.shape, min(1.0, 1.0 - margin))
    for _ in range(_BISECTIONS):
        p = 0.5 * (lo + hi)
        q = p + margin
        # Sign of the score: (x1 - n1 q) / (q (1-q)) + (x0 - n0 p) / (p (1-p)), times the positive p(1-p)q(1-q).
        up = (x1 - n1 * q) * p * (1.0 - p) + (x0 - n0 * p) * q * (1.0 - q) > 0
        lo, hi = np.where(up, p, lo), np.where(up, hi, p)
    return 0.5 * (lo + hi)


def _restricted_mle(x1: np.ndarray, n1: int, x0: np.ndarray, n0: int, margin: float) -> np.ndarray:
    """Return the restricted MLE of the baseline rate: Farrington–Manning's closed-form cubic root, else bisection."""
    p1, p0 = np.asarray(x1, dtype=float) / n1, np.asarray(x0, dtype=float) / n0
    th, d = n0 / n1, margin
    a = 1.0 + th
    b = -(1.0 + th + p1 + th * p0 + d * (th + 2.0))
    c = d * d + d * (2.0 * p1 + th + 1.0) + p1 + th * p0
    e = -p1 * d * (1.0 + d)
    v = b**3 / (3.0 * a) ** 3 - b * c / (6.0 * a * a) + e / (2.0 * a)
    u = np.sign(v) * np.sqrt(np.maximum(b * b / (3.0 * a) ** 2 - c / (3.0 * a), 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        w = (math.pi + np.arccos(np.clip(v / u**3, -1.0, 1.0))) / 3.0
        p = 2.0 * u * np.cos(w) - b / (3.0 * a) - d
    bad = ~np.isfinite(p) | (p < max(0.0, -d) - 1e-12) | (p > min(1.0, 1.0 - d) + 1e-12)
    if np.any(bad):
        p = np.where(bad, _restricted_mle_bisection(np.asarray(x1, float), n1, np.asarray(x0, float), n0, d), p)
    return np.clip(p, max(0.0, -d), min(1.0, 1.0 - d))


def fm_statistic(x1: np.ndarray, n1: int, x0: np.ndarray, n0: int, margin: float) -> np.ndarray:
    """Return the Farrington–Manning score statistic of H0: p1 - p0 = margin (large: candidate fails more)."""
    x1, x0 = np.asarray(x1, dtype=float), np.asarray(x0, dtype=float)
    p = _restricted_mle(x1, n1, x0, n0, margin)
    q = p + margin
    var = q * (1.0 - q) / n1 + p * (1.0 - p) / n0
    diff = x1 / n1 - x0 / n0 - margin
    # A zero variance needs p0 and p1 both at 0 or both at 1, where the observed difference is the margin: T = 0.
    return np.where(var > 0, diff / np.sqrt(np.maximum(var, 1e-300)), 0.0)


def _range(n: int, p_lo: float, p_hi: float, observed: int) -> np.ndarray:
    """Return the counts 0..n that carry all but _TAIL of the mass for any rate in [p_lo, p_hi], with `observed`."""
    lo = int(stats.binom.ppf(_TAIL, n, p_lo)) if p_lo > 0 else 0
    hi = int(stats.binom.isf(_TAIL, n, p_hi)) if p_hi < 1 else n
    return np.arange(min(lo, observed), max(hi, observed) + 1)


def _region_thresholds(
    x1_range: np.ndarray, x0_range: np.ndarray, n1: int, n0: int, margin: float, t_obs: float
) -> np.ndarray:
    """Return per x0 the smallest x1 of the Barnard-convex region {T >= t_obs} (bisection: T increases in x1)."""
    lo = np.full(x0_range.size, x1_range[0] - 1)  # T below t_obs (counts below the range: see _TAIL)
    hi = np.full(x0_range.size, x1_range[-1] + 1)  # in the region (counts above the range are rejections)
    cut = t_obs - 1e-9 * max(1.0, abs(t_obs))
    while np.any(hi - lo > 1):
        mid = (lo + hi) // 2
        inside = fm_statistic(mid, n1, x0_range, n0, margin) >= cut
        lo, hi = np.where(inside, lo, mid), np.where(inside, mid, hi)
    # Fewer baseline failures is stronger evidence: the threshold at x0 is at most the one at any larger x0.
    return np.minimum.accumulate(hi[::-1])[::-1]


def _binom_pmf(k: np.ndarray, n: int, p: np.ndarray) -> np.ndarray:
    """Return the binomial pmf, vectorised over k and p (broadcast), exact at p = 0 and p = 1."""
    log_choose = gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)
    return np.exp(log_choose + xlogy(k, p) + xlog1py(n - k, -p))


def _binom_at_least(k: np.ndarray, n: int, p: np.ndarray) -> np.ndarray:
    """Return P(X >= k) for X ~ Bin(n, p), vectorised (1 for k <= 0, 0 for k > n)."""
    kk = np.clip(k - 1, 0, n)
    return np.where(k <= 0, 1.0, np.where(k > n, 0.0, bdtrc(kk, n, p)))


def _exceedance(
    x1_range: np.ndarray, x0_range: np.ndarray, n1: int, n0: int, margin: float, t_obs: float
) -> Callable[[np.ndarray], np.ndarray]:
    """Return p0 (array) -> P(outcome in the rejection region | p0, p1 = p0 + margin) for each p0."""
    thresholds = _region_thresholds(x1_range, x0_range, n1, n0, margin, t_obs)

    def prob(p0: np.ndarray) -> np.ndarray:
        """Return the rejection probability at each baseline rate p0."""
        p0 = np.atleast_1d(np.asarray(p0, dtype=float))[:, None]
        q = np.clip(p0 + margin, 0.0, 1.0)
        inside = np.sum(_binom_pmf(x0_range[None, :], n0, p0) * _binom_at_least(thresholds[None, :], n1, q), axis=1)
        return inside + 3.0 * _TAIL  # mass outside the computed ranges, counted as rejections

    return prob


def _upper_tail_p(x1: int, n1: int, x0: int, n0: int, margin: float, gamma: float) -> float:
    """Return the exact unconditional p-value of H0: p1 - p0 <= margin (Berger–Boos restricted supremum)."""
    a = max(clopper_pearson_lower(x0, n0, 1.0 - gamma / 2.0), -margin, 0.0)
    b = min(clopper_pearson_upper(x0, n0, 1.0 - gamma / 2.0), 1.0 - margin, 1.0)
    if a > b:
        return gamma
    x0_range = _range(n0, a, b, x0)
    x1_range = _range(n1, min(max(a + margin, 0.0), 1.0), min(max(b + margin, 0.0), 1.0), x1)
    t_obs = float(fm_statistic(np.array(x1), n1, np.array(x0), n0, margin))
    prob = _exceedance(x1_range, x0_range, n1, n0, margin, t_obs)
    # The rejection probability is a smooth polynomial in p0: zoom in on its maximum with three grids.
    lo, hi, top = a, b, 0.0
    for _ in range(_ZOOMS):
        grid = np.linspace(lo, hi, _NUISANCE_GRID)
        values = prob(grid)
        best = int(np.argmax(values))
        top = max(top, float(values[best]))
        lo, hi = grid[max(best - 1, 0)], grid[min(best + 1, grid.size - 1)]
    return min(1.0, top + gamma)


def two_sample_test(
    candidate_failures: int,
    candidate_n: int,
    baseline_failures: int,
    baseline_n: int,
    margin: float = 0.0,
    *,
    gamma: float = 1e-4,
) -> RateTest:
    """Return exact unconditional tests of p_candidate - p_baseline against `margin` (valid at zero failures)."""
    _check_counts(candidate_failures, candidate_n)
    _check_counts(baseline_failures, baseline_n)
    if not -1.0 < margin < 1.0 or not 0.0 < gamma < 0.5:
        raise ValueError(f"margin must be in (-1, 1) and gamma in (0, 0.5), got {margin}, {gamma}")
    x1, n1, x0, n0 = int(candidate_failures), int(candidate_n), int(baseline_failures), int(baseline_n)
    p_reg = _upper_tail_p(x1, n1, x0, n0, margin, gamma)
    p_pass = _upper_tail_p(n1 - x1, n1, n0 - x0, n0, -margin, gamma)
    return RateTest(p_reg, p_pass, f"exact unconditional (Farrington–Manning order, Berger–Boos gamma={gamma:g})")


def rate_upper_bound(failures: int, n: int, alpha: float = 0.05) -> float:
    """Return the 1 - alpha one-sided Clopper–Pearson upper bound (the 'rule of three' 3/n at zero failures)."""
    return clopper_pearson_upper(failures, n, 1.0 - alpha)


def zero_failure_shots(rate: float, alpha: float = 0.05) -> int:
    """Return the shots needed so that zero failures bound the rate below `rate` at 1 - alpha: ceil(ln a / ln(1-r))."""
    if not 0.0 < rate < 1.0:
        raise ValueError(f"rate must be in (0, 1), got {rate}")
    return math.ceil(math.log(alpha) / math.log1p(-rate))
