"""Group-sequential boundaries: published values, exactness against scipy, error rates by simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from harness.stats.sequential import (
    SequentialDesign,
    Spending,
    boundaries,
    canonical_paths,
    doubling_fractions,
    exit_probabilities,
    expected_fraction,
    first_crossings,
    information_fractions,
    spent_alpha,
)

N_PATHS = 100_000
# Three binomial standard errors of a rate of 0.05 over N_PATHS paths.
MC_TOL = 3.0 * math.sqrt(0.05 * 0.95 / N_PATHS)
UNEQUAL = (0.15, 0.4, 0.55, 1.0)
DESIGNS = [doubling_fractions(k) for k in range(1, 6)] + [UNEQUAL]


def mvn_crossing(t: tuple[float, ...], bounds: tuple[float, ...]) -> float:
    """P(any Z_k >= c_k) from scipy's multivariate normal CDF (Genz), independent of the recursion."""
    ta = np.asarray(t)
    cov = np.sqrt(np.minimum.outer(ta, ta) / np.maximum.outer(ta, ta))
    mvn = multivariate_normal(np.zeros(ta.size), cov, abseps=1e-6, releps=1e-6, maxpts=400_000, seed=7)
    return 1.0 - float(mvn.cdf(np.asarray(bounds)))


def test_published_lan_demets_boundaries_five_equal_looks() -> None:
    """gsDesign sfLDOF / sfLDPocock, one-sided alpha 0.025, K = 5 equally spaced (Jennison & Turnbull tables)."""
    t = (0.2, 0.4, 0.6, 0.8, 1.0)
    obf = boundaries(t, 0.025, Spending.OBRIEN_FLEMING)
    pocock = boundaries(t, 0.025, Spending.POCOCK)
    assert obf == pytest.approx((4.8769, 3.3569, 2.6803, 2.2898, 2.0310), abs=2e-4)
    assert pocock == pytest.approx((2.4380, 2.4268, 2.4101, 2.3966, 2.3859), abs=2e-4)


@pytest.mark.parametrize("spending", list(Spending))
@pytest.mark.parametrize("t", DESIGNS[1:], ids=str)
def test_boundaries_spend_exactly_alpha_by_scipy_mvn(spending: Spending, t: tuple[float, ...]) -> None:
    """The total crossing probability of the boundaries, by an independent integrator, is alpha to 1e-5."""
    bounds = boundaries(t, 0.05, spending)
    assert mvn_crossing(t, bounds) == pytest.approx(0.05, abs=1e-5)
    up, _ = exit_probabilities(t, bounds)
    increments = np.diff(np.concatenate([[0.0], spent_alpha(np.asarray(t), 0.05, spending)]))
    assert up == pytest.approx(increments, abs=1e-8)


def test_repeated_fixed_z_looks_inflate_the_error_as_in_the_issue() -> None:
    """Looking 2, 3, 4 times (doubling) at z = 1.645 gives 8.0%, 10.7%, 13.2% (issue: 8.0, 10.7, 13.1)."""
    z = 1.6448536269514722
    got = [exit_probabilities(doubling_fractions(k), [z] * k)[0].sum() for k in (2, 3, 4)]
    assert got == pytest.approx([0.0801, 0.1068, 0.1319], abs=1e-4)
    assert got[2] == pytest.approx(mvn_crossing(doubling_fractions(4), (z,) * 4), abs=1e-6)


@pytest.mark.parametrize("spending", list(Spending))
def test_spending_functions_run_from_zero_to_alpha(spending: Spending) -> None:
    """alpha(0) = 0, alpha(1) = alpha, increasing; OBF spends far less early than Pocock."""
    t = np.linspace(0.0, 1.0, 101)
    a = spent_alpha(t, 0.05, spending)
    assert a[0] == 0.0 and a[-1] == pytest.approx(0.05, abs=1e-15)
    assert np.all(np.diff(a) > 0)
    assert spent_alpha(0.25, 0.05, Spending.OBRIEN_FLEMING) < 1e-4 < 0.01 < spent_alpha(0.25, 0.05, Spending.POCOCK)


def simulate_verdicts(design: SequentialDesign, drift: float, seed: int) -> tuple[float, float]:
    """Return P(REGRESSION), P(PASS) of the two one-sided tests run together (first crossing freezes)."""
    z = canonical_paths(design.fractions, N_PATHS, np.random.default_rng(seed), drift)
    bounds = design.test(z[0]).boundaries
    reg, ok = first_crossings(z, bounds), first_crossings(-z, bounds)
    big = design.looks + 1
    reg_at, ok_at = np.where(reg < 0, big, reg), np.where(ok < 0, big, ok)
    return float(np.mean(reg_at < ok_at)), float(np.mean(ok_at < reg_at))


@pytest.mark.parametrize("spending", list(Spending))
@pytest.mark.parametrize("t", DESIGNS, ids=str)
def test_each_error_is_alpha_at_the_tolerance_by_simulation(spending: Spending, t: tuple[float, ...]) -> None:
    """A metric exactly at its tolerance: false REGRESSION and false PASS each within MC error of alpha."""
    design = SequentialDesign(0.05, spending, t)
    p_reg, p_pass = simulate_verdicts(design, 0.0, seed=len(t))
    assert p_reg == pytest.approx(0.05, abs=MC_TOL)
    assert p_pass == pytest.approx(0.05, abs=MC_TOL)


