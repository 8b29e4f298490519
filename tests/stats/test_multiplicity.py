"""Multiple testing: Holm, graphs, gatekeeping, max-T and graphs over group-sequential tests; FWER by simulation."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.special import ndtr

from harness.gate import holm as gate_holm
from harness.stats.multiplicity import (
    Gatekeeping,
    Graph,
    _remove,
    fixed_sequence_graph,
    gatekeeping_test,
    graphical_test,
    holm,
    holm_graph,
    max_t_adjusted,
    null_statistics,
    sequential_graphical_test,
    sequential_rejections,
    sequentially_rejective,
)
from harness.stats.sequential import Spending, boundaries, doubling_fractions

ALPHA = 0.05
# The "general successive" graph (Bretz et al. 2009, Fig. 6; Maurer et al. 2011) with gamma = delta = 1/2:
# two primaries H1, H2 split alpha; each passes half to the other primary and half to its own secondary
# (H1 -> H3, H2 -> H4), and a rejected secondary passes everything to the other primary.
SUCCESSIVE = Graph((0.5, 0.5, 0.0, 0.0), ((0, 0.5, 0.5, 0), (0.5, 0, 0, 0.5), (0, 1, 0, 0), (1, 0, 0, 0)))


def correlated_normals(rng: np.random.Generator, shape: tuple[int, ...], rho: float) -> np.ndarray:
    """Return standard normals, equicorrelated (rho >= 0) along the last axis."""
    common = rng.standard_normal((*shape[:-1], 1))
    return math.sqrt(rho) * common + math.sqrt(1.0 - rho) * rng.standard_normal(shape)


def test_holm_matches_the_gate() -> None:
    """The family's Holm is the gate's Holm, ties, zeros and ones included."""
    rng = np.random.default_rng(0)
    for _ in range(200):
        p = rng.uniform(0, 0.1, size=rng.integers(1, 9))
        p[rng.uniform(size=p.size) < 0.2] = 0.0
        p[:2] = p[0]
        assert holm(p) == pytest.approx(gate_holm(p), abs=1e-15)
    assert holm([]) == []
    with pytest.raises(ValueError):
        holm([0.5, 1.5])


def test_holm_graph_is_holm_and_weighted_holm() -> None:
    """The Holm graph reproduces Holm; with weights it is weighted Holm (p_j / w_j ordered, step-down)."""
    rng = np.random.default_rng(1)
    for _ in range(100):
        p = rng.uniform(0, 0.08, size=5)
        assert graphical_test(p, holm_graph(5)).adjusted == pytest.approx(holm(p), abs=1e-15)
    w = np.array([0.5, 0.3, 0.2])
    p = np.array([0.03, 0.012, 0.011])
    # Ratios 0.06, 0.04, 0.055: H2 first (0.04), then H3 at weight 0.2/0.7 (0.0385 -> 0.04 by monotonicity),
    # then H1 alone (0.03).
    got = graphical_test(p, holm_graph(3, w)).adjusted
    assert got == pytest.approx((0.04, 0.04, 0.04), abs=1e-12)


def test_fixed_sequence_adjusted_p_is_the_running_maximum() -> None:
    """Fixed sequence: each hypothesis at full alpha only after all before it; adjusted p = running max."""
    p = [0.01, 0.04, 0.02, 0.2, 0.001]
    got = graphical_test(p, fixed_sequence_graph(5))
    assert got.adjusted == pytest.approx((0.01, 0.04, 0.04, 0.2, 0.2))
    assert got.rejected == (True, True, True, False, False)


def test_successive_graph_hand_worked_example() -> None:
    """Worked by hand from the update rules: reject H1 (0.01 <= 0.025), then H3 at 0.0125 ... all at alpha 0.05.

    After H1: w = (-, 3/4, 1/4, 0), g23 = 1/3, g24 = 2/3, g42 = g43 = 1/2. After H1, H3: w2 = 1, g24 = 1.
    Adjusted p: H1 0.01/0.5 = 0.02, H3 0.005/0.25 = 0.02, H2 0.03/1 = 0.03, H4 max(0.03, 0.02/1) = 0.03.
    """
    got = graphical_test([0.01, 0.03, 0.005, 0.02], SUCCESSIVE, ALPHA)
    assert got.adjusted == pytest.approx((0.02, 0.03, 0.02, 0.03), abs=1e-12)
    assert SUCCESSIVE.local_weights(frozenset({0})) == pytest.approx((0, 0.75, 0.25, 0))
    assert got.rejected == (True, True, True, True)
    strict = graphical_test([0.01, 0.03, 0.005, 0.02], SUCCESSIVE, 0.025)
    assert strict.rejected == (True, False, True, False)


def test_fallback_procedure_as_a_graph() -> None:
    """Wiens' fallback (weights 1/2, 1/4, 1/4 and a chain): H2 gets H1's level only when H1 is rejected."""
    chain = Graph((0.5, 0.25, 0.25), ((0, 1, 0), (0, 0, 1), (0, 0, 0)))
    assert graphical_test([0.03, 0.02, 0.03], chain, ALPHA).rejected == (False, False, False)
    assert graphical_test([0.02, 0.03, 0.03], chain, ALPHA).rejected == (True, True, True)
    assert graphical_test([0.03, 0.01, 0.03], chain, ALPHA).rejected == (False, True, False)
    assert graphical_test([0.03, 0.01, 0.02], chain, ALPHA).rejected == (False, True, True)


def test_graph_update_does_not_depend_on_the_order_of_removal() -> None:
    """Bretz et al.'s theorem: the graph after removing a set of hypotheses is the same in every order."""
    rng = np.random.default_rng(2)
    for _ in range(20):
        g = rng.uniform(size=(5, 5))
        np.fill_diagonal(g, 0.0)
        g /= g.sum(axis=1, keepdims=True)
        w = rng.dirichlet(np.ones(5))
        results = []
        for order in itertools.permutations([0, 2, 3]):
            ww, gg, alive = w.copy(), g.copy(), np.ones(5, dtype=bool)
            for j in order:
                ww, gg = _remove(ww, gg, alive, j)
                alive[j] = False
            results.append(np.concatenate([ww[alive], gg[np.ix_(alive, alive)].ravel()]))
        assert np.ptp(np.array(results), axis=0).max() < 1e-12


