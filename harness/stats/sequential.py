"""Group-sequential one-sided tests: Lan–DeMets alpha spending, exact boundaries, crossing decisions.

The canonical joint distribution. A z statistic computed at looks k = 1..K on cumulative data, with information
I_k growing over the looks, has corr(Z_i, Z_j) = sqrt(t_i / t_j) for i < j, where t_k = I_k / I_K is the
information fraction. This holds for the gate's difference (candidate - baseline) whether one or both sides are
re-measured, because Cov(D_i, D_j) = Var(D_j) for cumulative means. Under a drift theta (the mean of Z at t = 1),
E[Z_k] = theta * sqrt(t_k). When every look doubles the budget up to a cap, t = (2^-(K-1), ..., 1/4, 1/2, 1).

Boundaries. A spending function alpha(t) says how much type I error may have been spent by information fraction t.
At look k the boundary c_k solves P(Z_1 < c_1, ..., Z_{k-1} < c_{k-1}, Z_k >= c_k) = alpha(t_k) - alpha(t_{k-1})
under the null (theta = 0), computed by the recursive numerical integration of Armitage, McPherson and Rowe in the
form of Jennison & Turnbull (2000, ch. 19): the sub-density of Z_k on the continuation region is carried on a grid
and integrated with Simpson's rule (it agrees with scipy's multivariate normal CDF to 1e-7). Boundaries are cached.
Because c_k depends only on t_1..t_k, looks may come at unplanned fractions. When the looks stop before the planned
maximum (the budget cap is reached early, or the caller decides this look is the last), the final look spends all
that is left, so the total error is alpha whatever the number of looks. Every boundary falls as alpha grows.

Two one-sided tests per metric, with z_reg = (worse - tol) / se:
  REGRESSION rejects H0: worse <= tol when z_reg crosses c_k;
  PASS rejects H0: worse >= tol when -z_reg crosses c_k (a non-inferiority test against the tolerance).
Each test's boundaries are computed for that test alone (non-binding with respect to the other), so stopping when
the other test decides can only lower its error: each error stays at or below alpha. A verdict freezes at the first
crossing. With alpha < 1/2 every boundary is positive, so both cannot cross at the same look.

Why Pocock-type spending is the default for this harness. Profiles set each tolerance to about 3.5 standard
errors at the standard budget, which is the first look (t = 1/4 under a cap of 4, so E[Z] = 7 at t = 1 for an
unchanged metric's PASS test). The gate is a canary: almost every metric of almost every build is unchanged, and
its PASS should come at the first look, so that bench time is spent only where the verdict needs it. With
alpha = 0.05 and t = (1/4, 1/2, 1) the O'Brien–Fleming-type function spends only 9e-5 at the first look (boundary
3.75): such a metric stops there in 40% of runs and uses on average 0.40 of the cap's information. Pocock-type
spends 0.018 (boundary 2.10): it stops there in 92% of runs and uses 0.27 of the cap (1.08 times the first look).
Pocock's price is a higher last boundary (1.91 against 1.66): for a metric still undecided at the cap, whose true
worsening is 2 final standard errors from its tolerance, the power at the cap is 0.575 against 0.635 (0.639 for a
single fixed-sample test). O'Brien–Fleming-type is the better choice when nearly all information will be
collected anyway (tolerances sized for the cap, release budgets on a quiet bench): it keeps the last test almost
as powerful as a fixed-sample one. Both are provided; the design names the one it uses.
`expected_fraction` computes these numbers for any design; the module's tests check them.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache

import numpy as np
from scipy.optimize import brentq
from scipy.special import ndtr, ndtri

# Sub-densities are kept on [mean - _SPAN, mean + _SPAN]: the mass outside is below 1e-15.
_SPAN = 8.5
_MAX_STEP = 0.025
_MAX_POINTS = 2401


class Spending(StrEnum):
    """Lan–DeMets spending functions."""

    OBRIEN_FLEMING = "obrien-fleming"
    POCOCK = "pocock"


def spent_alpha(t: float | np.ndarray, alpha: float, spending: Spending | str) -> np.ndarray:
    """Return the cumulative alpha spent by information fraction t (clipped to [0, 1]) for a one-sided test."""
    s = Spending(spending)
    t = np.clip(np.asarray(t, dtype=float), 0.0, 1.0)
    if s is Spending.POCOCK:
        return alpha * np.log1p((math.e - 1.0) * t)
    with np.errstate(divide="ignore"):
        # gsDesign's sfLDOF: 2 - 2 Phi(Phi^-1(1 - alpha/2) / sqrt(t)), which is alpha at t = 1.
        return np.where(t > 0.0, 2.0 * ndtr(-ndtri(1.0 - alpha / 2.0) / np.sqrt(t)), 0.0)


def doubling_fractions(looks: int) -> tuple[float, ...]:
    """Return the information fractions of `looks` looks that double the budget each time: (..., 1/4, 1/2, 1)."""
    if looks < 1:
        raise ValueError(f"looks must be >= 1, got {looks}")
    return tuple(2.0 ** (k - looks + 1) for k in range(looks))


def information_fractions(standard_errors: Sequence[float], final_standard_error: float) -> tuple[float, ...]:
    """Return t_k = (se_final / se_k)^2, the information fraction of each look from its standard error."""
    se = np.asarray(standard_errors, dtype=float)
    if np.any(se <= 0.0) or not final_standard_error > 0.0:
        raise ValueError("standard errors must be > 0")
    return tuple(float(x) for x in (final_standard_error / se) ** 2)


def _check_fractions(fractions: Sequence[float]) -> tuple[float, ...]:
    """Return the fractions as floats; raise ValueError unless strictly increasing, positive, <= 1 but the last."""
    t = tuple(float(x) for x in fractions)
    if not t:
        raise ValueError("at least one look is needed")
    if t[0] <= 0.0 or any(b <= a for a, b in itertools.pairwise(t)):
        raise ValueError(f"information fractions must be positive and strictly increasing, got {t}")
    if any(x >= 1.0 for x in t[:-1]):
        raise ValueError(f"only the last look may reach information fraction 1, got {t}")
    return t


def _simpson(lo: float, hi: float, step: float) -> tuple[np.ndarray, np.ndarray]:
    """Return Simpson nodes and weights on [lo, hi] with spacing at most `step` (an odd number of nodes)."""
    n = min(_MAX_POINTS, max(3, 2 * math.ceil((hi - lo) / (2.0 * step)) + 1))
    z = np.linspace(lo, hi, n)
    w = np.full(n, 2.0)
    w[1::2] = 4.0
    w[0] = w[-1] = 1.0
    return z, w * (hi - lo) / (3.0 * (n - 1))


def _step(t: tuple[float, ...]) -> float:
    """Return a grid spacing fine enough for the narrowest conditional density between consecutive looks."""
    ratios = [a / b for a, b in itertools.pairwise(t)]
    narrowest = min((math.sqrt(1.0 - r) for r in ratios), default=1.0)
    return min(_MAX_STEP, narrowest / 10.0)


@dataclass
class _Recursion:
    """The sub-density of Z_k on the continuation region, carried look by look."""

    t: tuple[float, ...]
    drift: float
    step: float
    k: int = 0
    z: np.ndarray = field(default_factory=lambda: np.zeros(0))
    w: np.ndarray = field(default_factory=lambda: np.zeros(0))
    h: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def _args(self, c: float) -> np.ndarray:
        """Return the standardised increments needed for Z_k to reach c from each node of look k-1."""
        tk, tp = self.t[self.k], self.t[self.k - 1]
        d = tk - tp
        return (c * math.sqrt(tk) - self.z * math.sqrt(tp) - self.drift * d) / math.sqrt(d)

    def upper(self, c: float) -> float:
        """Return P(continue to look k, Z_k >= c)."""
        if math.isinf(c):
            return 0.0 if c > 0 else self.lower(math.inf)
        if self.k == 0:
            return float(ndtr(self.drift * math.sqrt(self.t[0]) - c))
        return float(np.dot(self.w * self.h, ndtr(-self._args(c))))

    def lower(self, a: float) -> float:
        """Return P(continue to look k, Z_k <= a)."""
        if math.isinf(a):
            return 0.0 if a < 0 else (1.0 if self.k == 0 else float(np.dot(self.w, self.h)))
        if self.k == 0:
            return float(ndtr(a - self.drift * math.sqrt(self.t[0])))
        return float(np.dot(self.w * self.h, ndtr(self._args(a))))

    def advance(self, a: float, b: float) -> None:
        """Move to look k+1, keeping the sub-density of Z_k on the continuation region (a, b)."""
        tk = self.t[self.k]
        mean = self.drift * math.sqrt(tk)
        lo, hi = max(a, mean - _SPAN), min(b, mean + _SPAN)
        if hi <= lo:
            z, w, h = np.array([0.0, 0.0, 0.0]), np.zeros(3), np.zeros(3)
        elif self.k == 0:
            z, w = _simpson(lo, hi, self.step)
            h = np.exp(-0.5 * (z - mean) ** 2) / math.sqrt(2.0 * math.pi)
        else:
            z, w = _simpson(lo, hi, self.step)
            tp = self.t[self.k - 1]
            d = tk - tp
            u = (z[:, None] * math.sqrt(tk) - self.z[None, :] * math.sqrt(tp) - self.drift * d) / math.sqrt(d)
            kernel = np.exp(-0.5 * u * u) * math.sqrt(tk / (2.0 * math.pi * d))
            h = kernel @ (self.w * self.h)
        self.z, self.w, self.h, self.k = z, w, h, self.k + 1


def exit_probabilities(
    fractions: Sequence[float],
    upper: Sequence[float],
    lower: Sequence[float] | None = None,
    drift: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Return per-look probabilities of first crossing the upper and the lower boundary, given E[Z at t=1] = drift."""
    t = _check_fractions(fractions)
    b = [float(x) for x in upper]
    a = [-math.inf] * len(t) if lower is None else [float(x) for x in lower]
    if len(b) != len(t) or len(a) != len(t):
        raise ValueError("one upper (and lower) boundary per look is needed")
    rec = _Recursion(t, float(drift), _step(t))
    up, down = np.zeros(len(t)), np.zeros(len(t))
    for k in range(len(t)):
        up[k], down[k] = rec.upper(b[k]), rec.lower(a[k])
        if k + 1 < len(t):
            rec.advance(a[k], b[k])
    return up, down


