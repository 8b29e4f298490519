"""A lab bench as a Device: pair-source firmware, coincidence counter and polarisation analysers.

Each instrument is reached through harness.instruments (VISA or serial) with the profile's
timeout, bounded retries and backoff. A fault that survives its retries raises a typed
InstrumentError whose message names the instrument, the command, the fault and the retry count.
Every completed tomography setting is handed to `on_record` before the next one starts, so a
caller that stores it there never loses a completed measurement to a later fault.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from harness.devices.base import DeviceContext, RecordCallback, check_duration, check_inputs, require_profile
from harness.devices.flash import check_build_name, flash_source, run_flash_shell, with_flash_command
from harness.devices.schemes import SchemeCounts, measure_link, measure_rate_settings, measure_state, uses_waveplates
from harness.errors import DeviceError
from harness.instruments import (
    DEFAULT_VALIDATORS,
    Instrument,
    InstrumentConfigError,
    InstrumentDisconnected,
    InstrumentError,
    InstrumentProtocolError,
    InstrumentSpec,
    NotSupportedError,
    SessionRecorder,
    Transport,
    parse_scpi_error,
)
from harness.instruments.instrument import Validator, nonneg_ints
from harness.profiles import Profile
from harness.records import BASES, BELL_SETTINGS, INPUTS_4, CoincidenceCounts, Identity, ProcessCounts, TomographyCounts

ROLES = ("source", "counter", "analyzers")
# IEEE 488.2 "operation complete?" query; a profile may name another one as analyzers.commands.sync.
DEFAULT_SYNC = "*OPC?"
# Total integration above which a progress bar is worth showing on a terminal.
PROGRESS_MIN_S = 2.0


class DecoderNotSupportedError(NotSupportedError):
    """The bench has no decoder instrument: the decoder metrics are skipped, with this reason."""


def decoder_bit(reply: str) -> None:
    """Validator: a decoder's answer, the single character 0 or 1 (the predicted logical flip)."""
    if reply.strip() not in ("0", "1"):
        raise InstrumentProtocolError(f"expected a decoder answer 0 or 1, got {reply!r}", reply)


