"""The family design: primaries first, secondaries after, aliases gated once, max-T where metrics share counts.

Hypotheses are grouped into nodes: the gated metrics of one count group (a protocol) and one stage (primary or
secondary). A node's weight comes from a consonant weighting of the nodes (`harness.stats.multiplicity`), and a node
passes its weight on only when all of its members are rejected; within a node the members are tested step-down at a
common level found by max-T (`harness.gate.maxt`) when their joint replicates give a correlation, else by
Bonferroni (Holm). Every boundary is the group-sequential boundary of the member's looks so far at its current
level, earlier looks included (Maurer & Bretz 2013), so the procedure is the closed test of weighted max-T
group-sequential intersection tests: the family-wise error of each family is at most alpha.

- PASS family (H0: worse >= tol): serial gatekeeping. The primaries are tested first, by Holm at the full alpha;
  only when every primary has PASSed does the whole alpha pass to the secondaries.
- REGRESSION family (H0: worse <= tol): a graph. The primaries share 1 - e of alpha and the secondaries e, with
  e = 1 / (p + 1) for p primaries: the secondaries together weigh as much as one primary, so a regression that
  touches only secondary metrics can still be found. A rejected primary passes its weight to the secondaries (a
  primary regression usually shows in its secondaries too); a rejected secondary node to the other secondaries,
  then back to the primaries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from harness.gate.design import first_crossing, look_bounds
from harness.gate.maxt import member_level
from harness.stats.multiplicity import Gatekeeping, Graph, Weighting, holm_graph
from harness.stats.sequential import Spending

ALIAS_CORRELATION = 0.99


@dataclass
class Track:
    """The looks of one gated metric: information fractions and the z values of its tests."""

    name: str
    group: str
    primary: bool
    cumulative: bool
    fractions: list[float] = field(default_factory=list)
    z_reg: list[float] = field(default_factory=list)
    z_pass: list[float] = field(default_factory=list)
    final: bool = False
    watch: bool = False  # tested for REGRESSION only (the budget cannot resolve a PASS); NOT_GATED otherwise
    planned: tuple[float, ...] = ()  # information fractions of the planned looks (first look to the cap)


@dataclass(frozen=True)
class Node:
    """Gated metrics of one count group and stage, and the correlation of their statistics (or None)."""

    group: str
    primary: bool
    members: tuple[str, ...]
    corr: np.ndarray | None = None


@dataclass(frozen=True)
class Decision:
    """Where a test crossed: 0-based look, the member's level then, and the boundary it reached."""

    look: int
    level: float
    boundary: float


def build_nodes(tracks: Sequence[Track], replicates: dict[str, np.ndarray]) -> list[Node]:
    """Return the nodes of the tracks (primaries first), with correlations from the members' joint replicates."""
    keys: dict[tuple[bool, str], list[str]] = {}
    for t in tracks:
        keys.setdefault((not t.primary, t.group), []).append(t.name)
    nodes = []
    for (secondary, group), names in sorted(keys.items()):
        nodes.append(Node(group, not secondary, tuple(names), _correlation(names, replicates)))
    return nodes


def _correlation(names: Sequence[str], replicates: dict[str, np.ndarray]) -> np.ndarray | None:
    """Return the correlation of the members' replicates (all of one length), or None."""
    if len(names) < 2 or not all(n in replicates for n in names):
        return None
    reps = [replicates[n] for n in names]
    if len({r.size for r in reps}) != 1 or reps[0].size < 10:
        return None
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(np.vstack(reps))
    return corr if np.all(np.isfinite(corr)) else None


def regression_weighting(nodes: Sequence[Node]) -> Weighting:
    """Return the REGRESSION graph over the nodes (see the module docstring)."""
    prim = [i for i, n in enumerate(nodes) if n.primary]
    sec = [i for i, n in enumerate(nodes) if not n.primary]
    m = len(nodes)
    if not prim or not sec:
        return holm_graph(m)
    share = 1.0 / (len(prim) + 1)
    w = np.zeros(m)
    w[prim] = (1.0 - share) / len(prim)
    w[sec] = share / len(sec)
    g = np.zeros((m, m))
    for i in prim:
        g[i, sec] = 1.0 / len(sec)
    for j in sec:
        others = [k for k in sec if k != j]
        targets = others or prim
        g[j, targets] = 1.0 / len(targets)
    return Graph(tuple(w), tuple(map(tuple, g)))