def closed_test(p: np.ndarray, weighting, alpha: float) -> tuple[bool, ...]:
    """Brute-force closed test: H_i is rejected when every intersection containing it is (weighted Bonferroni)."""
    m = len(p)
    ok = [True] * m
    for r in range(1, m + 1):
        for subset in itertools.combinations(range(m), r):
            w = weighting.local_weights(frozenset(set(range(m)) - set(subset)))
            if not any(p[i] <= w[i] * alpha for i in subset):
                for i in subset:
                    ok[i] = False
    return tuple(ok)


@pytest.mark.parametrize(
    "weighting", [SUCCESSIVE, holm_graph(4, [0.4, 0.3, 0.2, 0.1]), Gatekeeping((True, True, False, False))]
)
def test_shortcut_equals_the_closed_test(weighting) -> None:
    """The sequentially rejective shortcut rejects exactly what the full closed test rejects."""
    rng = np.random.default_rng(3)
    for _ in range(150):
        p = rng.uniform(0, 0.06, size=4)
        assert sequentially_rejective(p, weighting, ALPHA).rejected == closed_test(p, weighting, ALPHA)


def test_gatekeeping_primaries_get_holm_at_full_alpha() -> None:
    """Primaries are adjusted exactly as Holm among themselves; secondaries wait for every primary."""
    rng = np.random.default_rng(4)
    primary = (True, False, True, False, False)
    for _ in range(200):
        p = rng.uniform(0, 0.05, size=5)
        got = np.array(gatekeeping_test(p, primary).adjusted)
        prim = np.array(primary)
        assert got[prim] == pytest.approx(holm(p[prim]), abs=1e-15)
        expect = np.maximum(max(holm(p[prim])), holm(p[~prim]))
        assert got[~prim] == pytest.approx(expect, abs=1e-15)


def test_gatekeeping_is_the_limit_of_a_graph_with_tiny_edges_to_the_secondaries() -> None:
    """Serial gatekeeping equals the graph whose primaries pass epsilon to the secondaries (epsilon -> 0)."""
    eps = 1e-9
    g = np.array(
        [[0, 1 - eps, eps / 2, eps / 2], [1 - eps, 0, eps / 2, eps / 2], [0, 0, 0, 1], [0, 0, 1, 0]], dtype=float
    )
    graph = Graph((0.5, 0.5, 0, 0), tuple(map(tuple, g)))
    rng = np.random.default_rng(5)
    for _ in range(300):
        p = rng.uniform(0, 0.06, size=4)
        assert graphical_test(p, graph).rejected == gatekeeping_test(p, (True, True, False, False)).rejected


def batched_rejections(z: np.ndarray, weighting) -> np.ndarray:
    """Sequentially rejective tests of many rows of z (p = 1 - Phi(z)) at once: one look of the sequential code."""
    return sequential_rejections(z[:, None, :], weighting, ALPHA, (1.0,))[0]


