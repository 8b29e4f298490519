"""Logical-memory experiments (repetition and rotated surface codes) with stim + pymatching, cross-checked by Aer.

The names below load on first use: sinter's worker processes import harness.qec.blocks, and should not pay for
scipy and the analysis layer that the metrics need.
"""

from importlib import import_module
from typing import Any

_EXPORTS = {
    "CODES": "harness.qec.codes",
    "PROTECTED_BASIS": "harness.qec.codes",
    "MemoryCircuit": "harness.qec.codes",
    "memory_circuit": "harness.qec.codes",
    "CodeReport": "harness.qec.memory",
    "MemoryResult": "harness.qec.memory",
    "run_code": "harness.qec.memory",
    "run_codes": "harness.qec.memory",
    "run_memory": "harness.qec.memory",
    "QecError": "harness.qec.noise",
    "QecNoise": "harness.qec.noise",
    "pauli_twirl": "harness.qec.noise",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'harness.qec' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