def _solve(rec: _Recursion, target: float) -> float:
    """Return the boundary c with P(continue to this look, Z >= c) = target (inf when nothing is left to spend)."""
    if target <= 1e-15:
        return math.inf
    lo, hi = -12.0, 40.0
    if rec.upper(lo) <= target:
        return -math.inf
    return float(brentq(lambda c: rec.upper(c) - target, lo, hi, xtol=1e-10, rtol=1e-12))


@lru_cache(maxsize=512)
def _boundaries(t: tuple[float, ...], alpha: float, spending: Spending, final: bool) -> tuple[float, ...]:
    """Return the cached boundaries (see `boundaries`)."""
    cum = spent_alpha(np.asarray(t), alpha, spending)
    if final:
        cum[-1] = alpha
    inc = np.diff(np.concatenate([[0.0], cum]))
    rec = _Recursion(t, 0.0, _step(t))
    out = []
    for k in range(len(t)):
        c = _solve(rec, float(inc[k]))
        out.append(c)
        if k + 1 < len(t):
            rec.advance(-math.inf, c)
    return tuple(out)


def boundaries(
    fractions: Sequence[float],
    alpha: float = 0.05,
    spending: Spending | str = Spending.POCOCK,
    *,
    final: bool = False,
) -> tuple[float, ...]:
    """Return the one-sided upper z boundary of each look; the last look spends all of alpha when final or at t=1."""
    if not 0.0 < alpha < 0.5:
        raise ValueError(f"alpha must be in (0, 0.5) for a one-sided sequential test, got {alpha}")
    t = _check_fractions(fractions)
    return _boundaries(t, float(alpha), Spending(spending), bool(final or t[-1] >= 1.0))


