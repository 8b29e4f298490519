"""Rate metrics of a pair link: accidental-corrected pair rate, heralding, CAR, ebit and key rates, PLOB share.

Replicates are joint: the coincidences and singles are resampled together (`resample_coincidences`: every
coincidence is also a single on both arms), and the Bell tomography with `bell_replicates`, so replicate i of
every rate metric comes from the same resample of both records. Given the Bell protocol's generator
(`bell_rng`), the Bell resamples are the very ones behind the Bell protocol's estimates.

One exception: the secret key rate's QBERs. Near the top a setting often shows no error at all (1.3 expected in
1000 pairs at fidelity 0.998), and resamples of zero errors are all zero, so the key fraction's replicates lose the
spread of h(QBER) and the interval covers 92%. The key's QBER replicates are drawn from the errors with half a
pseudo-count, Binomial(n, (k + 1/2) / (n + 1)) / n (the Jeffreys prior's mean; 94-95% in a toy of the key alone at
1k and 32k pairs per setting), independently of the Bell resample; they stay joint with the coincidence resample.
"""

from __future__ import annotations

import numpy as np

from harness.analysis.bootstrap import resample_coincidences
from harness.analysis.capacities import bbm92_key_fraction
from harness.analysis.estimators import BellReplicates, bell_counts_array, bell_replicates, phi_plus_errors
from harness.analysis.intervals import make_estimate, percentile_interval, poisson_interval, wilson_interval
from harness.analysis.validation import AnalysisError, as_counts, check_confidence, check_n_boot, check_rng
from harness.metrics import Estimate
from harness.records import CoincidenceCounts, TomographyCounts

_LN2 = np.log(2.0)


def _check_coincidences(coinc: CoincidenceCounts) -> tuple[int, int, int, float, float]:
    if not isinstance(coinc, CoincidenceCounts):
        raise AnalysisError(f"coinc must be a CoincidenceCounts record, got {type(coinc).__name__}")
    vals = as_counts([coinc.coincidences, coinc.singles_a, coinc.singles_b], "CoincidenceCounts counts")
    c, n_a, n_b = (int(v) for v in vals)
    tau, t = float(coinc.window_s), float(coinc.duration_s)
    if not np.isfinite(t) or t <= 0:
        raise AnalysisError(f"CoincidenceCounts.duration_s must be > 0, got {coinc.duration_s}")
    if not np.isfinite(tau) or not 0 < tau < t:
        raise AnalysisError(f"CoincidenceCounts.window_s must be in (0, duration_s), got {coinc.window_s}")
    if n_a == 0 or n_b == 0:
        raise AnalysisError("CoincidenceCounts: singles_a and singles_b must be > 0 to estimate heralding and CAR")
    if c > min(n_a, n_b):
        raise AnalysisError(f"CoincidenceCounts: coincidences {c} exceed the singles ({n_a}, {n_b})")
    return c, n_a, n_b, tau, t


def plob_share(eta: np.ndarray, ebits_per_pair: np.ndarray) -> np.ndarray:
    """Return eta * max(0, I) / PLOB(eta), the ebits per photon sent over the PLOB bound (eta -> 0 limit I ln 2)."""
    e = np.clip(np.asarray(eta, dtype=float), 0.0, 1.0 - 1e-15)
    ic = np.maximum(0.0, np.asarray(ebits_per_pair, dtype=float))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(e > 1e-12, e * _LN2 / -np.log1p(-e), 1.0)  # eta / PLOB(eta) in ebits^-1
    return np.where(e > 0, ratio * ic, 0.0)


