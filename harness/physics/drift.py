"""Drift of a link's physics: offsets that change between sessions and Ornstein-Uhlenbeck wander within one.

A profile's `drift` block (harness.profiles.schema.Drift) describes both; the stand-ins (the Aer device and the
emulators) apply them, and a real bench has them anyway.

Between sessions (a session is one run of one build): zero-mean Gaussian offsets drawn once per session and fixed
for the device's life.

- visibility: additive, V -> clip(V + dV, 0, 1);
- pair rate and each detector efficiency: multiplicative, x -> x * max(0, 1 + d), efficiencies clipped to 1;
- basis angle theta (polarisation degrees), a misalignment of arm B's analyser (or a fibre rotation just before
  it): arm B measures in a basis rotated by 2 theta about the Bloch Y axis, the circular-polarisation axis when
  Z = H/V and X = D/A, as a wave plate or polariser turned by theta does. The rotation acts at the analyser, after
  the link and the accidentals; for |Phi+> the fidelity becomes cos^2 theta (Malus's law).

Within a session: the visibility offset and the relative pair-rate offset wander as stationary Ornstein-Uhlenbeck
processes with the stated SDs and one correlation time tau. Time is the device's integration clock, the sum of
the integration durations so far (not the wall clock), so a run is reproducible whatever the machine's speed.
Each integration sees the wander at its midpoint, which is exact while an integration is short next to tau.
Sampling is the exact OU transition x(t + dt) = x(t) e^(-dt/tau) + sqrt(1 - e^(-2 dt/tau)) xi, started from the
stationary law at t = 0.

Randomness: the offsets come from stream(seed, profile, build, "drift-between", session) and the wander from
stream(seed, profile, build, "drift-within", session) (harness.streams), so the same seed and session give the
same drift, session k + 1 differs from session k, and no count stream is touched. The draws are standard normal
and scaled by the spec's SDs only when used, so a changed spec (another build's override) keeps the same draws.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from harness.streams import stream

BETWEEN_STREAM = "drift-between"
WITHIN_STREAM = "drift-within"


@dataclass(frozen=True)
class SessionOffsets:
    """The between-session offsets of one session: additive visibility, relative rate and efficiencies, angle."""

    visibility: float = 0.0
    pair_rate_rel: float = 0.0
    efficiency_a_rel: float = 0.0
    efficiency_b_rel: float = 0.0
    basis_angle_deg: float = 0.0

    def to_dict(self) -> dict[str, float]:
        """JSON-ready copy."""
        return {key: float(value) for key, value in asdict(self).items()}


@dataclass(frozen=True)
class Wander:
    """Within-session wander at the midpoint of consecutive integrations (one entry per integration)."""

    start_s: np.ndarray
    duration_s: np.ndarray
    visibility: np.ndarray
    pair_rate_rel: np.ndarray

    @classmethod
    def none(cls, durations_s: Sequence[float], start_s: float = 0.0) -> Wander:
        """No wander over consecutive integrations of `durations_s` starting at `start_s`."""
        d = np.asarray(durations_s, dtype=float).reshape(-1)
        zero = np.zeros(d.size)
        return cls(start_s + np.cumsum(d) - d, d, zero, zero.copy())

    def to_dict(self) -> dict[str, list[float]]:
        """JSON-ready copy (lists of floats)."""
        return {key: np.asarray(value, dtype=float).tolist() for key, value in asdict(self).items()}


@dataclass(frozen=True)
class DriftedSource:
    """Source and detector values of consecutive integrations under drift (arrays have one entry per integration)."""

    visibility: np.ndarray
    pair_rate_hz: np.ndarray
    efficiency_a: float
    efficiency_b: float
    basis_angle_deg: float


def ou_transition(x: np.ndarray, dt_s: float, tau_s: float, xi: np.ndarray) -> np.ndarray:
    """Exact step of a standardised OU process (stationary SD 1) over `dt_s`, driven by standard normals `xi`."""
    rho = np.exp(-dt_s / tau_s)
    return x * rho + np.sqrt(1.0 - rho * rho) * xi


def drifted_source(
    visibility: float,
    pair_rate_hz: float,
    efficiency_a: float,
    efficiency_b: float,
    offsets: SessionOffsets,
    wander: Wander,
) -> DriftedSource:
    """Apply session offsets and wander to a source's visibility and rate and to the detector efficiencies."""
    vis = np.clip(visibility + offsets.visibility + wander.visibility, 0.0, 1.0)
    rate_factor = max(0.0, 1.0 + offsets.pair_rate_rel) * np.maximum(0.0, 1.0 + wander.pair_rate_rel)
    return DriftedSource(
        visibility=vis,
        pair_rate_hz=pair_rate_hz * rate_factor,
        efficiency_a=float(np.clip(efficiency_a * (1.0 + offsets.efficiency_a_rel), 0.0, 1.0)),
        efficiency_b=float(np.clip(efficiency_b * (1.0 + offsets.efficiency_b_rel), 0.0, 1.0)),
        basis_angle_deg=offsets.basis_angle_deg,
    )