class BenchDevice(DeviceContext):
    """The Device protocol over real instruments (or emulators) described by a profile's `bench` block."""

    kind = "bench"

    @classmethod
    def from_profile(
        cls,
        profile: Profile,
        build: str,
        *,
        seed: int = 0,
        on_record: RecordCallback | None = None,
        recorder: SessionRecorder | None = None,
        session: int = 0,
    ) -> BenchDevice:
        """The device of an effective profile (the device registry's constructor); benches ignore seed and session."""
        return cls(profile, build, recorder=recorder, on_record=on_record)

    def __init__(
        self,
        profile: Profile,
        build: str,
        *,
        recorder: SessionRecorder | None = None,
        on_record: RecordCallback | None = None,
        transports: Mapping[str, Transport] | None = None,
    ) -> None:
        self.profile = require_profile(profile, type(self).__name__)
        self.build = str(build)
        self.name = profile.name
        if profile.bench is None:
            raise InstrumentConfigError(
                f"profile {self.name!r} has no 'bench' block; a bench device needs source, counter and analyzers"
            )
        self.bench = profile.bench
        self.recorder = recorder
        self.on_record = on_record
        transports = dict(transports or {})
        # A counter behind one detector per arm answers one count per setting, not the four of a Pauli bench.
        one = uses_waveplates(profile) and profile.tomography.detectors == 1
        counted = {**DEFAULT_VALIDATORS, "coincidences": nonneg_ints(1)} if one else None
        self.instruments = {
            role: self._instrument(role, transports.get(role), counted if role == "counter" else None) for role in ROLES
        }
        # The decoder is optional and opened on its first decode, so a bench whose decoder is down still measures.
        self.decoder: Instrument | None = None
        if self.bench.decoder is not None:
            validators = {**DEFAULT_VALIDATORS, "decode": decoder_bit}
            self.decoder = self._instrument("decoder", transports.get("decoder"), validators)
        self.setting_redos = 0
        self._open = False

    def _instrument(
        self, role: str, transport: Transport | None, validators: Mapping[str, Validator] | None = None
    ) -> Instrument:
        spec = InstrumentSpec.from_bench(self.bench, role)
        if role == "source":
            spec = with_flash_command(spec, self.profile.firmware.flash)
        return Instrument(
            role,
            spec,
            recorder=self.recorder,
            transport=transport,
            validators=validators,
            sleep=self._sleep,
        )

    # A replay overrides this hook: no waiting between retries of a recorded session.
    @staticmethod
    def _sleep(seconds: float) -> None:
        time.sleep(seconds)

    @property
    def source(self) -> Instrument:
        """The pair-source firmware."""
        return self.instruments["source"]

    @property
    def counter(self) -> Instrument:
        """The coincidence counter."""
        return self.instruments["counter"]

    @property
    def analyzers(self) -> Instrument:
        """The polarisation analysers."""
        return self.instruments["analyzers"]

    # ---- lifecycle --------------------------------------------------------------------------------------------

    def open(self) -> None:
        """Connect every instrument and switch the pair source on (idempotent)."""
        if self._open:
            return
        try:
            for inst in self.instruments.values():
                inst.open()
            self.source.write("enable")
            # A write is unconfirmed; a query on the same line returns only after the source has applied it.
            self.source.query("identify")
        except BaseException:
            self.close()
            raise
        self._open = True

    def close(self) -> None:
        """Switch the source off (best effort, one attempt, bounded by the timeout) and release every instrument."""
        src = self.source
        if src.generation:
            saved = src.retries
            src.retries = 0
            try:
                src.write("disable")
            except (DeviceError, OSError):
                pass  # the source is unreachable; nothing more can be done from here
            finally:
                src.retries = saved
        for inst in self.instruments.values():
            inst.close()
        if self.decoder is not None:
            self.decoder.close()
        self._open = False

    def _require_open(self) -> None:
        if not self._open:
            self.open()

    # ---- identity ---------------------------------------------------------------------------------------------

    def identify(self) -> Identity:
        """Kind (bench or replay), the profile name and the firmware build the source reports (FW?)."""
        self._require_open()
        idn = self.source.query("identify")
        build = self.source.query("firmware_build").strip()
        counter_idn = self.counter.query_raw("*IDN?")
        return Identity(kind=self.kind, profile=self.name, build=build, detail=f"{idn}; counter {counter_idn}")

    # ---- flashing ---------------------------------------------------------------------------------------------

    def flash(self, build: str, profile: Profile | None = None) -> None:
        """Put `build` on the bench with the profile's firmware.flash, then check that the source reports it.

        `profile` (that build's effective profile, same name) replaces the device's profile once the flash took.
        Raises NotSupportedError without firmware.flash, and FlashError, naming the build and the command, when
        the command fails or times out, the shell exits non-zero, or the source then reports another build.
        """
        spec = self.profile.firmware.flash
        if spec is None:
            raise NotSupportedError(
                f"profile {self.name!r} cannot flash builds: add firmware.flash, e.g. "
                "firmware: {flash: {command: 'FW:LOAD? {build}'}} or {flash: {shell: 'flash.sh {build} {profile}'}}"
            )
        build = check_build_name(build)
        if profile is not None and require_profile(profile, type(self).__name__).name != self.name:
            raise ValueError(f"flash({build!r}) got the profile of {profile.name!r}, not of {self.name!r}")
        self._require_open()
        flash_source(self.source, spec, build, self.name, self._run_flash_shell)
        self.build = build
        if profile is not None:
            self.profile = profile

    # A replay overrides this hook: the recorded session's shell flash is not run again.
    @staticmethod
    def _run_flash_shell(line: str, build: str, timeout_s: float) -> None:
        run_flash_shell(line, build, timeout_s)

    # ---- measurements -----------------------------------------------------------------------------------------

    def _generations(self) -> tuple[int, ...]:
        return tuple(inst.generation for inst in self.instruments.values())

    def _poll_errors(self, context: str) -> None:
        """Read SYST:ERR? once; a non-zero entry raises InstrumentProtocolError naming the SCPI error."""
        reply = self.counter.query("errors")
        code, message = parse_scpi_error(reply)
        if code != 0:
            line = self.counter.render("errors")
            raise InstrumentProtocolError(
                f'counter: {line} failed after 0 retries: instrument reported SCPI error {code},"{message}" '
                f"({context})",
                reply,
            )

    def _sync_analyzers(self) -> None:
        """Return once the analysers have applied every write so far.

        The analysers and the counter are separate connections, so without this barrier the counter
        could integrate before a new basis is set.
        """
        if self.analyzers.has("sync"):
            self.analyzers.query("sync")
        else:
            self.analyzers.query_raw(DEFAULT_SYNC)

    def _integrate(self, setup: Callable[[], None] | None, duration_s: float, what: str) -> np.ndarray:
        """Run `setup`, integrate and read the four counts; redo it if any connection was replaced meanwhile."""
        attempts = self.counter.retries + 1
        for _ in range(attempts):
            before = self._generations()
            if setup is not None:
                setup()
                self._sync_analyzers()
            self.counter.write("set_integration", seconds=_seconds(duration_s))
            reply = self.counter.query("coincidences")
            if self._generations() == before:
                return np.array([int(x) for x in reply.split(",")], dtype=np.int64)
            # A reconnect happened: a setting written on the old connection may never have arrived.
            self.setting_redos += 1
        raise InstrumentDisconnected(
            f"counter: {self.counter.render('coincidences')} failed after {attempts - 1} retries: "
            f"connections kept dropping during {what}"
        )

    def _emit(self, kind: str, payload: dict) -> None:
        if self.on_record is not None:
            self.on_record(kind, payload)

    def bell_tomography(self, duration_s: float) -> TomographyCounts:
        """Counts of the 9 Pauli settings (BELL_SETTINGS order, outcomes ++,+-,-+,--), each over `duration_s` s."""
        duration_s = check_duration(duration_s)
        self._require_open()
        counts = np.zeros((len(BELL_SETTINGS), 4), dtype=np.int64)
        with _progress(len(BELL_SETTINGS), duration_s, "Bell tomography") as advance:
            for i, setting in enumerate(BELL_SETTINGS):

                def setup(a: str = setting[0], b: str = setting[1]) -> None:
                    self.analyzers.write("set_basis", arm="A", basis=a)
                    self.analyzers.write("set_basis", arm="B", basis=b)

                row = self._integrate(setup, duration_s, f"setting {setting}")
                self._poll_errors(f"after setting {setting}")
                counts[i] = row
                self._emit(
                    "bell_setting",
                    {"index": i, "setting": setting, "counts": row.tolist(), "duration_s": duration_s},
                )
                advance()
        return TomographyCounts(settings=BELL_SETTINGS, counts=counts, duration_s=duration_s)

    def link_tomography(self, duration_s: float, inputs: Sequence[str] = INPUTS_4) -> ProcessCounts:
        """Counts of link process tomography: inputs x (X, Y, Z) x (+, -), each setting over `duration_s` s.

        Needs `prepare_state` in bench.analyzers.commands; the four counts of each setting carry
        B's outcome in the second sign (B '+' = ++ + -+, B '-' = +- + --).
        """
        duration_s = check_duration(duration_s)
        if not self.analyzers.has("prepare_state"):
            raise NotSupportedError(
                f"profile {self.name!r}: link tomography needs a 'prepare_state' command in bench.analyzers.commands "
                '(e.g. prepare_state: "PREP {state}"); this bench cannot prepare input states'
            )
        inputs = check_inputs(inputs)
        self._require_open()
        counts = np.zeros((len(inputs), len(BASES), 2), dtype=np.int64)
        total = len(inputs) * len(BASES)
        try:
            with _progress(total, duration_s, "Link tomography") as advance:
                for i, state in enumerate(inputs):
                    for j, basis in enumerate(BASES):

                        def setup(s: str = state, b: str = basis) -> None:
                            self.analyzers.write("prepare_state", state=s)
                            self.analyzers.write("set_basis", arm="B", basis=b)

                        row = self._integrate(setup, duration_s, f"input {state} basis {basis}")
                        self._poll_errors(f"after input {state}, basis {basis}")
                        counts[i, j] = (row[0] + row[2], row[1] + row[3])
                        self._emit(
                            "link_setting",
                            {
                                "input": state,
                                "basis": basis,
                                "counts": counts[i, j].tolist(),
                                "raw": row.tolist(),
                                "duration_s": duration_s,
                            },
                        )
                        advance()
        finally:
            with contextlib.suppress(InstrumentError):
                self.analyzers.write("prepare_state", state="NONE")
                self._sync_analyzers()
        return ProcessCounts(inputs=inputs, bases=BASES, counts=counts, duration_s=duration_s)

    def scheme_tomography(self, duration_s: float) -> SchemeCounts:
        """Counts and singles of every setting of the profile's tomography scheme, each over `duration_s` s."""
        duration_s = check_duration(duration_s)
        self._require_open()
        return measure_state(self, duration_s)

    def scheme_link_tomography(self, duration_s: float) -> SchemeCounts:
        """Counts of the profile's link tomography (inputs x arm B's projections), each over `duration_s` s."""
        duration_s = check_duration(duration_s)
        self._require_open()
        return measure_link(self, duration_s)

    def coincidences(self, duration_s: float) -> CoincidenceCounts:
        """Singles of both arms and coincidences (sum of the outcomes) over `duration_s` s (`measure_rate_settings`)."""
        duration_s = check_duration(duration_s)
        self._require_open()
        detectors = self.profile.detectors
        if detectors is None:
            raise InstrumentConfigError(
                f"profile {self.name!r}: coincidences need detectors.coincidence_window_s; add a 'detectors' block"
            )
        if uses_waveplates(self.profile) and self.profile.tomography.detectors == 1:
            coinc, singles_a, singles_b = measure_rate_settings(self, duration_s)
        else:
            row = self._integrate(None, duration_s, "the coincidence measurement")
            coinc = int(row.sum())
            singles_a = int(self.counter.query("singles", channel=1))
            singles_b = int(self.counter.query("singles", channel=2))
            self._poll_errors("after the coincidence measurement")
        result = CoincidenceCounts(
            singles_a=singles_a,
            singles_b=singles_b,
            coincidences=coinc,
            window_s=float(detectors.coincidence_window_s),
            duration_s=duration_s,
        )
        self._emit("coincidences", result.to_dict())
        return result

    # ---- decoder in the loop ----------------------------------------------------------------------------------

    @property
    def has_decoder(self) -> bool:
        """Whether the profile declares a decoder instrument (bench.decoder)."""
        return self.decoder is not None

    def decode(self, code: str, syndromes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Send each syndrome to the decoder; return (predicted flips as uint8, round-trip latencies in µs).

        One exchange per syndrome, in order: the round trip of a single syndrome is what the latency
        metrics measure, so the exchanges are not batched. Raises DecoderNotSupportedError without bench.decoder.
        """
        if self.decoder is None:
            raise DecoderNotSupportedError(
                f"profile {self.name!r} has no bench.decoder instrument; add one with a decode command, "
                'e.g. decoder: {transport: serial, url: ..., commands: {decode: "DEC? {code},{syndrome}"}}'
            )
        n = len(syndromes)
        answers = np.zeros(n, dtype=np.uint8)
        latency_s = np.zeros(n, dtype=np.float64)
        # Connect first, so that no latency includes the connection set-up.
        self.decoder.open()
        query, clock = self.decoder.query, time.perf_counter
        for i, syndrome in enumerate(syndromes):
            t0 = clock()
            reply = query("decode", code=code, syndrome=syndrome)
            latency_s[i] = clock() - t0
            answers[i] = reply.strip() == "1"
        latency_us = latency_s * 1e6
        self._emit(
            "decoder_exchanges",
            {
                "code": code,
                "syndromes": list(syndromes),
                "answers": answers.tolist(),
                "latency_us": latency_us.tolist(),
            },
        )
        return answers, latency_us

    # ---- provenance -------------------------------------------------------------------------------------------

    def fault_stats(self) -> dict:
        """Per instrument: queries, writes, retries, reconnects and faults by type; plus settings redone."""
        stats: dict[str, Any] = {name: inst.stats.to_dict() for name, inst in self.instruments.items()}
        if self.decoder is not None:
            stats["decoder"] = self.decoder.stats.to_dict()
        stats["setting_redos"] = self.setting_redos
        return stats


def _seconds(duration_s: float) -> str:
    """Integration time as SCPI text without float noise."""
    return f"{duration_s:.9g}"


@contextlib.contextmanager
def _progress(steps: int, step_s: float, label: str) -> Iterator[Callable[[], None]]:
    """A rich progress bar on a terminal for long integrations; a no-op otherwise."""
    if steps * step_s < PROGRESS_MIN_S or not sys.stdout.isatty():
        yield lambda: None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn(label), BarColumn(), TimeRemainingColumn(), transient=True) as bar:
        task = bar.add_task(label, total=steps)
        yield lambda: bar.advance(task)
