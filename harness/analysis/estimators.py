"""Estimators of the Bell-pair and link metrics from raw tomography records, with jointly resampled intervals.

Bell pair (counts of the 9 Pauli settings). Write q_s for the share of setting s's outcomes that |Phi+> never
gives (unequal outcomes in XX and ZZ, equal ones in YY):

- bell_fidelity is the linear-inversion fidelity to |Phi+>, 1 - (q_XX + q_YY + q_ZZ)/2. It is linear in the
  counts, hence unbiased at every fidelity; its interval is the score interval of the three binomial shares. The
  fidelity of the physical (projected) state is biased low near the top and is kept for display only.
- chsh_s is S at the settings optimal for |Phi+> (A: Z, X; B: (Z +- X)/sqrt2), sqrt2 (E_XX + E_ZZ) =
  2 sqrt2 (1 - q_XX - q_ZZ), linear with the same kind of interval. Horodecki's maximum over settings takes
  the larger of nearly equal correlations, so it is biased high; it is kept for display.
- qber_z, qber_x are q_ZZ and q_XX with Wilson intervals.
- concurrence and coherent_information are nonlinear functions of the physical state (the projection of the
  linear inversion), corrected for their bias by a parametric bootstrap at a denoised state
  (`harness.analysis.entanglement`); their interval is the percentile interval of their replicates.

Link (process tomography): link_process_fidelity is that of the trace-preserving least-squares Choi fit (not
projected), linear in the counts, with the score interval of its weighted binomial shares; the capacities are
entropic, so they are computed from the CPTP Choi matrix and corrected for their bias by a parametric bootstrap
at the denoised Choi matrix (`harness.analysis.denoise`), as the concurrence is.

Replicates: the Estimates of one call share the same multinomial resamples of the counts, so replicate i of
every metric comes from resample i (the gate may pair replicates across metrics).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.analysis.bootstrap import calibrated_replicates, resample_multinomial
from harness.analysis.capacities import ce_and_q1, holevo_chi
from harness.analysis.denoise import denoised_choi, draw_counts, process_outcome_probabilities
from harness.analysis.entanglement import entanglement_replicates
from harness.analysis.intervals import affine_proportions_estimate, make_estimate, percentile_interval
from harness.analysis.measures import PHI_PLUS, chsh_max, state_fidelity
from harness.analysis.tomography import linear_inversion_process, process_tomography, project_to_cptp, state_tomography
from harness.analysis.validation import AnalysisError, as_counts, check_confidence, check_n_boot, check_rng
from harness.metrics import Direction, Estimate
from harness.records import BELL_SETTINGS, INPUT_BLOCH, ProcessCounts, TomographyCounts

COHERENT_INFO_UNIT = "bit/pair"
_SQRT2 = float(np.sqrt(2.0))
# Outcomes (++, +-, -+, --) of a setting that |Phi+> never gives: it is +1 on XX and ZZ, -1 on YY.
_PHI_PLUS_BAD = {"XX": (1, 2), "YY": (0, 3), "ZZ": (1, 2)}
# Linear Bell metrics: value = offset + sign * sum_s w_s q_s over the settings.
_LINEAR = {
    "bell_fidelity": (1.0, -1.0, (0.5, 0.5, 0.5), ("XX", "YY", "ZZ")),
    "chsh_s": (2 * _SQRT2, -1.0, (2 * _SQRT2, 2 * _SQRT2), ("XX", "ZZ")),
    "qber_z": (0.0, 1.0, (1.0,), ("ZZ",)),
    "qber_x": (0.0, 1.0, (1.0,), ("XX",)),
}


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


def phi_plus_errors(table: np.ndarray, settings: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Return (k, n) of count tables (..., 9, 4): outcomes |Phi+> never gives and totals, per setting (last axis)."""
    rows = table[..., [BELL_SETTINGS.index(s) for s in settings], :]
    k = np.stack([rows[..., j, list(_PHI_PLUS_BAD[s])].sum(axis=-1) for j, s in enumerate(settings)], axis=-1)
    return k, rows.sum(axis=-1)


