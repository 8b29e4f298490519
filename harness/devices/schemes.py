"""Measuring a profile's tomography scheme on a bench whose analysers are set by waveplate angles.

The profile's `tomography` block (`harness.profiles.tomography`) names the projections; the bench sends each
arm's *nominal* angles (a label's angles from `harness.analysis.schemes`, given angles as they are, a Jones vector's
angles solved for), and the fit adds the calibrated offsets to the same nominal angles. Every setting's counts
and both arms' singles (for the source's intensity in that setting) are handed to `on_record` before the next
setting starts, as the Pauli tomography's are.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy.optimize import minimize

from harness.analysis.schemes import (
    ANALYSER_ANGLES,
    PREPARER_ANGLES,
    Scheme,
    Waveplates,
    analyser_vectors,
    build_scheme,
    prepared_vector,
    process_scheme,
)
from harness.analysis.singles import intensities_from_singles
from harness.errors import NotSupportedError
from harness.profiles import Profile

# The link-tomography input each label prepares, in the words of `prepare_state` (harness.records.INPUTS_6).
PREP_LABELS = {"H": "0", "V": "1", "D": "+", "A": "-", "R": "+i", "L": "-i"}
# Settings summed for the rate measurement of a one-detector bench: together they count every pair.
RATE_SETTINGS = ("HH", "HV", "VH", "VV")


@dataclass(frozen=True)
class SchemeCounts:
    """Counts of a tomography scheme: `counts` has the scheme's counts_shape, `singles` (n_settings, 2) per arm.

    A link (process) tomography has `inputs` (labels of the prepared states) and counts (n_inputs, n_settings,
    n_outcomes); its singles are those of arm B, shape (n_inputs, n_settings). Records of the same settings add.
    """

    scheme: str
    settings: tuple[str, ...]
    counts: np.ndarray
    singles: np.ndarray
    duration_s: float
    inputs: tuple[str, ...] = ()

    def __add__(self, other: SchemeCounts) -> SchemeCounts:
        """Pool two measurements of the same settings: counts, singles and integration times add."""
        if (self.scheme, self.settings, self.inputs) != (other.scheme, other.settings, other.inputs):
            raise ValueError(f"cannot pool scheme {self.scheme!r} counts with other settings or inputs")
        return replace(
            self,
            counts=np.asarray(self.counts) + np.asarray(other.counts),
            singles=np.asarray(self.singles) + np.asarray(other.singles),
            duration_s=self.duration_s + other.duration_s,
        )

    def to_dict(self) -> dict:
        """JSON-ready form for the store."""
        out = {
            "scheme": self.scheme,
            "settings": list(self.settings),
            "counts": np.asarray(self.counts).tolist(),
            "singles": np.asarray(self.singles).tolist(),
            "duration_s": self.duration_s,
        }
        return {**out, "inputs": list(self.inputs)} if self.inputs else out


def analysis_spec(spec: Any) -> Any:
    """Return a profile projection as `harness.analysis.schemes` takes it (a Jones vector becomes complex)."""
    if isinstance(spec, dict) and "jones" in spec:
        return np.array([complex(str(c).replace(" ", "")) for c in spec["jones"]])
    return spec


def _fit_spec(spec: Any, offset: tuple[float, float], angles_of: Any) -> Any:
    """A projection as the fit sees it: a Jones vector the bench sets on plates with an offset is its nominal
    angles, so that the fit adds the offset to them as the plates do (exact Jones vectors assume exact plates)."""
    if isinstance(spec, dict) and "jones" in spec and any(offset):
        plates = angles_of(spec)
        return {"hwp": plates.hwp, "qwp": plates.qwp}
    return analysis_spec(spec)


def state_scheme(profile: Profile) -> Scheme:
    """Return the checked two-arm Scheme of a profile's tomography block (offsets included)."""
    block = profile.tomography
    if block is None:
        return build_scheme("pauli")
    offsets = block.offsets()
    projections = None
    if block.projections is not None:
        projections = [
            [_fit_spec(spec, offsets[arm], analyser_angles) for arm, spec in enumerate(setting)]
            for setting in block.projections
        ]
    return build_scheme(block.scheme, projections, block.detectors, offsets)


