"""Bench instruments from a QCoDeS station: each driver method reads or sets named QCoDeS parameters.

Registered as the driver `qcodes` (entry-point group qharness.drivers); install with `pip install 'qharness[qcodes]'`.
The instrument block's options name the station YAML and, per method, the parameters (docs/drivers.md):

    counter:
      transport: python
      driver: qcodes
      options:
        station: lab-station.yaml
        parameters:
          set_integration: {parameter: tagger.integration_time, scale: 1000}   # s -> ms
          coincidences: [tagger.cc_pp, tagger.cc_pm, tagger.cc_mp, tagger.cc_mm]
          singles: [tagger.singles_a, tagger.singles_b]

Every python instrument of one station file shares one QCoDeS Station (QCoDeS instrument names are unique in a
process); the station's instruments are closed when the last of them closes. A VISA timeout becomes an
InstrumentTimeout, any other VISA error an InstrumentDisconnected; other exceptions (a reply QCoDeS cannot parse)
are typed by the transport.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.instruments.errors import InstrumentConfigError, InstrumentDisconnected, InstrumentTimeout

try:
    # Imported with the driver class (when the profile is checked), not when it connects: importing QCoDeS takes
    # seconds, which would otherwise count against the instrument's connection timeout.
    import qcodes
except ImportError as exc:
    raise ImportError(f"QCoDeS is not installed ({exc}); install it with pip install 'qharness[qcodes]'") from None

PATH = r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+$"
ParameterPath = Annotated[str, Field(pattern=PATH, description="'instrument.parameter' or 'instrument.sub.parameter'")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Read(_Strict):
    """A parameter to read; `key` picks one entry of a mapping value (e.g. 'firmware' of IDN)."""

    parameter: ParameterPath
    key: str | None = None


class Write(_Strict):
    """A parameter to set: to `value`, to `values[argument]`, or to the argument times `scale`."""

    parameter: ParameterPath
    value: Any = None
    values: dict[str, Any] | None = None
    scale: float = 1.0


ReadSpec = ParameterPath | Read
WriteSpec = ParameterPath | Write


class Parameters(_Strict):
    """Which QCoDeS parameters each driver method uses; a method left out is not provided."""

    identify: ReadSpec | None = None
    firmware_build: ReadSpec | None = None
    enable: Write | None = None
    disable: Write | None = None
    set_integration: WriteSpec | None = None
    coincidences: ReadSpec | Annotated[list[ReadSpec], Field(min_length=4, max_length=4)] | None = None
    singles: Annotated[list[ReadSpec], Field(min_length=2)] | None = None
    set_basis: dict[str, Write] | None = None
    prepare_state: Write | None = None


class Options(_Strict):
    """The options of a `driver: qcodes` instrument."""

    station: str = Field(min_length=1, description="station YAML (absolute, or relative to the working directory)")
    parameters: Parameters


def _problem(exc: ValidationError) -> str:
    err = exc.errors(include_url=False)[0]
    where = ".".join(str(p) for p in err["loc"] if not str(p).startswith(("str", "Read", "Write", "list")))
    return f"{where}: {err['msg']}"


def parse_options(options: Mapping[str, Any]) -> Options:
    """The validated options; ValueError naming the option (and the station instrument) that is wrong."""
    try:
        opts = Options.model_validate(dict(options))
    except ValidationError as exc:
        raise ValueError(f"qcodes options: {_problem(exc)}") from None
    path = Path(opts.station).expanduser()
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"qcodes options: station {str(path)!r} cannot be read ({exc.__class__.__name__})") from None
    declared = set((config or {}).get("instruments") or {}) if isinstance(config, dict) else set()
    for name in sorted({p.split(".")[0] for p in _paths(opts.parameters)} - declared):
        raise ValueError(
            f"qcodes options: instrument {name!r} is not in station {str(path)!r} "
            f"(it has: {', '.join(sorted(declared)) or 'none'})"
        )
    p = opts.parameters
    for method, writes in (("set_basis", (p.set_basis or {}).values()), ("prepare_state", [p.prepare_state])):
        if any(w is not None and w.values is None for w in writes):
            raise ValueError(f"qcodes options: parameters.{method} needs 'values' (e.g. {{X: 22.5, Y: 0, Z: 45}})")
    for method, write in (("enable", p.enable), ("disable", p.disable)):
        if write is not None and write.value is None:
            raise ValueError(f"qcodes options: parameters.{method} needs 'value' (e.g. {{value: 'on'}})")
    return opts


def _path(spec: Read | Write | str) -> str:
    return spec if isinstance(spec, str) else spec.parameter


def _paths(parameters: Parameters) -> set[str]:
    """Every parameter path the options name."""
    out: set[str] = set()
    for name in Parameters.model_fields:
        value = getattr(parameters, name)
        specs = value.values() if isinstance(value, dict) else value if isinstance(value, list) else [value]
        out |= {_path(spec) for spec in specs if spec is not None}
    return out


class _Stations:
    """The QCoDeS stations of this process by file, with how many drivers use each."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[Path, tuple[Any, int]] = {}

    def acquire(self, path: Path) -> Any:
        with self._lock:
            station, users = self._open.get(path, (None, 0))
            if station is None:
                station = qcodes.Station(config_file=str(path))
            self._open[path] = (station, users + 1)
            return station

    def release(self, path: Path) -> None:
        with self._lock:
            station, users = self._open.pop(path, (None, 0))
            if station is None:
                return
            if users > 1:
                self._open[path] = (station, users - 1)
                return
            station.close_all_registered_instruments()


STATIONS = _Stations()


