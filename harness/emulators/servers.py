"""Asyncio emulators of the bench: a SCPI counter/analyser server and a serial pair-source firmware.

Both bind to 127.0.0.1 only. Every reply is one line terminated by "\\n"; commands whose header
ends in "?" are queries, all others are writes without a reply (SCPI style).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import tty
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from harness.emulators.decoder import EmulatedDecoder
from harness.emulators.faults import FaultPlan
from harness.emulators.model import PREP_STATES, LinkModel
from harness.emulators.sessions import SessionLog
from harness.physics.drift import DriftState
from harness.physics.link import sample_singles
from harness.records import BASES

LOOPBACK = "127.0.0.1"
NO_ERROR = '0,"No error"'
ERR_RANGE = (-222, "Data out of range")
ERR_HEADER = (-113, "Undefined header")
ERR_MISSING = (-109, "Missing parameter")


@dataclass
class SourceState:
    """Whether the pair source is emitting; shared by the firmware and the counter emulators."""

    on: bool = True


class LineServer:
    """A line-oriented server over TCP (127.0.0.1) or a pty, with fault injection."""

    name = "emulator"
    # Command headers that begin and end a client's measurement session (see harness.emulators.sessions).
    session_begins: frozenset[str] = frozenset()
    session_ends: frozenset[str] = frozenset()

    def __init__(self, faults: FaultPlan | None = None) -> None:
        self.faults = faults if faults is not None else FaultPlan()
        self.sessions = SessionLog()
        self._client_ids = itertools.count(1)
        self.port: int | None = None
        self.pty_path: str | None = None
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._pty: tuple[int, int] | None = None
        self._pty_task: asyncio.Task | None = None

    # ---- to implement -------------------------------------------------------------------------------------------

    def handle(self, line: str) -> tuple[str | None, float]:
        """Apply one command; return (reply or None, extra delay in s)."""
        raise NotImplementedError

    # ---- command pipeline ---------------------------------------------------------------------------------------

    @staticmethod
    def is_query(line: str) -> bool:
        """A command is a query when its header ends in '?'."""
        return line.split(" ", 1)[0].endswith("?")

    def _track(self, line: str, client: int) -> None:
        """Begin or end `client`'s measurement session when the command does."""
        header = line.split(" ", 1)[0].upper()
        if header in self.session_begins:
            self.sessions.begin(client)
        elif header in self.session_ends:
            self.sessions.end(client)

    async def _process(self, line: str, client: int = 0) -> str | None:
        """Run one command of `client` through faults and the handler; return the bytes to send, or 'CLOSE' / None."""
        action = self.faults.decide(self.is_query(line))
        if action == "disconnect":
            return "\0CLOSE"
        self._track(line, client)
        reply, delay = self.handle(line)
        if reply is None or action == "drop":
            return None
        if action == "garbage":
            reply = self.faults.garbage()
        if self.faults.slow_s:
            self.faults.injected["slow"] += 1
            delay += self.faults.slow_s
        if delay > 0:
            await asyncio.sleep(delay)
        return reply + "\n"

    # ---- TCP --------------------------------------------------------------------------------------------------------

    async def start(self, port: int = 0) -> int:
        """Listen on 127.0.0.1:`port` (0 = any free port); return the bound port."""
        self._server = await asyncio.start_server(self._client, LOOPBACK, port, reuse_address=True)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        client = next(self._client_ids)
        try:
            while True:
                raw = await reader.readline()
                if not raw:
                    break
                line = raw.decode(errors="replace").strip()
                if not line:
                    continue
                out = await self._process(line, client)
                if out == "\0CLOSE":
                    break
                if out is not None:
                    writer.write(out.encode())
                    await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            self.sessions.end(client)
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    # ---- pty ----------------------------------------------------------------------------------------------------

    async def start_pty(self) -> str:
        """Serve on a new pseudo-terminal; return the path of its slave end (open it like a serial port)."""
        master, slave = os.openpty()
        tty.setraw(slave)
        self._pty = (master, slave)
        self.pty_path = os.ttyname(slave)
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        def readable() -> None:
            try:
                data = os.read(master, 4096)
            except OSError:
                return
            queue.put_nowait(data)

        loop.add_reader(master, readable)
        self._pty_task = asyncio.create_task(self._pty_loop(queue, master))
        return self.pty_path

    async def _pty_loop(self, queue: asyncio.Queue[bytes], master: int) -> None:
        buf = b""
        while True:
            buf += await queue.get()
            *lines, buf = buf.replace(b"\r", b"\n").split(b"\n")
            for raw in lines:
                line = raw.decode(errors="replace").strip()
                if not line:
                    continue
                out = await self._process(line)
                # A pty cannot be hung up from this side without destroying it, so a disconnect acts as a drop.
                if out is not None and out != "\0CLOSE":
                    with contextlib.suppress(OSError):
                        os.write(master, out.encode())

    async def stop(self) -> None:
        """Stop listening and close every connection and the pty."""
        if self._server is not None:
            self._server.close()
        for w in list(self._writers):
            w.close()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
            self._server = None
        if self._pty is not None:
            asyncio.get_running_loop().remove_reader(self._pty[0])
            if self._pty_task is not None:
                self._pty_task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._pty_task
            for fd in self._pty:
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._pty = None


