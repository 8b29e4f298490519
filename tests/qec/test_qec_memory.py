"""Logical error rates against separately written d = 3 reference circuits, metrics, stopping and budget."""

from __future__ import annotations

import math
import time

import numpy as np
import pymatching
import pytest
import stim
from scipy.stats import binomtest

from harness.metrics import Direction
from harness.physics.channels import choi_from_kraus, dephasing_kraus
from harness.qec.intervals import sum_interval
from harness.qec.memory import (
    CodeReport,
    compiled_memory,
    error_per_round,
    run_code,
    run_memory,
    wilson_interval,
)
from harness.qec.noise import QecError, QecNoise


class _Qec:
    gate_error_1q = 1e-4
    gate_error_2q = 1e-3
    measurement_error = 1e-3
    idle_error = 1e-4


class _Profile:
    qec = _Qec()


PROFILE_NOISE = QecNoise.from_profile(_Profile(), choi_from_kraus(dephasing_kraus(0.01)))


# ---------------------------------------------------------------------------------------------------------------
# Reference circuits, written out by hand for d = 3 (fixed qubit numbers and check lists), independent of
# harness.qec.codes. Same experiment: prepare, link once, `rounds` syndrome rounds, final data readout.
# ---------------------------------------------------------------------------------------------------------------


class _Ref:
    def __init__(self, n: QecNoise) -> None:
        self.n = n
        self.lines: list[str] = []
        self.m = 0  # measurements so far

    def h(self, qs) -> None:
        self.lines += [f"H {_j(qs)}", f"DEPOLARIZE1({self.n.gate_error_1q}) {_j(qs)}"]

    def cx(self, pairs) -> None:
        flat = _j(q for p in pairs for q in p)
        self.lines += [f"CX {flat}", f"DEPOLARIZE2({self.n.gate_error_2q}) {flat}"]

    def measure(self, qs) -> dict[int, int]:
        qs = list(qs)
        self.lines += [f"X_ERROR({self.n.measurement_error}) {_j(qs)}", f"M {_j(qs)}"]
        out = {q: self.m + i for i, q in enumerate(qs)}
        self.m += len(qs)
        return out

    def link(self, qs) -> None:
        n = self.n
        self.lines.append(f"PAULI_CHANNEL_1({n.px}, {n.py}, {n.pz}) {_j(qs)}")

    def idle(self, qs) -> None:
        self.lines.append(f"DEPOLARIZE1({self.n.idle_error}) {_j(qs)}")

    def detector(self, *ms: int) -> None:
        self.lines.append("DETECTOR " + " ".join(f"rec[{i - self.m}]" for i in ms))

    def observable(self, ms) -> None:
        self.lines.append("OBSERVABLE_INCLUDE(0) " + " ".join(f"rec[{i - self.m}]" for i in ms))

    def circuit(self) -> stim.Circuit:
        return stim.Circuit("\n".join(self.lines))


def _j(qs) -> str:
    return " ".join(str(q) for q in qs)


def reference_repetition_d3(n: QecNoise, phase_flip: bool, rounds: int = 3) -> stim.Circuit:
    """Data 0, 1, 2; ancilla 3 checks (0, 1), ancilla 4 checks (1, 2)."""
    r = _Ref(n)
    r.lines.append("R 0 1 2 3 4")
    if phase_flip:
        r.h([0, 1, 2])
    r.link([0, 1, 2])
    prev = None
    for _ in range(rounds):
        r.lines.append("R 3 4")
        if phase_flip:
            r.h([3, 4])
            r.cx([(3, 0), (4, 1)])
            r.cx([(3, 1), (4, 2)])
            r.h([3, 4])
        else:
            r.cx([(0, 3), (1, 4)])
            r.cx([(1, 3), (2, 4)])
        r.idle([0, 1, 2])
        cur = r.measure([3, 4])
        for a in (3, 4):
            r.detector(cur[a]) if prev is None else r.detector(cur[a], prev[a])
        prev = cur
    if phase_flip:
        r.h([0, 1, 2])
    fin = r.measure([0, 1, 2])
    r.detector(fin[0], fin[1], prev[3])
    r.detector(fin[1], fin[2], prev[4])
    r.observable([fin[0]])
    return r.circuit()


