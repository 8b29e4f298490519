"""State and process tomography: conventions, exact recovery, projections, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from harness.analysis import (
    AnalysisError,
    linear_inversion_process,
    process_tomography,
    project_to_cptp,
    project_to_density_matrix,
    state_tomography,
)
from harness.physics.channels import choi_from_kraus, validate_choi
from harness.physics.link import link_kraus, werner_state

from .helpers import process_probabilities, random_channel_kraus, sample, state_probabilities

EXACT = 10**12  # counts proportional to exact probabilities, rounded


def test_ordering_convention_qubit_a_most_significant():
    ket01 = np.kron([1, 0], [0, 1]).astype(complex)  # A in |0>, B in |1>
    rho = np.outer(ket01, ket01)
    probs = state_probabilities(rho)
    assert probs[8].tolist() == [0, 1, 0, 0]  # ZZ row: outcome "+-"
    np.testing.assert_allclose(state_tomography(np.round(probs * EXACT)), rho, atol=1e-10)
    # A hand-written table: every row consistent with A = |0>, B = |1>.
    counts = np.full((9, 4), 250)
    counts[8] = [0, 1000, 0, 0]
    counts[2] = [0, 500, 0, 500]  # XZ: B always "-"
    counts[5] = [0, 500, 0, 500]  # YZ: B always "-"
    counts[6] = [500, 500, 0, 0]  # ZX: A always "+"
    counts[7] = [500, 500, 0, 0]  # ZY: A always "+"
    np.testing.assert_allclose(state_tomography(counts), rho, atol=1e-12)


@pytest.mark.parametrize("n", [1, 2])
def test_exact_probabilities_recover_random_states(n):
    rng = np.random.default_rng(n)
    d = 2**n
    a = rng.normal(size=(d, d)) + 1j * rng.normal(size=(d, d))
    rho = a @ a.conj().T
    rho /= np.trace(rho)
    counts = np.round(state_probabilities(rho) * EXACT)
    np.testing.assert_allclose(state_tomography(counts), rho, atol=1e-10)


def _sgs_sequential(mu: np.ndarray) -> np.ndarray:
    # The algorithm as written in the paper: walk up from the smallest eigenvalue.
    lam = np.sort(mu)[::-1].copy()
    a, i = 0.0, len(lam)
    while i > 0 and lam[i - 1] + a / i < 0:
        a += lam[i - 1]
        lam[i - 1] = 0.0
        i -= 1
    lam[:i] += a / i
    return lam


def test_projection_matches_sequential_sgs_algorithm():
    rng = np.random.default_rng(4)
    for _ in range(50):
        a = rng.normal(size=(4, 4)) + 1j * rng.normal(size=(4, 4))
        h = (a + a.conj().T) / 2
        h = h - (np.trace(h) - 1) * np.eye(4) / 4
        out = project_to_density_matrix(h)
        np.testing.assert_allclose(
            np.sort(np.linalg.eigvalsh(out))[::-1], _sgs_sequential(np.linalg.eigvalsh(h)), atol=1e-12
        )
        assert np.trace(out).real == pytest.approx(1.0)


def test_batched_state_tomography_equals_loop():
    rng = np.random.default_rng(2)
    probs = state_probabilities(werner_state(0.9))
    batch = sample(probs, 200, rng, size=5)
    np.testing.assert_allclose(state_tomography(batch), [state_tomography(b) for b in batch], atol=1e-14)


@pytest.mark.parametrize("inputs", [("0", "1", "+", "+i"), ("0", "1", "+", "-", "+i", "-i")])
def test_exact_process_tomography_recovers_channel(inputs):
    choi = choi_from_kraus(link_kraus(0.1, 0.05, 0.02))
    counts = np.round(process_probabilities(choi, inputs) * EXACT)
    np.testing.assert_allclose(process_tomography(counts, inputs), choi, atol=1e-10)


def test_permuted_bases_are_reordered():
    choi = choi_from_kraus(link_kraus(0.2, 0.1, 0.0))
    inputs = ("0", "1", "+", "+i")
    counts = np.round(process_probabilities(choi, inputs) * EXACT)
    np.testing.assert_allclose(
        linear_inversion_process(counts[:, [2, 0, 1]], inputs, ("Z", "X", "Y")), choi, atol=1e-10
    )


def test_cptp_projection_is_the_nearest_cptp_point():
    rng = np.random.default_rng(8)
    choi = choi_from_kraus(link_kraus(0.0, 0.0, 0.0))  # identity: on the boundary, so noise leaves the set
    counts = sample(process_probabilities(choi, ("0", "1", "+", "+i")), 50, rng)
    raw = linear_inversion_process(counts)
    assert np.linalg.eigvalsh(raw)[0] < -1e-3
    proj = project_to_cptp(raw)
    validate_choi(proj, atol=1e-8)
    # Convex projection criterion: Re Tr[(raw - P)(K - P)] <= 0 for every CPTP K.
    for _ in range(300):
        k = choi_from_kraus(random_channel_kraus(rng, n_kraus=int(rng.integers(1, 5))))
        assert np.real(np.trace((raw - proj) @ (k - proj))) <= 1e-7


@pytest.mark.parametrize(
    ("counts", "match"),
    [
        (np.ones((9, 3)), "wrong shape"),
        (-np.ones((9, 4)), ">= 0"),
        (np.full((9, 4), np.nan), "NaN"),
        (np.full((9, 4), 1.5), "whole numbers"),
        (np.vstack([np.zeros((1, 4)), np.ones((8, 4))]), "no counts"),
        (np.array([["a"] * 4] * 9), "numeric"),
    ],
)
def test_bad_state_counts(counts, match):
    with pytest.raises(AnalysisError, match=match):
        state_tomography(counts)


def test_bad_process_input():
    ok = np.ones((4, 3, 2), dtype=int)
    with pytest.raises(AnalysisError, match="wrong shape"):
        process_tomography(np.ones((4, 3, 3)))
    with pytest.raises(AnalysisError, match="labels"):
        process_tomography(ok, ("0", "1", "+", "x"))
    with pytest.raises(AnalysisError, match="span"):
        process_tomography(ok, ("0", "1", "+", "-"))
    with pytest.raises(AnalysisError, match="bases"):
        process_tomography(ok, bases=("X", "X", "Z"))
    with pytest.raises(AnalysisError, match="NaN"):
        project_to_density_matrix(np.full((2, 2), np.nan))
    with pytest.raises(AnalysisError, match="wrong shape"):
        project_to_cptp(np.eye(3))
