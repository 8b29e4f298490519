"""The profile schema: pydantic models of every block a profile file may hold, and its JSON Schema."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, ValidationInfo, field_validator, model_validator

from harness.metrics import LOGICAL_PREFIXES, REGISTRY, Tolerance, is_known_metric, parse_code
from harness.profiles.actions import Flash, NonNegative, Positive, Sessions
from harness.profiles.actions import StrictModel as _Model
from harness.profiles.checks import bench_issues, instrument_issues, kind_issues, raise_first
from harness.profiles.drivers import DriverError, driver_commands
from harness.profiles.messages import custom_error, suggest
from harness.profiles.tomography import Tomography

# Time/shot scale factor of each --budget relative to the `measurement` block.
BUDGETS: dict[str, float] = {"quick": 0.25, "standard": 1.0, "release": 4.0}
# Largest total scale re-measurement may reach, as a multiple of the budget's base factor. Quick reaches the
# standard budget's base: what a canary needs to decide (docs/baselines.md, "Budgets and looks").
BUDGET_CAPS: dict[str, float] = {"quick": 4.0, "standard": 4.0, "release": 8.0}

SLUG = r"^[a-z0-9][a-z0-9-]*$"
BUILD = r"^[A-Za-z0-9][A-Za-z0-9._+-]*$"
# Keys that identify a profile and so cannot differ between builds.
NOT_OVERRIDABLE = ("name", "kind", "extends", "builds")
AER_METHODS = (
    "automatic",
    "statevector",
    "density_matrix",
    "stabilizer",
    "matrix_product_state",
    "extended_stabilizer",
    "unitary",
    "superop",
    "tensor_network",
)


Probability = Annotated[float, Field(ge=0.0, le=1.0)]
BuildName = Annotated[str, Field(pattern=BUILD, description="firmware build, e.g. '2.4.0' (quote it in YAML)")]


class Firmware(_Model):
    """Which firmware builds a run compares when the command line does not say, and how to flash one."""

    build: BuildName = Field(description="build under test when --firmware-build is not given")
    baseline: BuildName | None = Field(default=None, description="default baseline build")
    flash: Flash | None = Field(
        default=None, description="how to put a build on a bench (an Aer device switches builds by itself)"
    )


class Source(_Model):
    """The entangled-pair source."""

    pair_rate_hz: NonNegative = Field(description="pairs emitted per second")
    visibility: Probability = Field(description="Werner visibility of the emitted pair")


class Link(_Model):
    """The link: loss, then qubit noise applied as amplitude damping, dephasing, depolarising."""

    loss_db: NonNegative = Field(description="total link loss in dB; eta = 10^(-loss_db/10)")
    depolarizing: Annotated[float, Field(ge=0.0, le=4.0 / 3.0)] = Field(
        default=0.0, description="depolarising p of rho -> (1-p) rho + p I/2, in [0, 4/3]"
    )
    dephasing: Probability = Field(default=0.0, description="phase-flip probability")
    amplitude_damping: Probability = Field(default=0.0, description="amplitude damping gamma")


class Detectors(_Model):
    """Single-photon detectors and analysers of both arms."""

    efficiency_a: Probability
    efficiency_b: Probability
    dark_count_hz_a: NonNegative = 0.0
    dark_count_hz_b: NonNegative = 0.0
    coincidence_window_s: Positive = Field(description="coincidence window in s")
    readout_error_a: Annotated[float, Field(ge=0.0, le=0.5)] = Field(
        default=0.0, description="probability that analyser A reports the wrong outcome"
    )
    readout_error_b: Annotated[float, Field(ge=0.0, le=0.5)] = Field(
        default=0.0, description="probability that analyser B reports the wrong outcome"
    )


def _check_code(name: str) -> str:
    parse_code(name)
    return name


class Qec(_Model):
    """Circuit-level noise of the logical-memory experiments and which codes run."""

    gate_error_1q: Probability = 1.0e-4
    gate_error_2q: Probability = 1.0e-3
    measurement_error: Probability = 1.0e-3
    idle_error: Probability = 1.0e-4
    codes: list[Annotated[str, AfterValidator(_check_code)]] = Field(
        default_factory=lambda: ["repetition_bitflip_d3", "repetition_bitflip_d5", "surface_d3", "surface_d5"],
        description="memories to run, '<family>_d<odd distance>'",
    )

    @field_validator("codes")
    @classmethod
    def _unique(cls, codes: list[str]) -> list[str]:
        seen: set[str] = set()
        for i, code in enumerate(codes):
            if code in seen:
                raise custom_error(f"code {code!r} is listed twice; list each code once", i)
            seen.add(code)
        return codes


RelativeSd = Annotated[float, Field(ge=0.0, le=1.0)]


class SessionDrift(_Model):
    """Offsets drawn once per session (one run of one build): Gaussian, zero mean, with these SDs."""

    visibility_sd: Probability = Field(default=0.0, description="SD of the additive visibility offset")
    pair_rate_rel_sd: RelativeSd = Field(default=0.0, description="relative SD of the pair rate")
    basis_angle_sd_deg: Annotated[float, Field(ge=0.0, le=45.0)] = Field(
        default=0.0,
        description="SD of the misalignment of arm B's analyser (fibre and analyser), polarisation degrees",
    )
    efficiency_rel_sd: RelativeSd = Field(
        default=0.0, description="relative SD of each detector efficiency (arms drawn independently)"
    )


class WanderDrift(_Model):
    """Ornstein-Uhlenbeck wander during a session, over the device's integration clock."""

    visibility_sd: Probability = Field(default=0.0, description="stationary SD of the visibility wander")
    pair_rate_rel_sd: RelativeSd = Field(default=0.0, description="stationary relative SD of the pair-rate wander")
    correlation_time_s: Positive = Field(default=60.0, description="OU correlation time, s of integration")


