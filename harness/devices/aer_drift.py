"""The Aer stand-in under drift: exact outcome probabilities mixed from a few exact Aer runs per session.

The source error is depolarising, rho -> V rho + (1 - V) I/4, and everything after it (the link, the accidental
mixing, the turn of arm B's analyser, the readout) is linear, so the outcome probabilities of a setting are affine
in the visibility V and in the accidental fraction f:

    p(V, f) = (1 - f) [V p(1, 0) + (1 - V) p(0, 0)] + f u,

with u the outcomes of the maximally mixed pair read through the analysers. Two exact Aer runs (V = 1 and V = 0,
f = 0, with this session's misalignment) serve every Bell integration of a session, whatever its drifted V and f;
link tomography needs one more (f = 0), mixed with u the same way. A run is made once per session and input set
(milliseconds), not per integration.

The drift itself (offsets, wander, streams) is harness.physics.drift; this module only maps it onto Aer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from harness.devices.aer_circuits import (
    EXACT_METHOD,
    bell_circuit,
    build_noise_model,
    exact_probabilities,
    fold_readout,
    link_circuit,
)
from harness.physics.drift import DriftedSource, DriftState, Wander, drifted_source, is_active
from harness.physics.link import LinkRates, rates
from harness.profiles import Profile
from harness.records import BASES, BELL_SETTINGS


def accidental_fractions(r: LinkRates) -> np.ndarray:
    """The accidental share C_acc / (C_t + C_acc) of rates whose fields are arrays (0 where nothing is detected)."""
    total = np.asarray(r.coincidence_hz, dtype=float)
    acc = np.broadcast_to(np.asarray(r.accidental_hz, dtype=float), total.shape)
    return np.divide(acc, total, out=np.zeros_like(total), where=total > 0)


def drifted_rates(profile: Profile, src: DriftedSource) -> LinkRates:
    """The detection rates (array fields, Hz) of a profile's link with its source and detectors drifted."""
    det = profile.detectors
    return rates(
        src.pair_rate_hz,
        src.efficiency_a,
        src.efficiency_b,
        profile.link.loss_db,
        det.dark_count_hz_a,
        det.dark_count_hz_b,
        det.coincidence_window_s,
    )


def first_rates(r: LinkRates) -> LinkRates:
    """The rates of the first integration of array-valued rates, as plain floats."""
    values = {k: float(np.asarray(v, dtype=float).reshape(-1)[0]) for k, v in vars(r).items()}
    return LinkRates(**values)


