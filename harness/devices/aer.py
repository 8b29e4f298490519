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
builds with identical physics give independent samples, and repeated calls give fresh samples. Session k > 0
(``session=k``, a repeat of the run on another occasion) keys the protocol as ``"<protocol>@session<k>"``, so its
shot noise is fresh too; session 0 keeps the plain key.

Drift. A profile's ``drift`` block (harness.physics.drift) moves the source and detectors: offsets fixed for the
device's session and an Ornstein-Uhlenbeck wander over its integration clock. Each setting is then drawn at its
own integration's physics, N_i ~ Poisson(C_i T) and Multinomial(N_i, p_i), with p_i mixed exactly from a few Aer
runs per session (harness.devices.aer_drift). Drift needs the exact method and the built-in noise model. Without a
drift block (or with every SD zero) the device runs exactly as it would without one, draw for draw.
`drift_offsets()` returns what was applied, for the run's provenance.

Flashing. ``flash(build, profile)`` serves another build's effective profile on the same device, as a bench that
loads new firmware: the counts then come from that build's physics and streams, while the drift (offsets and
clock) carries on, as a bench's would.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from harness.devices.aer_circuits import (
    A_FIRST,
    ACCIDENTAL_LABEL,
    EXACT_METHOD,
    LINK_ACCIDENTAL_LABEL,
    LINK_LABEL,
    QUBIT_A,
    QUBIT_B,
    SAMPLING_METHODS,
    SOURCE_LABEL,
    SUPPORTED_METHODS,
    AerConfigError,
    bell_circuit,
    build_noise_model,
    confusions_from_noise_model,
    exact_probabilities,
    link_circuit,
    run_circuits,
    user_noise_model,
)
from harness.devices.aer_drift import AerDrift, first_rates
from harness.devices.base import DeviceContext, check_duration, check_inputs, require_profile
from harness.errors import DeviceError
from harness.physics.drift import DriftedSource
from harness.physics.link import LinkRates, profile_rates, sample_singles
from harness.profiles import AerOptions, Profile
from harness.records import BASES, BELL_SETTINGS, INPUTS_4, CoincidenceCounts, Identity, ProcessCounts, TomographyCounts
from harness.streams import stream

__all__ = [
    "ACCIDENTAL_LABEL",
    "EXACT_METHOD",
    "LINK_ACCIDENTAL_LABEL",
    "LINK_LABEL",
    "QUBIT_A",
    "QUBIT_B",
    "SAMPLING_METHODS",
    "SOURCE_LABEL",
    "SUPPORTED_METHODS",
    "AerConfigError",
    "AerDevice",
    "bell_circuit",
    "build_noise_model",
    "link_circuit",
]