class ScpiEmulator(LineServer):
    """The coincidence counter and the polarisation analysers behind one SCPI socket.

    COUN:COIN? integrates for the COUN:TIME set (without sleeping unless `real_time`) and returns
    Poisson counts of ++, +-, -+, -- (A first) for the current analyser bases, at the total
    coincidence rate C_t + C_acc, with the outcome split of the observed delivered state.
    COUN:SING? 1|2 returns the singles Poisson(S_A T), Poisson(S_B T) of that same integration.

    PREP <state> (0, 1, +, -, +i, -i) switches to link tomography: the prepared qubit crosses the
    observed link (link, accidentals, readout) to analyser B. The four counts then carry B's result
    in the second sign: B '+' = ++ + -+ and B '-' = +- + -- (A's sign is an unbiased coin).
    PREP NONE returns to entangled pairs.

    With a `drift` state, each integration sees the session's offsets and the wander at its midpoint on the
    emulator's integration clock (the sum of the COUN:TIME of every integration so far).
    """

    name = "counter"
    session_begins = frozenset({"COUN:TIME", "COUN:COIN?", "COUN:SING?"})

    def __init__(
        self,
        model: LinkModel,
        *,
        seed: int | None = None,
        faults: FaultPlan | None = None,
        real_time: bool = False,
        source: SourceState | None = None,
        identity: str = "qharness,COUNTER-EMU,0,1.0",
        drift: DriftState | None = None,
    ) -> None:
        super().__init__(faults)
        self.model = model
        self.drift = drift
        self.rng = np.random.default_rng(seed)
        self.real_time = real_time
        self.source = source if source is not None else SourceState(on=True)
        self.identity = identity
        self.integration_s = 1.0
        self.bases = {"A": "Z", "B": "Z"}
        self.prepared: str | None = None
        self.errors: list[tuple[int, str]] = []
        self.integrations = 0
        self._singles: tuple[int, int] | None = None
        self.queue_errors(self.faults.scpi_errors)

    def queue_errors(self, n: int, error: tuple[int, str] = ERR_RANGE) -> None:
        """Queue `n` SCPI errors (an injected fault) for SYST:ERR? to report."""
        for _ in range(n):
            self.errors.append(error)
            self.faults.injected["scpi-error"] += 1

    def _error(self, err: tuple[int, str]) -> tuple[None, float]:
        self.errors.append(err)
        return None, 0.0

    def integrate(self) -> np.ndarray:
        """Draw one integration: the four coincidence counts; singles are kept for COUN:SING?."""
        T = self.integration_s
        model = self.model
        if self.drift is not None and self.drift.active:
            model = model.drifted(self.drift.offsets, self.drift.advance([T]))
        r = model.link_rates(self.source.on)
        rate = r.coincidence_hz * T
        if self.prepared is None:
            p = model.bell_probabilities(self.bases["A"], self.bases["B"], self.source.on)
        else:
            pb = model.prep_probabilities(self.prepared, self.bases["B"], self.source.on)
            p = np.array([pb[0], pb[1], pb[0], pb[1]]) / 2
        counts = self.rng.poisson(rate * p)
        self._singles = sample_singles(r, int(counts.sum()), T, self.rng)
        self.integrations += 1
        return counts

    def handle(self, line: str) -> tuple[str | None, float]:
        """Apply one SCPI command."""
        header, _, arg = line.partition(" ")
        header, arg = header.upper(), arg.strip()
        if header == "*IDN?":
            return self.identity, 0.0
        if header == "*OPC?":
            return "1", 0.0
        if header == "*RST":
            self.bases, self.prepared, self.integration_s, self._singles = {"A": "Z", "B": "Z"}, None, 1.0, None
            return None, 0.0
        if header == "*CLS":
            self.errors.clear()
            return None, 0.0
        if header in ("SYST:ERR?", "SYSTEM:ERROR?", "SYST:ERR:NEXT?"):
            if self.errors:
                code, msg = self.errors.pop(0)
                return f'{code},"{msg}"', 0.0
            return NO_ERROR, 0.0
        if header == "COUN:TIME":
            try:
                t = float(arg)
            except ValueError:
                return self._error(ERR_MISSING if not arg else ERR_RANGE)
            if not 0.0 < t <= 1e5:
                return self._error(ERR_RANGE)
            self.integration_s, self._singles = t, None
            return None, 0.0
        if header == "COUN:TIME?":
            return repr(self.integration_s), 0.0
        if header == "COUN:COIN?":
            counts = self.integrate()
            return ",".join(str(int(c)) for c in counts), (self.integration_s if self.real_time else 0.0)
        if header == "COUN:SING?":
            if arg not in ("1", "2"):
                return self._error(ERR_RANGE)
            if self._singles is None:
                self.integrate()
            return str(self._singles[int(arg) - 1]), 0.0  # type: ignore[index]
        if header == "ANAL:BAS":
            arm, _, basis = arg.partition(",")
            arm = {"1": "A", "2": "B"}.get(arm.strip().upper(), arm.strip().upper())
            basis = basis.strip().upper()
            if arm not in self.bases or basis not in BASES:
                return self._error(ERR_RANGE)
            self.bases[arm] = basis
            return None, 0.0
        if header == "ANAL:BAS?":
            return f"{self.bases['A']},{self.bases['B']}", 0.0
        if header == "PREP":
            state = arg.strip().lower()
            if state == "none":
                self.prepared = None
            elif state in PREP_STATES:
                self.prepared = state
            else:
                return self._error(ERR_RANGE)
            return None, 0.0
        return self._error(ERR_HEADER)