def pass_weighting(nodes: Sequence[Node]) -> Weighting:
    """Return serial gatekeeping over the nodes: primaries by Holm at full alpha, then the secondaries."""
    return Gatekeeping(tuple(n.primary for n in nodes))


def _node_level(
    node: Node, alive: list[str], tracks: dict[str, Track], level: float, spending: Spending
) -> tuple[float, bool]:
    """Return the per-member level of a node's living members, and whether all of them are at their last look."""
    ts = [tracks[n] for n in alive]
    final = all(t.final for t in ts)
    if node.corr is None or not all(t.cumulative for t in ts):
        return level / len(alive), final
    idx = [node.members.index(n) for n in alive]
    corr = node.corr[np.ix_(idx, idx)]
    # Calibrated once over the planned looks (the whole design), so every look's boundary uses the same level:
    # a level calibrated on the looks so far would spend the whole alpha at the first look.
    return member_level(level, corr, [t.planned or tuple(t.fractions) for t in ts], True, spending), final


def reject(
    nodes: Sequence[Node],
    weighting: Weighting,
    tracks: dict[str, Track],
    z_of: Callable[[Track], list[float]],
    alpha: float,
    spending: Spending,
    *,
    rejected: dict[str, Decision] | None = None,
    barred: Iterable[str] = (),
) -> dict[str, Decision]:
    """Return every rejected member and where it crossed: the sequentially rejective shortcut of the closed test.

    `rejected` holds earlier rejections (frozen verdicts); `barred` members (frozen in the other family) are never
    rejected here but keep their place in their node.
    """
    out = dict(rejected or {})
    barred = set(barred)
    while True:
        done = frozenset(i for i, n in enumerate(nodes) if all(m in out for m in n.members))
        weights = weighting.local_weights(done)
        new: dict[str, Decision] = {}
        for i, node in enumerate(nodes):
            alive = [m for m in node.members if m not in out]
            if i in done or weights[i] <= 0.0 or not alive:
                continue
            level, _ = _node_level(node, alive, tracks, float(weights[i]) * alpha, spending)
            for name in alive:
                track = tracks[name]
                if name in barred or not track.fractions:
                    continue
                bounds = look_bounds(tuple(track.fractions), level, spending, track.final, track.cumulative)
                k = first_crossing(z_of(track), bounds)
                if k is not None:
                    new[name] = Decision(k, level, bounds[k])
        if not new:
            return out
        out.update(new)


def levels(
    nodes: Sequence[Node], weighting: Weighting, tracks: dict[str, Track], rejected: Iterable[str], alpha: float
) -> dict[str, float]:
    """Return each living member's current level (Bonferroni within its node: the floor max-T never goes below)."""
    rejected = set(rejected)
    done = frozenset(i for i, n in enumerate(nodes) if all(m in rejected for m in n.members))
    weights = weighting.local_weights(done)
    out = {}
    for i, node in enumerate(nodes):
        alive = [m for m in node.members if m not in rejected]
        for name in alive:
            out[name] = float(weights[i]) * alpha / len(alive)
    return out


def find_aliases(
    order: Sequence[str],
    declared: dict[str, str],
    replicates: dict[str, np.ndarray],
    groups: dict[str, str],
) -> dict[str, str]:
    """Return alias -> the metric it follows: declared pairs, and pairs of one group whose replicates correlate
    at |r| >= 0.99. `order` ranks the candidates for the followed metric (primaries first)."""
    out: dict[str, str] = {}
    present = set(order)
    for name in order:
        target = declared.get(name)
        if target in present and target != name:
            out[name] = target
    for i, a in enumerate(order):
        for b in order[i + 1 :]:
            if b in out or a in out or groups.get(a) != groups.get(b):
                continue
            ra, rb = replicates.get(a), replicates.get(b)
            if ra is None or rb is None or ra.size != rb.size or ra.size < 10:
                continue
            with np.errstate(invalid="ignore", divide="ignore"):
                r = float(np.corrcoef(ra, rb)[0, 1])
            if np.isfinite(r) and abs(r) >= ALIAS_CORRELATION:
                out[b] = a
    return {a: _root(a, out) for a in out}


def _root(name: str, aliases: dict[str, str]) -> str:
    seen = {name}
    while name in aliases:
        name = aliases[name]
        if name in seen:
            break
        seen.add(name)
    return name
