"""Measurement schemes of polarisation tomography: projections from labels, waveplate angles or Jones vectors.

Conventions (the same as the Kwiat group's `quantum-tomography` package, so counts and Jones vectors are
interchangeable with it):

- Jones vectors are written in the (H, V) basis with H = |0> and V = |1>; qubit A is the left kron factor.
- Labels: H = (1, 0), V = (0, 1), D = (1, 1)/√2, A = (1, -1)/√2, R = (1, i)/√2, L = (1, -i)/√2. This R is the
  package's default (`{"R": [1, "1j"]}`) and the +1 eigenvector of Y, so D, R, H are the "+" outcomes of the
  X, Y, Z settings of `harness.records` and the inputs "+", "+i", "0" of link tomography. (James, Kwiat, Munro
  and White, PRA 64 052312, define R = (H - iV)/√2: with their paper's angles, swap R and L.)
- Waveplates: fast-axis angle in degrees from horizontal, W(θ) = Rot(θ) diag(1, e^{iΓ}) Rot(-θ) with Γ = π
  (HWP) or π/2 (QWP); these are the package's `halfWavePlate`/`quarterWavePlate` matrices.
- Analyser: the photon crosses the QWP, then the HWP, then a PBS whose transmitted port passes H. The
  transmitted detector projects onto (HWP·QWP)†|H>, the reflected one onto (HWP·QWP)†|V>.
  Nominal angles (hwp, qwp): H (0, 0), V (45, 0), D (22.5, 45), A (-22.5, -45), R (0, 45), L (0, -45)
  (the QWP sits on the linear polarisation it must pass unchanged).
- Preparer (link-tomography inputs): H light crosses an HWP, then a QWP: the state is QWP·HWP|H>.
  Nominal angles: as the analyser's, but R (0, -45) and L (0, 45).
- Offsets: a calibrated offset (degrees, per arm and plate) is added to every nominal angle; a projection
  given as a Jones vector is taken as exact and ignores offsets.
- Outcomes: with one detector per arm a setting has one count (the transmitted ports); with two it has
  2^n_arms counts ordered A-first, transmitted (+) before reflected (-): ++, +-, -+, --.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from harness.analysis.validation import AnalysisError
from harness.physics.channels import I2, X, Y, Z

_S = 1 / np.sqrt(2)
LABEL_VECTORS: dict[str, np.ndarray] = {
    "H": np.array([1, 0], dtype=complex),
    "V": np.array([0, 1], dtype=complex),
    "D": np.array([_S, _S], dtype=complex),
    "A": np.array([_S, -_S], dtype=complex),
    "R": np.array([_S, 1j * _S], dtype=complex),
    "L": np.array([_S, -1j * _S], dtype=complex),
}
ANALYSER_ANGLES: dict[str, tuple[float, float]] = {
    "H": (0.0, 0.0),
    "V": (45.0, 0.0),
    "D": (22.5, 45.0),
    "A": (-22.5, -45.0),
    "R": (0.0, 45.0),
    "L": (0.0, -45.0),
}
PREPARER_ANGLES: dict[str, tuple[float, float]] = {**ANALYSER_ANGLES, "R": (0.0, -45.0), "L": (0.0, 45.0)}
JAMES16 = ("HH", "HV", "VV", "VH", "RH", "RV", "DV", "DH", "DR", "DD", "RD", "HD", "VD", "VL", "HL", "RL")
_PAULI_PLUS = {"X": "D", "Y": "R", "Z": "H"}
_PAULI = {"I": I2, "X": X, "Y": Y, "Z": Z}


class Waveplates(NamedTuple):
    """Half- and quarter-wave-plate fast-axis angles in degrees from horizontal."""

    hwp: float
    qwp: float


_ZERO = Waveplates(0.0, 0.0)


def _rotation(theta: float) -> np.ndarray:
    c, s = np.cos(theta), np.sin(theta)
    return np.array([[c, -s], [s, c]], dtype=complex)


def waveplate(theta_deg: float, retardance: float) -> np.ndarray:
    """Return the Jones matrix of a waveplate with retardance (rad) and fast axis at theta_deg from horizontal."""
    t = np.deg2rad(float(theta_deg))
    return _rotation(t) @ np.diag([1.0, np.exp(1j * retardance)]) @ _rotation(-t)


def analyser_vectors(hwp_deg: float, qwp_deg: float) -> np.ndarray:
    """Return the (transmitted, reflected) projection Jones vectors (2, 2) of a QWP -> HWP -> PBS analyser."""
    u = waveplate(hwp_deg, np.pi) @ waveplate(qwp_deg, np.pi / 2)
    return u.conj()  # rows U†|H> and U†|V>: row k of conj(U) is column k of U†


def prepared_vector(hwp_deg: float, qwp_deg: float) -> np.ndarray:
    """Return the Jones vector QWP·HWP|H> prepared by an HWP -> QWP preparer."""
    return waveplate(qwp_deg, np.pi / 2) @ waveplate(hwp_deg, np.pi) @ LABEL_VECTORS["H"]


def jones_vector(spec: Any) -> np.ndarray:
    """Return a normalised Jones vector (2,) from a label or a length-2 sequence of numbers."""
    if isinstance(spec, str):
        if spec not in LABEL_VECTORS:
            raise AnalysisError(f"projection label {spec!r} unknown; use one of {', '.join(LABEL_VECTORS)}")
        return LABEL_VECTORS[spec].copy()
    try:
        v = np.asarray(spec, dtype=complex).reshape(-1)
    except (TypeError, ValueError):
        raise AnalysisError(
            f"projection {spec!r} is neither a label, Waveplates(hwp, qwp) nor a Jones vector"
        ) from None
    norm = np.linalg.norm(v) if v.shape == (2,) else 0.0
    if not np.isfinite(norm) or norm == 0:
        raise AnalysisError(f"Jones vector {spec!r} must be 2 finite numbers, not both zero")
    return v / norm


def _as_waveplates(spec: Any) -> Waveplates | None:
    if isinstance(spec, Waveplates):
        return spec
    if isinstance(spec, Mapping):
        if set(spec) != {"hwp", "qwp"}:
            raise AnalysisError(f"waveplate projection {dict(spec)!r} needs exactly the keys 'hwp' and 'qwp' (degrees)")
        return Waveplates(float(spec["hwp"]), float(spec["qwp"]))
    return None


def _orthogonal(v: np.ndarray) -> np.ndarray:
    return np.array([-np.conj(v[1]), np.conj(v[0])])


def analyser_pair(spec: Any, offset: Waveplates = _ZERO) -> np.ndarray:
    """Return (transmitted, reflected) Jones vectors (2, 2) of one arm's analyser given a projection spec."""
    plates = _as_waveplates(spec)
    if plates is None and isinstance(spec, str) and offset != _ZERO:
        plates = Waveplates(*ANALYSER_ANGLES[spec]) if spec in ANALYSER_ANGLES else None
    if plates is not None:
        return analyser_vectors(plates.hwp + offset.hwp, plates.qwp + offset.qwp)
    v = jones_vector(spec)
    return np.array([v, _orthogonal(v)])