# d = 3 rotated surface code, data numbered row by row:
#   0 1 2
#   3 4 5
#   6 7 8
# X checks: top edge {1,2}, {0,1,3,4}, {4,5,7,8}, bottom edge {6,7}; Z checks: left edge {0,3}, {1,2,4,5},
# {3,4,6,7}, right edge {5,8}. CX order per check (None = no qubit in that layer).
X_CHECKS = {20: (None, None, 1, 2), 21: (0, 1, 3, 4), 22: (4, 5, 7, 8), 23: (6, 7, None, None)}
Z_CHECKS = {30: (None, None, 0, 3), 31: (1, 4, 2, 5), 32: (3, 6, 4, 7), 33: (5, 8, None, None)}
DATA = list(range(9))
LOGICAL = {"Z": [0, 1, 2], "X": [0, 3, 6]}


def reference_surface_d3(n: QecNoise, basis: str, rounds: int = 3) -> stim.Circuit:
    """Sender: prepare + one check round; link; `rounds` receiver rounds; final readout."""
    r = _Ref(n)
    anc = [*X_CHECKS, *Z_CHECKS]
    r.lines.append(f"R {_j(DATA + anc)}")
    if basis == "X":
        r.h(DATA)
    basis_checks = X_CHECKS if basis == "X" else Z_CHECKS

    def check_round() -> dict[int, int]:
        r.lines.append(f"R {_j(anc)}")
        r.h(list(X_CHECKS))
        for k in range(4):
            pairs = [(a, lay[k]) for a, lay in X_CHECKS.items() if lay[k] is not None]
            pairs += [(lay[k], a) for a, lay in Z_CHECKS.items() if lay[k] is not None]
            r.cx(pairs)
        r.h(list(X_CHECKS))
        r.idle(DATA)
        return r.measure(anc)

    prev = check_round()
    for a in basis_checks:
        r.detector(prev[a])
    r.link(DATA)
    for _ in range(rounds):
        cur = check_round()
        for a in anc:
            r.detector(cur[a], prev[a])
        prev = cur
    if basis == "X":
        r.h(DATA)
    fin = r.measure(DATA)
    for a, lay in basis_checks.items():
        r.detector(prev[a], *(fin[q] for q in lay if q is not None))
    r.observable([fin[q] for q in LOGICAL[basis]])
    return r.circuit()


def reference_p_fail(circuit: stim.Circuit, shots: int, seed: int) -> tuple[int, int]:
    """Plain stim + pymatching: sample all shots, decode all shots; return (errors, shots)."""
    matching = pymatching.Matching.from_detector_error_model(
        circuit.detector_error_model(decompose_errors=True, approximate_disjoint_errors=True)
    )
    dets, obs = circuit.compile_detector_sampler(seed=seed).sample(shots, separate_observables=True)
    pred = matching.decode_batch(dets)
    return int(np.count_nonzero(pred[:, 0] != obs[:, 0])), shots


