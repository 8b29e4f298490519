"""Multiple testing over a family of metrics: Holm, graphical and gatekeeping procedures, max-T, sequential graphs.

All procedures here are sequentially rejective weighted Bonferroni tests (Bretz et al. 2009, Stat Med 28:586): a
*weighting* gives each hypothesis not yet rejected a share w_i of alpha; a hypothesis whose test rejects at its
local level w_i * alpha is rejected and its share flows to the others. When the weights of the remaining
hypotheses only grow as others are rejected (true for every graph and for serial gatekeeping), this shortcut is
exactly the closed test of the weighted Bonferroni intersection tests, so the family-wise error rate (FWER) is at
most alpha under any configuration of true and false nulls and any dependence between the tests.

- `Graph`: the graphical approach: initial weights and a transition matrix G (g_ij is the part of H_i's alpha that
  goes to H_j when H_i is rejected). `holm_graph` and `fixed_sequence_graph` build the two classic cases.
- `Gatekeeping`: serial gatekeeping. The primaries are tested first by weighted Holm at the full alpha, exactly as
  if there were no secondaries; only when every primary is rejected does the whole alpha pass to the secondaries,
  tested by weighted Holm in turn. (As a graph this needs infinitesimal edges from primaries to secondaries; it is
  written directly here.) Its adjusted p-value of a secondary is max(largest primary adjusted p, its own Holm p).
- `max_t_adjusted`: Westfall–Young step-down max-T adjusted p-values from joint null replicates of the statistics
  (for example a joint parametric bootstrap of shared counts, centred on the estimates). It uses the correlation
  between metrics that share counts, which Holm ignores, so it rejects more at the same FWER.
- `sequential_graphical_test`: Maurer & Bretz (2013, Stat Biopharm Res 5:311). Each hypothesis is tested with
  group-sequential boundaries (see `harness.stats.sequential`) at its current local alpha. When one is rejected its
  alpha moves on and the boundaries of the others are recomputed at their larger local alpha over all looks so far,
  earlier looks included: an intersection's test is the Bonferroni combination of group-sequential tests, and the
  shortcut is again the closed test because every boundary falls as its alpha grows.

Rejecting H_i means: for the REGRESSION family, "metric i regressed"; for the PASS family, "metric i is within
its tolerance". Each family gets its own procedure at alpha.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from harness.stats.sequential import Spending, boundaries

_EPS = 1e-12


class Weighting(Protocol):
    """A consonant weighting: local weights of the hypotheses left after removing some."""

    @property
    def size(self) -> int:
        """Return the number of hypotheses."""
        ...

    def local_weights(self, removed: frozenset[int]) -> np.ndarray:
        """Return each hypothesis's share of alpha once those in `removed` are rejected (0 for removed ones)."""
        ...


def holm(p_values: Sequence[float]) -> list[float]:
    """Return Holm step-down adjusted p-values (same order as given, monotone, capped at 1)."""
    p = np.asarray(p_values, dtype=float)
    m = p.size
    if m == 0:
        return []
    if np.any(np.isnan(p)) or np.any(p < 0) or np.any(p > 1):
        raise ValueError(f"p-values must lie in [0, 1], got {p.tolist()}")
    order = np.argsort(p, kind="stable")
    scaled = (m - np.arange(m)) * p[order]
    adjusted_sorted = np.minimum(np.maximum.accumulate(scaled), 1.0)
    out = np.empty(m)
    out[order] = adjusted_sorted
    return out.tolist()


