"""Estimators of the Bell-pair and link metrics from raw tomography records, with bootstrap intervals."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.analysis.bootstrap import resample_multinomial
from harness.analysis.capacities import ce_and_q1, holevo_chi
from harness.analysis.intervals import make_estimate, percentile_interval, wilson_interval
from harness.analysis.measures import (
    PHI_PLUS,
    chsh_max,
    coherent_information,
    concurrence,
    process_fidelity,
    state_fidelity,
)
from harness.analysis.tomography import process_tomography, state_tomography
from harness.analysis.validation import AnalysisError, as_counts, check_confidence, check_n_boot, check_rng
from harness.metrics import Direction, Estimate
from harness.records import BELL_SETTINGS, ProcessCounts, TomographyCounts

COHERENT_INFO_UNIT = "bit/pair"


def bell_counts_array(counts: TomographyCounts) -> np.ndarray:
    """Return the (9, 4) count table of a Bell tomography in BELL_SETTINGS order, validated."""
    if not isinstance(counts, TomographyCounts):
        raise AnalysisError(f"counts must be a TomographyCounts record, got {type(counts).__name__}")
    arr = as_counts(counts.counts, "TomographyCounts.counts", shape=(len(counts.settings), 4))
    if sorted(counts.settings) != sorted(BELL_SETTINGS):
        raise AnalysisError(
            f"TomographyCounts.settings: {list(counts.settings)} must be the 9 settings {list(BELL_SETTINGS)}"
        )
    order = [counts.settings.index(s) for s in BELL_SETTINGS]
    arr = arr[order]
    if np.any(arr.sum(axis=1) == 0):
        raise AnalysisError("TomographyCounts.counts: a setting has no coincidences; integrate longer")
    return arr


def process_counts_array(counts: ProcessCounts) -> tuple[np.ndarray, tuple[str, ...], tuple[str, ...]]:
    """Return the validated (n_inputs, 3, 2) table, inputs and bases of a link tomography."""
    if not isinstance(counts, ProcessCounts):
        raise AnalysisError(f"counts must be a ProcessCounts record, got {type(counts).__name__}")
    arr = as_counts(counts.counts, "ProcessCounts.counts", shape=(len(counts.inputs), len(counts.bases), 2))
    return arr, tuple(counts.inputs), tuple(counts.bases)


def reconstruct_bell_state(counts: TomographyCounts) -> np.ndarray:
    """Return the physical 4x4 density matrix (qubit A first) reconstructed from a Bell tomography."""
    return state_tomography(bell_counts_array(counts))


def reconstruct_link_choi(counts: ProcessCounts) -> np.ndarray:
    """Return the CPTP 4x4 Choi matrix (input first, trace 2) of the link from its process tomography."""
    arr, inputs, bases = process_counts_array(counts)
    return process_tomography(arr, inputs, bases)


def _qber_counts(table: np.ndarray, setting: str) -> tuple[np.ndarray, np.ndarray]:
    row = table[..., BELL_SETTINGS.index(setting), :]
    return row[..., 1] + row[..., 2], row.sum(axis=-1)


def bell_values(table: np.ndarray, rho: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Return every Bell metric for count tables (..., 9, 4) in BELL_SETTINGS order (batched).

    `rho` is the tables' reconstructed state when the caller already has it (state_tomography of `table`).
    """
    rho = state_tomography(table) if rho is None else rho
    kz, nz = _qber_counts(table, "ZZ")
    kx, nx = _qber_counts(table, "XX")
    return {
        "bell_fidelity": state_fidelity(rho, PHI_PLUS),
        "concurrence": concurrence(rho),
        "chsh_s": chsh_max(rho),
        "qber_z": kz / nz,
        "qber_x": kx / nx,
        "coherent_information": coherent_information(rho),
    }


def _estimate(name: str, point: float, samples: np.ndarray, n: int, confidence: float, **kw) -> Estimate:
    low, high = percentile_interval(samples, point, confidence)
    return make_estimate(name, point, low, high, n, confidence, samples, **kw)


@dataclass(frozen=True)
class BellAnalysis:
    """The Bell-pair estimates and the physical density matrix (4x4, qubit A first) their point values rest on."""

    estimates: dict[str, Estimate]
    rho: np.ndarray


def estimate_bell_metrics(
    counts: TomographyCounts, *, rng: np.random.Generator, n_boot: int = 200, confidence: float = 0.95
) -> dict[str, Estimate]:
    """Return bell_fidelity, concurrence, chsh_s, qber_z, qber_x and coherent_information (bit/pair) Estimates.

    Intervals are multinomial-bootstrap percentiles, except the QBERs, which use the Wilson interval
    of their binomial counts (their bootstrap replicates are still attached as samples).
    """
    return analyse_bell(counts, rng=rng, n_boot=n_boot, confidence=confidence).estimates


def analyse_bell(
    counts: TomographyCounts, *, rng: np.random.Generator, n_boot: int = 200, confidence: float = 0.95
) -> BellAnalysis:
    """Return the Estimates of `estimate_bell_metrics` with the reconstructed state behind them."""
    table = bell_counts_array(counts)
    check_rng(rng)
    n_boot = check_n_boot(n_boot)
    confidence = check_confidence(confidence)
    reps = resample_multinomial(table, rng, n_boot)
    rho = state_tomography(table)
    point = {k: float(v) for k, v in bell_values(table, rho).items()}
    boot = bell_values(reps)
    n = int(table.sum())
    out: dict[str, Estimate] = {}
    for name in ("bell_fidelity", "concurrence", "chsh_s"):
        out[name] = _estimate(name, point[name], boot[name], n, confidence)
    for name, setting in (("qber_z", "ZZ"), ("qber_x", "XX")):
        k, m = _qber_counts(table, setting)
        low, high = wilson_interval(k, m, confidence)
        out[name] = make_estimate(name, point[name], float(low), float(high), int(m), confidence, boot[name])
    out["coherent_information"] = _estimate(
        "coherent_information",
        point["coherent_information"],
        boot["coherent_information"],
        n,
        confidence,
        unit=COHERENT_INFO_UNIT,
        direction=Direction.HIGHER,
    )
    return BellAnalysis(out, rho)


def estimate_link_metrics(
    counts: ProcessCounts, *, rng: np.random.Generator, n_boot: int = 200, confidence: float = 0.95
) -> dict[str, Estimate]:
    """Return link_process_fidelity (to identity) and capacity_{ce,q1,chi}_bits (bit/use) Estimates.

    The Choi matrix and every capacity are recomputed on each multinomial replicate (all at once).
    """
    arr, inputs, bases = process_counts_array(counts)
    check_rng(rng)
    n_boot = check_n_boot(n_boot)
    confidence = check_confidence(confidence)
    reps = resample_multinomial(arr, rng, n_boot)
    chois = process_tomography(np.concatenate([arr[None], reps]), inputs, bases)
    fid = process_fidelity(chois)
    ce, q1 = ce_and_q1(chois)
    chi = holevo_chi(chois)
    n = int(arr.sum())
    out = {}
    for name, vals in (
        ("link_process_fidelity", fid),
        ("capacity_ce_bits", ce),
        ("capacity_q1_bits", q1),
        ("capacity_chi_bits", chi),
    ):
        out[name] = _estimate(name, float(vals[0]), np.asarray(vals[1:]), n, confidence)
    return out