SIZES = [30_000, pytest.param(300_000, marks=pytest.mark.slow)]


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("rho", [0.0, 0.6])
@pytest.mark.parametrize("weighting", [SUCCESSIVE, holm_graph(4), Gatekeeping((True, True, False, False))])
def test_fwer_by_simulation_global_and_partial_nulls(weighting, rho: float, n: int) -> None:
    """FWER <= alpha (+ 3 MC SE) with correlated statistics, all nulls true and with H1, H3 false."""
    rng = np.random.default_rng(6)
    tol = 3.0 * math.sqrt(ALPHA * (1 - ALPHA) / n)
    for shift, true_null in (((0, 0, 0, 0), [0, 1, 2, 3]), ((4, 0, 3, 0), [1, 3])):
        z = correlated_normals(rng, (n, 4), rho) + np.asarray(shift, dtype=float)
        rej = batched_rejections(z, weighting)
        loop = np.array([sequentially_rejective(row, weighting, ALPHA).rejected for row in ndtr(-z[:300])])
        assert np.array_equal(loop, rej[:300])
        assert rej[:, true_null].any(axis=1).mean() <= ALPHA + tol


def test_max_t_is_step_down_and_exact_for_one_metric() -> None:
    """One metric: the max-T p is the bootstrap tail share; adjusted p-values are monotone in the statistics."""
    rng = np.random.default_rng(7)
    null = rng.standard_normal((9999, 1))
    assert max_t_adjusted([1.645], null)[0] == pytest.approx((np.sum(null >= 1.645) + 1) / 10000)
    t = np.array([0.3, 2.9, 1.7, 2.2])
    adj = max_t_adjusted(t, correlated_normals(rng, (20000, 4), 0.5))
    order = np.argsort(-t)
    assert np.all(np.diff(adj[order]) >= 0)
    with pytest.raises(ValueError):
        max_t_adjusted(t, null)


@pytest.mark.parametrize("n", [20_000, pytest.param(200_000, marks=pytest.mark.slow)])
def test_max_t_fwer_and_power_against_holm_with_correlated_metrics(n: int) -> None:
    """rho = 0.9, global null: max-T keeps FWER at alpha within MC error; Holm is conservative (~0.03)."""
    rng = np.random.default_rng(8)
    null = correlated_normals(rng, (n, 4), 0.9)
    sims = correlated_normals(rng, (n, 4), 0.9)
    maxt = np.mean(max_t_adjusted(sims, null).min(axis=1) <= ALPHA)
    hol = np.mean(batched_rejections(sims, holm_graph(4)).any(axis=1))
    # MC error of the simulated rate plus that of the null quantile estimated from the same number of replicates.
    tol = 2.0 * 3.0 * math.sqrt(ALPHA * (1 - ALPHA) / n)
    assert maxt == pytest.approx(ALPHA, abs=tol)
    assert hol < maxt - 0.01
    loop = [max_t_adjusted(row, null) for row in sims[:50]]
    assert np.array_equal(np.array(loop), max_t_adjusted(sims[:50], null))


def test_max_t_from_a_joint_parametric_bootstrap_of_shared_counts() -> None:
    """Two metrics from one multinomial (p1 and p1 + p2 share counts): FWER of max-T within MC error of alpha."""
    rng = np.random.default_rng(9)
    n, probs, sims, b = 2000, np.array([0.2, 0.3, 0.5]), 3000, 400
    truth = np.array([0.2, 0.5])

    def metrics(counts: np.ndarray) -> np.ndarray:
        share = counts / n
        return np.stack([share[..., 0], share[..., 0] + share[..., 1]], axis=-1)

    observed = metrics(rng.multinomial(n, probs, size=sims))
    hits = 0
    for est in observed:
        p_hat = np.array([est[0], est[1] - est[0], 1.0 - est[1]])
        reps = metrics(rng.multinomial(n, p_hat, size=b))
        se = reps.std(axis=0, ddof=1)
        null = null_statistics(reps, est, se)
        # Two one-sided statistics per metric (upwards and downwards) form the family of four.
        t_obs = np.concatenate([(est - truth) / se, (truth - est) / se])
        hits += max_t_adjusted(t_obs, np.concatenate([null, -null], axis=1)).min() <= ALPHA
    assert hits / sims == pytest.approx(ALPHA, abs=3.0 * math.sqrt(ALPHA * (1 - ALPHA) / sims) + 0.005)


def sequential_paths(rng, n: int, t: tuple[float, ...], drift: np.ndarray, rho: float) -> np.ndarray:
    """Return z of shape (n, looks, m): canonical processes per hypothesis, increments correlated across them."""
    ta = np.asarray(t)
    inc = np.diff(np.concatenate([[0.0], ta]))
    steps = correlated_normals(rng, (n, ta.size, drift.size), rho) * np.sqrt(inc)[None, :, None]
    score = np.cumsum(steps + drift[None, None, :] * inc[None, :, None], axis=1)
    return score / np.sqrt(ta)[None, :, None]