class AerDrift:
    """The drift of one Aer device session: the physics of each integration and the exact probabilities under it."""

    def __init__(self, profile: Profile, build: str, seed: int, session: int) -> None:
        self.state = DriftState(profile.drift, seed, profile.name, build, session)
        self.seed = int(seed)
        self.log: list[dict] = []
        self.offsets_by_build: dict[str, dict[str, float]] = {}
        self.use(profile, build)

    @property
    def active(self) -> bool:
        """Whether the profile in use drifts at all (without drift the device keeps its drift-free path)."""
        return self.state.active

    def use(self, profile: Profile, build: str) -> None:
        """Serve `profile` (a flash): same session draws and clock, that build's spec and physics."""
        self.profile, self.build = profile, str(build)
        self.state.spec = profile.drift
        self._components: dict[Any, tuple[np.ndarray, ...]] = {}
        # The built-in model's symmetric analyser flips (row = true bit, column = reported bit).
        self._confusion = [_flips(profile.detectors.readout_error_a), _flips(profile.detectors.readout_error_b)]
        if is_active(profile.drift):
            self.offsets_by_build[self.build] = self.state.offsets.to_dict()

    def check(self, method: str, noise_model_spec: str | None) -> str | None:
        """Why drift cannot run with this Aer configuration (None when it can)."""
        if noise_model_spec is not None:
            return f"drift needs the built-in noise model; remove aer.noise_model {noise_model_spec!r} or the drift"
        if method != EXACT_METHOD:
            return f"drift needs the exact {EXACT_METHOD!r} method; remove aer.method {method!r} or the drift"
        return None

    # -- the physics of integrations --------------------------------------------------------------------------
    def integrations(self, durations_s: Sequence[float], protocol: str, call: int) -> tuple[DriftedSource, LinkRates]:
        """Advance the clock over consecutive integrations; return their drifted source and rates (logged)."""
        wander = self.state.advance(durations_s)
        src = self._source(wander)
        self.log.append({"protocol": protocol, "call": int(call), "build": self.build, **wander.to_dict()})
        return src, drifted_rates(self.profile, src)

    def at_offsets(self, n: int) -> tuple[DriftedSource, LinkRates]:
        """The session's physics at its offsets without wander, for `n` settings (the clock does not move)."""
        src = self._source(Wander.none([0.0] * n))
        return src, drifted_rates(self.profile, src)

    def _source(self, wander: Wander) -> DriftedSource:
        s, d = self.profile.source, self.profile.detectors
        return drifted_source(s.visibility, s.pair_rate_hz, d.efficiency_a, d.efficiency_b, self.state.offsets, wander)

    def bell(self, src: DriftedSource, r: LinkRates) -> np.ndarray:
        """Outcome probabilities (A first) of each Bell setting under its integration's visibility and accidentals."""
        p1, p0, u = self._bell_components()
        v = src.visibility[:, None]
        f = accidental_fractions(r)[:, None]
        return _normalised((1 - f) * (v * p1 + (1 - v) * p0) + f * u)

    def link(self, inputs: tuple[str, ...], r: LinkRates) -> np.ndarray:
        """Outcome probabilities of B for each link-tomography setting (inputs x bases) under its accidentals."""
        p, u = self._link_components(inputs)
        f = accidental_fractions(r)[:, None]
        return _normalised((1 - f) * p + f * u)

    # -- exact components ---------------------------------------------------------------------------------------
    def _simulator(self, visibility: float) -> Any:
        from qiskit_aer import AerSimulator

        nm = build_noise_model(self.profile, visibility=visibility, accidental_fraction=0.0)
        return AerSimulator(method=EXACT_METHOD, noise_model=nm)

    def _exact(self, visibility: float, circuits: list[Any], n_qubits: int) -> np.ndarray:
        what = f"profile {self.profile.name!r} build {self.build!r} (drift components)"
        return exact_probabilities(self._simulator(visibility), circuits, n_qubits, self._confusion, self.seed, what)

    def _bell_components(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if "bell" not in self._components:
            theta = self.state.offsets.basis_angle_deg
            circuits = [bell_circuit(s, measure=False, misalignment_deg=theta) for s in BELL_SETTINGS]
            self._components["bell"] = (
                self._exact(1.0, circuits, 2),
                self._exact(0.0, circuits, 2),
                fold_readout(np.full((1, 4), 0.25), self._confusion, 2),
            )
        return self._components["bell"]

    def _link_components(self, inputs: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        key = ("link", inputs)
        if key not in self._components:
            theta = self.state.offsets.basis_angle_deg
            circuits = [link_circuit(s, b, measure=False, misalignment_deg=theta) for s in inputs for b in BASES]
            uniform = fold_readout(np.full((1, 2), 0.5), self._confusion, 1)
            self._components[key] = (self._exact(1.0, circuits, 1), uniform)
        return self._components[key]

    # -- provenance ---------------------------------------------------------------------------------------------
    def summary(self) -> dict:
        """The drift actually applied: session, spec, offsets (per build served) and every integration's wander."""
        spec = self.state.spec
        return {
            "session": self.state.session,
            "keyed_by_build": self.state.build,
            "spec": spec.model_dump(mode="json") if spec is not None else None,
            "offsets": self.state.offsets.to_dict(),
            "offsets_by_build": dict(self.offsets_by_build),
            "clock_s": self.state.clock_s,
            "integrations": list(self.log),
        }


def _flips(error: float) -> np.ndarray:
    return np.array([[1.0 - error, error], [error, 1.0 - error]])


def _normalised(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 0.0, None)
    return p / p.sum(axis=1, keepdims=True)
