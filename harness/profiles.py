"""Device profiles: the YAML files that say which device to test, its physics per firmware build, and its budgets.

A profile is loaded in three steps: parse the YAML (syntax errors name the line), resolve `extends` by deep-merging
the parent under the child (cycles are named), then validate the merged profile and every build's effective profile
(the `builds."<b>"` override deep-merged over it). Every problem is reported as `file: key.path: message`.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import re
import string
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from harness.metrics import REGISTRY
from harness.metrics import Tolerance as GateTolerance

__all__ = [
    "BUDGETS",
    "BUDGET_CAPS",
    "AerOptions",
    "Bench",
    "Detectors",
    "Firmware",
    "Instrument",
    "Link",
    "LoadedProfile",
    "Measurement",
    "Memory",
    "Problem",
    "Profile",
    "ProfileError",
    "Qec",
    "Replay",
    "Source",
    "Tolerance",
    "deep_merge",
    "find_profile",
    "format_key_path",
    "list_profiles",
    "load_profile",
    "load_yaml",
    "profile_json_schema",
]

# Time/shot scale factor of each --budget relative to the `measurement` block.
BUDGETS: dict[str, float] = {"quick": 0.25, "standard": 1.0, "release": 4.0}
# Largest total scale re-measurement may reach, as a multiple of the budget's base factor.
BUDGET_CAPS: dict[str, float] = {"quick": 2.0, "standard": 4.0, "release": 8.0}

PROFILE_DIR = "device_profiles"
SUFFIXES = (".yaml", ".yml")
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
LOGICAL_PREFIXES = ("logical_success_", "logical_error_per_round_", "decode_time_us_")


# ---------------------------------------------------------------------------------------------------------------------
# Errors


@dataclass(frozen=True)
class Problem:
    """One problem in a profile: the file, the key path (a tuple of keys) and what is wrong."""

    file: str
    path: tuple[str | int, ...]
    message: str
    line: int | None = None

    @property
    def key(self) -> str:
        """The key path written as `builds."2.5.0-rc1".source.visibility` (empty for whole-file problems)."""
        return format_key_path(self.path)

    def __str__(self) -> str:
        where = f" (line {self.line})" if self.line is not None else ""
        key = f"{self.key}: " if self.key else ""
        return f"{self.file}: {key}{self.message}{where}"


class ProfileError(ValueError):
    """A profile cannot be found, parsed or validated; `problems` lists every issue, one line each."""

    def __init__(self, problems: list[Problem] | str):
        if isinstance(problems, str):
            problems = [Problem("<profile>", (), problems)]
        self.problems: list[Problem] = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def format_key_path(path: tuple[str | int, ...] | list[str | int]) -> str:
    """Join keys with dots, quoting keys that are not identifiers and writing list indices as [i]."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        text = str(part)
        text = text if text.isidentifier() else json.dumps(text)
        out += f".{text}" if out else text
    return out


def _suggest(word: str, options: typing.Iterable[str]) -> str:
    match = difflib.get_close_matches(str(word), list(options), n=1, cutoff=0.6)
    return f"; did you mean {match[0]!r}?" if match else ""


def _custom(message: str, *path: str | int) -> PydanticCustomError:
    """A validation error whose key path continues below the validator's own location by `path`."""
    return PydanticCustomError("profile", "{reason}", {"reason": message, "path": list(path)})


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---------------------------------------------------------------------------------------------------------------------
# Schema


class _Model(BaseModel):
    # strict: YAML `yes` must not become 1.0, and `2.4` must not silently become the build "2.4".
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


Probability = Annotated[float, Field(ge=0.0, le=1.0)]
NonNegative = Annotated[float, Field(ge=0.0)]
Positive = Annotated[float, Field(gt=0.0)]
BuildName = Annotated[str, Field(pattern=BUILD, description="firmware build, e.g. '2.4.0' (quote it in YAML)")]


class Firmware(_Model):
    """Which firmware builds a run compares when the command line does not say."""

    build: BuildName = Field(description="build under test when --firmware-build is not given")
    baseline: BuildName | None = Field(default=None, description="default baseline build")


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
    m = re.fullmatch(r"([a-z][a-z0-9_]*)_d([0-9]+)", name)
    if m is None:
        raise ValueError(f"code {name!r} is not of the form '<family>_d<distance>', e.g. 'surface_d3'")
    d = int(m.group(2))
    if d < 3 or d % 2 == 0:
        raise ValueError(f"code {name!r} has distance {d}; the distance must be odd and >= 3")
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
                raise _custom(f"code {code!r} is listed twice; list each code once", i)
            seen.add(code)
        return codes


