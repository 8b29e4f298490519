"""The profile's `tomography:` block: which projections a bench measures, with how many detectors, fitted how.

A projection of one arm is a label (H, V, D, A, R, L; R = (H + iV)/√2, the conventions of
`harness.analysis.schemes`), waveplate angles `{hwp: deg, qwp: deg}` (fast axes from horizontal), or a Jones vector
`{jones: [c_H, c_V]}` whose components are numbers or complex strings such as "0.7071j". A two-arm setting is a
string of two labels ("HD", arm A first) or a list of two per-arm projections. Only the form is checked here; the
analysis core (`harness.analysis.schemes.build_scheme`) turns the block into Jones vectors and checks that it
determines the state.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from harness.profiles.messages import custom_error, short_repr

LABELS = ("H", "V", "D", "A", "R", "L")
SCHEMES = ("pauli", "james16", "projections36", "custom")
# Detectors per arm each fixed scheme is measured with (custom: the block's detectors_per_arm, default 1).
SCHEME_DETECTORS = {"pauli": 2, "james16": 1, "projections36": 1}
ANGLE_LIMIT_DEG = 360.0
OFFSET_LIMIT_DEG = 45.0
# A one-detector scheme needs a count per unknown: 15 parameters of a two-qubit state and its intensity.
MIN_ONE_DETECTOR_SETTINGS = 16
LINK_INPUTS = ("H", "V", "D", "A", "R", "L")
LINK_ANALYSIS = {1: ("H", "V", "D", "A", "R", "L"), 2: ("D", "R", "H")}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


def _number(value: Any, what: str, limit: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise custom_error(f"{what} must be a number of degrees, got {short_repr(value)}")
    if abs(value) > limit:
        raise custom_error(f"{what} out of range, got {value!r}; allowed: [-{limit:g}, {limit:g}] degrees")
    return float(value)


def _component(value: Any) -> complex:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return complex(value)
    if isinstance(value, str):
        try:
            return complex(value.replace(" ", ""))
        except ValueError:
            pass
    raise custom_error(f"Jones component {short_repr(value)} is not a number or a complex string such as '0.7071j'")


def check_projection(spec: Any) -> Any:
    """Return one arm's projection spec unchanged, or raise a profile error saying which forms are allowed."""
    if isinstance(spec, str):
        if spec not in LABELS:
            raise custom_error(f"unknown projection label {spec!r}; use one of {', '.join(LABELS)}")
        return spec
    if isinstance(spec, Mapping) and set(spec) == {"hwp", "qwp"}:
        for plate in ("hwp", "qwp"):
            _number(spec[plate], f"{plate} angle", ANGLE_LIMIT_DEG)
        return dict(spec)
    if isinstance(spec, Mapping) and set(spec) == {"jones"}:
        vec = spec["jones"]
        if not isinstance(vec, list) or len(vec) != 2:
            raise custom_error(f"a Jones vector needs two components [c_H, c_V], got {short_repr(vec)}")
        comps = [_component(c) for c in vec]
        if not all(math.isfinite(abs(c)) for c in comps) or not any(comps):
            raise custom_error(f"Jones vector {short_repr(vec)} must be finite and not zero")
        return {"jones": list(vec)}
    raise custom_error(
        f"projection {short_repr(spec)} is neither a label ({', '.join(LABELS)}), waveplate angles "
        "{hwp: deg, qwp: deg} nor a Jones vector {jones: [c_H, c_V]}"
    )


def check_setting(setting: Any) -> Any:
    """Return a two-arm setting unchanged: a string of two labels ("HD", arm A first) or a list of two projections."""
    if isinstance(setting, str):
        if len(setting) != 2:
            raise custom_error(f"setting {setting!r} needs one label per arm, e.g. 'HD' (arm A first)")
        for label in setting:
            check_projection(label)
        return setting
    if not isinstance(setting, list) or len(setting) != 2:
        raise custom_error(f"setting {short_repr(setting)} needs two projections, one per arm (arm A first)")
    return [check_projection(spec) for spec in setting]


Projection = Annotated[Any, AfterValidator(check_projection)]
Setting = Annotated[Any, AfterValidator(check_setting)]
OffsetDeg = Annotated[float, Field(ge=-OFFSET_LIMIT_DEG, le=OFFSET_LIMIT_DEG)]


class WaveplateOffset(_Model):
    """A calibrated offset of one arm's waveplates, degrees, added to every nominal angle the fit assumes."""

    hwp: OffsetDeg = Field(default=0.0, description="half-wave plate offset, degrees")
    qwp: OffsetDeg = Field(default=0.0, description="quarter-wave plate offset, degrees")

    def pair(self) -> tuple[float, float]:
        """Return (hwp, qwp) in degrees."""
        return (self.hwp, self.qwp)