class Drift(_Model):
    """Drift of the stand-ins' physics (kind aer and `qharness emulate`); seeded, reported with what was applied."""

    between_sessions: SessionDrift = Field(
        default_factory=SessionDrift, description="offsets fixed for one session (one run of one build)"
    )
    within_session: WanderDrift = Field(default_factory=WanderDrift, description="wander during a session")


class Measurement(_Model):
    """Budgets at the standard budget; --budget scales the times and shot cap by BUDGETS."""

    integration_time_s: Positive = Field(default=0.05, description="per tomography setting, s")
    coincidence_time_s: Positive = Field(default=0.2, description="for the rate measurement, s")
    bootstrap: Annotated[int, Field(ge=50)] = Field(default=200, description="bootstrap replicates")
    qec_max_shots: Annotated[int, Field(ge=1)] = Field(default=200_000, description="logical-memory shot cap")
    qec_max_errors: Annotated[int, Field(ge=1)] = Field(default=200, description="stop after this many errors")


# The profile's spelling of a gate tolerance; `Profile.gate_tolerances()` converts it to `harness.metrics.Tolerance`.
class ToleranceSpec(_Model):
    """Practical margin of the regression gate for one metric: absolute and/or relative."""

    absolute: NonNegative | None = None
    relative: NonNegative | None = None

    @model_validator(mode="after")
    def _one_of(self) -> ToleranceSpec:
        if self.absolute is None and self.relative is None:
            raise custom_error("a tolerance needs 'absolute' and/or 'relative', e.g. {absolute: 0.002}")
        return self


class GateOptions(_Model):
    """How the gate treats this profile's metric family."""

    primary: list[str] | None = Field(
        default=None,
        description="metrics gated first, at the full alpha; default: bell_fidelity, pair_rate_hz, "
        "capacity_ce_bits and the logical headline (logical success of the largest surface code)",
    )

    @field_validator("primary")
    @classmethod
    def _known(cls, names: list[str] | None) -> list[str] | None:
        for name in names or ():
            if not is_known_metric(name):
                raise ValueError(f"unknown metric {name!r}{suggest(name, list(REGISTRY))}")
        return names


class Memory(_Model):
    """Optional quantum memory at the receiver: T1, T2 and how long a qubit waits."""

    t1_s: Positive
    t2_s: Positive
    storage_time_s: NonNegative = 0.0

    @field_validator("t2_s")
    @classmethod
    def _t2_bound(cls, t2: float, info: Any) -> float:
        t1 = info.data.get("t1_s")
        if t1 is not None and t2 > 2 * t1:
            raise ValueError(f"T2 = {t2!r} s exceeds 2 T1 = {2 * t1!r} s; physics requires t2_s <= 2 * t1_s")
        return t2


class AerOptions(_Model):
    """Options of the Aer simulation (kind aer only)."""

    noise_model: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$",
        description="'package.module:function' returning a qiskit_aer NoiseModel for a build",
    )
    method: str | None = Field(default=None, description="AerSimulator method override")

    @field_validator("method")
    @classmethod
    def _method(cls, method: str | None) -> str | None:
        if method is not None and method not in AER_METHODS:
            raise ValueError(f"unknown AerSimulator method {method!r}{suggest(method, AER_METHODS)}")
        return method


