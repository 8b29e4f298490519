"""Maximum-likelihood link tomography: fitted means and the calibration of the process-fidelity bootstrap."""

from __future__ import annotations

import numpy as np
import pytest

from harness.analysis.measures import process_fidelity
from harness.analysis.mle import fit_tomography
from harness.analysis.mle_bootstrap import bootstrap_fit, bootstrap_interval
from harness.analysis.schemes import process_scheme
from harness.physics.link import link_kraus, observed_link_choi

SIX = ["H", "V", "D", "A", "R", "L"]
# The link that aer-reference's tomography sees: 1% dephasing, 1/500 accidentals, 1% readout flips. Nearly
# unitary: the Choi matrix's eigenvalues are 0.974, 0.015, 0.0055, 0.0055 (of unit trace), close to rank 1.
NEAR_BOUNDARY = observed_link_choi(link_kraus(0.0, 0.01, 0.0), 1 / 500, 0.01)
MID_RANGE = observed_link_choi(link_kraus(0.1, 0.15, 0.1), 0.0, 0.0)


def expected_counts(scheme, choi: np.ndarray, total: float) -> np.ndarray:
    """Expected counts of every setting of `scheme` for channel `choi`, `total` in all."""
    p = np.real(np.einsum("...ab,ba->...", scheme.operators(), choi))
    return total * p / p.sum()


@pytest.mark.parametrize("detectors", [1, 2])
def test_process_fit_means_are_the_models_counts(detectors: int) -> None:
    """Noiseless counts of an interior channel are fitted exactly, so the fitted means equal them."""
    scheme = process_scheme(SIX, SIX, detectors)
    counts = expected_counts(scheme, MID_RANGE, 6e4)
    fit = fit_tomography(scheme, counts, max_iter=200, tol=1e-10)
    assert np.allclose(fit.rho, MID_RANGE, atol=1e-5)
    # A trace-2 Choi matrix times the fitted intensity is the model; doubling it would give means = 2 x counts.
    assert np.allclose(fit.means, counts, rtol=1e-5)


@pytest.mark.parametrize(("choi", "total"), [(NEAR_BOUNDARY, 6e6), (MID_RANGE, 6e5)])
def test_process_fidelity_bootstrap_is_calibrated(choi: np.ndarray, total: float) -> None:
    """Over 100 seeded data sets the z-scores (F_hat - F) / bootstrap SD have SD in [0.8, 1.25].

    With 100 data sets the SD of the z-scores has a sampling SD of about 0.07 (plus a little from 30 bootstrap
    replicates per SD), so a calibrated bootstrap lands within 1 +/- 0.2 and an SD understated by sqrt(2) (the
    fitted means doubled: z-score SD 1.4-1.5 measured) fails. Coverage of the 95% interval must reach 0.88: 100
    Bernoulli(0.95) trials fall below it with probability < 0.5%.
    """
    scheme = process_scheme(SIX, SIX, 1)
    rng = np.random.default_rng(20261130)
    truth = float(process_fidelity(choi))
    counts = rng.poisson(expected_counts(scheme, choi, total), size=(100, *scheme.counts_shape)).astype(float)
    fits = bootstrap_fit(scheme, counts, rng=rng, n_boot=30)
    point = process_fidelity(fits.point.rho)
    reps = process_fidelity(fits.replicates.rho)
    z = (point - truth) / np.std(reps, axis=0, ddof=1)
    assert 0.8 <= np.std(z, ddof=1) <= 1.25
    assert abs(np.mean(z)) < 0.4  # the estimator is not biased by more than 0.4 of its SD
    hits = [lo <= truth <= hi for lo, hi in (bootstrap_interval(reps[:, i], point[i]) for i in range(len(point)))]
    assert np.mean(hits) >= 0.88
