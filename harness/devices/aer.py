"""The Qiskit Aer stand-in of a quantum link: Bell-pair tomography, link tomography and coincidence counts.

Every quantum measurement runs as Qiskit circuits on `AerSimulator`, with the link's noise expressed as an
Aer `NoiseModel` attached to dedicated, labelled identity instructions, so each noise process acts exactly
once per detected event:

- ``qh_source`` (2 qubits): ``depolarizing_error(1 - V, 2)``, turning |Phi+> into the Werner state of the source;
- ``qh_link`` (qubit B): a Kraus error built from `harness.physics.link_kraus` (amplitude damping, dephasing,
  depolarising, in that order);
- ``qh_accidental`` (2 qubits): ``depolarizing_error(f_acc, 2)`` with f_acc = C_acc / (C_t + C_acc), the share
  of coincidences that are accidental and so carry no correlation;
- ``qh_link_accidental`` (qubit B): ``depolarizing_error(f_acc, 1)``, the same mixing for link tomography;
- a ``ReadoutError`` per analyser on ``measure``: qubit 0 is arm A, qubit 1 is arm B.

Exactness and speed. By default the circuits run with the ``density_matrix`` method and a
``save_probabilities`` instruction, in ONE `run` call per measurement and without transpiling (the circuits use
gates the simulator executes directly and are built once, in `open()`). Aer applies every quantum error exactly as
a superoperator in this method, so the saved probabilities are the exact outcome distribution. Aer's save
instructions do not measure, so they do not include the ``ReadoutError``: the device reads each analyser's
confusion matrix back out of the noise model (``NoiseModel.to_dict()``) and folds it into the probabilities.
Counts are then drawn with numpy: shots per setting N_i ~ Poisson((C_t + C_acc) T) and outcomes
~ Multinomial(N_i, p_i), so loss and dark counts change both the rate and the error bars.

With ``aer.method`` set to a sampling method (``statevector``, ``matrix_product_state``, ``automatic``), or when
a user noise model has readout errors that are not per qubit, the circuits measure instead: Aer samples
max_i N_i shots of every setting (readout noise applied by Aer itself, seeded from the device's stream) and each
setting keeps a uniformly random subset of N_i of them (multivariate hypergeometric), which is again an exact
draw of N_i events.

User noise model. ``aer: {noise_model: "package.module:function"}`` in the profile names a function
``function(profile: harness.profiles.Profile, build: str) -> qiskit_aer.noise.NoiseModel``; the model it returns
replaces the built-in one. It should attach its errors to the labels above (see `build_noise_model` for a
starting point) and its readout errors to ``measure`` on qubits 0 (A) and 1 (B).

Randomness. Each measurement draws from ``np.random.SeedSequence(seed, spawn_key=(h(profile), h(build),
h(protocol), call_index))`` with h a stable 32-bit hash (sha256): the same inputs give identical counts, two
builds with identical physics give independent samples, and repeated calls give fresh samples.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from harness.devices.base import DeviceContext, check_duration, check_inputs, require_profile
from harness.errors import DeviceError
from harness.physics.link import profile_link_kraus, profile_rates, sample_singles
from harness.profiles import AerOptions, Profile
from harness.records import BASES, BELL_SETTINGS, INPUTS_4, CoincidenceCounts, Identity, ProcessCounts, TomographyCounts
from harness.streams import stream

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
_A_FIRST = np.array([0, 2, 1, 3])


class AerConfigError(DeviceError):
    """The profile's `aer` block cannot be used (bad noise-model import path, unknown method, ...)."""


def build_noise_model(profile: Profile) -> Any:
    """Return the built-in Aer NoiseModel of a profile (errors on the labelled instructions of this module)."""
    from qiskit_aer.noise import NoiseModel, ReadoutError, depolarizing_error, kraus_error

    r = profile_rates(profile)
    f_acc = r.accidental_fraction
    det = profile.detectors
    nm = NoiseModel()
    nm.add_all_qubit_quantum_error(depolarizing_error(1.0 - profile.source.visibility, 2), [SOURCE_LABEL])
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