def input_vector(spec: Any, offset: Waveplates = _ZERO) -> np.ndarray:
    """Return the prepared Jones vector of a link-tomography input given a label, Waveplates or Jones vector."""
    plates = _as_waveplates(spec)
    if plates is None and isinstance(spec, str) and offset != _ZERO:
        plates = Waveplates(*PREPARER_ANGLES[spec]) if spec in PREPARER_ANGLES else None
    if plates is not None:
        return prepared_vector(plates.hwp + offset.hwp, plates.qwp + offset.qwp)
    return jones_vector(spec)


def _projector(v: np.ndarray) -> np.ndarray:
    return np.outer(v, v.conj())


@dataclass(frozen=True, eq=False)
class Scheme:
    """Analyser settings of a tomography: per setting and arm, the (transmitted, reflected) Jones vectors.

    `vectors` has shape (n_settings, n_arms, 2, 2); `inputs` (n_inputs, 2) holds the prepared Jones vectors of
    a link (process) tomography, whose counts have shape (n_inputs, n_settings, n_outcomes).
    """

    name: str
    labels: tuple[str, ...]
    vectors: np.ndarray = field(repr=False)
    detectors_per_arm: int
    inputs: np.ndarray | None = field(default=None, repr=False)
    input_labels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.detectors_per_arm not in (1, 2):
            raise AnalysisError(f"detectors_per_arm must be 1 or 2, got {self.detectors_per_arm!r}")

    @property
    def n_settings(self) -> int:
        """Number of analyser settings."""
        return int(self.vectors.shape[0])

    @property
    def n_arms(self) -> int:
        """Number of analysed arms (2 for pair tomography, 1 for link tomography)."""
        return int(self.vectors.shape[1])

    @property
    def n_outcomes(self) -> int:
        """Counts per setting: 1 with one detector per arm, 2^n_arms with two."""
        return self.detectors_per_arm**self.n_arms

    @property
    def is_process(self) -> bool:
        """True for a link (process) tomography scheme."""
        return self.inputs is not None

    @property
    def counts_shape(self) -> tuple[int, ...]:
        """Shape of one data set's counts."""
        lead = (len(self.inputs),) if self.inputs is not None else ()
        return (*lead, self.n_settings, self.n_outcomes)

    def check_counts(self, counts: object) -> np.ndarray:
        """Return counts (..., *counts_shape) as floats, or raise AnalysisError (expected counts may be fractional)."""
        try:
            arr = np.asarray(counts, dtype=float)
        except (TypeError, ValueError):
            raise AnalysisError("counts: not a numeric array") from None
        k = len(self.counts_shape)
        if arr.ndim < k or arr.shape[arr.ndim - k :] != self.counts_shape:
            want = ", ".join(map(str, self.counts_shape))
            raise AnalysisError(f"counts: wrong shape {arr.shape}, expected (..., {want}) for scheme {self.name!r}")
        if not np.all(np.isfinite(arr)) or np.any(arr < 0):
            raise AnalysisError("counts: must be finite and >= 0")
        if np.any(arr.sum(axis=tuple(range(arr.ndim - k, arr.ndim))) <= 0):
            raise AnalysisError("counts: a data set has no counts at all")
        return arr

    def outcome_efficiencies(self, efficiencies: object = None) -> np.ndarray:
        """Return (n_outcomes,) products of per-detector efficiencies given as (n_arms, detectors_per_arm)."""
        eta = np.ones((self.n_arms, self.detectors_per_arm))
        if efficiencies is not None:
            eta = np.asarray(efficiencies, dtype=float)
            if eta.shape != (self.n_arms, self.detectors_per_arm) or not np.all(eta > 0):
                raise AnalysisError(
                    f"efficiencies: need positive values of shape (n_arms, detectors_per_arm) = "
                    f"{(self.n_arms, self.detectors_per_arm)}, got {np.shape(efficiencies)}"
                )
        out = np.ones(1)
        for arm in range(self.n_arms):
            out = np.multiply.outer(out, eta[arm]).reshape(-1)
        return out

    def projectors(self) -> np.ndarray:
        """Return the measured projectors (n_settings, n_outcomes, 2^n_arms, 2^n_arms), qubit A first."""
        ports = list(itertools.product(range(self.detectors_per_arm), repeat=self.n_arms))
        out = np.empty((self.n_settings, len(ports), 2**self.n_arms, 2**self.n_arms), dtype=complex)
        for s in range(self.n_settings):
            for o, port in enumerate(ports):
                op = np.eye(1, dtype=complex)
                for arm, p in enumerate(port):
                    op = np.kron(op, _projector(self.vectors[s, arm, p]))
                out[s, o] = op
        return out

    def operators(self) -> np.ndarray:
        """Return the operators whose traces with rho (or the Choi matrix) give the outcome probabilities.

        State schemes: the projectors (n_settings, n_outcomes, d, d). Process schemes: rho_in^T ⊗ projector,
        shape (n_inputs, n_settings, n_outcomes, 4, 4), for the Choi matrix J (input first, trace 2).
        """
        proj = self.projectors()
        if self.inputs is None:
            return proj
        rho_t = np.array([_projector(v).T for v in self.inputs])
        return np.einsum("iab,socd->isoacbd", rho_t, proj).reshape(len(rho_t), *proj.shape[:2], 4, 4)


