"""Structure of the memory circuits: sizes, circuit-level distance, determinism of detectors, bad requests."""

from __future__ import annotations

import numpy as np
import pytest
import stim

from harness.qec.aer_memory import records_to_events
from harness.qec.codes import memory_circuit, surface_layout
from harness.qec.noise import QecError, QecNoise

ALL_NOISE = QecNoise(
    px=1e-3, py=1e-3, pz=1e-3, gate_error_1q=1e-3, gate_error_2q=1e-3, measurement_error=1e-3, idle_error=1e-3
)
CASES = [("repetition_bitflip", "Z"), ("repetition_phaseflip", "X"), ("surface", "Z"), ("surface", "X")]


@pytest.mark.parametrize(("code", "basis"), CASES)
@pytest.mark.parametrize("d", [3, 5, 7])
def test_circuit_distance_equals_code_distance(code: str, basis: str, d: int) -> None:
    circuit = memory_circuit(code, d, basis).to_stim(ALL_NOISE)
    # Hook errors or a non-fault-tolerant encoder would show up as a shorter undetectable logical error.
    assert len(circuit.shortest_graphlike_error()) == d


def test_surface_distance_matches_stim_generated_reference() -> None:
    for d in (3, 5):
        ref = stim.Circuit.generated(
            "surface_code:rotated_memory_z", distance=d, rounds=d, after_clifford_depolarization=1e-3
        )
        assert len(ref.shortest_graphlike_error()) == d
        ours = memory_circuit("surface", d, "Z").to_stim(ALL_NOISE)
        assert ours.num_qubits == len(ref.get_final_qubit_coordinates()) == 2 * d * d - 1


@pytest.mark.parametrize(("code", "basis"), CASES)
def test_sizes_and_detector_counts(code: str, basis: str) -> None:
    d, rounds = 5, 4
    mc = memory_circuit(code, d, basis, rounds)
    if code == "surface":
        n_stab, n_basis = d * d - 1, (d * d - 1) // 2
        assert mc.num_qubits == 2 * d * d - 1
        # sender round (basis checks) + rounds x all checks + final (basis checks)
        assert len(mc.detectors) == n_basis + rounds * n_stab + n_basis
    else:
        assert mc.num_qubits == 2 * d - 1
        assert len(mc.detectors) == (rounds + 1) * (d - 1)
    assert mc.to_stim(ALL_NOISE).num_detectors == len(mc.detectors)


def test_surface_layout_logicals_commute_with_checks() -> None:
    for d in (3, 5, 7):
        _, stabs, z_log, x_log = surface_layout(d)
        assert len(stabs) == d * d - 1
        for s in stabs:
            other = z_log if s.kind == "X" else x_log
            assert len(set(s.support) & set(other)) % 2 == 0
        assert len(set(z_log) & set(x_log)) == 1
        # X and Z checks overlap on an even number of qubits (they commute).
        for a in stabs:
            for b in stabs:
                if a.kind != b.kind:
                    assert len(set(a.support) & set(b.support)) % 2 == 0


@pytest.mark.parametrize(("code", "basis"), CASES)
def test_noise_free_records_give_zero_detectors_and_observable(code: str, basis: str) -> None:
    # The Aer path recomputes detectors from raw records and assumes every noise-free parity is 0.
    mc = memory_circuit(code, 3, basis)
    records = mc.to_stim(QecNoise()).compile_sampler(seed=5).sample(2000).astype(np.uint8)
    dets, obs = records_to_events(mc, records)
    assert not dets.any()
    assert not obs.any()


def test_bad_requests_raise_qec_error() -> None:
    with pytest.raises(QecError, match="unknown code"):
        memory_circuit("toric", 3, "Z")
    with pytest.raises(QecError, match="odd integer"):
        memory_circuit("surface", 4, "Z")
    with pytest.raises(QecError, match="protects only the Z basis"):
        memory_circuit("repetition_bitflip", 3, "X")
    with pytest.raises(QecError, match="rounds"):
        memory_circuit("surface", 3, "Z", rounds=0)
    with pytest.raises(QecError, match="basis"):
        memory_circuit("surface", 3, "Y")