class LinkTomography(_Model):
    """Inputs prepared at arm B's source and the projections analysed after the link (process tomography)."""

    inputs: list[Projection] = Field(
        default_factory=lambda: list(LINK_INPUTS), min_length=1, description="prepared input states"
    )
    analysis: list[Projection] | None = Field(
        default=None,
        min_length=1,
        description="analyser projections (default: H V D A R L with one detector, D R H with two)",
    )
    input_offset: WaveplateOffset = Field(
        default_factory=WaveplateOffset, description="calibrated offset of the preparer's waveplates"
    )


class Tomography(_Model):
    """How a bench measures its tomographies and which estimator the metrics use."""

    scheme: Literal["pauli", "james16", "projections36", "custom"] = Field(
        default="pauli", description="pauli (9 bases, two detectors per arm), james16, projections36 or custom"
    )
    detectors_per_arm: Literal[1, 2] | None = Field(
        default=None, description="detectors behind each analyser (default: the scheme's; custom: 1)"
    )
    projections: list[Setting] | None = Field(
        default=None, min_length=1, description="custom scheme only: the settings, e.g. ['HH', 'HV', ...]"
    )
    estimator: Literal["mle", "linear"] | None = Field(
        default=None, description="mle (maximum likelihood) or linear (pauli only); default: linear for pauli"
    )
    waveplate_offsets: dict[Literal["A", "B"], WaveplateOffset] = Field(
        default_factory=dict, description="calibrated waveplate offsets per arm (A, B), given to the fit"
    )
    link: LinkTomography = Field(default_factory=LinkTomography, description="link (process) tomography")

    @property
    def detectors(self) -> int:
        """Detectors per arm: the block's value, else the scheme's."""
        if self.detectors_per_arm is not None:
            return self.detectors_per_arm
        return SCHEME_DETECTORS.get(self.scheme, 1)

    @property
    def method(self) -> str:
        """The estimator the metrics use: the block's, else linear for pauli and mle for every other scheme."""
        if self.estimator is not None:
            return self.estimator
        return "linear" if self.scheme == "pauli" else "mle"

    @property
    def link_analysis(self) -> list[Any]:
        """The link's analyser projections: the block's, else the default for the detectors per arm."""
        return list(self.link.analysis) if self.link.analysis is not None else list(LINK_ANALYSIS[self.detectors])

    def offsets(self) -> list[tuple[float, float]]:
        """Return the (hwp, qwp) offsets of arms A and B in degrees (0 where not given)."""
        return [self.waveplate_offsets.get(arm, WaveplateOffset()).pair() for arm in ("A", "B")]

    @model_validator(mode="after")
    def _consistent(self) -> Tomography:
        fixed = SCHEME_DETECTORS.get(self.scheme)
        if fixed is not None and self.detectors_per_arm not in (None, fixed):
            raise custom_error(
                f"scheme {self.scheme!r} is measured with {fixed} detector(s) per arm; remove detectors_per_arm "
                "or use scheme custom",
                "detectors_per_arm",
            )
        if self.scheme == "custom" and self.projections is None:
            raise custom_error("scheme custom needs 'projections': a list of settings, e.g. ['HH', 'HV', ...]")
        if self.scheme != "custom" and self.projections is not None:
            raise custom_error(f"scheme {self.scheme!r} fixes its projections; use scheme custom", "projections")
        if self.scheme == "custom" and self.detectors == 1 and len(self.projections or ()) < MIN_ONE_DETECTOR_SETTINGS:
            raise custom_error(
                f"{len(self.projections or ())} settings cannot determine a two-qubit state with one detector per "
                f"arm: give at least {MIN_ONE_DETECTOR_SETTINGS} (e.g. scheme james16)",
                "projections",
            )
        if self.estimator == "linear" and self.scheme != "pauli":
            raise custom_error(
                f"estimator 'linear' needs scheme pauli (its 9 bases give unbiased linear metrics); use 'mle' for "
                f"scheme {self.scheme!r}",
                "estimator",
            )
        return self


def tomography_issues(profile: Mapping[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    """Return the problems of a merged profile's tomography block with its kind and bench commands."""
    block = profile.get("tomography")
    scheme = block.get("scheme", "pauli") if isinstance(block, Mapping) else "pauli"
    bench = profile.get("bench")
    analyzers = bench.get("analyzers") if isinstance(bench, Mapping) else None
    commands = analyzers.get("commands") if isinstance(analyzers, Mapping) else None
    if scheme == "pauli":
        if isinstance(commands, Mapping) and "set_basis" not in commands and "set_waveplates" in commands:
            message = "analysers set by waveplates only measure a waveplate scheme: add tomography: {scheme: james16}"
            return [(("bench", "analyzers", "commands"), message)]
        return []
    if profile.get("kind") == "aer":
        return [(("tomography", "scheme"), f"kind aer measures scheme pauli only, not {scheme!r}")]
    if isinstance(commands, Mapping) and "set_waveplates" not in commands:
        message = (
            f"scheme {scheme!r} sets waveplate angles: add the command template set_waveplates, e.g. "
            '"WP {arm},{hwp_deg},{qwp_deg}"'
        )
        return [(("bench", "analyzers", "commands"), message)]
    return []