@dataclass(frozen=True)
class Graph:
    """A graphical multiple test procedure: initial weights (sum <= 1) and a transition matrix (rows sum <= 1)."""

    weights: tuple[float, ...]
    transitions: tuple[tuple[float, ...], ...]

    def __post_init__(self) -> None:
        """Validate and normalise the weights and transitions to tuples of floats."""
        w = np.asarray(self.weights, dtype=float)
        g = np.asarray(self.transitions, dtype=float)
        m = w.size
        if g.shape != (m, m):
            raise ValueError(f"transition matrix must be {m}x{m}, got shape {g.shape}")
        if np.any(w < 0) or w.sum() > 1 + _EPS:
            raise ValueError(f"weights must be >= 0 and sum to at most 1, got {w.tolist()}")
        if np.any(g < 0) or np.any(np.diag(g) != 0) or np.any(g.sum(axis=1) > 1 + _EPS):
            raise ValueError("transitions must be >= 0, zero on the diagonal, and each row must sum to at most 1")
        object.__setattr__(self, "weights", tuple(float(x) for x in w))
        object.__setattr__(self, "transitions", tuple(tuple(float(x) for x in row) for row in g))

    @property
    def size(self) -> int:
        """Return the number of hypotheses."""
        return len(self.weights)

    def local_weights(self, removed: frozenset[int]) -> np.ndarray:
        """Return the weights after removing the hypotheses in `removed` (the result does not depend on order)."""
        w, g = np.array(self.weights), np.array(self.transitions)
        alive = np.ones(w.size, dtype=bool)
        for j in sorted(removed):
            w, g = _remove(w, g, alive, j)
            alive[j] = False
        return np.where(alive, w, 0.0)


