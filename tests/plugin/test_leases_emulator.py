"""The emulator's record of measurement sessions, which the lease tests rely on: it counts two clients measuring
at once, and only that (a client's own second connection, a decoder's line, sessions one after another)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from harness.emulators import EmulatorSet, ThreadedEmulators
from harness.emulators.sessions import SessionLog
from harness.profiles import load_profile


class Client:
    """One TCP connection to an emulator; `ask` waits for the reply, so every earlier command was applied."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.file = self.sock.makefile("rw", newline="\n")

    def send(self, *commands: str) -> None:
        for command in commands:
            self.file.write(command + "\n")
        self.file.flush()

    def ask(self, query: str) -> str:
        self.send(query)
        return self.file.readline().strip()

    def close(self) -> None:
        self.file.close()
        self.sock.close()


@pytest.fixture
def bench() -> Iterator[EmulatorSet]:
    """The emulated bench (build 2.4.0) on loopback."""
    emulators = EmulatorSet.from_profile(load_profile("bench-emulated"), "2.4.0", seed=1)
    with ThreadedEmulators(emulators=emulators) as emu:
        yield emu


def _port(url: str | None) -> int:
    assert url is not None
    return int(url.rsplit(":", 1)[1])


def _settle(emu: EmulatorSet) -> None:
    """Wait until the emulator has seen every client close (their sessions end then)."""
    deadline = time.monotonic() + 5
    while any(log["open"] for log in emu.sessions().values()):
        assert time.monotonic() < deadline, emu.sessions()
        time.sleep(0.01)


def test_two_clients_measuring_at_once_are_one_overlap_per_instrument(bench: EmulatorSet) -> None:
    a, b = Client(_port(bench.serial_url)), Client(_port(bench.serial_url))
    ca, cb = Client(bench.scpi_port), Client(bench.scpi_port)
    a.send("PAIR:ON")
    a.ask("PAIR?")
    ca.ask("COUN:COIN?")
    b.send("PAIR:ON")  # the source is already on for a: a second run at once
    b.ask("PAIR?")
    cb.ask("COUN:COIN?")
    assert bench.sessions()["source"] == {"sessions": 0, "open": 2, "overlaps": 1}
    assert bench.sessions()["counter"] == {"sessions": 0, "open": 2, "overlaps": 1}
    for c in (a, b, ca, cb):
        c.close()
    _settle(bench)
    assert bench.sessions() == {
        "source": {"sessions": 2, "open": 0, "overlaps": 1},
        "counter": {"sessions": 2, "open": 0, "overlaps": 1},
    }
    assert bench.overlaps() == 2


def test_sessions_one_after_another_and_a_runs_own_lines_are_no_overlap(bench: EmulatorSet) -> None:
    for _ in range(2):  # two runs in turn, each with its source, decoder, counter and analyser lines
        source, decoder = Client(_port(bench.serial_url)), Client(_port(bench.decoder_url))
        counter, analyzers = Client(bench.scpi_port), Client(bench.scpi_port)
        source.send("PAIR:ON")
        source.ask("*IDN?")
        analyzers.send("ANAL:BAS 1,X")
        analyzers.ask("ANAL:BAS?")
        counter.send("COUN:TIME 0.1")
        counter.ask("COUN:COIN?")
        counter.ask("COUN:SING? 1")
        decoder.ask("DEC? surface_d3,0")
        source.send("PAIR:OFF")  # ends the source session before the line closes
        source.ask("PAIR?")
        assert bench.sessions()["source"]["open"] == 0
        for c in (source, decoder, counter, analyzers):
            c.close()
        _settle(bench)
    assert bench.sessions() == {
        "source": {"sessions": 2, "open": 0, "overlaps": 0},
        "counter": {"sessions": 2, "open": 0, "overlaps": 0},
    }
    assert bench.overlaps() == 0


def test_a_session_log_records_each_session_and_counts_overlaps() -> None:
    ticks = iter(range(100))
    log = SessionLog(clock=lambda: float(next(ticks)))
    log.begin(1)
    log.begin(1)  # already open: the same session
    log.begin(2)  # overlap
    log.begin(3)  # overlap
    log.end(1)
    log.end(1)  # nothing open for 1
    log.end(2)
    log.end(3)
    log.begin(4)  # alone again
    log.end(4)
    assert log.overlaps == 2
    assert log.sessions == [(1, 0.0, 3.0), (2, 1.0, 4.0), (3, 2.0, 5.0), (4, 6.0, 7.0)]
    assert log.summary() == {"sessions": 4, "open": 0, "overlaps": 2}