def closed_sequential(z: np.ndarray, weighting, t: tuple[float, ...], spending: Spending) -> np.ndarray:
    """Brute-force Maurer–Bretz closed test: an intersection rejects when any member crosses at its weight."""
    n, _, m = z.shape
    rejected = np.ones((n, m), dtype=bool)
    for r in range(1, m + 1):
        for subset in itertools.combinations(range(m), r):
            w = weighting.local_weights(frozenset(set(range(m)) - set(subset)))
            hit = np.zeros(n, dtype=bool)
            for i in subset:
                if w[i] > 0:
                    c = np.asarray(boundaries(t, w[i] * ALPHA, spending))
                    hit |= (z[:, :, i] >= c).any(axis=1)
            for i in subset:
                rejected[:, i] &= hit
    return rejected


@pytest.mark.parametrize("spending", list(Spending))
@pytest.mark.parametrize("weighting", [holm_graph(3), Gatekeeping((True, False, False))], ids=["holm", "gate"])
def test_maurer_bretz_shortcut_equals_closed_group_sequential_test(weighting, spending: Spending) -> None:
    """On 3000 paths with one false null, the shortcut rejects exactly what the closed test rejects."""
    t = doubling_fractions(3)
    z = sequential_paths(np.random.default_rng(10), 3000, t, np.array([3.0, 1.0, 0.0]), 0.4)
    fast = sequential_rejections(z, weighting, ALPHA, t, spending)[0]
    assert np.array_equal(fast, closed_sequential(z, weighting, t, spending))
    assert 0 < fast[:, 1].mean() < 1


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("spending", list(Spending))
@pytest.mark.parametrize("weighting", [SUCCESSIVE, Gatekeeping((True, True, False, False))], ids=["graph", "gate"])
def test_maurer_bretz_fwer_by_simulation(weighting, spending: Spending, n: int) -> None:
    """Correlated paths, 3 doubling looks: FWER <= alpha + 3 MC SE under global and partial nulls."""
    t = doubling_fractions(3)
    tol = 3.0 * math.sqrt(ALPHA * (1 - ALPHA) / n)
    rng = np.random.default_rng(12)
    for drift, true_null in (((0, 0, 0, 0), [0, 1, 2, 3]), ((4, 0, 0, 0), [1, 2, 3]), ((5, 5, 0, 0), [2, 3])):
        z = sequential_paths(rng, n, t, np.asarray(drift, dtype=float), 0.5)
        rejected = sequential_rejections(z, weighting, ALPHA, t, spending)[0]
        assert rejected[:, true_null].any(axis=1).mean() <= ALPHA + tol


def test_maurer_bretz_single_hypothesis_is_the_plain_sequential_test() -> None:
    """One hypothesis at full alpha: the rejection look is the first boundary crossing."""
    t = doubling_fractions(3)
    c = boundaries(t, ALPHA, Spending.POCOCK)
    z = np.array([[c[0] - 0.1], [c[1] + 0.01], [0.0]])
    got = sequential_graphical_test(z, holm_graph(1), ALPHA, t)
    assert got.rejected == (True,) and got.look == (2,) and got.local_alpha == (ALPHA,)


def test_maurer_bretz_recomputed_boundaries_reach_back_to_earlier_looks() -> None:
    """H2 misses its look-1 boundary at alpha/2 but clears it at alpha once H1 is rejected at look 2."""
    t = doubling_fractions(3)
    half, full = boundaries(t, ALPHA / 2, Spending.POCOCK), boundaries(t, ALPHA, Spending.POCOCK)
    z2_first = (half[0] + full[0]) / 2
    z = np.array([[0.0, z2_first], [half[1] + 0.1, 0.0]])
    got = sequential_graphical_test(z, holm_graph(2), ALPHA, t[:2])
    assert got.rejected == (True, True)
    assert got.look == (2, 1)
    assert got.local_alpha == pytest.approx((ALPHA / 2, ALPHA))
    alone = sequential_graphical_test(z[:1], holm_graph(2), ALPHA, t[:1])
    assert alone.rejected == (False, False)


def test_bad_graphs_are_rejected() -> None:
    """Weights above 1, rows above 1 or self-loops are refused with a message."""
    with pytest.raises(ValueError, match="weights"):
        Graph((0.7, 0.7), ((0, 1), (1, 0)))
    with pytest.raises(ValueError, match="transitions"):
        Graph((0.5, 0.5), ((0.5, 0.5), (1, 0)))
    with pytest.raises(ValueError, match="2 p-values for 3"):
        graphical_test([0.1, 0.2], holm_graph(3))
