"""The Aer path runs the same memory experiment as the stim path and agrees with it within intervals."""

from __future__ import annotations

import math

import pytest

from harness.qec.aer_memory import records_to_events, run_memory_aer, sample_records, to_qiskit
from harness.qec.codes import memory_circuit
from harness.qec.memory import run_memory, wilson_interval
from harness.qec.noise import QecError, QecNoise

# Inflated noise so both paths see plenty of logical errors in a few thousand Aer shots.
INFLATED = QecNoise(
    px=0.01, py=0.005, pz=0.01, gate_error_1q=0.01, gate_error_2q=0.01, measurement_error=0.01, idle_error=0.01
)


@pytest.mark.parametrize(("code", "basis"), [("repetition_bitflip", "Z"), ("repetition_phaseflip", "X")])
def test_aer_repetition_d3_agrees_with_stim(code: str, basis: str) -> None:
    aer = run_memory_aer(code, 3, basis, INFLATED, shots=20_000, seed=17)
    ours = run_memory(code, 3, basis, INFLATED, max_shots=400_000, max_errors=10**9, seed=17)
    assert aer.errors >= 100
    lo_a, hi_a = wilson_interval(aer.errors, aer.shots)
    lo_s, hi_s = wilson_interval(ours.errors, ours.shots)
    assert lo_a <= hi_s and lo_s <= hi_a, f"Aer {aer.p_fail:.4g} vs stim {ours.p_fail:.4g}"
    se = math.sqrt(ours.p_fail * (1 - ours.p_fail) * (1 / aer.shots + 1 / ours.shots))
    assert abs(aer.p_fail - ours.p_fail) <= 4 * se
    assert aer.physical_qubits == ours.physical_qubits == 5


def test_aer_sees_link_noise_the_bitflip_code_cannot_ignore() -> None:
    # A pure X link at 0.2 per qubit: a d=3 bit-flip memory fails when >= 2 of 3 qubits flip,
    # p_L = 3 p^2 (1 - p) + p^3 = 0.104, with otherwise ideal gates and readout.
    p = 0.2
    aer = run_memory_aer("repetition_bitflip", 3, "Z", QecNoise(px=p), shots=10_000, seed=3)
    expected = 3 * p**2 * (1 - p) + p**3
    lo, hi = wilson_interval(aer.errors, aer.shots, 0.999)
    assert lo <= expected <= hi


@pytest.mark.parametrize(("code", "basis"), [("repetition_phaseflip", "X"), ("surface", "Z"), ("surface", "X")])
def test_aer_noise_free_detectors_are_zero(code: str, basis: str) -> None:
    mc = memory_circuit(code, 3, basis)
    dets, obs = records_to_events(mc, sample_records(mc, QecNoise(), shots=200, seed=1))
    assert not dets.any() and not obs.any()


def test_qiskit_circuit_mirrors_operation_list() -> None:
    mc = memory_circuit("repetition_bitflip", 3, "Z")
    qc = to_qiskit(mc)
    ops = qc.count_ops()
    assert ops["measure"] == mc.num_measurements == 3 * 2 + 3
    assert ops["cx"] == 3 * 4
    labels = [inst.operation.label for inst in qc.data if inst.operation.name == "id"]
    assert labels.count("link") == 3 and labels.count("idle") == 3 * 3
    assert qc.num_qubits == 5 and ops["reset"] == 5 + 3 * 2


def test_aer_rejects_bad_shots() -> None:
    with pytest.raises(QecError, match="shots"):
        run_memory_aer("repetition_bitflip", 3, "Z", INFLATED, shots=0, seed=0)
