"""The Aer stand-in's circuits and noise model: labelled noise points, Bell and link circuits, readout folding.

See harness.devices.aer for how the device uses them; the labels and the qubit order are its public contract
(a user noise model attaches its errors to the labels).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from harness.errors import DeviceError
from harness.physics.link import profile_link_kraus, profile_rates
from harness.profiles import Profile

SOURCE_LABEL = "qh_source"
LINK_LABEL = "qh_link"
ACCIDENTAL_LABEL = "qh_accidental"
LINK_ACCIDENTAL_LABEL = "qh_link_accidental"
QUBIT_A, QUBIT_B = 0, 1

EXACT_METHOD = "density_matrix"
SAMPLING_METHODS = ("automatic", "statevector", "matrix_product_state")
SUPPORTED_METHODS = (EXACT_METHOD, *SAMPLING_METHODS)

# Gates that rotate the +1 eigenvector of a basis onto |0>, so that "+" is bit 0.
_BASIS_ROTATION: dict[str, tuple[str, ...]] = {"X": ("h",), "Y": ("sdg", "h"), "Z": ()}
# Gates that prepare each link-tomography input from |0>.
_INPUT_PREPARATION: dict[str, tuple[str, ...]] = {
    "0": (),
    "1": ("x",),
    "+": ("h",),
    "-": ("x", "h"),
    "+i": ("h", "s"),
    "-i": ("h", "sdg"),
}
# Aer's probabilities are little-endian (index = b0 + 2 b1, qubit 0 = A); the device reports A first.
A_FIRST = np.array([0, 2, 1, 3])


class AerConfigError(DeviceError):
    """The profile's `aer` block cannot be used (bad noise-model import path, unknown method, ...)."""


def build_noise_model(
    profile: Profile, *, visibility: float | None = None, accidental_fraction: float | None = None
) -> Any:
    """Return the built-in Aer NoiseModel of a profile (errors on the labelled instructions of this module).

    `visibility` and `accidental_fraction` replace the profile's values (the drift's mixing components use them).
    """
    from qiskit_aer.noise import NoiseModel, ReadoutError, depolarizing_error, kraus_error

    f_acc = profile_rates(profile).accidental_fraction if accidental_fraction is None else accidental_fraction
    vis = profile.source.visibility if visibility is None else visibility
    det = profile.detectors
    nm = NoiseModel()
    nm.add_all_qubit_quantum_error(depolarizing_error(1.0 - vis, 2), [SOURCE_LABEL])
    nm.add_all_qubit_quantum_error(kraus_error(profile_link_kraus(profile)), [LINK_LABEL])
    nm.add_all_qubit_quantum_error(depolarizing_error(f_acc, 2), [ACCIDENTAL_LABEL])
    nm.add_all_qubit_quantum_error(depolarizing_error(f_acc, 1), [LINK_ACCIDENTAL_LABEL])
    for qubit, err in ((QUBIT_A, det.readout_error_a), (QUBIT_B, det.readout_error_b)):
        nm.add_readout_error(ReadoutError([[1.0 - err, err], [err, 1.0 - err]]), [qubit])
    return nm


def _load_noise_model_function(spec: str, profile_name: str) -> Callable[[Any, str], Any]:
    where = f"profile {profile_name!r}: aer.noise_model {spec!r}"
    module_name, sep, func_name = spec.partition(":")
    if not sep or not module_name or not func_name:
        raise AerConfigError(f"{where} is not of the form 'package.module:function'; write e.g. 'mypkg.noise:model'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise AerConfigError(
            f"{where}: cannot import module {module_name!r} ({exc}); install it or fix the path"
        ) from None
    func = getattr(module, func_name, None)
    if not callable(func):
        raise AerConfigError(f"{where}: module {module_name!r} has no function {func_name!r}; fix the name")
    return func


def user_noise_model(spec: str, profile: Profile, build: str) -> Any:
    """The NoiseModel that the profile's aer.noise_model function returns for `build`."""
    from qiskit_aer.noise import NoiseModel

    func = _load_noise_model_function(spec, profile.name)
    try:
        nm = func(profile, build)
    except Exception as exc:
        raise AerConfigError(f"profile {profile.name!r}: aer.noise_model {spec!r} raised {exc!r}") from None
    if not isinstance(nm, NoiseModel):
        raise AerConfigError(
            f"profile {profile.name!r}: aer.noise_model {spec!r} returned {type(nm).__name__}, "
            "expected a qiskit_aer.noise.NoiseModel"
        )
    return nm


def confusions_from_noise_model(nm: Any) -> list[np.ndarray] | None:
    """Per-qubit readout confusion matrices [A, B] (row = true bit, column = reported bit).

    None when the model has a readout error these cannot express (correlated across qubits).
    """
    conf = [np.eye(2), np.eye(2)]
    default = None
    for err in nm.to_dict().get("errors", []):
        if err.get("type") != "roerror":
            continue
        probs = np.asarray(err["probabilities"], dtype=float)
        if probs.shape != (2, 2):
            return None
        qubits = err.get("gate_qubits")
        if qubits is None:
            default = probs
            continue
        for q in qubits:
            if len(q) != 1 or q[0] not in (QUBIT_A, QUBIT_B):
                return None
            conf[q[0]] = probs
    if default is not None:
        local = {q[0] for e in nm.to_dict()["errors"] if e.get("type") == "roerror" for q in e.get("gate_qubits", [])}
        conf = [conf[q] if q in local else default for q in (QUBIT_A, QUBIT_B)]
    return conf