class Measurement(_Model):
    """Budgets at the standard budget; --budget scales the times and shot cap by BUDGETS."""

    integration_time_s: Positive = Field(default=0.05, description="per tomography setting, s")
    coincidence_time_s: Positive = Field(default=0.2, description="for the rate measurement, s")
    bootstrap: Annotated[int, Field(ge=50)] = Field(default=200, description="bootstrap replicates")
    qec_max_shots: Annotated[int, Field(ge=1)] = Field(default=200_000, description="logical-memory shot cap")
    qec_max_errors: Annotated[int, Field(ge=1)] = Field(default=200, description="stop after this many errors")


class Tolerance(_Model):
    """Practical margin of the regression gate for one metric: absolute and/or relative."""

    absolute: NonNegative | None = None
    relative: NonNegative | None = None

    @model_validator(mode="after")
    def _one_of(self) -> Tolerance:
        if self.absolute is None and self.relative is None:
            raise _custom("a tolerance needs 'absolute' and/or 'relative', e.g. {absolute: 0.002}")
        return self


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
            raise ValueError(f"unknown AerSimulator method {method!r}{_suggest(method, AER_METHODS)}")
        return method


class Instrument(_Model):
    """One bench instrument: how to reach it and its command templates."""

    transport: Literal["serial", "visa"]
    url: str | None = Field(default=None, description="serial: any pyserial URL or device path")
    resource: str | None = Field(default=None, description="visa: any VISA resource string")
    baudrate: Annotated[int, Field(gt=0)] = 115200
    backend: str = "@py"
    read_termination: str = "\n"
    write_termination: str = "\n"
    timeout_s: Positive | None = None
    retries: Annotated[int, Field(ge=0)] | None = None
    commands: dict[str, str] = Field(default_factory=dict, description="command name -> template string")

    @model_validator(mode="after")
    def _address(self) -> Instrument:
        if self.transport == "serial" and not self.url:
            raise _custom("a serial instrument needs 'url' (a pyserial URL or device path)", "url")
        if self.transport == "visa" and not self.resource:
            raise _custom("a visa instrument needs 'resource' (a VISA resource string)", "resource")
        for name, template in self.commands.items():
            try:
                list(string.Formatter().parse(template))
            except ValueError as exc:
                raise _custom(
                    f"bad template {template!r}: {exc}; escape literal braces as '{{{{'", "commands", name
                ) from None
        return self


# Commands each bench role must define, with the placeholders its template may use.
BENCH_COMMANDS: dict[str, dict[str, set[str]]] = {
    "source": {"identify": set(), "firmware_build": set(), "enable": set(), "disable": set()},
    "counter": {
        "set_integration": {"seconds"},
        "coincidences": set(),
        "singles": {"channel"},
        "errors": set(),
    },
    "analyzers": {"set_basis": {"arm", "basis"}},
    "decoder": {"decode": {"code", "syndrome"}},
}
OPTIONAL_COMMANDS: dict[str, dict[str, set[str]]] = {"analyzers": {"prepare_state": {"state"}}}


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
        for role, required in BENCH_COMMANDS.items():
            inst = getattr(self, role)
            if inst is None:
                continue
            allowed = {**required, **OPTIONAL_COMMANDS.get(role, {})}
            for name in required:
                if name not in inst.commands:
                    raise _custom(
                        f"missing command {name!r}; the {role} needs: {', '.join(sorted(required))}", role, "commands"
                    )
            for name, template in inst.commands.items():
                fields = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
                extra = fields - allowed.get(name, fields)
                if extra:
                    raise _custom(
                        f"template {template!r} uses {', '.join(sorted(extra))}; allowed placeholders: "
                        + (", ".join("{" + f + "}" for f in sorted(allowed[name])) or "none"),
                        role,
                        "commands",
                        name,
                    )
        return self


class Replay(_Model):
    """A recorded cassette to replay; the path is relative to the profile file."""

    cassette: str = Field(min_length=1, description="cassette path, relative to the profile file")