def _user_noise_model(spec: str, profile: Profile, build: str) -> Any:
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


def _confusions_from_noise_model(nm: Any) -> list[np.ndarray] | None:
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


def bell_circuit(setting: str, *, measure: bool) -> Any:
    """Return the circuit of one Bell-tomography setting (qubit 0 = A, qubit 1 = B)."""
    from qiskit import QuantumCircuit

    qc = QuantumCircuit(2, 2 if measure else 0, name=f"bell_{setting}")
    qc.h(QUBIT_A)
    qc.cx(QUBIT_A, QUBIT_B)
    qc.append(_labelled_identity(2, SOURCE_LABEL), [QUBIT_A, QUBIT_B])
    qc.append(_labelled_identity(1, LINK_LABEL), [QUBIT_B])
    qc.append(_labelled_identity(2, ACCIDENTAL_LABEL), [QUBIT_A, QUBIT_B])
    _apply_ops(qc, _BASIS_ROTATION[setting[0]], QUBIT_A)
    _apply_ops(qc, _BASIS_ROTATION[setting[1]], QUBIT_B)
    if measure:
        qc.measure([QUBIT_A, QUBIT_B], [0, 1])
    else:
        qc.save_probabilities(label="p")
    return qc


def link_circuit(state: str, basis: str, *, measure: bool) -> Any:
    """Return the circuit of one link-tomography setting: input on qubit B, link, accidentals, basis rotation."""
    from qiskit import QuantumCircuit

    qc = QuantumCircuit(2, 1 if measure else 0, name=f"link_{state}_{basis}")
    _apply_ops(qc, _INPUT_PREPARATION[state], QUBIT_B)
    qc.append(_labelled_identity(1, LINK_LABEL), [QUBIT_B])
    qc.append(_labelled_identity(1, LINK_ACCIDENTAL_LABEL), [QUBIT_B])
    _apply_ops(qc, _BASIS_ROTATION[basis], QUBIT_B)
    if measure:
        qc.measure(QUBIT_B, 0)
    else:
        qc.save_probabilities([QUBIT_B], label="p")
    return qc


