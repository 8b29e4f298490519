"""Query overhead of the instrument layer against the SCPI emulator on 127.0.0.1.

Run: python benchmarks/bench_instruments.py. Prints a Markdown table and returns rows (benchmarks.common.row);
ratio = ours / peer (lower is better; target <= 2).

- ours: one `Instrument.query("coincidences")` through pyvisa-py (TCPIP SOCKET resource, "\\n"
  terminations): template rendering, the stale-connection check, the timeout guard, reply
  validation and counters included.
- peer: the same command, "COUN:COIN?\\n", written to a plain socket and its reply line read back,
  against the same emulator (same server-side cost, no VISA and no harness).
- a second row isolates the harness layer: the same Instrument.query against pyvisa-py's own
  resource.query on the same connection.
Times are medians of REPEATS batches of N queries, ours and the peer alternating so both see the
same load. A last row does the same for the serial source over socket:// (pyserial).
"""

from __future__ import annotations

import socket
import statistics
import time
from collections.abc import Callable

from benchmarks.common import format_table, row
from harness.emulators import ThreadedEmulators
from harness.emulators.model import LinkParameters
from harness.instruments import Instrument, InstrumentSpec
from harness.profiles import Bench, load_profile

PROFILE = "bench-emulated"
N = 300
REPEATS = 15
TARGET_RATIO = 2.0


def _raw_client(host: str, port: int, line: bytes) -> Callable[[], None]:
    """A batch of N raw-socket round trips of `line`."""
    sock = socket.create_connection((host, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    reader = sock.makefile("rb")

    def batch() -> None:
        for _ in range(N):
            sock.sendall(line)
            reader.readline()

    return batch


def _instrument_batch(inst: Instrument, command: str) -> Callable[[], None]:
    """A batch of N Instrument.query calls."""

    def batch() -> None:
        for _ in range(N):
            inst.query(command)

    return batch


def _paired_median_us(ours: Callable[[], None], peer: Callable[[], None]) -> tuple[float, float]:
    """Median per-query time in µs of each batch function, run alternately after one warm-up each."""
    ours()
    peer()
    a, b = [], []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        ours()
        a.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        peer()
        b.append(time.perf_counter() - t0)
    return statistics.median(a) / N * 1e6, statistics.median(b) / N * 1e6


def main() -> list[dict]:
    """Measure and print the query-overhead rows (µs per query)."""
    profile = load_profile(PROFILE).effective()
    runner = ThreadedEmulators(LinkParameters.from_profile(profile), profile.firmware.build, seed=1).start()
    emu = runner.set
    rows = []
    try:
        bench = Bench.model_validate(emu.bench_block())
        counter = Instrument("counter", InstrumentSpec.from_bench(bench, "counter"))
        counter.open()
        counter.write("set_integration", seconds=0.01)
        ours, peer = _paired_median_us(
            _instrument_batch(counter, "coincidences"), _raw_client("127.0.0.1", emu.scpi_port, b"COUN:COIN?\n")
        )
        rows.append(_row("counter COUN:COIN? query, Instrument over pyvisa-py vs raw socket", ours, peer))
        bare = counter.transport._res  # the pyvisa resource itself: what the harness layer adds on top of it

        def bare_batch() -> None:
            for _ in range(N):
                bare.query("COUN:COIN?")

        ours, peer = _paired_median_us(_instrument_batch(counter, "coincidences"), bare_batch)
        rows.append(_row("counter COUN:COIN? query, Instrument vs bare pyvisa-py resource.query", ours, peer))
        counter.close()

        source = Instrument("source", InstrumentSpec.from_bench(bench, "source"))
        source.open()
        port = int(str(emu.serial_url).rsplit(":", 1)[1])
        ours, peer = _paired_median_us(
            _instrument_batch(source, "firmware_build"), _raw_client("127.0.0.1", port, b"FW?\n")
        )
        rows.append(_row("source FW? query, Instrument over pyserial socket:// vs raw socket", ours, peer))
        source.close()
    finally:
        runner.stop()
    print(format_table(rows))
    print(f"\ntarget: ratio <= {TARGET_RATIO:g} for the VISA counter query")
    return rows


def _row(figure: str, ours: float, peer: float) -> dict:
    return row(figure, ours, peer, ours / peer, "us/query")


if __name__ == "__main__":
    main()