def _known_metric(name: str) -> bool:
    return name in REGISTRY or any(name.startswith(p) and len(name) > len(p) for p in LOGICAL_PREFIXES)


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
    tolerances: dict[str, Tolerance] = Field(default_factory=dict, description="metric name -> practical margin")
    memory: Memory | None = None
    aer: AerOptions | None = None
    bench: Bench | None = None
    replay: Replay | None = None
    builds: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="build name -> override deep-merged over the blocks above"
    )

    def gate_tolerances(self) -> dict[str, GateTolerance]:
        """Return the tolerances as the gate's type (the one conversion: a missing bound is 0)."""
        return {
            name: GateTolerance(absolute=tol.absolute or 0.0, relative=tol.relative or 0.0)
            for name, tol in self.tolerances.items()
        }

    @field_validator("tolerances")
    @classmethod
    def _metric_names(cls, tolerances: dict[str, Tolerance]) -> dict[str, Tolerance]:
        for name in tolerances:
            if not _known_metric(name):
                known = list(REGISTRY)
                raise _custom(
                    f"unknown metric {name!r}{_suggest(name, known)} (known: {', '.join(known)}, "
                    f"or {', '.join(p + '<code>' for p in LOGICAL_PREFIXES)})",
                    name,
                )
        return tolerances

    @field_validator("builds")
    @classmethod
    def _build_names(cls, builds: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for build, override in builds.items():
            if not re.fullmatch(BUILD, build):
                raise _custom(f"build name {build!r} must match {BUILD}", build)
            for key in override:
                if key in NOT_OVERRIDABLE:
                    raise _custom(f"{key!r} cannot be overridden per build (only the physics blocks can)", build, key)
        return builds

    @model_validator(mode="after")
    def _kind_blocks(self) -> Profile:
        if self.kind == "aer":
            for block in ("source", "link", "detectors"):
                if getattr(self, block) is None:
                    raise _custom(f"kind aer requires a {block!r} block", block)
        if self.kind == "bench" and self.bench is None:
            raise _custom("kind bench requires a 'bench' block (source, counter, analyzers)", "bench")
        if self.kind == "replay" and self.replay is None:
            raise _custom("kind replay requires a 'replay' block, e.g. {cassette: run.cassette.json}", "replay")
        if self.aer is not None and self.kind != "aer":
            raise _custom(f"the 'aer' block is for kind aer only (this profile is kind {self.kind!r})", "aer")
        if self.kind == "aer" and self.builds:
            known = ", ".join(self.builds)
            for key in ("build", "baseline"):
                build = getattr(self.firmware, key)
                if build is not None and build not in self.builds:
                    raise _custom(
                        f"build {build!r} is not listed under 'builds' (known builds: {known})", "firmware", key
                    )
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


# ---------------------------------------------------------------------------------------------------------------------
# YAML


class _Loader(yaml.SafeLoader):
    """Safe loader that also reads `1e-9` as a float (YAML 1.2) and rejects duplicate keys."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _construct_mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key {key!r} (first at line {seen[key] + 1}); each key may appear once",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _read_yaml(path: Path) -> tuple[dict, yaml.Node | None]:
    """Parse a profile file into a dict (and its node tree for line numbers); ProfileError on any problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProfileError([Problem(str(path), (), "no such profile file")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError([Problem(str(path), (), f"cannot read the file: {exc}")]) from None
    try:
        data = yaml.load(text, Loader=_Loader)
        node = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        reason = getattr(exc, "problem", None) or str(exc)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise ProfileError([Problem(str(path), (), f"YAML syntax error at {where}{reason}")]) from None
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        raise ProfileError([Problem(str(path), (), f"a profile must be a YAML mapping, but the file is {kind}")])
    bad = [k for k in data if not isinstance(k, str)]
    if bad:
        raise ProfileError([Problem(str(path), (str(bad[0]),), "top-level keys must be strings")])
    return data, node


def load_yaml(path: str | Path) -> dict:
    """The mapping in a profile file as profiles read it (YAML 1.2 floats such as 2.0e6, duplicate keys rejected)."""
    return _read_yaml(Path(path))[0]


def _line_of(node: yaml.Node | None, path: tuple[str | int, ...]) -> int | None:
    """1-based line of the deepest node along `path` in a composed YAML tree, or None."""
    line = None
    for part in path:
        if isinstance(node, yaml.MappingNode):
            pair = next(((k, v) for k, v in node.value if str(k.value) == str(part)), None)
            if pair is None:
                break
            line = pair[0].start_mark.line + 1
            node = pair[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def deep_merge(base: dict, override: dict) -> dict:
    """A new dict: `override` merged over `base`, recursing into mappings; lists and scalars are replaced."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


# ---------------------------------------------------------------------------------------------------------------------
# Finding profiles


def _packaged_dir() -> Path:
    return Path(str(resources.files("harness") / PROFILE_DIR))


def _search_dirs() -> list[Path]:
    return [Path.cwd() / PROFILE_DIR, _packaged_dir()]


def _profile_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.suffix in SUFFIXES and p.is_file())


def find_profile(name_or_path: str | Path) -> Path:
    """Path of a profile: an existing path (or *.yaml/*.yml), else <name>.yaml in ./device_profiles, then shipped."""
    candidate = Path(name_or_path)
    if candidate.exists() or candidate.suffix in SUFFIXES or isinstance(name_or_path, Path):
        return candidate
    name = str(name_or_path)
    for directory in _search_dirs():
        for suffix in SUFFIXES:
            path = directory / f"{name}{suffix}"
            if path.is_file():
                return path
    known = [n for n, _, _ in list_profiles()]
    raise ProfileError(
        [
            Problem(
                name,
                (),
                f"no profile named {name!r} in ./{PROFILE_DIR} or the shipped profiles{_suggest(name, known)} "
                f"(known: {', '.join(known) or 'none'}); pass a path to a .yaml file to use another",
            )
        ]
    )


def list_profiles() -> list[tuple[str, Path, str]]:
    """(name, path, description) of every profile in ./device_profiles then the shipped ones, deduplicated by name."""
    seen: dict[str, tuple[str, Path, str]] = {}
    for directory in _search_dirs():
        for path in _profile_files(directory):
            if path.stem in seen:
                continue
            try:
                data, _ = _read_yaml(path)
                description = str(data.get("description") or "")
            except ProfileError as exc:
                description = f"(unreadable: {exc.problems[0].message})"
            seen[path.stem] = (path.stem, path, description)
    return list(seen.values())


# ---------------------------------------------------------------------------------------------------------------------
# Loading


@dataclass
class _ChainFile:
    """One file of an `extends` chain."""

    path: Path
    raw: dict
    node: yaml.Node | None


def _resolve_extends(target: Any, child: Path) -> Path:
    if not isinstance(target, str) or not target:
        raise ProfileError([Problem(str(child), ("extends",), f"must be a profile name or path, got {_short(target)}")])
    if "/" in target or "\\" in target or Path(target).suffix in SUFFIXES:
        path = Path(target)
        return path if path.is_absolute() else child.parent / path
    try:
        found = find_profile(target)
    except ProfileError as exc:
        raise ProfileError([Problem(str(child), ("extends",), exc.problems[0].message)]) from None
    if found.resolve() == child.resolve():
        # ./device_profiles/x.yaml with `extends: x` refines the shipped x rather than itself.
        shipped = next((p for p in (_packaged_dir() / f"{target}{s}" for s in SUFFIXES) if p.is_file()), None)
        if shipped is not None:
            return shipped
    return found


def _load_chain(path: Path) -> list[_ChainFile]:
    """The file and its ancestors, child first; cycles and unknown targets are ProfileErrors."""
    chain: list[_ChainFile] = []
    current = path
    while True:
        resolved = current.resolve()
        if any(s.path.resolve() == resolved for s in chain):
            names = [str(s.raw.get("name") or s.path.stem) for s in chain]
            start = next(i for i, s in enumerate(chain) if s.path.resolve() == resolved)
            cycle = " -> ".join([*names[start:], names[start]])
            raise ProfileError(
                [Problem(str(chain[0].path), ("extends",), f"extends cycle: {cycle}; remove one of the 'extends'")]
            )
        raw, node = _read_yaml(current)
        chain.append(_ChainFile(current, raw, node))
        target = raw.get("extends")
        if target is None:
            return chain
        parent = _resolve_extends(target, current)
        if not parent.exists():
            raise ProfileError(
                [Problem(str(current), ("extends",), f"extends target {target!r} not found (looked for {parent})")]
            )
        current = parent


def _has_path(data: Any, path: tuple[str | int, ...]) -> bool:
    for part in path:
        in_list = isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)
        if (isinstance(data, dict) and part in data) or in_list:
            data = data[part]
        else:
            return False
    return True


def _unwrap(annotation: Any) -> Any:
    """Strip Optional/Annotated from a field annotation."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation


def _walk(path: tuple[str | int, ...]) -> tuple[type[BaseModel] | None, Any]:
    """The model class reached at `path` within Profile (None if not a model), and the FieldInfo of its last key."""
    current: Any = Profile
    info = None
    for part in path:
        if isinstance(current, type) and issubclass(current, BaseModel):
            info = current.model_fields.get(str(part))
            if info is None:
                return None, None
            current = _unwrap(info.annotation)
        elif typing.get_origin(current) in (dict, list):
            info = None
            current = _unwrap(typing.get_args(current)[-1])
        else:
            return None, None
    model = current if isinstance(current, type) and issubclass(current, BaseModel) else None
    return model, info


def _constraints(info: Any) -> list[Any]:
    """Every constraint object on a field, including those inside Optional[Annotated[...]] members."""
    found = list(info.metadata)
    for arg in typing.get_args(info.annotation):
        for meta in getattr(arg, "__metadata__", ()):
            found += list(getattr(meta, "metadata", [meta]))
    return found


def _bounds(info: Any) -> str:
    """The allowed range of a numeric field, e.g. '[0, 1]' or '> 0' (empty when it has none)."""
    if info is None:
        return ""
    lo = hi = None
    lo_open = hi_open = False
    for meta in _constraints(info):
        for attr in ("ge", "gt", "le", "lt"):
            value = getattr(meta, attr, None)
            if value is None:
                continue
            if attr in ("ge", "gt"):
                lo, lo_open = value, attr == "gt"
            else:
                hi, hi_open = value, attr == "lt"
    if lo is None and hi is None:
        return ""
    if hi is None:
        return f"{'>' if lo_open else '>='} {lo:g}"
    if lo is None:
        return f"{'<' if hi_open else '<='} {hi:g}"
    return f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"


_TYPE_WORDS = {
    "float_type": "a number",
    "float_parsing": "a number",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "string_type": "a string (quote it in YAML)",
    "dict_type": "a mapping of keys",
    "model_type": "a mapping of keys",
    "list_type": "a list",
    "bool_type": "true or false",
}


def _message(error: dict, loc: tuple[str | int, ...]) -> str:
    """A readable message for one pydantic error: what was wrong, the bad value, and what is allowed."""
    kind = error["type"]
    ctx = error.get("ctx") or {}
    got = f"got {_short(error.get('input'))}"
    if kind == "profile":
        return str(ctx["reason"])
    if kind == "extra_forbidden":
        owner, _ = _walk(loc[:-1])
        allowed = list(owner.model_fields) if owner is not None else []
        listed = f" (allowed: {', '.join(allowed)})" if allowed else ""
        return f"unknown key {loc[-1]!r}{_suggest(str(loc[-1]), allowed)}{listed}"
    if kind == "missing":
        return "required key is missing"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal", "finite_number"):
        _, info = _walk(loc)
        allowed = _bounds(info)
        return f"out of range, {got}; allowed: {allowed or error['msg']}"
    if kind == "literal_error":
        expected = [e.strip().strip("'") for e in re.split(r",| or ", str(ctx.get("expected", ""))) if e.strip()]
        hint = _suggest(str(error.get("input")), expected) if isinstance(error.get("input"), str) else ""
        return f"{got}{hint} (allowed: {', '.join(expected)})"
    if kind == "string_pattern_mismatch":
        _, info = _walk(loc)
        what = f" ({info.description})" if info is not None and info.description else ""
        return f"{got}; must match {ctx.get('pattern')}{what}"
    if kind in _TYPE_WORDS:
        return f"must be {_TYPE_WORDS[kind]}, {got}"
    return f"{error['msg']}, {got}"


def _problems(exc: ValidationError, prefix: tuple[str | int, ...], chain: list[_ChainFile]) -> list[Problem]:
    """Problems of one pydantic ValidationError, key paths under `prefix`, attributed to the file that holds the key."""
    out = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"]) + tuple((error.get("ctx") or {}).get("path", ()))
        full = prefix + loc
        holder = next((s for s in chain if _has_path(s.raw, full)), None)
        if holder is None:
            # A missing key: name the nearest file that defines its parent block.
            holder = next((s for s in chain if _has_path(s.raw, full[:-1])), chain[0])
        out.append(Problem(str(holder.path), full, _message(error, loc), _line_of(holder.node, full)))
    return out


def _resolve_cassette(profile: Profile, base_dir: Path) -> Profile:
    """The profile with a relative replay cassette made absolute against the directory of the file naming it."""
    if profile.replay is None or Path(profile.replay.cassette).is_absolute():
        return profile
    replay = profile.replay.model_copy(update={"cassette": str((base_dir / profile.replay.cassette).resolve())})
    return profile.model_copy(update={"replay": replay})


@dataclass
class LoadedProfile:
    """A profile file after `extends` and validation; `effective(build)` gives the Profile for one build."""

    path: Path
    name: str
    raw: dict
    content_hash: str
    kind: str
    parents: list[Path] = field(default_factory=list)
    base_dir: Path = field(default_factory=Path)
    _effective: dict[str, Profile] = field(default_factory=dict, repr=False)
    _base: Profile | None = field(default=None, repr=False)

    @property
    def base(self) -> Profile:
        """The merged profile with no build override applied."""
        assert self._base is not None
        return self._base

    @property
    def builds(self) -> list[str]:
        """Names of the builds this profile defines (firmware build and baseline when `builds:` is empty)."""
        if self.base.builds:
            return list(self.base.builds)
        return [b for b in (self.base.firmware.build, self.base.firmware.baseline) if b is not None]

    @property
    def default_build(self) -> str:
        """Build under test when none is given."""
        return self.base.firmware.build

    @property
    def default_baseline(self) -> str | None:
        """Baseline build when none is given."""
        return self.base.firmware.baseline

    def effective(self, build: str | None = None) -> Profile:
        """The profile for `build` (default firmware.build) with its override merged; firmware.build is set to it."""
        build = self.default_build if build is None else build
        if build in self._effective:
            return self._effective[build]
        if self.kind == "aer" and build not in self.builds:
            raise ProfileError(
                [
                    Problem(
                        str(self.path),
                        ("builds",),
                        f"unknown build {build!r}{_suggest(build, self.builds)} "
                        f"(known builds: {', '.join(self.builds)})",
                    )
                ]
            )
        if not re.fullmatch(BUILD, build):
            raise ProfileError([Problem(str(self.path), ("firmware", "build"), f"build {build!r} must match {BUILD}")])
        merged = deep_merge(self.raw, self.base.builds.get(build, {}))
        merged.setdefault("firmware", {})
        merged["firmware"] = {**merged["firmware"], "build": build}
        profile = _resolve_cassette(Profile.model_validate(merged), self.base_dir)
        self._effective[build] = profile
        return profile


def load_profile(name_or_path: str | Path) -> LoadedProfile:
    """Find, parse, merge (`extends`) and validate a profile and each build's effective profile; ProfileError if bad."""
    path = find_profile(name_or_path)
    chain = _load_chain(path)
    merged: dict = {}
    for source in reversed(chain):
        merged = deep_merge(merged, source.raw)
    merged.pop("extends", None)
    if "name" not in chain[0].raw:
        # A child must name itself; inheriting the parent's name would file its results under the parent.
        merged.pop("name", None)

    try:
        base = Profile.model_validate(merged)
    except ValidationError as exc:
        problems = _problems(exc, (), chain)
        raise ProfileError(problems) from None

    # A relative cassette path is relative to the file that names it.
    holder = next((s for s in chain if _has_path(s.raw, ("replay", "cassette"))), chain[0])
    base_dir = holder.path.parent
    problems: list[Problem] = []
    effective: dict[str, Profile] = {}
    for build, override in base.builds.items():
        candidate = deep_merge(merged, override)
        candidate["firmware"] = {**candidate.get("firmware", {}), "build": build}
        try:
            effective[build] = _resolve_cassette(Profile.model_validate(candidate), base_dir)
        except ValidationError as exc:
            # firmware.build is rewritten per build, so its errors are about the build name, not the override.
            problems += _problems(exc, ("builds", build), chain)
    if problems:
        raise ProfileError(problems)

    return LoadedProfile(
        path=path,
        name=base.name,
        raw=merged,
        content_hash=hashlib.sha256(_canonical_json(merged).encode("utf-8")).hexdigest(),
        kind=base.kind,
        parents=[s.path for s in chain[1:]],
        base_dir=base_dir,
        _effective=effective,
        _base=base,
    )