def _assert_consistent(k1: int, n1: int, k2: int, n2: int) -> None:
    """Both Wilson intervals overlap and the difference is within 4 combined standard errors."""
    lo1, hi1 = wilson_interval(k1, n1)
    lo2, hi2 = wilson_interval(k2, n2)
    assert lo1 <= hi2 and lo2 <= hi1, f"intervals disjoint: {k1}/{n1} vs {k2}/{n2}"
    p1, p2 = k1 / n1, k2 / n2
    pooled = (k1 + k2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    assert abs(p1 - p2) <= 4 * se, f"{p1:.3g} vs {p2:.3g} differ by more than 4 sigma ({se:.2g})"


@pytest.mark.parametrize(
    ("code", "basis", "budget"),
    [
        ("repetition_bitflip", "Z", 4_000_000),
        ("repetition_phaseflip", "X", 400_000),
        ("surface", "Z", 600_000),
        ("surface", "X", 200_000),
    ],
)
def test_d3_logical_error_agrees_with_reference_circuit(code: str, basis: str, budget: int) -> None:
    ours = run_memory(code, 3, basis, PROFILE_NOISE, max_shots=budget, max_errors=10**9, seed=11)
    if code == "surface":
        ref = reference_surface_d3(PROFILE_NOISE, basis)
    else:
        ref = reference_repetition_d3(PROFILE_NOISE, phase_flip=code == "repetition_phaseflip")
    assert ref.num_detectors == compiled_memory(code, 3, basis, 3, PROFILE_NOISE).num_detectors
    k_ref, n_ref = reference_p_fail(ref, budget, seed=12)
    # Enough errors that the comparison has power (and would catch a factor-2 mistake).
    assert ours.errors >= 60 and k_ref >= 60
    _assert_consistent(ours.errors, ours.shots, k_ref, n_ref)


def test_d3_exact_match_with_reference_on_identical_sampling() -> None:
    # The reference repetition circuit lists the same noise in the same order, so stim draws the same samples.
    noise = QecNoise(px=0.01, py=0.0, pz=0.0, gate_error_1q=0.01, gate_error_2q=0.01, measurement_error=0.01)
    ours = compiled_memory("repetition_bitflip", 3, "Z", 3, noise)
    ref = reference_repetition_d3(noise, phase_flip=False)
    a = ours.circuit.compile_detector_sampler(seed=3).sample(5000)
    b = ref.compile_detector_sampler(seed=3).sample(5000)
    # Detector order: ours lists detectors per round in ancilla order, as the reference does.
    assert np.array_equal(a, b)


def test_estimates_names_units_and_intervals() -> None:
    res = run_memory("surface", 3, "X", PROFILE_NOISE, max_shots=200_000, max_errors=10**9, seed=2)
    est = res.estimates()
    assert set(est) == {"logical_success_surface_d3", "logical_error_per_round_surface_d3", "decode_time_us_surface_d3"}
    ls = est["logical_success_surface_d3"]
    assert ls.direction is Direction.HIGHER and ls.unit == "" and ls.n == res.shots
    ci = binomtest(res.errors, res.shots).proportion_ci(0.95, method="wilson")
    assert (ls.ci_low, ls.ci_high) == pytest.approx((1 - ci.high, 1 - ci.low), rel=1e-9)
    eps = est["logical_error_per_round_surface_d3"]
    assert eps.direction is Direction.LOWER
    assert eps.value == pytest.approx((1 - (1 - 2 * res.p_fail) ** (1 / 3)) / 2)
    assert eps.ci_low <= eps.value <= eps.ci_high
    dt = est["decode_time_us_surface_d3"]
    assert dt.unit == "us" and dt.direction is Direction.LOWER and dt.value > 0
    assert set(res.estimates("custom")) == {
        "logical_success_custom",
        "logical_error_per_round_custom",
        "decode_time_us_custom",
    }


def test_error_per_round_mapping() -> None:
    assert error_per_round(0.1, 1) == pytest.approx(0.1)
    # Two rounds of independent flips eps compose to 2 eps (1 - eps).
    eps = 0.03
    assert error_per_round(2 * eps * (1 - eps), 2) == pytest.approx(eps)
    assert error_per_round(0.7, 5) == pytest.approx(0.5)


def test_run_code_surface_reports_both_bases_and_conservative_headline() -> None:
    rep = run_code("surface_d3", PROFILE_NOISE, max_shots=200_000, max_errors=200, seed=4)
    assert isinstance(rep, CodeReport) and rep.protected_basis == "ZX"
    rz, rx = rep.memories
    assert (rz.basis, rx.basis) == ("Z", "X")
    head = rep["logical_success_surface_d3"]
    assert head.value == pytest.approx(1 - rz.p_fail - rx.p_fail)
    low, high = sum_interval(rz.errors, rz.shots, rx.errors, rx.shots)
    assert (head.ci_low, head.ci_high) == pytest.approx((1 - high, 1 - low), rel=1e-12)
    z, x = rep["logical_success_surface_d3_z"], rep["logical_success_surface_d3_x"]
    # Variances add, half-widths do not: wider than either basis' interval, narrower than their sum.
    width = head.ci_high - head.ci_low
    assert max(z.ci_high - z.ci_low, x.ci_high - x.ci_low) < width < (z.ci_high - z.ci_low) + (x.ci_high - x.ci_low)
    assert head.value < min(z.value, x.value)
    eps = rep["logical_error_per_round_surface_d3"]
    assert (eps.ci_low, eps.ci_high) == pytest.approx((error_per_round(low, 3), error_per_round(high, 3)))
    # Decode time pools both memories' chunks.
    dt = rep["decode_time_us_surface_d3"]
    assert dt.n == rz.timing.chunks + rx.timing.chunks and dt.ci_low < dt.value < dt.ci_high


def test_run_code_repetition_reports_protected_basis_only() -> None:
    rep = run_code("repetition_phaseflip_d5", PROFILE_NOISE, max_shots=50_000, max_errors=100, seed=4)
    assert rep.protected_basis == "X" and rep.memories[0].basis == "X"
    assert set(rep) == {
        "logical_success_repetition_phaseflip_d5",
        "logical_error_per_round_repetition_phaseflip_d5",
        "decode_time_us_repetition_phaseflip_d5",
    }
    with pytest.raises(QecError, match="unknown code name"):
        run_code("steane_d3", PROFILE_NOISE, max_shots=10, max_errors=1, seed=0)
    with pytest.raises(QecError, match="odd integer"):
        run_code("surface_d4", PROFILE_NOISE, max_shots=10, max_errors=1, seed=0)


def test_stops_at_max_errors_after_a_batch_and_is_reproducible() -> None:
    noisy = QecNoise(px=0.02, pz=0.02, gate_error_2q=0.01, measurement_error=0.01)
    a = run_memory("surface", 3, "Z", noisy, max_shots=10**6, max_errors=50, seed=9, batch=1000)
    assert a.errors >= 50 and a.shots < 10**6 and a.shots % 1000 == 0
    # Every block is decoded in 8 timed chunks (the decode-time interval needs several).
    assert a.timing.chunks == 8 * (a.shots // 1000)
    b = run_memory("surface", 3, "Z", noisy, max_shots=10**6, max_errors=50, seed=9, batch=1000)
    assert (a.shots, a.errors) == (b.shots, b.errors)
    c = run_memory("surface", 3, "Z", noisy, max_shots=2500, max_errors=10**9, seed=9, batch=1000)
    assert c.shots == 2500
    with pytest.raises(QecError, match="max_shots"):
        run_memory("surface", 3, "Z", noisy, max_shots=0, max_errors=1, seed=0)
    with pytest.raises(QecError, match="QecNoise"):
        run_memory("surface", 3, "Z", {"px": 0.1}, max_shots=10, max_errors=1, seed=0)


def test_raising_two_qubit_gate_error_raises_surface_d5_failure() -> None:
    worse = QecNoise(**{**PROFILE_NOISE.__dict__, "gate_error_2q": 3e-3})
    low = run_code("surface_d5", PROFILE_NOISE, max_shots=1_000_000, max_errors=300, seed=21)
    high = run_code("surface_d5", worse, max_shots=1_000_000, max_errors=300, seed=21)
    a, b = low["logical_success_surface_d5"], high["logical_success_surface_d5"]
    assert b.ci_high < a.ci_low, f"{b} not clearly below {a}"


def test_quick_budget_runs_well_under_20_seconds() -> None:
    compiled_memory.cache_clear()
    t0 = time.perf_counter()
    for name in ("repetition_bitflip_d3", "repetition_bitflip_d5", "surface_d3", "surface_d5"):
        rep = run_code(name, PROFILE_NOISE, max_shots=100_000, max_errors=100, seed=1)
        assert all(m.shots <= 100_000 for m in rep.memories)
    elapsed = time.perf_counter() - t0
    assert elapsed < 10.0, f"quick budget took {elapsed:.1f} s"