def link_scheme(profile: Profile) -> Scheme:
    """Return the checked link-tomography Scheme: the block's inputs and arm B's analysis projections."""
    block = profile.tomography
    if block is None:
        return process_scheme()
    in_off, b_off = block.link.input_offset.pair(), block.offsets()[1]
    inputs = [_fit_spec(s, in_off, preparer_angles) for s in block.link.inputs]
    analysis = [_fit_spec(s, b_off, analyser_angles) for s in block.link_analysis]
    return process_scheme(inputs, analysis, block.detectors, in_off, b_off)


def _solve(target: np.ndarray, vector_of: Any) -> Waveplates:
    """Return angles (degrees) whose vector is `target` up to phase: a coarse grid, then a local polish."""

    def loss(x: np.ndarray) -> float:
        return 1.0 - abs(np.vdot(target, vector_of(*x))) ** 2

    grid = [(h, q) for h in np.arange(-45.0, 46.0, 7.5) for q in np.arange(-45.0, 46.0, 7.5)]
    best = min(grid, key=lambda x: loss(np.array(x)))
    found = minimize(loss, np.array(best), method="Nelder-Mead", options={"xatol": 1e-9, "fatol": 1e-14})
    return Waveplates(float(found.x[0]), float(found.x[1]))


def _nominal(spec: Any, table: dict, vector_of: Any) -> Waveplates:
    """Return a projection's nominal angles: a label's from `table`, given angles, or solved for a Jones vector."""
    if isinstance(spec, str):
        return Waveplates(*table[spec])
    if isinstance(spec, dict) and "jones" not in spec:
        return Waveplates(float(spec["hwp"]), float(spec["qwp"]))
    target = analysis_spec(spec)
    return _solve(target / np.linalg.norm(target), vector_of)


def analyser_angles(spec: Any) -> Waveplates:
    """Return the nominal (hwp, qwp) in degrees that make an analyser transmit `spec`."""
    return _nominal(spec, ANALYSER_ANGLES, lambda h, q: analyser_vectors(h, q)[0])


def preparer_angles(spec: Any) -> Waveplates:
    """Return the nominal (hwp, qwp) in degrees that make the preparer emit `spec`."""
    return _nominal(spec, PREPARER_ANGLES, prepared_vector)


def _deg(x: float) -> str:
    return f"{x:.6g}"


def _set_arm(bench: Any, arm: str, spec: Any) -> None:
    plates = analyser_angles(spec)
    bench.analyzers.write("set_waveplates", arm=arm, hwp_deg=_deg(plates.hwp), qwp_deg=_deg(plates.qwp))


def _singles(bench: Any) -> np.ndarray:
    return np.array([int(bench.counter.query("singles", channel=ch)) for ch in (1, 2)], dtype=np.int64)


def _waveplate_block(bench: Any) -> Any:
    if not uses_waveplates(bench.profile):
        raise NotSupportedError(
            f"profile {bench.name!r} names no waveplate scheme; add a tomography block, e.g. tomography: "
            "{scheme: james16}"
        )
    return bench.profile.tomography


def measure_state(bench: Any, duration_s: float) -> SchemeCounts:
    """Measure every setting of the profile's scheme, each over `duration_s` s; return counts and singles."""
    block = _waveplate_block(bench)
    scheme = state_scheme(bench.profile)
    counts = np.zeros(scheme.counts_shape, dtype=np.int64)
    singles = np.zeros((scheme.n_settings, 2), dtype=np.int64)
    for i, setting in enumerate(block.projections or scheme.labels):
        label = scheme.labels[i]

        def setup(arms: tuple = tuple(setting)) -> None:
            for arm, spec in zip("AB", arms, strict=True):
                _set_arm(bench, arm, spec)

        row = bench._integrate(setup, duration_s, f"setting {label}")
        singles[i] = _singles(bench)
        bench._poll_errors(f"after setting {label}")
        counts[i] = _outcomes(row, scheme.n_outcomes, label)
        payload = {"index": i, "setting": label, "counts": counts[i].tolist(), "singles": singles[i].tolist()}
        bench._emit("scheme_setting", {**payload, "duration_s": duration_s})
    return SchemeCounts(scheme.name, scheme.labels, counts, singles, duration_s)


def _outcomes(row: np.ndarray, n: int, what: str) -> np.ndarray:
    from harness.instruments import InstrumentProtocolError

    if len(row) != n:
        raise InstrumentProtocolError(f"counter: {what}: expected {n} count(s) per setting, got {len(row)}", str(row))
    return row