def _pauli_names(n: int) -> list[str]:
    return ["".join(p) for p in itertools.product("IXYZ", repeat=n)]


def _pauli_ops(n: int) -> np.ndarray:
    ops = []
    for name in _pauli_names(n):
        op = np.eye(1, dtype=complex)
        for ch in name:
            op = np.kron(op, _PAULI[ch])
        ops.append(op)
    return np.array(ops)


def check_complete(scheme: Scheme) -> None:
    """Raise AnalysisError naming the undetermined Pauli components unless the scheme is informationally complete.

    States: the measured operators must span all Hermitian matrices. Processes: with the trace-preserving
    constraint imposed by the fit, the operators together with σ ⊗ I (σ = X, Y, Z on the input) must span them.
    """
    ops = scheme.operators()
    d = ops.shape[-1]
    n_qubits = int(np.log2(d))
    paulis = _pauli_ops(n_qubits)
    rows = np.real(np.einsum("...ab,kba->...k", ops, paulis)).reshape(-1, d * d)
    if scheme.is_process:
        rows = np.vstack([rows, np.eye(d * d)[[4, 8, 12]]])  # XI, YI, ZI: fixed by trace preservation
    _, sv, vt = np.linalg.svd(rows)
    rank = int(np.sum(sv > 1e-9 * sv[0]))
    if rank == d * d:
        return
    names = _pauli_names(n_qubits)
    missing = []
    for vec in vt[rank:]:
        top = np.argsort(-np.abs(vec))[:2]
        missing.append("+".join(names[k] for k in top if abs(vec[k]) > 0.3))
    what = "Choi matrix (input ⊗ output)" if scheme.is_process else "state"
    raise AnalysisError(
        f"scheme {scheme.name!r} is not informationally complete: its {len(scheme.labels)} settings determine "
        f"{rank} of the {d * d} Pauli components of the {what}; undetermined: {', '.join(missing)}. "
        "Add settings that measure them (e.g. the missing bases, or the orthogonal projections)"
    )


