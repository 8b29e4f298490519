"""A driver plugin defined in the tests: a Python source, counter and analysers over the emulators' physics.

Profiles name these classes as `test_drivers_plugin:PhysicsCounter` etc. (with this directory on the path). The
three instruments of one bench share its state (source on or off, analyser bases, prepared input) by the `bench`
option, as the instruments of a real bench share the photons. `fault` injects one fault into one method:
{"method": name, "kind": timeout | exception | oserror | refused | garbage | none-value | negative, "rate": p}
(rate 1 unless given).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.emulators.model import LinkModel, LinkParameters
from harness.instruments.drivers import AnalyzerDriver, CounterDriver, SourceDriver
from harness.physics.link import sample_singles
from harness.profiles import ProfileError, load_profile

# A hung vendor call is simulated by a wait this long (the harness abandons it after its timeout).
HANG_S = 30.0


@dataclass
class BenchState:
    """What the instruments of one emulated bench share; the physics is loaded at the first integration."""

    physics: str
    build: str
    rng: np.random.Generator
    _model: LinkModel | None = None
    source_on: bool = False
    bases: dict[str, str] = field(default_factory=lambda: {"A": "Z", "B": "Z"})
    prepared: str | None = None
    integration_s: float = 1.0
    singles: tuple[int, int] | None = None
    calls: dict[str, int] = field(default_factory=dict)

    @property
    def model(self) -> LinkModel:
        """The link model of profile `physics` at `build` (loaded here, not when an instrument connects, so a
        short connection timeout in a fault test does not race the profile's loading)."""
        if self._model is None:
            self._model = LinkModel(LinkParameters.from_profile(load_profile(self.physics).effective(self.build)))
        return self._model


_BENCHES: dict[str, BenchState] = {}
_LOCK = threading.Lock()
_REAL = object()
_RAISES = {
    "exception": lambda method: RuntimeError(f"vendor API error 0x1F in {method}"),
    "oserror": lambda method: ConnectionResetError(104, "Connection reset by peer"),
    "refused": lambda method: ConnectionRefusedError(111, "Connection refused"),
}


def bench_state(bench: str, physics: str, build: str, seed: int) -> BenchState:
    """The shared state of bench `bench`: the physics of profile `physics` at `build`, counts seeded by `seed`."""
    with _LOCK:
        if bench not in _BENCHES:
            _BENCHES[bench] = BenchState(physics, build, np.random.default_rng(seed))
        return _BENCHES[bench]


class _Faulty:
    """The fault injection every plugin instrument shares."""

    def __init__(self, bench: str, physics: str, build: str, seed: int = 0, fault: dict | None = None) -> None:
        self.fault = dict(fault or {})
        self.state = bench_state(bench, physics, build, seed)
        self._rng = np.random.default_rng(seed + 1)
        self._inject("__init__")

    def _inject(self, method: str) -> Any:
        """Raise or hang per the fault plan; return the value to reply instead of the real one, else _REAL."""
        calls = self.state.calls
        calls[method] = calls.get(method, 0) + 1
        if self.fault.get("method") != method or self._rng.random() >= float(self.fault.get("rate", 1.0)):
            return _REAL
        kind = self.fault["kind"]
        if kind == "timeout":
            threading.Event().wait(HANG_S)
            return _REAL
        if kind in _RAISES:
            raise _RAISES[kind](method)
        return {"garbage": "\x07\x00", "none-value": None, "negative": [5, -1, 3, 2]}[kind]

    def _value(self, method: str, real: Any) -> Any:
        bad = self._inject(method)
        return real if bad is _REAL else bad


class PhysicsSource(_Faulty):
    """The pair source: reports the build its physics is for; enable/disable switch the pairs."""

    def identify(self) -> str:
        return self._value("identify", f"qharness,PLUGIN-SOURCE,0,{self.state.build}")

    def firmware_build(self) -> str:
        return self._value("firmware_build", self.state.build)

    def enable(self) -> None:
        self._inject("enable")
        self.state.source_on = True

    def disable(self) -> None:
        self._inject("disable")
        self.state.source_on = False

    def load_firmware(self, build: str) -> str:
        """Flash `build` (the profile's firmware.flash.command): the bench then serves that build's physics."""
        self._inject("load_firmware")
        try:
            load_profile(self.state.physics).effective(build)
        except ProfileError:
            return f"ERR unknown build {build!r}"
        self.state.build, self.state._model = build, None
        return f"OK {build}"


class PhysicsCounter(_Faulty):
    """The coincidence counter: Poisson counts of the link model for the current bases (no sleeping)."""

    def set_integration(self, seconds: float) -> None:
        self._inject("set_integration")
        assert isinstance(seconds, float)
        self.state.integration_s, self.state.singles = seconds, None

    def coincidences(self) -> np.ndarray:
        s, T = self.state, self.state.integration_s
        r = s.model.link_rates(s.source_on)
        if s.prepared is None:
            p = s.model.bell_probabilities(s.bases["A"], s.bases["B"], s.source_on)
        else:
            pb = s.model.prep_probabilities(s.prepared, s.bases["B"], s.source_on)
            p = np.array([pb[0], pb[1], pb[0], pb[1]]) / 2
        counts = s.rng.poisson(r.coincidence_hz * T * p)
        s.singles = sample_singles(r, int(counts.sum()), T, s.rng)
        return self._value("coincidences", counts)  # a numpy array, as a time tagger's API returns

    def singles(self, channel: int) -> int:
        assert isinstance(channel, int)
        if self.state.singles is None:
            self.coincidences()
        return self._value("singles", int(self.state.singles[channel - 1]))  # type: ignore[index]

    def close(self) -> None:
        self.state.calls["close"] = self.state.calls.get("close", 0) + 1


class PhysicsAnalyzers(_Faulty):
    """Both polarisation analysers, and the input-state preparation of link tomography."""

    def set_basis(self, arm: str, basis: str) -> None:
        self._inject("set_basis")
        if arm not in ("A", "B") or basis not in ("X", "Y", "Z"):
            raise ValueError(f"no basis {basis!r} on arm {arm!r}")
        self.state.bases[arm] = basis

    def prepare_state(self, state: str) -> None:
        self._inject("prepare_state")
        self.state.prepared = None if state == "NONE" else state.lower()


class NoSinglesCounter(_Faulty):
    """A counter that lacks `singles`: a profile naming it as the counter is a usage error."""

    def set_integration(self, seconds: float) -> None:
        pass

    def coincidences(self) -> list[int]:
        return [0, 0, 0, 0]


class WrongSignatureAnalyzers(_Faulty):
    """Analysers whose set_basis takes other arguments than the protocol's."""

    def set_basis(self, channel: int, basis: str) -> None:
        pass


def test_the_plugin_satisfies_the_driver_protocols():
    options = {"bench": "protocols", "physics": "aer-reference", "build": "2.4.0"}
    assert isinstance(PhysicsSource(**options), SourceDriver)
    assert isinstance(PhysicsCounter(**options), CounterDriver)
    assert isinstance(PhysicsAnalyzers(**options), AnalyzerDriver)
    assert not isinstance(NoSinglesCounter(**options), CounterDriver)


def test_the_plugin_counts_follow_the_link_model():
    """Mean counts of the plugin equal the model's rate x time x probabilities (ground truth), within 5 sigma."""
    options = {"bench": "physics-check", "physics": "aer-reference", "build": "2.4.0", "seed": 11}
    source, counter, analyzers = PhysicsSource(**options), PhysicsCounter(**options), PhysicsAnalyzers(**options)
    source.enable()
    analyzers.set_basis(arm="A", basis="X")
    analyzers.set_basis(arm="B", basis="X")
    counter.set_integration(seconds=0.5)
    n = 400
    counts = np.array([counter.coincidences() for _ in range(n)])
    state = counter.state
    expected = state.model.link_rates(True).coincidence_hz * 0.5 * state.model.bell_probabilities("X", "X", True)
    sigma = np.sqrt(expected / n)
    assert np.all(np.abs(counts.mean(axis=0) - expected) < 5 * sigma + 1e-9), (counts.mean(axis=0), expected)
    assert expected[0] > 10 * expected[1]  # the Phi+ pair is correlated in X