class FirmwareEmulator(LineServer):
    """The pair source's serial firmware: *IDN?, FW? (the build), PAIR:ON / PAIR:OFF, PAIR?, FW:LOAD.

    With a `decoder`, DEC? <code>,<syndrome> returns the decoder's logical flip bit (0/1), or
    'ERR <reason>' for an unknown code or a malformed syndrome (see harness.emulators.decoder).

    FW:LOAD <build> loads one of the `loadable` builds (default: only the running one) and calls `on_load(build)`
    so the bench serves that build's physics; FW:LOAD? <build> does the same and replies 'OK <build>', or
    'ERR <reason>' for a build it does not have (the write form then leaves the running build, as a flash that
    failed does). The stuck-flash fault acknowledges a load but keeps the running build.
    """

    name = "source"
    session_begins = frozenset({"PAIR:ON"})
    session_ends = frozenset({"PAIR:OFF"})

    def __init__(
        self,
        build: str,
        *,
        faults: FaultPlan | None = None,
        source: SourceState | None = None,
        decoder: EmulatedDecoder | None = None,
        loadable: Iterable[str] | None = None,
        on_load: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(faults)
        self.build = build
        self.source = source if source is not None else SourceState(on=False)
        self.decoder = decoder
        self.loadable = tuple(loadable) if loadable is not None else (build,)
        self.on_load = on_load
        self.loads = 0

    def load(self, build: str) -> str:
        """Load firmware `build` (FW:LOAD); return 'OK <build>' or 'ERR <reason>' (the running build stays)."""
        if build not in self.loadable:
            return f"ERR unknown build {build!r}; this flasher has {', '.join(self.loadable)}"
        self.loads += 1
        if self.faults.flash_sticks():
            return f"OK {build}"
        self.build = build
        if self.on_load is not None:
            self.on_load(build)
        return f"OK {build}"

    def _reported_build(self) -> str:
        if self.faults.wrong_build is not None:
            self.faults.injected["wrong-build"] += 1
            return self.faults.wrong_build
        return self.build

    def handle(self, line: str) -> tuple[str | None, float]:
        """Apply one firmware command."""
        header = line.split(" ", 1)[0].upper()
        if header == "*IDN?":
            return f"qharness,PAIR-SOURCE-EMU,0,{self._reported_build()}", 0.0
        if header == "FW?":
            return self._reported_build(), 0.0
        if header == "DEC?":
            if self.decoder is None:
                return "ERR this firmware has no decoder", 0.0
            return self.decoder.handle(line.partition(" ")[2]), 0.0
        if header in ("FW:LOAD", "FW:LOAD?"):
            reply = self.load(line.partition(" ")[2].strip())
            return (reply if header.endswith("?") else None), 0.0
        if header == "PAIR:ON":
            self.source.on = True
        elif header == "PAIR:OFF":
            self.source.on = False
        elif header == "PAIR?":
            return "1" if self.source.on else "0", 0.0
        return None, 0.0


class FirmwarePort(LineServer):
    """A second serial port of the same firmware (the decoder's own line when the firmware is served on a pty).

    A pty carries one client: the source instrument and the decoder instrument each need their own.
    """

    name = "decoder"

    def __init__(self, firmware: FirmwareEmulator) -> None:
        super().__init__(firmware.faults)
        self.firmware = firmware

    def handle(self, line: str) -> tuple[str | None, float]:
        """Apply one firmware command."""
        return self.firmware.handle(line)