def _offsets(offsets: Sequence[Any] | None, n_arms: int) -> list[Waveplates]:
    if offsets is None:
        return [_ZERO] * n_arms
    out = [_as_waveplates(o) or Waveplates(*o) for o in offsets]
    if len(out) != n_arms:
        raise AnalysisError(f"offsets: give one (hwp, qwp) pair in degrees per arm ({n_arms}), got {len(out)}")
    return out


def _setting_label(setting: Any) -> str:
    if isinstance(setting, str):
        return setting
    parts = []
    for spec in setting:
        plates = _as_waveplates(spec)
        if isinstance(spec, str):
            parts.append(spec)
        elif plates is not None:
            parts.append(f"(h{plates.hwp:g},q{plates.qwp:g})")
        else:
            parts.append("J" + np.array2string(jones_vector(spec), precision=3, separator=","))
    return "".join(parts) if all(len(p) == 1 for p in parts) else "|".join(parts)


def custom_scheme(
    projections: Sequence[Any],
    detectors_per_arm: int = 1,
    offsets: Sequence[Any] | None = None,
    name: str = "custom",
    n_arms: int = 2,
) -> Scheme:
    """Return a Scheme from settings, each a string of labels ("HD", A first) or per-arm specs.

    A per-arm spec is a label, `Waveplates(hwp, qwp)` (or {"hwp": .., "qwp": ..}) in degrees, or a Jones vector.
    `offsets` holds one calibrated (hwp, qwp) offset pair in degrees per arm.
    """
    offs = _offsets(offsets, n_arms)
    vectors = []
    for setting in projections:
        specs = list(setting)
        if len(specs) != n_arms:
            raise AnalysisError(f"setting {setting!r}: needs one projection per arm ({n_arms})")
        vectors.append([analyser_pair(spec, offs[arm]) for arm, spec in enumerate(specs)])
    if not vectors:
        raise AnalysisError("custom scheme: give at least one setting")
    labels = tuple(_setting_label(s) for s in projections)
    return Scheme(name, labels, np.array(vectors), detectors_per_arm)