def expected_fraction(
    fractions: Sequence[float], upper: Sequence[float], lower: Sequence[float], drift: float
) -> float:
    """Return the expected information fraction used when stopping at the first crossing of either boundary."""
    t = np.asarray(_check_fractions(fractions))
    up, down = exit_probabilities(t, upper, lower, drift)
    stop = up + down
    return float(np.dot(t, stop) + t[-1] * max(0.0, 1.0 - stop.sum()))


def canonical_paths(
    fractions: Sequence[float], n_paths: int, rng: np.random.Generator, drift: float = 0.0
) -> np.ndarray:
    """Return an (n_paths, K) array of z statistics with the canonical joint distribution and E[Z_K] = drift."""
    t = np.asarray(_check_fractions(fractions))
    inc = np.diff(np.concatenate([[0.0], t]))
    score = np.cumsum(rng.standard_normal((n_paths, t.size)) * np.sqrt(inc) + drift * inc, axis=1)
    return score / np.sqrt(t)


def first_crossings(z: np.ndarray, bounds: Sequence[float]) -> np.ndarray:
    """Return, per row of z (paths x looks), the 0-based first look with z >= bound, or -1 (vectorised)."""
    hit = np.asarray(z) >= np.asarray(bounds, dtype=float)[None, :]
    return np.where(hit.any(axis=1), hit.argmax(axis=1), -1)


