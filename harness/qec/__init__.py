"""Logical-memory experiments (repetition and rotated surface codes) with stim + pymatching, cross-checked by Aer."""

from harness.qec.codes import CODES, PROTECTED_BASIS, MemoryCircuit, memory_circuit
from harness.qec.memory import CodeReport, MemoryResult, run_code, run_memory
from harness.qec.noise import QecError, QecNoise, pauli_twirl

__all__ = [
    "CODES",
    "PROTECTED_BASIS",
    "CodeReport",
    "MemoryCircuit",
    "MemoryResult",
    "QecError",
    "QecNoise",
    "memory_circuit",
    "pauli_twirl",
    "run_code",
    "run_memory",
]