def _apply_ops(qc: Any, gates: Sequence[str], qubit: int) -> None:
    for g in gates:
        getattr(qc, g)(qubit)


def _labelled_identity(n_qubits: int, label: str) -> Any:
    from qiskit.circuit.library import UnitaryGate

    return UnitaryGate(np.eye(2**n_qubits), label=label)


def _misalign_b(qc: Any, misalignment_deg: float) -> None:
    """Turn arm B's analyser by `misalignment_deg` polarisation degrees: the state turns by -2 theta about Y."""
    if misalignment_deg:
        qc.ry(-2.0 * np.deg2rad(misalignment_deg), QUBIT_B)


def bell_circuit(setting: str, *, measure: bool, misalignment_deg: float = 0.0) -> Any:
    """Return the circuit of one Bell-tomography setting (qubit 0 = A, qubit 1 = B), B's analyser turned if asked."""
    from qiskit import QuantumCircuit

    qc = QuantumCircuit(2, 2 if measure else 0, name=f"bell_{setting}")
    qc.h(QUBIT_A)
    qc.cx(QUBIT_A, QUBIT_B)
    qc.append(_labelled_identity(2, SOURCE_LABEL), [QUBIT_A, QUBIT_B])
    qc.append(_labelled_identity(1, LINK_LABEL), [QUBIT_B])
    qc.append(_labelled_identity(2, ACCIDENTAL_LABEL), [QUBIT_A, QUBIT_B])
    _misalign_b(qc, misalignment_deg)
    _apply_ops(qc, _BASIS_ROTATION[setting[0]], QUBIT_A)
    _apply_ops(qc, _BASIS_ROTATION[setting[1]], QUBIT_B)
    if measure:
        qc.measure([QUBIT_A, QUBIT_B], [0, 1])
    else:
        qc.save_probabilities(label="p")
    return qc


def link_circuit(state: str, basis: str, *, measure: bool, misalignment_deg: float = 0.0) -> Any:
    """Return the circuit of one link-tomography setting: input on qubit B, link, accidentals, B's analyser."""
    from qiskit import QuantumCircuit

    qc = QuantumCircuit(2, 1 if measure else 0, name=f"link_{state}_{basis}")
    _apply_ops(qc, _INPUT_PREPARATION[state], QUBIT_B)
    qc.append(_labelled_identity(1, LINK_LABEL), [QUBIT_B])
    qc.append(_labelled_identity(1, LINK_ACCIDENTAL_LABEL), [QUBIT_B])
    _misalign_b(qc, misalignment_deg)
    _apply_ops(qc, _BASIS_ROTATION[basis], QUBIT_B)
    if measure:
        qc.measure(QUBIT_B, 0)
    else:
        qc.save_probabilities([QUBIT_B], label="p")
    return qc


def fold_readout(probs: np.ndarray, confusion: Sequence[np.ndarray], n_qubits: int) -> np.ndarray:
    """Aer's saved probabilities (little-endian rows) with the analysers' readout confusion folded in, A first.

    Confusion rows are true bits, columns reported bits; the result is clipped at 0 and renormalised per row.
    """
    conf_a, conf_b = confusion
    if n_qubits == 2:
        # probs[n, b1, b0] little-endian; the result's index is 2*a + b: A first.
        probs = np.einsum("nij,ik,jl->nlk", probs.reshape(-1, 2, 2), conf_b, conf_a).reshape(-1, 4)
    else:
        probs = probs @ conf_b
    probs = np.clip(probs, 0.0, None)
    return probs / probs.sum(axis=1, keepdims=True)


def run_circuits(sim: Any, circuits: list[Any], shots: int, seed: int, what: str) -> Any:
    """Run `circuits` on `sim` in one call; a failed simulation is a DeviceError naming `what`."""
    result = sim.run(circuits, shots=shots, seed_simulator=seed, max_parallel_experiments=1).result()
    if not result.success:
        raise DeviceError(f"Aer simulation of {what} failed: {result.status}")
    return result


def exact_probabilities(
    sim: Any, circuits: list[Any], n_qubits: int, confusion: Sequence[np.ndarray], seed: int, what: str
) -> np.ndarray:
    """Exact outcome probabilities of `circuits` (saved, not sampled) with readout folded in, A first."""
    # Density-matrix noise is exact (no trajectories), so the seed only fixes Aer's own bookkeeping.
    result = run_circuits(sim, circuits, 1, seed, what)
    probs = np.array([np.asarray(result.data(i)["p"], dtype=float) for i in range(len(circuits))])
    return fold_readout(probs, confusion, n_qubits)