@pytest.mark.parametrize("spending", list(Spending))
def test_stopping_before_the_planned_last_look_spends_the_rest(spending: Spending) -> None:
    """Planned K = 4 (doubling) but the cap ends the looks at the third: the third spends all that is left."""
    design = SequentialDesign.doubling(4, 0.05, spending)
    z = canonical_paths(design.fractions[:3], N_PATHS, np.random.default_rng(11))
    stopped = design.test([0.0, 0.0, 0.0], stopped=True).boundaries
    planned = design.test([0.0, 0.0, 0.0]).boundaries
    assert stopped[:2] == planned[:2] and stopped[2] < planned[2]
    assert exit_probabilities(design.fractions[:3], stopped)[0].sum() == pytest.approx(0.05, abs=1e-8)
    assert np.mean(first_crossings(z, stopped) >= 0) == pytest.approx(0.05, abs=MC_TOL)


def test_exit_probabilities_under_drift_match_simulation() -> None:
    """Power and the lower-boundary exits of the dual test agree with simulation under a drift."""
    t = doubling_fractions(3)
    b = np.asarray(boundaries(t, 0.05, Spending.POCOCK))
    up, down = exit_probabilities(t, b, -b, drift=2.0)
    z = canonical_paths(t, N_PATHS, np.random.default_rng(5), drift=2.0)
    reg, ok = first_crossings(z, b), first_crossings(-z, b)
    sim_up = [np.mean((reg == k) & ((ok < 0) | (ok > k))) for k in range(3)]
    sim_down = [np.mean((ok == k) & ((reg < 0) | (reg > k))) for k in range(3)]
    assert up == pytest.approx(sim_up, abs=3.0 * math.sqrt(0.25 / N_PATHS))
    assert down == pytest.approx(sim_down, abs=3.0 * math.sqrt(0.002 / N_PATHS))


def test_documented_choice_numbers() -> None:
    """The module docstring's comparison of OBF and Pocock for an unchanged metric 3.5 SE inside its tolerance."""
    t = doubling_fractions(3)
    rows = {}
    for s in Spending:
        b = np.asarray(boundaries(t, 0.05, s))
        up, down = exit_probabilities(t, b, -b, drift=-7.0)
        power, _ = exit_probabilities(t, b, -b, drift=2.0)
        rows[s] = (b[0], b[-1], up[0] + down[0], expected_fraction(t, b, -b, -7.0), power.sum())
    assert rows[Spending.OBRIEN_FLEMING] == pytest.approx((3.75, 1.66, 0.40, 0.40, 0.635), abs=5e-3)
    assert rows[Spending.POCOCK] == pytest.approx((2.10, 1.91, 0.92, 0.27, 0.575), abs=5e-3)


def test_verdict_freezes_at_the_first_crossing() -> None:
    """A PASS reached at look 1 stays PASS even if a later z would cross the REGRESSION boundary."""
    design = SequentialDesign.doubling(3)
    assert design.verdict([-2.5]).verdict == "PASS"
    later = design.verdict([-2.5, 0.0, 3.0])
    assert (later.verdict, later.look) == ("PASS", 1)
    assert later.regression.look == 3


def test_verdict_continues_then_ends_inconclusive() -> None:
    """No crossing before the cap means CONTINUE; at the last planned or a stopped look, INCONCLUSIVE."""
    design = SequentialDesign.doubling(3, spending=Spending.OBRIEN_FLEMING)
    assert design.verdict([0.5]).verdict == "CONTINUE"
    assert design.verdict([0.5, 0.2]).verdict == "CONTINUE"
    assert design.verdict([0.5, 0.2], stopped=True).verdict == "INCONCLUSIVE"
    assert design.verdict([0.5, 0.2, 1.0]).verdict == "INCONCLUSIVE"
    end = design.verdict([0.5, 0.2, 1.7])
    assert (end.verdict, end.look) == ("REGRESSION", 3)


def test_observed_fractions_from_standard_errors() -> None:
    """Information fractions follow the standard errors; unplanned fractions give their own boundaries."""
    t = information_fractions([0.2, 0.1414, 0.1], 0.1)
    assert t == pytest.approx((0.25, 0.5, 1.0), abs=1e-3)
    design = SequentialDesign.doubling(3)
    got = design.test([0.0, 0.0], fractions=[0.3, 0.55])
    assert got.boundaries == boundaries([0.3, 0.55], 0.05, Spending.POCOCK)


@pytest.mark.parametrize("spending", list(Spending))
def test_boundaries_fall_as_alpha_grows(spending: Spending) -> None:
    """Every look's boundary is non-increasing in alpha (the graphical sequential procedures rely on it)."""
    alphas = np.geomspace(1e-4, 0.05, 25)
    for k in (2, 3, 5):
        for final in (False, True):
            b = np.array([boundaries((*doubling_fractions(k)[:-1], 0.75), a, spending, final=final) for a in alphas])
            b = np.where(np.isinf(b), 1e9, b)
            assert np.all(np.diff(b, axis=0) <= 1e-9)


def test_bad_inputs_are_rejected() -> None:
    """Fractions must increase and stay below 1 before the last look; alpha must be below one half."""
    with pytest.raises(ValueError, match="strictly increasing"):
        boundaries([0.5, 0.5, 1.0])
    with pytest.raises(ValueError, match="only the last"):
        boundaries([1.0, 2.0])
    with pytest.raises(ValueError, match="alpha"):
        boundaries([1.0], 0.6)
    with pytest.raises(ValueError, match="plans 1 to 2"):
        SequentialDesign.doubling(2).test([0.0, 0.0, 0.0])