class AerDevice(DeviceContext):
    """A simulated quantum link whose counts come from Qiskit Aer with the profile's noise model."""

    def __init__(self, profile: Profile, build: str, seed: int, *, session: int = 0) -> None:
        self.seed = int(seed)
        self.session = int(session)
        if self.session < 0:
            raise ValueError(f"session must be a non-negative integer, got {session!r}")
        self._set_profile(profile, build)
        self._calls: dict[tuple[str, str], int] = {}
        self._open = False
        self._sim: Any = None
        self._noise_model: Any = None
        self._confusion: list[np.ndarray] | None = None
        self._exact = True
        self._circuits: dict[tuple, list[Any]] = {}
        self._drift = AerDrift(self.profile, self.build, self.seed, self.session)

    def _set_profile(self, profile: Profile, build: str) -> None:
        self.profile = require_profile(profile, type(self).__name__)
        self.build = str(build)
        self.name = profile.name
        if profile.kind != "aer":
            raise AerConfigError(
                f"profile {self.name!r} is kind {profile.kind!r}; the Aer device needs a kind aer profile"
            )
        self.rates = profile_rates(self.profile)

    @classmethod
    def from_profile(cls, profile: Profile, build: str, *, seed: int, session: int = 0, **_: Any) -> AerDevice:
        """The Aer stand-in of an effective profile (the device registry's constructor)."""
        return cls(profile, build=build, seed=seed, session=session)

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
        why_not = self._drift.check(method, spec) if self._drift.active else None
        if why_not is not None:
            raise AerConfigError(f"profile {self.name!r} build {self.build!r}: {why_not}")
        nm = user_noise_model(spec, self.profile, self.build) if spec else build_noise_model(self.profile)
        self._noise_model = nm
        self._confusion = confusions_from_noise_model(nm)
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

    def flash(self, build: str, profile: Profile) -> None:
        """Serve `build` from now on, with `profile` its effective profile (same name); drift carries on."""
        profile = require_profile(profile, type(self).__name__)
        if profile.name != self.name or profile.firmware.build != str(build):
            raise ValueError(
                f"flash({build!r}) needs the effective profile of that build of {self.name!r}; got "
                f"{profile.name!r} build {profile.firmware.build!r} (pass loaded.effective({build!r}))"
            )
        was_open = self._open
        self.close()
        self._set_profile(profile, build)
        self._circuits.clear()
        self._drift.use(self.profile, self.build)
        if was_open:
            self.open()

    @property
    def noise_model(self) -> Any:
        """The Aer NoiseModel in use (available after `open()`)."""
        return self._noise_model

    def drift_offsets(self) -> dict:
        """The drift applied so far (session, spec, offsets, each integration's wander); {} without drift."""
        if not self._drift.active and not self._drift.log:
            return {}
        return self._drift.summary()

    # -- measurements ----------------------------------------------------------------------------------------
    def bell_tomography(self, duration_s: float) -> TomographyCounts:
        """Counts of the 9 Pauli settings (BELL_SETTINGS order, outcomes ++,+-,-+,--), each over `duration_s`."""
        duration_s = self._check_duration(duration_s)
        circuits = self._bell_circuits(BELL_SETTINGS)
        counts = self._counts("bell_tomography", duration_s, circuits, 2, self._drift.bell)
        return TomographyCounts(settings=BELL_SETTINGS, counts=counts, duration_s=duration_s)

    def link_tomography(self, duration_s: float, inputs: tuple = INPUTS_4) -> ProcessCounts:
        """Counts of link process tomography: inputs x (X, Y, Z) x (+, -), each setting over `duration_s`."""
        duration_s = self._check_duration(duration_s)
        inputs = check_inputs(inputs)
        circuits = self._link_circuits(inputs)
        counts = self._counts("link_tomography", duration_s, circuits, 1, lambda _, r: self._drift.link(inputs, r))
        return ProcessCounts(
            inputs=inputs, bases=BASES, counts=counts.reshape(len(inputs), len(BASES), 2), duration_s=duration_s
        )

    def coincidences(self, duration_s: float) -> CoincidenceCounts:
        """Coincidences C (true plus accidental, Poisson) and the singles N_A, N_B that contain them."""
        duration_s = self._check_duration(duration_s)
        rng, call = self._next_rng("coincidences")
        r = self.rates
        if self._drift.active:
            r = first_rates(self._drift.integrations([duration_s], "coincidences", call)[1])
        c = int(rng.poisson(r.coincidence_hz * duration_s))
        n_a, n_b = sample_singles(r, c, duration_s, rng)
        return CoincidenceCounts(
            singles_a=int(n_a), singles_b=int(n_b), coincidences=int(c), window_s=r.window_s, duration_s=duration_s
        )

    def bell_probabilities(self) -> np.ndarray:
        """Return the exact outcome probabilities the Bell counts are drawn from, shape (9, 4), readout included.

        Under drift: at this session's offsets without the wander (the clock does not move).
        """
        self._require_exact("bell_probabilities")
        if self._drift.active:
            src, r = self._drift.at_offsets(len(BELL_SETTINGS))
            return self._drift.bell(src, r)
        return self._exact_probabilities(self._bell_circuits(BELL_SETTINGS), 2)

    def link_probabilities(self, inputs: tuple = INPUTS_4) -> np.ndarray:
        """Return the exact outcome probabilities of link tomography, shape (len(inputs), 3, 2), readout included.

        Under drift: at this session's offsets without the wander (the clock does not move).
        """
        self._require_exact("link_probabilities")
        inputs = check_inputs(inputs)
        if self._drift.active:
            _, r = self._drift.at_offsets(len(inputs) * len(BASES))
            return self._drift.link(inputs, r).reshape(len(inputs), len(BASES), 2)
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

    def _next_rng(self, protocol: str) -> tuple[np.random.Generator, int]:
        """The count stream of the next call of `protocol` on the build in use, and that call's index."""
        index = self._calls.get((self.build, protocol), 0)
        self._calls[(self.build, protocol)] = index + 1
        key = protocol if self.session == 0 else f"{protocol}@session{self.session}"
        return stream(self.seed, self.name, self.build, key, index), index

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

    def _counts(
        self,
        protocol: str,
        duration_s: float,
        circuits: list[Any],
        n_qubits: int,
        drifted: Callable[[DriftedSource, LinkRates], np.ndarray],
    ) -> np.ndarray:
        """Counts of consecutive settings over `duration_s` each: N_i ~ Poisson(C_i T), outcomes ~ Multinomial.

        Under drift each setting has its own integration's rate and probabilities (`drifted` gives them).
        """
        rng, call = self._next_rng(protocol)
        n = len(circuits)
        if self._drift.active:
            src, r = self._drift.integrations([duration_s] * n, protocol, call)
            shots = rng.poisson(r.coincidence_hz * duration_s).astype(np.int64)
            return rng.multinomial(shots, drifted(src, r)).astype(np.int64)
        shots = rng.poisson(self.rates.coincidence_hz * duration_s, size=n).astype(np.int64)
        return self._simulate(circuits, shots, n_qubits, rng)

    def _simulate(self, circuits: list[Any], shots: np.ndarray, n_qubits: int, rng: np.random.Generator) -> np.ndarray:
        """Counts, shape (len(circuits), 2**n_qubits), with `shots[i]` events for circuit i."""
        if self._exact:
            probs = self._exact_probabilities(circuits, n_qubits)
            return rng.multinomial(shots, probs).astype(np.int64)
        return self._sampled_counts(circuits, shots, n_qubits, rng)

    def _what(self) -> str:
        return f"profile {self.name!r} build {self.build!r}"

    def _exact_probabilities(self, circuits: list[Any], n_qubits: int) -> np.ndarray:
        return exact_probabilities(self._sim, circuits, n_qubits, self._confusion, self.seed, self._what())

    def _sampled_counts(
        self, circuits: list[Any], shots: np.ndarray, n_qubits: int, rng: np.random.Generator
    ) -> np.ndarray:
        k = 2**n_qubits
        out = np.zeros((len(circuits), k), dtype=np.int64)
        n_max = int(shots.max(initial=0))
        if n_max == 0:
            return out
        result = run_circuits(self._sim, circuits, n_max, int(rng.integers(0, 2**31 - 1)), self._what())
        for i in range(len(circuits)):
            for bits, c in result.get_counts(i).items():
                out[i, int(bits.replace(" ", ""), 2)] += c
        if n_qubits == 2:
            out = out[:, A_FIRST]
        # A uniformly random subset of N_i of the n_max iid events is itself N_i iid events.
        return np.stack([rng.multivariate_hypergeometric(row, int(n)) for row, n in zip(out, shots, strict=True)])