@dataclass(frozen=True)
class Crossing:
    """Whether a one-sided sequential test has crossed its boundary by the latest look."""

    crossed: bool
    look: int | None  # 1-based look of the first crossing: the decision freezes there
    boundaries: tuple[float, ...]
    z: tuple[float, ...]
    final: bool


@dataclass(frozen=True)
class SequentialVerdict:
    """The two one-sided tests of one metric at the latest look."""

    verdict: str  # "REGRESSION", "PASS", "CONTINUE" (measure more) or "INCONCLUSIVE" (no look left)
    look: int | None
    regression: Crossing
    passed: Crossing


@dataclass(frozen=True)
class SequentialDesign:
    """A one-sided group-sequential design: alpha, spending function and planned information fractions."""

    alpha: float = 0.05
    spending: Spending = Spending.POCOCK
    fractions: tuple[float, ...] = (1.0,)

    def __post_init__(self) -> None:
        """Validate alpha and the planned fractions (strictly increasing, ending at 1)."""
        object.__setattr__(self, "spending", Spending(self.spending))
        object.__setattr__(self, "fractions", _check_fractions(self.fractions))
        if self.fractions[-1] != 1.0:
            raise ValueError(f"planned information fractions must end at 1, got {self.fractions}")
        boundaries(self.fractions, self.alpha, self.spending)  # validates alpha

    @classmethod
    def doubling(cls, looks: int, alpha: float = 0.05, spending: Spending | str = Spending.POCOCK) -> SequentialDesign:
        """Return the design of `looks` looks that double the budget each time up to the cap."""
        return cls(alpha, Spending(spending), doubling_fractions(looks))

    @property
    def looks(self) -> int:
        """Return the planned maximum number of looks K."""
        return len(self.fractions)

    def test(self, z: Sequence[float], *, stopped: bool = False, fractions: Sequence[float] | None = None) -> Crossing:
        """Return the first crossing of z (one value per look so far); `stopped` makes the latest look the last."""
        zs = tuple(float(x) for x in z)
        t = self._fractions(len(zs), fractions)
        final = stopped or len(zs) == self.looks or t[-1] >= 1.0
        bounds = boundaries(t, self.alpha, self.spending, final=final)
        hits = [k for k, (x, c) in enumerate(zip(zs, bounds, strict=True)) if x >= c]
        look = hits[0] + 1 if hits else None
        return Crossing(look is not None, look, bounds, zs, final)

    def verdict(
        self, z_regression: Sequence[float], *, stopped: bool = False, fractions: Sequence[float] | None = None
    ) -> SequentialVerdict:
        """Return REGRESSION, PASS, CONTINUE or INCONCLUSIVE from z_reg = (worse - tol) / se at each look so far."""
        reg = self.test(z_regression, stopped=stopped, fractions=fractions)
        ok = self.test([-x for x in z_regression], stopped=stopped, fractions=fractions)
        first = [(c.look, name) for c, name in ((reg, "REGRESSION"), (ok, "PASS")) if c.look is not None]
        if first:
            look, name = min(first)
            return SequentialVerdict(name, look, reg, ok)
        return SequentialVerdict("INCONCLUSIVE" if reg.final else "CONTINUE", None, reg, ok)

    def _fractions(self, looks: int, fractions: Sequence[float] | None) -> tuple[float, ...]:
        """Return the observed fractions, or the planned ones for the looks taken so far."""
        if fractions is not None:
            t = _check_fractions(fractions)
            if len(t) != looks:
                raise ValueError(f"{looks} z values but {len(t)} information fractions")
            return t
        if not 1 <= looks <= self.looks:
            raise ValueError(f"the design plans 1 to {self.looks} looks, got {looks}")
        return self.fractions[:looks]