def linear_bell_values(table: np.ndarray) -> dict[str, np.ndarray]:
    """Return bell_fidelity (linear inversion), chsh_s (fixed settings), qber_z and qber_x of tables (..., 9, 4)."""
    out = {}
    for name, (offset, sign, w, settings) in _LINEAR.items():
        k, n = phi_plus_errors(table, settings)
        out[name] = offset + sign * np.sum(np.asarray(w) * k / n, axis=-1)
    return out


@dataclass(frozen=True)
class BellReplicates:
    """Reported values and joint bootstrap replicates of every Bell metric, and the physical state of the counts.

    `samples[name][i]` comes from resample i of the counts for every name; the nonlinear metrics' values are
    bias-corrected and their replicates centred on them.
    """

    point: dict[str, float]
    samples: dict[str, np.ndarray]
    rho: np.ndarray


def bell_replicates(table: np.ndarray, rng: np.random.Generator, n_boot: int) -> BellReplicates:
    """Return the values and n_boot joint multinomial replicates of every Bell metric of a (9, 4) table.

    The first draw from `rng` is the resampling, so equal generators give equal replicates in every caller.
    """
    reps = resample_multinomial(table, rng, n_boot)
    point = {k: float(v) for k, v in linear_bell_values(table).items()}
    samples = linear_bell_values(reps)
    found = entanglement_replicates(table, reps, rng)
    return BellReplicates({**point, **found[0]}, {**samples, **found[1]}, state_tomography(table))


def _estimate(name: str, point: float, samples: np.ndarray, n: int, confidence: float, **kw) -> Estimate:
    low, high = percentile_interval(samples, point, confidence)
    return make_estimate(name, point, low, high, n, confidence, samples, **kw)


@dataclass(frozen=True)
class BellAnalysis:
    """The Bell-pair estimates, the physical density matrix (4x4, qubit A first) and display values of that state.

    `physical_fidelity` is the fidelity of `rho` to |Phi+> and `chsh_max` Horodecki's S maximised over settings
    of `rho`: both are biased (low and high) and are for display, not for the gate.
    """

    estimates: dict[str, Estimate]
    rho: np.ndarray
    physical_fidelity: float
    chsh_max: float


def estimate_bell_metrics(
    counts: TomographyCounts, *, rng: np.random.Generator, n_boot: int = 200, confidence: float = 0.95
) -> dict[str, Estimate]:
    """Return bell_fidelity, concurrence, chsh_s, qber_z, qber_x and coherent_information (bit/pair) Estimates.

    Definitions and intervals: see the module docstring; all replicates come from the same resamples.
    """
    return analyse_bell(counts, rng=rng, n_boot=n_boot, confidence=confidence).estimates


def analyse_bell(
    counts: TomographyCounts, *, rng: np.random.Generator, n_boot: int = 200, confidence: float = 0.95
) -> BellAnalysis:
    """Return the Estimates of `estimate_bell_metrics` with the reconstructed state and its display values."""
    table = bell_counts_array(counts)
    check_rng(rng)
    n_boot = check_n_boot(n_boot)
    confidence = check_confidence(confidence)
    found = bell_replicates(table, rng, n_boot)
    out: dict[str, Estimate] = {}
    n = int(table.sum())
    for name, (offset, sign, w, settings) in _LINEAR.items():
        k_n = phi_plus_errors(table, settings)
        # n: the tomography's coincidences, except for a QBER, which rests on one setting alone.
        size = None if name.startswith("qber") else n
        out[name] = affine_proportions_estimate(name, offset, sign, w, k_n, confidence, found.samples[name], size)
    out["concurrence"] = _estimate(
        "concurrence", found.point["concurrence"], found.samples["concurrence"], n, confidence
    )
    out["coherent_information"] = _estimate(
        "coherent_information",
        found.point["coherent_information"],
        found.samples["coherent_information"],
        n,
        confidence,
        unit=COHERENT_INFO_UNIT,
        direction=Direction.HIGHER,
    )
    rho = found.rho
    return BellAnalysis(out, rho, float(state_fidelity(rho, PHI_PLUS)), float(chsh_max(rho)))