def pauli_scheme(n_arms: int = 2, offsets: Sequence[Any] | None = None) -> Scheme:
    """Return the 3^n Pauli settings (XX..ZZ, A first) with two detectors per arm, as `harness.records` orders them."""
    settings = ["".join(s) for s in itertools.product("XYZ", repeat=n_arms)]
    projections = ["".join(_PAULI_PLUS[b] for b in s) for s in settings]
    scheme = custom_scheme(projections, 2, offsets, "pauli", n_arms)
    return Scheme("pauli", tuple(settings), scheme.vectors, 2)


def james16_scheme(offsets: Sequence[Any] | None = None) -> Scheme:
    """Return the 16 projections of James, Kwiat, Munro and White (2001) with one detector per arm."""
    return custom_scheme(JAMES16, 1, offsets, "james16")


def projections36_scheme(offsets: Sequence[Any] | None = None) -> Scheme:
    """Return all 36 products of H, V, D, A, R, L (A first) with one detector per arm."""
    return custom_scheme(["".join(p) for p in itertools.product("HVDARL", repeat=2)], 1, offsets, "projections36")


def build_scheme(
    kind: str,
    projections: Sequence[Any] | None = None,
    detectors_per_arm: int | None = None,
    offsets: Sequence[Any] | None = None,
) -> Scheme:
    """Return a checked two-arm Scheme by kind: 'pauli', 'james16', 'projections36' or 'custom' (with projections)."""
    fixed = {"pauli": 2, "james16": 1, "projections36": 1}
    if kind in fixed:
        if projections is not None or detectors_per_arm not in (None, fixed[kind]):
            raise AnalysisError(f"scheme {kind!r} fixes its projections and uses {fixed[kind]} detector(s) per arm")
        builders = {"pauli": pauli_scheme, "james16": james16_scheme, "projections36": projections36_scheme}
        scheme = builders[kind](offsets=offsets)
    elif kind == "custom":
        if projections is None:
            raise AnalysisError("scheme 'custom' needs `projections`: one string of labels or per-arm specs each")
        scheme = custom_scheme(projections, detectors_per_arm or 1, offsets)
    else:
        raise AnalysisError(f"scheme kind {kind!r} unknown; use pauli, james16, projections36 or custom")
    check_complete(scheme)
    return scheme


def process_scheme(
    inputs: Sequence[Any] = ("H", "V", "D", "R"),
    analysis: Sequence[Any] = ("D", "R", "H"),
    detectors_per_arm: int = 2,
    input_offset: Any = None,
    analysis_offset: Any = None,
) -> Scheme:
    """Return a checked link-tomography Scheme: prepared inputs x one-arm analyser projections.

    Defaults are the inputs 0, 1, +, +i and the X, Y, Z bases of `harness.records` with two detectors.
    """
    in_off = _offsets(None if input_offset is None else [input_offset], 1)[0]
    analyser = custom_scheme(
        [[a] for a in analysis], detectors_per_arm, analysis_offset and [analysis_offset], n_arms=1
    )
    vecs = np.array([input_vector(s, in_off) for s in inputs])
    in_labels = tuple(_setting_label([s]) for s in inputs)
    scheme = Scheme("process", analyser.labels, analyser.vectors, detectors_per_arm, vecs, in_labels)
    check_complete(scheme)
    return scheme