def is_active(spec: Any) -> bool:
    """Whether a profile's drift block (or None) moves anything: some SD above zero."""
    if spec is None:
        return False
    between, within = spec.between_sessions, spec.within_session
    sds = (*between.model_dump().values(), within.visibility_sd, within.pair_rate_rel_sd)
    return any(sd > 0 for sd in sds)


class DriftState:
    """The drift of one device session: fixed offsets and a wander that advances with the integration clock."""

    def __init__(self, spec: Any, seed: int, profile_name: str, build: str, session: int = 0) -> None:
        self.spec = spec
        self.session = int(session)
        self.build = str(build)
        self._z = stream(seed, profile_name, build, BETWEEN_STREAM, self.session).standard_normal(5)
        self._rng = stream(seed, profile_name, build, WITHIN_STREAM, self.session)
        self._x = self._rng.standard_normal(2)  # standardised wander of (visibility, pair rate) at the last sample
        self._t_last = 0.0
        self.clock_s = 0.0

    @property
    def active(self) -> bool:
        """Whether the current spec moves anything."""
        return is_active(self.spec)

    @property
    def offsets(self) -> SessionOffsets:
        """This session's between-session offsets under the current spec."""
        if self.spec is None:
            return SessionOffsets()
        b = self.spec.between_sessions
        sds = (b.visibility_sd, b.pair_rate_rel_sd, b.efficiency_rel_sd, b.efficiency_rel_sd, b.basis_angle_sd_deg)
        return SessionOffsets(*(float(sd * z) for sd, z in zip(sds, self._z, strict=True)))

    def advance(self, durations_s: Sequence[float]) -> Wander:
        """Wander at the midpoints of consecutive integrations of `durations_s` from the clock; moves the clock on."""
        d = np.asarray(durations_s, dtype=float).reshape(-1)
        starts = self.clock_s + np.cumsum(d) - d
        mids = starts + d / 2
        xi = self._rng.standard_normal((d.size, 2))  # drawn whatever the spec, so every SD keeps its own path
        tau = self.spec.within_session.correlation_time_s if self.spec is not None else 1.0
        path = np.empty((d.size, 2))
        # Integrations, not shots: a handful per call, each step depending on the last.
        for k, t in enumerate(mids):
            self._x = ou_transition(self._x, t - self._t_last, tau, xi[k])
            self._t_last = t
            path[k] = self._x
        self.clock_s += float(d.sum())
        within = self.spec.within_session if self.spec is not None else None
        sd_v, sd_r = (within.visibility_sd, within.pair_rate_rel_sd) if within is not None else (0.0, 0.0)
        return Wander(starts, d, sd_v * path[:, 0], sd_r * path[:, 1])
