"""Cross-check path: the same memory experiment run on qiskit-aer with an equivalent NoiseModel.

The noise-free operation list of harness/qec/codes.py is rendered as a qiskit circuit (reset, h, cx,
measure, and identity gates labelled "link" and "idle" that only carry noise). The Aer NoiseModel
implements the mapping in harness/qec/noise.py independently of stim:

- h: depolarizing_error(4 p1 / 3, 1)   (== DEPOLARIZE1(p1))
- cx: depolarizing_error(16 p2 / 15, 2) (== DEPOLARIZE2(p2))
- "link": pauli_error X/Y/Z with (px, py, pz) (== PAULI_CHANNEL_1)
- "idle": depolarizing_error(4 p_idle / 3, 1)
- measure: ReadoutError with symmetric flip p_meas (== X_ERROR(p_meas) before M, since every measured
  qubit is reset or never used again).

Raw measurement records are turned into detection events with the circuit's detector definitions
(every detector's noise-free parity is 0) and decoded with the same matching graph and decode function as the
stim path.
Aer simulates shot by shot, so this path is for small circuits (d = 3) at inflated noise.
"""

from __future__ import annotations

import numpy as np
from qiskit import QuantumCircuit
from qiskit.circuit.library import IGate
from qiskit_aer import AerSimulator
from qiskit_aer.noise import NoiseModel, ReadoutError, depolarizing_error, pauli_error

from harness.qec.blocks import decode_errors
from harness.qec.codes import MemoryCircuit, check_request
from harness.qec.memory import MemoryResult, compiled_memory
from harness.qec.noise import QecError, QecNoise
from harness.qec.sampling import Sampled, timing_of

LINK_LABEL = "link"
IDLE_LABEL = "idle"


def to_qiskit(mc: MemoryCircuit) -> QuantumCircuit:
    """Return the qiskit circuit of a noise-free memory experiment (clbit k = k-th measurement)."""
    qc = QuantumCircuit(mc.num_qubits, mc.num_measurements)
    clbit = 0
    for name, args in mc.ops:
        if name == "R":
            for q in args:
                qc.reset(q)
        elif name == "H":
            for q in args:
                qc.h(q)
        elif name == "CX":
            for c, t in args:
                qc.cx(c, t)
        elif name in ("LINK", "IDLE"):
            label = LINK_LABEL if name == "LINK" else IDLE_LABEL
            for q in args:
                qc.append(IGate(label=label), [q])
        elif name == "M":
            for q in args:
                qc.measure(q, clbit)
                clbit += 1
    return qc


def aer_noise_model(noise: QecNoise) -> NoiseModel:
    """Return the Aer NoiseModel equivalent to the stim rendering of `noise`."""
    nm = NoiseModel(basis_gates=["h", "cx", "id", "reset", "measure"])
    if noise.gate_error_1q > 0:
        nm.add_all_qubit_quantum_error(depolarizing_error(4 * noise.gate_error_1q / 3, 1), ["h"])
    if noise.gate_error_2q > 0:
        nm.add_all_qubit_quantum_error(depolarizing_error(16 * noise.gate_error_2q / 15, 2), ["cx"])
    p_link = noise.px + noise.py + noise.pz
    if p_link > 0:
        link = pauli_error([("I", 1 - p_link), ("X", noise.px), ("Y", noise.py), ("Z", noise.pz)])
        nm.add_all_qubit_quantum_error(link, [LINK_LABEL])
    if noise.idle_error > 0:
        nm.add_all_qubit_quantum_error(depolarizing_error(4 * noise.idle_error / 3, 1), [IDLE_LABEL])
    if noise.measurement_error > 0:
        p = noise.measurement_error
        nm.add_all_qubit_readout_error(ReadoutError([[1 - p, p], [p, 1 - p]]))
    return nm


def records_to_events(mc: MemoryCircuit, records: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return bit-packed (detection events, observable flips) from a (shots, measurements) 0/1 array."""
    det_matrix = np.zeros((mc.num_measurements, len(mc.detectors)), dtype=np.int32)
    for j, det in enumerate(mc.detectors):
        det_matrix[list(det), j] = 1
    obs_matrix = np.zeros((mc.num_measurements, 1), dtype=np.int32)
    obs_matrix[list(mc.observable), 0] = 1
    rec = records.astype(np.int32)
    dets = ((rec @ det_matrix) & 1).astype(np.uint8)
    obs = ((rec @ obs_matrix) & 1).astype(np.uint8)
    return np.packbits(dets, axis=1, bitorder="little"), np.packbits(obs, axis=1, bitorder="little")


def sample_records(mc: MemoryCircuit, noise: QecNoise, shots: int, seed: int) -> np.ndarray:
    """Return Aer's measurement records, shape (shots, measurements), uint8, column k = k-th measurement."""
    sim = AerSimulator(method="stabilizer", noise_model=aer_noise_model(noise), seed_simulator=seed)
    result = sim.run(to_qiskit(mc), shots=shots, memory=True).result()
    memory = result.get_memory()
    raw = np.frombuffer("".join(memory).encode("ascii"), dtype=np.uint8).reshape(shots, -1)
    # qiskit prints clbit 0 rightmost.
    return (raw[:, ::-1] - ord("0")).astype(np.uint8)


def run_memory_aer(
    code: str, distance: int, basis: str, noise: QecNoise, *, shots: int, seed: int, rounds: int | None = None
) -> MemoryResult:
    """Return the memory experiment's logical error count sampled with Aer and decoded by the stim-path matching."""
    if not isinstance(noise, QecNoise):
        raise QecError(f"noise must be a QecNoise, got {type(noise).__name__}; build one with QecNoise(...)")
    code, distance, basis, rounds = check_request(code, distance, basis, rounds)
    if isinstance(shots, bool) or not isinstance(shots, int) or shots < 1:
        raise QecError(f"shots must be a positive integer, got {shots!r}")
    comp = compiled_memory(code, distance, basis, rounds, noise)
    records = sample_records(comp.layout, noise, shots, seed)
    dets, obs = records_to_events(comp.layout, records)
    errors, counts = decode_errors(comp.matching, dets, obs)
    return MemoryResult.of(comp.layout, Sampled(shots, errors, timing_of(counts), shots, None))