def process_fidelity_weights(inputs: tuple[str, ...], bases: tuple[str, ...]) -> tuple[float, np.ndarray, np.ndarray]:
    """Return (offset, w, minus) with F_pro of the least-squares Choi fit = offset - sum w_kb q_kb.

    q_kb is the share of outcome "-" (where `minus[k, b]`) or "+" of input k in basis b: the outcome that lowers
    the fidelity; w >= 0, shape (len(inputs), len(bases)).
    """
    design = np.array([[1.0, *INPUT_BLOCH[s]] for s in inputs])
    pinv = np.linalg.pinv(design)  # rows: t, then T^T; T_cc = sum_k pinv[1 + c, k] <sigma_c>_k
    # F_pro = (1 + tr T)/4 and <sigma> = 2 p_+ - 1, so F_pro = 1/4 + sum a_kb (2 p_+ - 1).
    a = np.array([[pinv[1 + "XYZ".index(b), k] / 4 for b in bases] for k in range(len(inputs))])
    minus = a > 0
    offset = 0.25 - a.sum() + 2 * a[minus].sum()
    return float(offset), 2 * np.abs(a), minus


def _process_fidelity_counts(arr: np.ndarray, minus: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.where(minus, arr[..., 1], arr[..., 0]), arr.sum(axis=-1)


_CAPACITIES = ("capacity_ce_bits", "capacity_q1_bits", "capacity_chi_bits")


def _capacities(chois: np.ndarray) -> dict[str, np.ndarray]:
    ce, q1 = ce_and_q1(chois)
    return dict(zip(_CAPACITIES, (ce, q1, holevo_chi(chois)), strict=True))


def capacity_bias(
    arr: np.ndarray, inputs: tuple[str, ...], bases: tuple[str, ...], rng: np.random.Generator, n_draw: int
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Return the bias of each capacity estimate of a (n_in, 3, 2) table, its mean over counts drawn from the
    denoised Choi matrix (`harness.analysis.denoise`) minus that Choi matrix's capacity in bit/use, and the draws'
    capacities."""
    choi = denoised_choi(arr, inputs, bases)
    probs = process_outcome_probabilities(choi, inputs, bases).reshape(-1, 2)
    draws = draw_counts(probs, arr.sum(axis=-1).reshape(-1), rng, n_draw).reshape(n_draw, *arr.shape)
    found = _capacities(project_to_cptp(linear_inversion_process(draws, inputs, bases)))
    at = _capacities(choi[None])
    return {k: float(np.mean(found[k]) - at[k][0]) for k in _CAPACITIES}, found


def estimate_link_metrics(
    counts: ProcessCounts, *, rng: np.random.Generator, n_boot: int = 200, confidence: float = 0.95
) -> dict[str, Estimate]:
    """Return link_process_fidelity (to identity) and capacity_{ce,q1,chi}_bits (bit/use) Estimates.

    The Choi matrix and every capacity are recomputed on each multinomial replicate (all at once); the capacities'
    bias is estimated from as many draws at the denoised Choi matrix, and their replicates are centred on the
    corrected value with the spread of those draws (`calibrated_replicates`: near the identity channel resamples of
    the noisy counts spread 1.2-1.3 times wider than the estimator does).
    """
    arr, inputs, bases = process_counts_array(counts)
    check_rng(rng)
    n_boot = check_n_boot(n_boot)
    confidence = check_confidence(confidence)
    reps = resample_multinomial(arr, rng, n_boot)
    tables = np.concatenate([arr[None], reps])
    offset, w, minus = process_fidelity_weights(inputs, bases)
    k, m = _process_fidelity_counts(tables, minus)
    fid = offset - np.sum(w * k / m, axis=(-2, -1))
    out = {
        "link_process_fidelity": affine_proportions_estimate(
            "link_process_fidelity", offset, -1.0, w, (k[0], m[0]), confidence, fid[1:]
        )
    }
    found = _capacities(project_to_cptp(linear_inversion_process(tables, inputs, bases)))
    bias, at = capacity_bias(arr, inputs, bases, rng, n_boot)
    n = int(arr.sum())
    for name in _CAPACITIES:
        value = float(found[name][0]) - bias[name]
        samples = calibrated_replicates(found[name][1:], value, at[name])
        out[name] = _estimate(name, value, samples, n, confidence)
    return out
