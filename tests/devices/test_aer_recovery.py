"""The estimators recover the physics of truth() from the Aer stand-in's counts, with honest intervals."""

from __future__ import annotations

import numpy as np
import pytest

from harness.analysis.estimators import estimate_bell_metrics, estimate_link_metrics
from harness.analysis.rates import estimate_rate_metrics
from harness.analysis.truth import truth
from harness.devices.aer import AerDevice
from harness.metrics import metrics_of
from harness.profiles import load_profile
from harness.records import INPUTS_6

N_SEEDS = 50
N_BOOT = 200
# Every link replicate re-optimises three capacities; 100 replicates keep the 50-seed run near a minute.
N_BOOT_LINK = 100


def _covers(est, value: float) -> bool:
    return est.ci_low <= value <= est.ci_high


@pytest.mark.slow
def test_bell_fidelity_and_capacity_intervals_cover_truth():
    # Link tomography uses the over-complete six inputs, as the regression suites do.
    loaded = load_profile("aer-reference")
    build = loaded.default_build
    profile = loaded.effective(build)
    tru = truth(profile)
    duration = profile.measurement.integration_time_s
    hits = {"bell_fidelity": 0, "capacity_ce_bits": 0}
    errors = {"bell_fidelity": [], "capacity_ce_bits": []}
    for seed in range(N_SEEDS):
        rng = np.random.default_rng(10_000 + seed)
        with AerDevice(profile, build, seed) as dev:
            bell = estimate_bell_metrics(dev.bell_tomography(duration), rng=rng, n_boot=N_BOOT)
            link = estimate_link_metrics(dev.link_tomography(duration, INPUTS_6), rng=rng, n_boot=N_BOOT_LINK)
        for name, est in (("bell_fidelity", bell["bell_fidelity"]), ("capacity_ce_bits", link["capacity_ce_bits"])):
            hits[name] += _covers(est, getattr(tru, name))
            errors[name].append(est.value - getattr(tru, name))
    coverage = {k: v / N_SEEDS for k, v in hits.items()}
    print(f"coverage over {N_SEEDS} seeds: {coverage}")
    assert coverage["bell_fidelity"] >= 0.9, coverage
    assert coverage["capacity_ce_bits"] >= 0.9, coverage
    # The estimates scatter around the truth, not around some offset of it (bias well below the spread).
    for name, errs in errors.items():
        errs = np.asarray(errs)
        assert abs(errs.mean()) < 4 * errs.std(ddof=1) / np.sqrt(N_SEEDS) + 1e-3, (name, errs.mean())


@pytest.mark.parametrize("name", ["aer-reference", "aer-long-haul"])
def test_every_gated_metric_recovers_its_truth(name):
    # One standard-budget measurement per protocol: each estimate lies within 4 of its standard errors of the truth,
    # so the estimators and truth() agree on every definition (fixed-setting CHSH, linear-inversion fidelity, ...).
    loaded = load_profile(name)
    build = loaded.default_build
    profile = loaded.effective(build)
    tru = truth(profile).metrics()
    m = profile.measurement
    rng = np.random.default_rng(5)
    with AerDevice(profile, build, seed=5) as dev:
        bell = dev.bell_tomography(m.integration_time_s)
        found = {
            **estimate_bell_metrics(bell, rng=rng, n_boot=N_BOOT),
            **estimate_link_metrics(dev.link_tomography(m.integration_time_s, INPUTS_6), rng=rng, n_boot=N_BOOT_LINK),
            **estimate_rate_metrics(dev.coincidences(m.coincidence_time_s), bell, rng=rng, n_boot=N_BOOT),
        }
    gated = [n for p in ("bell", "link", "rates") for n in metrics_of(p)]
    assert set(gated) <= set(found) and set(gated) <= set(tru)
    z = {n: (found[n].value - tru[n]) / found[n].standard_error for n in gated}
    assert all(abs(v) < 4 for v in z.values()), z


def test_long_haul_pair_rate_recovers_the_true_coincidence_rate():
    loaded = load_profile("aer-long-haul")
    build = loaded.default_build
    profile = loaded.effective(build)
    tru = truth(profile)
    assert tru.rates.accidental_fraction > 0.01  # accidentals matter on this profile
    with AerDevice(profile, build, seed=3) as dev:
        coinc = dev.coincidences(profile.measurement.coincidence_time_s)
        bell = dev.bell_tomography(profile.measurement.integration_time_s)
    est = estimate_rate_metrics(coinc, bell, rng=np.random.default_rng(3), n_boot=N_BOOT)["pair_rate_hz"]
    assert est.ci_low <= tru.pair_rate_hz <= est.ci_high, (est, tru.pair_rate_hz)
    # Without the accidental correction the rate would sit above the interval: the correction is doing work.
    assert coinc.coincidences / coinc.duration_s > est.ci_high


def test_long_haul_pair_rate_interval_coverage():
    loaded = load_profile("aer-long-haul")
    build = loaded.default_build
    profile = loaded.effective(build)
    c_t = truth(profile).pair_rate_hz
    hits, n = 0, 40
    for seed in range(n):
        with AerDevice(profile, build, seed=100 + seed) as dev:
            coinc = dev.coincidences(profile.measurement.coincidence_time_s)
            bell = dev.bell_tomography(profile.measurement.integration_time_s)
        est = estimate_rate_metrics(coinc, bell, rng=np.random.default_rng(seed), n_boot=N_BOOT)["pair_rate_hz"]
        hits += _covers(est, c_t)
    assert hits / n >= 0.85, hits / n