class Instrument(_Model):
    """One bench instrument: how to reach it and its command templates (or, for transport python, its driver)."""

    transport: Literal["serial", "visa", "python"]
    url: str | None = Field(default=None, description="serial: any pyserial URL or device path")
    resource: str | None = Field(default=None, description="visa: any VISA resource string")
    driver: str | None = Field(
        default=None,
        min_length=1,
        description="python: 'package.module:Class' or a name registered under the entry-point group "
        "qharness.drivers (docs/drivers.md)",
    )
    options: dict[str, Any] = Field(default_factory=dict, description="python: keyword arguments of the driver")
    baudrate: Annotated[int, Field(gt=0)] = 115200
    backend: str = "@py"
    read_termination: str = Field(default="\n", min_length=1, description='end of each reply, e.g. "\\n"')
    write_termination: str = Field(default="\n", min_length=1, description="end of each command")
    timeout_s: Positive | None = None
    retries: Annotated[int, Field(ge=0)] | None = None
    commands: dict[str, str] = Field(
        default_factory=dict, description="command name -> template string (python: from the driver's methods)"
    )

    @model_validator(mode="after")
    def _address(self, info: ValidationInfo) -> Instrument:
        raise_first(instrument_issues(self.model_dump()))
        if self.transport != "python":
            if self.driver is not None:
                raise custom_error("'driver' is for transport python; set transport: python or remove it", "driver")
            return self
        if self.driver is None:
            raise custom_error("a python instrument needs 'driver': 'package.module:Class' or a registered name")
        try:
            # The role is the Bench field holding this block; a python driver's methods are its commands.
            self.commands = driver_commands(self.driver, self.options, info.field_name)
        except DriverError as exc:
            raise custom_error(str(exc), exc.key) from None
        return self


class Bench(_Model):
    """A real bench: source, coincidence counter, analysers and an optional decoder."""

    timeout_s: Positive = 2.0
    retries: Annotated[int, Field(ge=0)] = 3
    backoff_s: NonNegative = Field(default=0.05, description="first retry delay, doubled per retry")
    source: Instrument
    counter: Instrument
    analyzers: Instrument
    decoder: Instrument | None = None

    @model_validator(mode="after")
    def _commands(self) -> Bench:
        raise_first(bench_issues(self.model_dump()))
        return self


class Replay(_Model):
    """A recorded cassette to replay; the path is relative to the profile file."""

    cassette: str = Field(min_length=1, description="cassette path, relative to the profile file")


class Profile(_Model):
    """A validated device profile (for one build once `LoadedProfile.effective` has applied its override)."""

    name: str = Field(pattern=SLUG, description="slug: lowercase letters, digits and '-'")
    description: str = ""
    kind: Literal["aer", "bench", "replay"]
    extends: str | None = Field(default=None, description="name or path of a profile to inherit from")
    firmware: Firmware
    source: Source | None = None
    link: Link | None = None
    detectors: Detectors | None = None
    qec: Qec = Field(default_factory=Qec)
    measurement: Measurement = Field(default_factory=Measurement)
    tolerances: dict[str, ToleranceSpec] = Field(default_factory=dict, description="metric name -> practical margin")
    gate: GateOptions | None = Field(default=None, description="the gate's primary metrics")
    memory: Memory | None = None
    drift: Drift | None = Field(default=None, description="between-session offsets and within-session wander")
    sessions: Sessions | None = Field(
        default=None, description="how `qharness baseline measure` separates a baseline's sessions: pause, re-alignment"
    )
    aer: AerOptions | None = None
    bench: Bench | None = None
    replay: Replay | None = None
    tomography: Tomography | None = Field(
        default=None, description="measurement scheme and estimator of the tomographies"
    )
    builds: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="build name -> override deep-merged over the blocks above"
    )

    def gate_tolerances(self) -> dict[str, Tolerance]:
        """Return the tolerances as the gate's type (the one conversion: a missing bound is 0)."""
        return {
            name: Tolerance(absolute=tol.absolute or 0.0, relative=tol.relative or 0.0)
            for name, tol in self.tolerances.items()
        }

    @field_validator("tolerances")
    @classmethod
    def _metric_names(cls, tolerances: dict[str, ToleranceSpec]) -> dict[str, ToleranceSpec]:
        for name in tolerances:
            if not is_known_metric(name):
                known = list(REGISTRY)
                raise custom_error(
                    f"unknown metric {name!r}{suggest(name, known)} (known: {', '.join(known)}, "
                    f"or {', '.join(p + '<code>' for p in LOGICAL_PREFIXES)})",
                    name,
                )
        return tolerances

    @field_validator("builds")
    @classmethod
    def _build_names(cls, builds: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for build, override in builds.items():
            if not re.fullmatch(BUILD, build):
                raise custom_error(f"build name {build!r} must match {BUILD}", build)
            for key in override:
                if key in NOT_OVERRIDABLE:
                    raise custom_error(
                        f"{key!r} cannot be overridden per build (only the physics blocks can)", build, key
                    )
        return builds

    @model_validator(mode="after")
    def _kind_blocks(self) -> Profile:
        raise_first(kind_issues(self.model_dump()))
        return self


def profile_json_schema() -> dict:
    """JSON Schema (draft 2020-12) of a profile file, for editors and check-jsonschema.

    A profile that `extends` another may leave out any inherited key, so nested blocks require nothing and only a
    profile without `extends` must have kind and firmware; `qharness profiles validate` checks the merged result.
    """
    schema = Profile.model_json_schema()
    for definition in schema.get("$defs", {}).values():
        definition.pop("required", None)
    required = [key for key in schema.pop("required", []) if key != "name"]
    schema["required"] = ["name"]
    schema["if"] = {"properties": {"extends": {"type": "null"}}}
    schema["then"] = {"required": required}
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "qharness device profile"
    return schema
