"""Running the bench emulators together: in the current event loop, or in a background thread for tests."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from harness.emulators.decoder import EmulatedDecoder
from harness.emulators.faults import Fault, FaultPlan
from harness.emulators.model import LinkModel, LinkParameters
from harness.emulators.servers import FirmwareEmulator, FirmwarePort, ScpiEmulator, SourceState
from harness.emulators.waveplates import WaveplateEmulator, waveplate_emulator_options
from harness.physics.drift import DriftState
from harness.profiles import LoadedProfile, Profile

SOURCE_COMMANDS = {"identify": "*IDN?", "firmware_build": "FW?", "enable": "PAIR:ON", "disable": "PAIR:OFF"}
COUNTER_COMMANDS = {
    "set_integration": "COUN:TIME {seconds}",
    "coincidences": "COUN:COIN?",
    "singles": "COUN:SING? {channel}",
    "errors": "SYST:ERR?",
}
ANALYZER_COMMANDS = {"set_basis": "ANAL:BAS {arm},{basis}", "prepare_state": "PREP {state}"}
DECODER_COMMANDS = {"decode": "DEC? {code},{syndrome}"}
# The flash a served bench profile names: the firmware emulator's FW:LOAD, as a query so a refusal is read.
FLASH_COMMAND = "FW:LOAD? {build}"
PHYSICS_BLOCKS = ("source", "link", "detectors", "memory", "drift")
CARRIED_BLOCKS = ("measurement", "tolerances", "qec", "tomography")


class EmulatorSet:
    """A SCPI counter/analyser emulator and a serial source-firmware emulator sharing one pair source.

    Faults apply to both emulators, each with its own seeded RNG; scpi-error only concerns the
    counter and wrong-build only the firmware.

    The firmware also serves the QEC decoder (DEC?), built for the emulated link's QEC noise. Its faulty
    table entries follow the build (harness.emulators.decoder.DECODER_BUGS, e.g. 2.5.0-rc1 has one), so
    `qharness emulate --build 2.5.0-rc1` serves the faulty decoder; `decoder_faults` overrides them (an empty
    tuple serves a correct decoder whatever the build) and `decoder=False` serves a firmware without one.
    Over socket:// the decoder instrument opens its own connection to the firmware's port; on a pty it
    gets a second pty of the same firmware.

    Builds and drift. `builds` maps every build the firmware can load (FW:LOAD) to its LinkParameters (default:
    only `build`); a load switches the physics the counter serves, the build FW? reports and the decoder's faulty
    entries. `drift` maps builds to their profile `drift` block: the set then draws one session's drift (keyed by
    seed, `profile_name`, the starting build and `session`), which carries on across loads as a bench's would.
    `EmulatorSet.from_profile` fills both from a loaded profile.
    """

    def __init__(
        self,
        params: LinkParameters,
        build: str,
        *,
        seed: int | None = 0,
        faults: Iterable[str | Fault] = (),
        serial: str = "socket",
        real_time: bool = False,
        decoder: bool = True,
        decoder_faults: Iterable[tuple[str, str]] | None = None,
        builds: Mapping[str, LinkParameters] | None = None,
        drift: Mapping[str, Any] | None = None,
        profile_name: str = "emulated",
        session: int = 0,
        waveplates: Mapping[str, Any] | None = None,
    ) -> None:
        if serial not in ("socket", "pty"):
            raise ValueError(f"serial mode must be 'socket' or 'pty', got {serial!r}")
        specs = list(faults)
        base = 0 if seed is None else int(seed)
        self.build = build
        self.serial_mode = serial
        self.builds: dict[str, LinkParameters] = {**(builds or {}), build: params}
        self.drift_specs = dict(drift or {})
        self.drift = self._drift_state(seed, profile_name, build, session) if self.drift_specs else None

        self.source_state = SourceState(on=False)
        self._decoder_faults = None if decoder_faults is None else tuple(decoder_faults)
        self._decoders: dict[str, EmulatedDecoder] = {}
        # `waveplates` (WaveplateEmulator options) serves a one-detector bench set by waveplate angles instead.
        scpi_class: Any = ScpiEmulator if waveplates is None else partial(WaveplateEmulator, **waveplates)
        self.scpi = scpi_class(
            LinkModel(params),
            seed=seed,
            faults=FaultPlan.from_specs(specs, seed=base + 1),
            real_time=real_time,
            source=self.source_state,
            drift=self.drift,
        )
        self.decoder = self._decoder_of(build) if decoder else None
        self.firmware = FirmwareEmulator(
            build,
            faults=FaultPlan.from_specs(specs, seed=base + 2),
            source=self.source_state,
            decoder=self.decoder,
            loadable=self.builds,
            on_load=self._load,
        )
        self.decoder_port = FirmwarePort(self.firmware) if decoder and serial == "pty" else None
        self.serial_url: str | None = None
        self.decoder_url: str | None = None

    @classmethod
    def from_profile(cls, loaded: LoadedProfile, build: str | None = None, **kw: Any) -> EmulatorSet:
        """Emulators of every build of a loaded profile, running `build` (default firmware.build) first.

        Keyword arguments are those of EmulatorSet (seed, session, faults, serial, ...). A build without the
        source, link and detectors blocks is a ValueError naming it.
        """
        build = loaded.default_build if build is None else build
        effective = {b: loaded.effective(b) for b in dict.fromkeys([*loaded.builds, build])}
        for b, p in effective.items():
            missing = [block for block in ("source", "link", "detectors") if getattr(p, block) is None]
            if missing:
                raise ValueError(
                    f"profile {loaded.path}: build {b!r} lacks the physics blocks {', '.join(missing)} "
                    "the emulators serve; add them"
                )
        params = {b: LinkParameters.from_profile(p) for b, p in effective.items()}
        drift = {b: p.drift for b, p in effective.items()}
        kw.setdefault("waveplates", waveplate_emulator_options(effective[build]))
        return cls(params[build], build, builds=params, drift=drift, profile_name=loaded.name, **kw)

    def _drift_state(self, seed: int | None, profile_name: str, build: str, session: int) -> DriftState:
        # An unseeded emulator draws its drift from fresh entropy, like its counts.
        key = int(np.random.SeedSequence().entropy) if seed is None else int(seed)
        return DriftState(self.drift_specs.get(build), key, profile_name, build, session)

    def _decoder_of(self, build: str) -> EmulatedDecoder:
        if build not in self._decoders:
            self._decoders[build] = EmulatedDecoder.from_params(self.builds[build], build, self._decoder_faults)
        return self._decoders[build]

    def _load(self, build: str) -> None:
        """Serve `build` (the firmware's FW:LOAD): its physics, drift spec and decoder."""
        self.build = build
        self.scpi.model = LinkModel(self.builds[build])
        if self.drift is not None:
            self.drift.spec = self.drift_specs.get(build)
        if self.decoder is not None:
            self.decoder = self.firmware.decoder = self._decoder_of(build)

    def drift_offsets(self) -> dict:
        """This emulator session's drift: session, offsets and integration clock ({} without drift)."""
        if self.drift is None or not self.drift.active:
            return {}
        state = self.drift
        return {"session": state.session, "offsets": state.offsets.to_dict(), "clock_s": state.clock_s}

    @property
    def scpi_port(self) -> int:
        """Bound TCP port of the SCPI emulator."""
        assert self.scpi.port is not None, "emulators not started"
        return self.scpi.port

    @property
    def visa_resource(self) -> str:
        """VISA resource string of the SCPI emulator."""
        return f"TCPIP0::127.0.0.1::{self.scpi_port}::SOCKET"

    async def start(self, scpi_port: int = 0, serial_port: int = 0) -> None:
        """Start both emulators on 127.0.0.1 (ports 0 = ephemeral)."""
        await self.scpi.start(scpi_port)
        if self.serial_mode == "pty":
            self.serial_url = await self.firmware.start_pty()
        else:
            port = await self.firmware.start(serial_port)
            self.serial_url = f"socket://127.0.0.1:{port}"
        if self.decoder_port is not None:
            self.decoder_url = await self.decoder_port.start_pty()
        elif self.decoder is not None:
            self.decoder_url = self.serial_url

    async def stop(self) -> None:
        """Stop both emulators."""
        await self.scpi.stop()
        await self.firmware.stop()
        if self.decoder_port is not None:
            await self.decoder_port.stop()

    def injected(self) -> dict[str, int]:
        """Faults injected so far by both emulators, by kind."""
        total: dict[str, int] = {}
        for plan in (self.scpi.faults, self.firmware.faults):
            for k, v in plan.injected.items():
                total[k] = total.get(k, 0) + v
        return total

    def sessions(self) -> dict[str, dict[str, int]]:
        """Measurement sessions per instrument (source, counter): ended, open now, and overlaps (two runs at once)."""
        return {"source": self.firmware.sessions.summary(), "counter": self.scpi.sessions.summary()}

    def overlaps(self) -> int:
        """How many measurement sessions began while another client's was open, over both instruments."""
        return self.firmware.sessions.overlaps + self.scpi.sessions.overlaps

    def bench_block(
        self, *, timeout_s: float | None = None, retries: int | None = None, backoff_s: float | None = None
    ) -> dict:
        """The `bench:` block of a profile pointing at the live emulators (with a decoder when one is served).

        A timing left None is left out, so the profile's default applies.
        """
        timing = {"timeout_s": timeout_s, "retries": retries, "backoff_s": backoff_s}
        block: dict[str, Any] = {key: value for key, value in timing.items() if value is not None}
        block["source"] = {"transport": "serial", "url": self.serial_url, "commands": dict(SOURCE_COMMANDS)}
        analyzers = getattr(self.scpi, "analyzer_commands", ANALYZER_COMMANDS)
        for role, commands in (("counter", COUNTER_COMMANDS), ("analyzers", analyzers)):
            block[role] = {"transport": "visa", "resource": self.visa_resource, "commands": dict(commands)}
        if self.decoder_url is not None:
            block["decoder"] = {"transport": "serial", "url": self.decoder_url, "commands": dict(DECODER_COMMANDS)}
        return block

    def profile_dict(self, profile: Profile, name: str, *, flash_timeout_s: float = 10.0, **bench_kw: Any) -> dict:
        """A kind-bench profile: the physics of the effective `profile`, a bench block at the live ports, FW:LOAD."""
        data: dict[str, Any] = {
            "name": name,
            "description": f"live emulated bench (build {self.build}) started by qharness emulate",
            "kind": "bench",
            "firmware": {
                "build": self.build,
                "baseline": profile.firmware.baseline,
                "flash": {"command": FLASH_COMMAND, "timeout_s": flash_timeout_s},
            },
        }
        for block in (*PHYSICS_BLOCKS, *CARRIED_BLOCKS):
            value = getattr(profile, block)
            if block == "tolerances":
                data[block] = {k: v.model_dump(mode="json", exclude_none=True) for k, v in value.items()}
            elif value is not None:
                data[block] = value.model_dump(mode="json")
        data["bench"] = self.bench_block(**bench_kw)
        return data

    def write_profile(self, path: str | Path, profile: Profile, name: str, **bench_kw: Any) -> Path:
        """Write `profile_dict(...)` as YAML to `path` and return the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = yaml.safe_dump(self.profile_dict(profile, name, **bench_kw), sort_keys=False)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)  # atomic, so a reader never sees half a profile
        return path


class ThreadedEmulators:
    """An EmulatorSet served by an event loop in a daemon thread (for tests, benchmarks and notebooks).

    Pass `params` and `build` (and EmulatorSet's keywords), or a ready `emulators` set (e.g. from_profile's).
    """

    def __init__(
        self,
        params: LinkParameters | None = None,
        build: str | None = None,
        *,
        emulators: EmulatorSet | None = None,
        **kw: Any,
    ) -> None:
        if emulators is None:
            if params is None or build is None:
                raise TypeError("ThreadedEmulators needs params and build, or emulators=EmulatorSet(...)")
            emulators = EmulatorSet(params, build, **kw)
        self.set = emulators
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="qharness-emulators", daemon=True)

    def start(self) -> ThreadedEmulators:
        """Start the loop and both emulators; return self."""
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.set.start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        """Stop the emulators and the loop."""
        if self._loop.is_running():
            asyncio.run_coroutine_threadsafe(self.set.stop(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        if not self._loop.is_closed() and not self._loop.is_running():
            self._loop.close()

    def __enter__(self) -> EmulatorSet:
        self.start()
        return self.set

    def __exit__(self, *exc: object) -> None:
        self.stop()