def _prepare(bench: Any, spec: Any) -> None:
    if isinstance(spec, str) and bench.analyzers.has("prepare_state"):
        bench.analyzers.write("prepare_state", state=PREP_LABELS[spec])
        return
    plates = preparer_angles(spec)
    bench.analyzers.write("prepare_waveplates", hwp_deg=_deg(plates.hwp), qwp_deg=_deg(plates.qwp))


def measure_link(bench: Any, duration_s: float) -> SchemeCounts:
    """Measure the link tomography of the profile's block: inputs x arm B's projections, counts of B's detectors."""
    block = _waveplate_block(bench)
    scheme = link_scheme(bench.profile)
    labelled = all(isinstance(s, str) for s in block.link.inputs)
    if not bench.analyzers.has("prepare_state") or not (labelled or bench.analyzers.has("prepare_waveplates")):
        raise NotSupportedError(
            f"profile {bench.name!r}: link tomography needs 'prepare_state' in bench.analyzers.commands (and "
            "'prepare_waveplates' for inputs given as angles or Jones vectors); this bench cannot prepare them"
        )
    counts = np.zeros(scheme.counts_shape, dtype=np.int64)
    singles = np.zeros(scheme.counts_shape[:2], dtype=np.int64)
    try:
        for i, (state, in_label) in enumerate(zip(block.link.inputs, scheme.input_labels, strict=True)):
            for j, (spec, label) in enumerate(zip(block.link_analysis, scheme.labels, strict=True)):

                def setup(s: Any = state, p: Any = spec) -> None:
                    _prepare(bench, s)
                    _set_arm(bench, "B", p)

                row = bench._integrate(setup, duration_s, f"input {in_label} projection {label}")
                if len(row) == scheme.n_outcomes**2:  # a two-arm counter: B's outcome is the second sign
                    row = row.reshape(scheme.n_outcomes, -1).sum(axis=0)
                singles[i, j] = _singles(bench)[1]
                bench._poll_errors(f"after input {in_label}, projection {label}")
                counts[i, j] = _outcomes(row, scheme.n_outcomes, f"input {in_label} projection {label}")
                payload = {"input": in_label, "setting": label, "counts": counts[i, j].tolist()}
                bench._emit("link_scheme_setting", {**payload, "duration_s": duration_s})
    finally:
        with contextlib.suppress(Exception):
            bench.analyzers.write("prepare_state", state="NONE")
            bench._sync_analyzers()
    return SchemeCounts(scheme.name, scheme.labels, counts, singles, duration_s, scheme.input_labels)


def measure_rate_settings(bench: Any, duration_s: float) -> tuple[int, int, int]:
    """Return (coincidences, singles A, singles B) of pairs seen by one detector per arm behind waveplates.

    H and V on both arms together count every pair: the coincidences of HH, HV, VH and VV, each over
    `duration_s`, are those of one open integration of `duration_s`; each arm's singles appear in two of the
    four settings, so their sum is halved. The source may drift between the settings, and the sum weights them
    unequally (HH and VV carry the coincidences, all four the singles), so each setting is first divided by its
    relative intensity from its singles (`intensities_from_singles`: for a source whose reduced states are close to
    maximally mixed, as a Bell source's are).
    """
    rows = np.zeros((len(RATE_SETTINGS), 3))
    for i, label in enumerate(RATE_SETTINGS):

        def setup(s: str = label) -> None:
            for arm, spec in zip("AB", s, strict=True):
                _set_arm(bench, arm, spec)

        row = bench._integrate(setup, duration_s, f"rate setting {label}")
        rows[i] = [row.sum(), *_singles(bench)]
    bench._poll_errors("after the coincidence measurement")
    if np.all(rows[:, 1:] > 0):
        rows = rows / intensities_from_singles(rows[:, 1:, None])[:, None]
    coinc, singles_a, singles_b = np.rint(rows.sum(axis=0) / [1, 2, 2]).astype(int).tolist()
    return coinc, singles_a, singles_b


def uses_waveplates(profile: Profile) -> bool:
    """True when the profile's tomography scheme is set by waveplate angles (every scheme but pauli)."""
    return profile.tomography is not None and profile.tomography.scheme != "pauli"