def _rate_values(c: np.ndarray, n_a: np.ndarray, n_b: np.ndarray, tau: float, t: float, bell: dict) -> dict:
    acc = n_a * n_b * tau / t
    true = c - acc
    pair_rate = true / t
    with np.errstate(divide="ignore", invalid="ignore"):
        eta_b = true / n_a
        car = np.where(acc > 0, true / acc, np.nan)
    ic = np.asarray(bell["coherent_information"])
    key = bbm92_key_fraction(np.clip(bell["qber_x"], 0, 1), np.clip(bell["qber_z"], 0, 1))
    return {
        "pair_rate_hz": pair_rate,
        "heralding_efficiency_a": true / n_b,
        "heralding_efficiency_b": eta_b,
        "car": car,
        "ebit_rate_hz": pair_rate * np.maximum(0.0, ic),
        "secret_key_rate_bps": pair_rate * 0.5 * key,
        "plob_fraction": plob_share(eta_b, ic),
    }


def _key_qbers(table: np.ndarray, rng: np.random.Generator, n_boot: int) -> dict[str, np.ndarray]:
    """QBER replicates for the key: Binomial(n, (k + 1/2) / (n + 1)) / n per basis (see the module's docstring)."""
    k, n = phi_plus_errors(table, ("XX", "ZZ"))
    draws = rng.binomial(n, (k + 0.5) / (n + 1), size=(n_boot, 2)) / n
    return {"qber_x": draws[:, 0], "qber_z": draws[:, 1]}


def estimate_rate_metrics(
    coinc: CoincidenceCounts,
    bell: TomographyCounts | BellReplicates,
    *,
    rng: np.random.Generator,
    n_boot: int = 200,
    confidence: float = 0.95,
    bell_rng: np.random.Generator | None = None,
) -> dict[str, Estimate]:
    """Return pair_rate_hz, heralding efficiencies, car, ebit_rate_hz, secret_key_rate_bps, plob_fraction Estimates.

    Accidentals acc = N_A N_B tau / T are removed from the coincidences C. The pair rate uses the
    Garwood interval of C (acc held fixed: its spread is ~1e-3 of C's), the heralding efficiencies the
    Wilson interval of (C - acc) out of the singles (given N, C is binomial); CAR and the products with
    the tomography use the percentile interval of the joint replicates. The coherent information behind
    the ebit rate and the PLOB share is bootstrap bias-corrected (see `harness.analysis.estimators`).
    `bell_rng` (default `rng`) resamples the Bell tomography; `bell` may instead be its replicates (n_boot of them)
    from another estimator (e.g. maximum likelihood).
    """
    c, n_a, n_b, tau, t = _check_coincidences(coinc)
    check_rng(rng)
    n_boot = check_n_boot(n_boot)
    confidence = check_confidence(confidence)
    if isinstance(bell, BellReplicates):
        found, table = bell, None
    else:
        table = bell_counts_array(bell)
        found = bell_replicates(table, check_rng(bell_rng) if bell_rng is not None else rng, n_boot)
    point = {k: float(v) for k, v in _rate_values(c, n_a, n_b, tau, t, found.point).items()}
    pois = resample_coincidences(c, n_a, n_b, rng, n_boot)
    samples = found.samples if table is None else {**found.samples, **_key_qbers(table, rng, n_boot)}
    boot = _rate_values(pois[:, 0], pois[:, 1], pois[:, 2], tau, t, samples)
    acc = n_a * n_b * tau / t
    out: dict[str, Estimate] = {}
    low, high = poisson_interval(c, confidence)
    out["pair_rate_hz"] = make_estimate(
        "pair_rate_hz", point["pair_rate_hz"], (low - acc) / t, (high - acc) / t, c, confidence, boot["pair_rate_hz"]
    )
    for name, singles in (("heralding_efficiency_a", n_b), ("heralding_efficiency_b", n_a)):
        k = min(max(c - acc, 0.0), singles)
        low, high = wilson_interval(k, singles, confidence)
        out[name] = make_estimate(name, point[name], float(low), float(high), singles, confidence, boot[name])
    for name in ("car", "ebit_rate_hz", "secret_key_rate_bps", "plob_fraction"):
        low, high = percentile_interval(boot[name], point[name], confidence)
        out[name] = make_estimate(name, point[name], low, high, c, confidence, boot[name])
    return out