def _raise_visa_fault(exc: Exception, what: str) -> None:
    """Raise a VISA error (QCoDeS keeps its type) as a timeout or a lost connection; other errors as they are."""
    import pyvisa

    if not isinstance(exc, pyvisa.errors.VisaIOError):
        raise exc
    if exc.error_code == pyvisa.constants.StatusCode.error_timeout:
        raise InstrumentTimeout(f"{what}: VISA timeout ({exc.abbreviation})") from exc
    raise InstrumentDisconnected(f"{what}: {exc.abbreviation}") from exc


class QcodesDriver:
    """Driver methods on parameters of a QCoDeS station (source, counter or analysers, per the options)."""

    @classmethod
    def driver_methods(cls, options: Mapping[str, Any]) -> set[str]:
        """The methods these options provide (the profile's check); ValueError for bad options."""
        return set(parse_options(options).parameters.model_dump(exclude_none=True))

    def __init__(self, station: str, parameters: Mapping[str, Any]) -> None:
        self.options = parse_options({"station": station, "parameters": parameters})
        self.path = Path(station).expanduser().resolve()
        self.station = STATIONS.acquire(self.path)
        self._params: dict[str, Any] = {}
        try:
            for path in sorted(_paths(self.options.parameters)):
                self._params[path] = self._resolve(path)
        except Exception:
            self.close()
            raise

    def _resolve(self, path: str) -> Any:
        name, *attrs = path.split(".")
        try:
            obj = self.station.components.get(name) or self.station.load_instrument(name)
        except Exception as exc:
            _raise_visa_fault(exc, f"QCoDeS instrument {name!r}")
        for attr in attrs:
            if not hasattr(obj, attr):
                raise InstrumentConfigError(f"QCoDeS station {str(self.path)!r}: {path!r} has no {attr!r}")
            obj = getattr(obj, attr)
        if not callable(obj):
            raise InstrumentConfigError(f"QCoDeS station {str(self.path)!r}: {path!r} is not a parameter")
        return obj

    def close(self) -> None:
        """Release this driver's use of the station (its instruments close with the last user)."""
        if self.station is not None:
            self.station = None
            STATIONS.release(self.path)

    # ---- parameter access -------------------------------------------------------------------------------------

    def _get(self, spec: Read | str) -> Any:
        path, key = (spec, None) if isinstance(spec, str) else (spec.parameter, spec.key)
        try:
            value = self._params[path].get()
        except Exception as exc:
            _raise_visa_fault(exc, f"getting {path}")
        if key is not None:
            return value[key]
        if isinstance(value, Mapping):
            return ",".join(str(v) for v in value.values())  # IDN: vendor,model,serial,firmware
        return value

    def _set(self, spec: Write | str, value: Any) -> None:
        path = _path(spec)
        try:
            self._params[path].set(value)
        except Exception as exc:
            _raise_visa_fault(exc, f"setting {path}")

    def _set_choice(self, spec: Write, choice: str) -> None:
        assert spec.values is not None  # parse_options requires them
        if choice not in spec.values:
            raise ValueError(f"{spec.parameter}: no value for {choice!r} in values (has {', '.join(spec.values)})")
        self._set(spec, spec.values[choice])

    # ---- the driver protocol ----------------------------------------------------------------------------------

    def identify(self) -> str:
        """The identity parameter, an IDN mapping joined with commas; without one, the instruments used."""
        spec = self.options.parameters.identify
        if spec is None:  # *IDN? of a counter or analyser the options give no identity for
            names = sorted({path.split(".")[0] for path in self._params})
            return f"QCoDeS {', '.join(names)} of station {self.path.name}"
        return str(self._get(spec))

    def firmware_build(self) -> str:
        """The firmware build parameter (e.g. IDN with key: firmware)."""
        return str(self._get(self.options.parameters.firmware_build))  # type: ignore[arg-type]

    def enable(self) -> None:
        """Set the enable parameter to its value."""
        spec = self.options.parameters.enable
        self._set(spec, spec.value)  # type: ignore[union-attr]

    def disable(self) -> None:
        """Set the disable parameter to its value."""
        spec = self.options.parameters.disable
        self._set(spec, spec.value)  # type: ignore[union-attr]

    def set_integration(self, seconds: float) -> None:
        """Set the integration parameter to `seconds` times its scale."""
        spec = self.options.parameters.set_integration
        self._set(spec, seconds * (1.0 if isinstance(spec, str) else spec.scale))  # type: ignore[union-attr]

    def coincidences(self) -> list[Any]:
        """The four coincidence parameters (or one that returns all four)."""
        spec = self.options.parameters.coincidences
        if isinstance(spec, list):
            return [self._get(s) for s in spec]
        return list(self._get(spec))  # type: ignore[arg-type]

    def singles(self, channel: int) -> Any:
        """The singles parameter of `channel` (1 = arm A)."""
        specs = self.options.parameters.singles or []
        if not 1 <= channel <= len(specs):
            raise ValueError(f"no singles parameter for channel {channel} (have {len(specs)})")
        return self._get(specs[channel - 1])

    def set_basis(self, arm: str, basis: str) -> None:
        """Set arm `arm`'s analyser parameter to the value of `basis`."""
        arms = self.options.parameters.set_basis or {}
        if arm not in arms:
            raise ValueError(f"no analyser parameter for arm {arm!r} (have {', '.join(arms)})")
        self._set_choice(arms[arm], basis)

    def prepare_state(self, state: str) -> None:
        """Set the state-preparation parameter to the value of `state` (NONE: pairs again)."""
        self._set_choice(self.options.parameters.prepare_state, state)  # type: ignore[arg-type]
