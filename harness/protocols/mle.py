"""The Bell and link metrics by maximum likelihood, for any scheme the profile's `tomography` block names.

Each metric is a function of the fitted state (or CPTP Choi matrix): bell_fidelity is <Φ+|ρ|Φ+>, chsh_s is
sqrt2 (T_xx + T_zz), qber_z and qber_x the probabilities of unequal outcomes in Z and X, concurrence and coherent
information those of ρ; link_process_fidelity is the Choi matrix's fidelity to the identity and the capacities
are those of the Choi matrix. Intervals come from one batched parametric bootstrap of the fit
(`harness.analysis.mle_bootstrap`): replicate i of every metric is the fit of Poisson resample i, so the gate may
pair them as it pairs the linear estimator's. The capacities, entropic and so biased, are corrected by the
bootstrap's own bias estimate (mean of the replicates minus the point) and their replicates centred on the result.
With one detector per arm, the source's intensity in each setting is taken from both arms' singles
(`harness.analysis.singles.intensities_from_singles`), so a drifting source does not bias the fit.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.analysis.capacities import ce_and_q1, holevo_chi
from harness.analysis.estimators import COHERENT_INFO_UNIT, BellReplicates, bell_counts_array, process_counts_array
from harness.analysis.intervals import make_estimate, percentile_interval
from harness.analysis.measures import (
    PHI_PLUS,
    chsh_max,
    chsh_phi_plus,
    coherent_information,
    concurrence,
    process_fidelity,
    qber,
    state_fidelity,
)
from harness.analysis.mle_bootstrap import bootstrap_fit, bootstrap_interval
from harness.analysis.schemes import Scheme, pauli_scheme, process_scheme
from harness.analysis.singles import intensities_from_singles
from harness.devices.schemes import SchemeCounts, link_scheme, state_scheme
from harness.metrics import Direction, Estimate
from harness.protocols.base import Analysis, matrix_payload
from harness.records import ProcessCounts, TomographyCounts

# Link-tomography inputs (harness.records) and Pauli bases as the projections the schemes take.
_INPUT_LABELS = {"0": "H", "1": "V", "+": "D", "-": "A", "+i": "R", "-i": "L"}
_BASIS_LABELS = {"X": "D", "Y": "R", "Z": "H"}
_BELL = {
    "bell_fidelity": lambda r: state_fidelity(r, PHI_PLUS),
    "chsh_s": chsh_phi_plus,
    "qber_z": lambda r: qber(r, "Z"),
    "qber_x": lambda r: qber(r, "X"),
    "concurrence": concurrence,
    "coherent_information": coherent_information,
}
_CAPACITIES = ("capacity_ce_bits", "capacity_q1_bits", "capacity_chi_bits")


def uses_mle(profile: Any, raw: object) -> bool:
    """True when the metrics of `raw` come from the maximum-likelihood fit: a scheme record, or estimator mle."""
    block = profile.tomography
    return isinstance(raw, SchemeCounts) or (block is not None and block.method == "mle")


def _state_data(profile: Any, raw: object) -> tuple[Scheme, np.ndarray, dict]:
    """The scheme, counts and fit options of a Bell record (a Pauli record is fitted as the pauli scheme)."""
    if isinstance(raw, SchemeCounts):
        singles = np.asarray(raw.singles, dtype=float)
        scheme = state_scheme(profile)
        options = {"intensities": intensities_from_singles(singles[..., None])} if scheme.detectors_per_arm == 1 else {}
        return scheme, np.asarray(raw.counts, dtype=float), options
    if isinstance(raw, TomographyCounts):
        return pauli_scheme(), bell_counts_array(raw).astype(float), {}
    raise TypeError(f"no maximum-likelihood fit for a {type(raw).__name__} record")


def _link_data(profile: Any, raw: object) -> tuple[Scheme, np.ndarray]:
    if isinstance(raw, SchemeCounts):
        return link_scheme(profile), np.asarray(raw.counts, dtype=float)
    if isinstance(raw, ProcessCounts):
        arr, inputs, bases = process_counts_array(raw)
        scheme = process_scheme([_INPUT_LABELS[s] for s in inputs], [_BASIS_LABELS[b] for b in bases], 2)
        return scheme, arr.astype(float)
    raise TypeError(f"no maximum-likelihood fit for a {type(raw).__name__} record")


def mle_bell_replicates(profile: Any, raw: object, rng: np.random.Generator, n_boot: int) -> BellReplicates:
    """Return the Bell metrics of the fit, their n_boot joint bootstrap replicates and the fitted state.

    The first draw from `rng` is the resampling, so equal generators give equal replicates in every caller.
    """
    scheme, counts, options = _state_data(profile, raw)
    fits = bootstrap_fit(scheme, counts, rng=rng, n_boot=n_boot, **options)
    point = {name: float(fn(fits.point.rho)) for name, fn in _BELL.items()}
    samples = {name: np.asarray(fn(fits.replicates.rho), dtype=float) for name, fn in _BELL.items()}
    return BellReplicates(point, samples, fits.point.rho)


def _estimate(name: str, point: float, samples: np.ndarray, n: int, confidence: float, **spec: Any) -> Estimate:
    low, high = bootstrap_interval(samples, point, confidence)
    return make_estimate(name, point, low, high, n, confidence, samples, **spec)


def mle_bell_analysis(
    profile: Any, raw: object, rng: np.random.Generator, n_boot: int, confidence: float = 0.95
) -> Analysis:
    """Return the Bell metrics' Estimates by maximum likelihood and the fitted state for the report."""
    found = mle_bell_replicates(profile, raw, rng, n_boot)
    n = round(float(np.sum(np.asarray(raw.counts))))  # type: ignore[attr-defined]
    out = {}
    for name in _BELL:
        spec = {"unit": COHERENT_INFO_UNIT, "direction": Direction.HIGHER} if name == "coherent_information" else {}
        out[name] = _estimate(name, found.point[name], found.samples[name], n, confidence, **spec)
    scheme = state_scheme(profile).name if isinstance(raw, SchemeCounts) else "pauli"
    fidelity = {
        "rho": matrix_payload(found.rho),
        "method": f"maximum likelihood ({scheme} scheme, Poisson likelihood)",
        "physical_value": found.point["bell_fidelity"],
    }
    return Analysis(out, {"bell_fidelity": fidelity, "chsh_s": {"horodecki_max": float(chsh_max(found.rho))}})


def mle_link_estimates(
    profile: Any, raw: object, rng: np.random.Generator, n_boot: int, confidence: float = 0.95
) -> dict[str, Estimate]:
    """Return link_process_fidelity and the capacities (bit/use) of the maximum-likelihood Choi matrix."""
    scheme, counts = _link_data(profile, raw)
    fits = bootstrap_fit(scheme, counts, rng=rng, n_boot=n_boot)
    chois = np.concatenate([fits.point.rho[None], fits.replicates.rho])
    n = round(float(counts.sum()))
    fid = process_fidelity(chois)
    out = {"link_process_fidelity": _estimate("link_process_fidelity", float(fid[0]), fid[1:], n, confidence)}
    ce, q1 = ce_and_q1(chois)
    for name, values in zip(_CAPACITIES, (ce, q1, holevo_chi(chois)), strict=True):
        values = np.asarray(values, dtype=float)
        value = 2 * float(values[0]) - float(np.mean(values[1:]))
        samples = values[1:] - np.mean(values[1:]) + value
        low, high = percentile_interval(samples, value, confidence)
        out[name] = make_estimate(name, value, low, high, n, confidence, samples)
    return out