class AerDevice(DeviceContext):
    """A simulated quantum link whose counts come from Qiskit Aer with the profile's noise model."""

    def __init__(self, profile: Profile, build: str, seed: int) -> None:
        self.profile = require_profile(profile, type(self).__name__)
        self.build = str(build)
        self.seed = int(seed)
        self.name = profile.name
        if profile.kind != "aer":
            raise AerConfigError(
                f"profile {self.name!r} is kind {profile.kind!r}; the Aer device needs a kind aer profile"
            )
        self._calls: dict[str, int] = {}
        self._open = False
        self._sim: Any = None
        self._noise_model: Any = None
        self._confusion: list[np.ndarray] | None = None
        self._exact = True
        self._circuits: dict[tuple, list[Any]] = {}
        self.rates = profile_rates(self.profile)

    @classmethod
    def from_profile(cls, profile: Profile, build: str, *, seed: int, **_: Any) -> AerDevice:
        """The Aer stand-in of an effective profile (the device registry's constructor)."""
        return cls(profile, build=build, seed=seed)

    # -- lifecycle -------------------------------------------------------------------------------------------
    def open(self) -> None:
        """Build the noise model, simulator and circuits, and run one warm-up simulation (idempotent)."""
        if self._open:
            return
        from qiskit_aer import AerSimulator

        aer = self.profile.aer or AerOptions()
        spec, method = aer.noise_model, aer.method or EXACT_METHOD
        if method not in SUPPORTED_METHODS:
            raise AerConfigError(
                f"profile {self.name!r}: aer.method {method!r} is not supported; use one of "
                f"{', '.join(SUPPORTED_METHODS)} (or leave it null for {EXACT_METHOD})"
            )
        nm = _user_noise_model(spec, self.profile, self.build) if spec else build_noise_model(self.profile)
        self._noise_model = nm
        self._confusion = _confusions_from_noise_model(nm)
        self._exact = method == EXACT_METHOD and self._confusion is not None
        self._sim = AerSimulator(method=method, noise_model=nm)
        self._open = True
        # The first run pays Aer's one-off set-up; keep it out of the measurements.
        warm_rng = np.random.default_rng(0)
        self._simulate(self._bell_circuits(BELL_SETTINGS), np.ones(len(BELL_SETTINGS), dtype=np.int64), 2, warm_rng)
        self._link_circuits(INPUTS_4)

    def close(self) -> None:
        """Release the simulator; safe to call twice."""
        self._open = False
        self._sim = None

    def identify(self) -> Identity:
        """Report kind "aer", the profile name and the simulated firmware build."""
        method = "exact probabilities" if self._exact else "sampled shots"
        return Identity(kind="aer", profile=self.name, build=self.build, detail=f"qiskit-aer, {method}")

    @property
    def noise_model(self) -> Any:
        """The Aer NoiseModel in use (available after `open()`)."""
        return self._noise_model

    # -- measurements ----------------------------------------------------------------------------------------
    def bell_tomography(self, duration_s: float) -> TomographyCounts:
        """Counts of the 9 Pauli settings (BELL_SETTINGS order, outcomes ++,+-,-+,--), each over `duration_s`."""
        duration_s = self._check_duration(duration_s)
        rng = self._next_rng("bell_tomography")
        shots = rng.poisson(self.rates.coincidence_hz * duration_s, size=len(BELL_SETTINGS)).astype(np.int64)
        counts = self._simulate(self._bell_circuits(BELL_SETTINGS), shots, 2, rng)
        return TomographyCounts(settings=BELL_SETTINGS, counts=counts, duration_s=duration_s)

    def link_tomography(self, duration_s: float, inputs: tuple = INPUTS_4) -> ProcessCounts:
        """Counts of link process tomography: inputs x (X, Y, Z) x (+, -), each setting over `duration_s`."""
        duration_s = self._check_duration(duration_s)
        inputs = check_inputs(inputs)
        rng = self._next_rng("link_tomography")
        n_set = len(inputs) * len(BASES)
        shots = rng.poisson(self.rates.coincidence_hz * duration_s, size=n_set).astype(np.int64)
        counts = self._simulate(self._link_circuits(inputs), shots, 1, rng)
        return ProcessCounts(
            inputs=inputs, bases=BASES, counts=counts.reshape(len(inputs), len(BASES), 2), duration_s=duration_s
        )

    def coincidences(self, duration_s: float) -> CoincidenceCounts:
        """Coincidences C (true plus accidental, Poisson) and the singles N_A, N_B that contain them."""
        duration_s = self._check_duration(duration_s)
        rng = self._next_rng("coincidences")
        r = self.rates
        c = int(rng.poisson(r.coincidence_hz * duration_s))
        n_a, n_b = sample_singles(r, c, duration_s, rng)
        return CoincidenceCounts(
            singles_a=int(n_a), singles_b=int(n_b), coincidences=int(c), window_s=r.window_s, duration_s=duration_s
        )

    def bell_probabilities(self) -> np.ndarray:
        """Return the exact outcome probabilities the Bell counts are drawn from, shape (9, 4), readout included."""
        self._require_exact("bell_probabilities")
        return self._exact_probabilities(self._bell_circuits(BELL_SETTINGS), 2)

    def link_probabilities(self, inputs: tuple = INPUTS_4) -> np.ndarray:
        """Return the exact outcome probabilities of link tomography, shape (len(inputs), 3, 2), readout included."""
        self._require_exact("link_probabilities")
        inputs = check_inputs(inputs)
        return self._exact_probabilities(self._link_circuits(inputs), 1).reshape(len(inputs), len(BASES), 2)

    # -- internals -------------------------------------------------------------------------------------------
    def _check_duration(self, duration_s: float) -> float:
        self._require_open()
        return check_duration(duration_s)

    def _require_open(self) -> None:
        if not self._open:
            raise DeviceError(f"Aer device {self.name!r} build {self.build!r} is not open; call open() first")

    def _require_exact(self, what: str) -> None:
        self._require_open()
        if not self._exact:
            raise DeviceError(f"{what} needs the exact {EXACT_METHOD!r} method; this device samples shots")

    def _next_rng(self, protocol: str) -> np.random.Generator:
        index = self._calls.get(protocol, 0)
        self._calls[protocol] = index + 1
        return stream(self.seed, self.name, self.build, protocol, index)

    def _bell_circuits(self, settings: Sequence[str]) -> list[Any]:
        key = ("bell", tuple(settings), self._exact)
        if key not in self._circuits:
            self._circuits[key] = [bell_circuit(s, measure=not self._exact) for s in settings]
        return self._circuits[key]

    def _link_circuits(self, inputs: Sequence[str]) -> list[Any]:
        key = ("link", tuple(inputs), self._exact)
        if key not in self._circuits:
            self._circuits[key] = [link_circuit(s, b, measure=not self._exact) for s in inputs for b in BASES]
        return self._circuits[key]

    def _simulate(self, circuits: list[Any], shots: np.ndarray, n_qubits: int, rng: np.random.Generator) -> np.ndarray:
        """Counts, shape (len(circuits), 2**n_qubits), with `shots[i]` events for circuit i."""
        if self._exact:
            probs = self._exact_probabilities(circuits, n_qubits)
            return rng.multinomial(shots, probs).astype(np.int64)
        return self._sampled_counts(circuits, shots, n_qubits, rng)

    def _run(self, circuits: list[Any], shots: int, seed: int) -> Any:
        result = self._sim.run(circuits, shots=shots, seed_simulator=seed, max_parallel_experiments=1).result()
        if not result.success:
            raise DeviceError(f"Aer simulation of profile {self.name!r} build {self.build!r} failed: {result.status}")
        return result

    def _exact_probabilities(self, circuits: list[Any], n_qubits: int) -> np.ndarray:
        # Density-matrix noise is exact (no trajectories), so the seed only fixes Aer's own bookkeeping.
        result = self._run(circuits, 1, self.seed)
        probs = np.array([np.asarray(result.data(i)["p"], dtype=float) for i in range(len(circuits))])
        conf_a, conf_b = self._confusion
        if n_qubits == 2:
            # probs[n, b1, b0] little-endian; confusion rows are true bits, columns reported bits.
            p = np.einsum("nij,ik,jl->nlk", probs.reshape(-1, 2, 2), conf_b, conf_a)
            probs = p.reshape(-1, 4)  # now index 2*a + b: A first
        else:
            probs = probs @ conf_b
        probs = np.clip(probs, 0.0, None)
        return probs / probs.sum(axis=1, keepdims=True)

    def _sampled_counts(
        self, circuits: list[Any], shots: np.ndarray, n_qubits: int, rng: np.random.Generator
    ) -> np.ndarray:
        k = 2**n_qubits
        out = np.zeros((len(circuits), k), dtype=np.int64)
        n_max = int(shots.max(initial=0))
        if n_max == 0:
            return out
        result = self._run(circuits, n_max, int(rng.integers(0, 2**31 - 1)))
        for i in range(len(circuits)):
            for bits, c in result.get_counts(i).items():
                out[i, int(bits.replace(" ", ""), 2)] += c
        if n_qubits == 2:
            out = out[:, _A_FIRST]
        # A uniformly random subset of N_i of the n_max iid events is itself N_i iid events.
        return np.stack([rng.multivariate_hypergeometric(row, int(n)) for row, n in zip(out, shots, strict=True)])