def _remove(w: np.ndarray, g: np.ndarray, alive: np.ndarray, j: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the weights and transitions after removing H_j (Bretz et al. 2009, algorithm 1)."""
    keep = alive.copy()
    keep[j] = False
    w_new = np.where(keep, w + w[j] * g[j], 0.0)
    g_lj = g[:, j][:, None]
    denom = 1.0 - (g[:, j] * g[j, :])[:, None]  # 1 - g_lj g_jl for each row l
    with np.errstate(divide="ignore", invalid="ignore"):
        g_new = np.where(denom > _EPS, (g + g_lj * g[j][None, :]) / denom, 0.0)
    g_new[~keep, :] = 0.0
    g_new[:, ~keep] = 0.0
    np.fill_diagonal(g_new, 0.0)
    return w_new, g_new


def holm_graph(m: int, weights: Sequence[float] | None = None) -> Graph:
    """Return the graph of weighted Holm: a rejected hypothesis passes its alpha to the others pro rata."""
    w = np.full(m, 1.0 / m) if weights is None else np.asarray(weights, dtype=float)
    g = np.zeros((m, m))
    for i in range(m):
        others = np.arange(m) != i
        total = w[others].sum()
        g[i, others] = w[others] / total if total > 0 else 1.0 / max(m - 1, 1)
    return Graph(tuple(w), tuple(map(tuple, g)))


def fixed_sequence_graph(m: int) -> Graph:
    """Return the fixed-sequence graph: H_1 at full alpha, then H_2 only if H_1 is rejected, and so on."""
    w = np.zeros(m)
    w[0] = 1.0
    g = np.eye(m, k=1)
    return Graph(tuple(w), tuple(map(tuple, g)))


@dataclass(frozen=True)
class Gatekeeping:
    """Serial gatekeeping: weighted Holm over the primaries at full alpha, then over the rest once all are rejected."""

    primary: tuple[bool, ...]
    weights: tuple[float, ...] | None = None  # relative weights within each stage; equal when None

    def __post_init__(self) -> None:
        """Validate the primary flags and the relative weights."""
        object.__setattr__(self, "primary", tuple(bool(x) for x in self.primary))
        if self.weights is not None:
            if len(self.weights) != len(self.primary) or any(x <= 0 for x in self.weights):
                raise ValueError("gatekeeping weights must be positive, one per hypothesis")
            object.__setattr__(self, "weights", tuple(float(x) for x in self.weights))

    @property
    def size(self) -> int:
        """Return the number of hypotheses."""
        return len(self.primary)

    def local_weights(self, removed: frozenset[int]) -> np.ndarray:
        """Return weighted-Holm weights over the primaries left, or over the secondaries once no primary is left."""
        rel = np.ones(self.size) if self.weights is None else np.asarray(self.weights)
        alive = np.array([i not in removed for i in range(self.size)])
        prim = np.asarray(self.primary)
        stage = alive & prim if np.any(alive & prim) else alive & ~prim
        total = rel[stage].sum()
        return np.where(stage, rel / total, 0.0) if total > 0 else np.zeros(self.size)


@dataclass(frozen=True)
class MultipleTest:
    """The outcome of a multiple test: which hypotheses are rejected and their adjusted p-values."""

    rejected: tuple[bool, ...]
    adjusted: tuple[float, ...]


def sequentially_rejective(p_values: Sequence[float], weighting: Weighting, alpha: float = 0.05) -> MultipleTest:
    """Return rejections and adjusted p-values of the weighted Bonferroni closed test under a consonant weighting."""
    p = np.asarray(p_values, dtype=float)
    if p.size != weighting.size:
        raise ValueError(f"{p.size} p-values for {weighting.size} hypotheses")
    if np.any(np.isnan(p)) or np.any(p < 0) or np.any(p > 1):
        raise ValueError(f"p-values must lie in [0, 1], got {p.tolist()}")
    adjusted = np.ones(p.size)
    removed: frozenset[int] = frozenset()
    running = 0.0
    while len(removed) < p.size:
        w = weighting.local_weights(removed)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(w > 0, p / np.where(w > 0, w, 1.0), np.inf)
        ratio[list(removed)] = np.inf
        j = int(np.argmin(ratio))
        if not np.isfinite(ratio[j]):
            break
        running = max(running, float(ratio[j]))
        adjusted[j] = min(1.0, running)
        removed = removed | {j}
    return MultipleTest(tuple(bool(a <= alpha) for a in adjusted), tuple(float(a) for a in adjusted))


def graphical_test(p_values: Sequence[float], graph: Graph, alpha: float = 0.05) -> MultipleTest:
    """Return the rejections and adjusted p-values of the graphical procedure (Bretz et al. 2009)."""
    return sequentially_rejective(p_values, graph, alpha)


def gatekeeping_test(
    p_values: Sequence[float], primary: Sequence[bool], alpha: float = 0.05, weights: Sequence[float] | None = None
) -> MultipleTest:
    """Return serial gatekeeping: primaries by weighted Holm at full alpha, secondaries only after all primaries."""
    gate = Gatekeeping(tuple(primary), None if weights is None else tuple(weights))
    return sequentially_rejective(p_values, gate, alpha)


def null_statistics(
    replicates: np.ndarray, estimates: Sequence[float], scale: Sequence[float] | None = None
) -> np.ndarray:
    """Return bootstrap replicates (replicates x metrics) centred on the estimates and divided by the scale."""
    r = np.asarray(replicates, dtype=float)
    s = r.std(axis=0, ddof=1) if scale is None else np.asarray(scale, dtype=float)
    return (r - np.asarray(estimates, dtype=float)[None, :]) / s[None, :]


def max_t_adjusted(observed: Sequence[float] | np.ndarray, null: np.ndarray) -> np.ndarray:
    """Return Westfall–Young step-down max-T adjusted p-values per row of `observed` (large values reject)."""
    t = np.asarray(observed, dtype=float)
    rows = np.atleast_2d(t)
    reps = np.asarray(null, dtype=float)
    n_rep, m = reps.shape if reps.ndim == 2 else (0, -1)
    if m != rows.shape[1]:
        raise ValueError(f"null replicates must be (replicates, {rows.shape[1]}), got shape {reps.shape}")
    orders = np.argsort(-rows, axis=1, kind="stable")
    perms, group = np.unique(orders, axis=0, return_inverse=True)
    out = np.empty_like(rows)
    for g, order in enumerate(perms):
        idx = np.flatnonzero(group.ravel() == g)
        # Column j: each replicate's maximum over the hypotheses ranked j and below (successive maxima), sorted.
        tail = np.sort(np.maximum.accumulate(reps[:, order[::-1]], axis=1)[:, ::-1], axis=0)
        ranked = rows[idx][:, order]
        exceed = n_rep - np.stack([np.searchsorted(tail[:, j], ranked[:, j]) for j in range(m)], axis=1)
        out[idx[:, None], order[None, :]] = np.maximum.accumulate((exceed + 1.0) / (n_rep + 1.0), axis=1)
    return out[0] if t.ndim == 1 else out


@dataclass(frozen=True)
class SequentialGraphResult:
    """The outcome of a graphical procedure over group-sequential tests at the latest look."""

    rejected: tuple[bool, ...]
    look: tuple[int | None, ...]  # 1-based first look whose z crossed the boundary at the hypothesis's final level
    local_alpha: tuple[float, ...]  # each hypothesis's level when the procedure stopped (or when it was rejected)


def _fractions_per_hypothesis(fractions: Sequence[float] | Sequence[Sequence[float]], m: int, k: int) -> np.ndarray:
    """Return an (m, k) array of information fractions from a shared or a per-hypothesis specification."""
    t = np.asarray(fractions, dtype=float)
    t = np.broadcast_to(t, (m, k)) if t.ndim == 1 else t
    if t.shape != (m, k):
        raise ValueError(f"information fractions must be ({k},) or ({m}, {k}), got shape {t.shape}")
    return t


def _crossing_look(z: np.ndarray, t: np.ndarray, level: float, spending: Spending, final: bool) -> np.ndarray:
    """Return per path the 0-based first look where z (paths x looks) crosses its boundaries at `level`, or -1."""
    if level <= 0.0:
        return np.full(z.shape[0], -1)
    c = np.asarray(boundaries(tuple(t), min(level, 0.4999999), spending, final=final))
    hit = z >= c[None, :]
    return np.where(hit.any(axis=1), hit.argmax(axis=1), -1)


def sequential_rejections(
    z: np.ndarray,
    weighting: Weighting,
    alpha: float,
    fractions: Sequence[float] | Sequence[Sequence[float]],
    spending: Spending | str = Spending.POCOCK,
    *,
    final: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (rejected, first look or -1, local alpha), each paths x hypotheses, for z of shape paths x looks x m."""
    z = np.asarray(z, dtype=float)
    n, k, m = z.shape
    if m != weighting.size:
        raise ValueError(f"z has {m} hypotheses, the weighting {weighting.size}")
    t = _fractions_per_hypothesis(fractions, m, k)
    s = Spending(spending)
    rejected = np.zeros((n, m), dtype=bool)
    look = np.full((n, m), -1)
    level = np.zeros((n, m))
    weights_of: dict[frozenset[int], np.ndarray] = {}
    for _ in range(m):
        keys = rejected @ (1 << np.arange(m))
        new = np.zeros((n, m), dtype=bool)
        for key in np.unique(keys):
            rows = np.flatnonzero(keys == key)
            removed = frozenset(i for i in range(m) if key >> i & 1)
            w = weights_of.setdefault(removed, weighting.local_weights(removed))
            for i in set(range(m)) - removed:
                first = _crossing_look(z[rows, :, i], t[i], float(w[i]) * alpha, s, final)
                new[rows, i] = first >= 0
                look[rows, i] = np.where(first >= 0, first, look[rows, i])
                level[rows, i] = float(w[i]) * alpha
        if not new.any():
            break
        rejected |= new
    return rejected, np.where(rejected, look, -1), level


def sequential_graphical_test(
    z: np.ndarray,
    weighting: Weighting,
    alpha: float,
    fractions: Sequence[float] | Sequence[Sequence[float]],
    spending: Spending | str = Spending.POCOCK,
    *,
    final: bool = False,
) -> SequentialGraphResult:
    """Return the Maurer–Bretz test of m hypotheses from z of shape looks x m (the looks so far)."""
    za = np.asarray(z, dtype=float)
    if za.ndim != 2:
        raise ValueError(f"z must be looks x hypotheses, got shape {za.shape}")
    rej, look, level = sequential_rejections(za[None], weighting, alpha, fractions, spending, final=final)
    return SequentialGraphResult(
        tuple(bool(x) for x in rej[0]),
        tuple(int(x) + 1 if x >= 0 else None for x in look[0]),
        tuple(float(x) for x in level[0]),
    )
