"""`qharness emulate`: serve loopback emulators of a bench (SCPI counter/analysers, serial source firmware)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from pathlib import Path
from typing import Any

import typer

from harness.cli.app import app, fail


@app.command("emulate")
def emulate(
    profile: str = typer.Option(..., "--profile", help="profile whose physics the emulators report (name or path)"),
    build: str | None = typer.Option(None, "--build", help="firmware build to emulate (default: firmware.build)"),
    seed: int = typer.Option(0, "--seed", help="seed of the counts and of the fault RNGs"),
    fault: list[str] = typer.Option(
        [],
        "--fault",
        help="inject a fault, repeatable: drop:P garbage:P disconnect:N slow:T wrong-build:B scpi-error:N "
        "stuck-flash:P",
    ),
    session: int = typer.Option(0, "--session", help="session index: which drift offsets a drifting profile draws"),
    serial: str = typer.Option("socket", "--serial", help="serial link of the source firmware: socket | pty"),
    profile_out: Path | None = typer.Option(
        None, "--profile-out", help="write a ready-to-use bench profile for the live ports here (printed first)"
    ),
    scpi_port: int = typer.Option(0, "--scpi-port", help="TCP port of the SCPI emulator on 127.0.0.1 (0 = any free)"),
    serial_port: int = typer.Option(0, "--serial-port", help="TCP port of the socket:// firmware (0 = any free)"),
    real_time: bool = typer.Option(False, "--real-time", help="make COUN:COIN? take its integration time"),
    timeout_s: float = typer.Option(2.0, "--timeout", help="bench.timeout_s written into --profile-out, in s"),
) -> None:
    """Serve the bench emulators on 127.0.0.1 until SIGINT or SIGTERM."""
    from harness.emulators import EmulatorSet, FaultSpecError, parse_fault
    from harness.profiles import ProfileError, load_profile

    if serial not in ("socket", "pty"):
        fail("emulate", f"--serial must be 'socket' or 'pty', got {serial!r}")
    for port, opt in ((scpi_port, "--scpi-port"), (serial_port, "--serial-port")):
        if not 0 <= port <= 65535:
            fail("emulate", f"{opt} must be a TCP port in 0..65535, got {port}")
    if timeout_s <= 0:
        fail("emulate", f"--timeout must be > 0 s, got {timeout_s}")
    try:
        faults = [parse_fault(spec) for spec in fault]
    except FaultSpecError as exc:
        fail("emulate", f"--fault: {exc}")
    try:
        loaded = load_profile(profile)
        if build is not None and loaded.builds and build not in loaded.builds:
            fail("emulate", f"--build {build!r} is not a build of {loaded.path} (known: {', '.join(loaded.builds)})")
        effective = loaded.effective(build)
    except ProfileError as exc:
        fail("emulate", "; ".join(str(p) for p in exc.problems))
    if session < 0:
        fail("emulate", f"--session must be >= 0, got {session}")
    build = effective.firmware.build
    try:
        # Every build of the profile is served, so a bench run can flash between them (FW:LOAD).
        emulators = EmulatorSet.from_profile(loaded, build, seed=seed, session=session, faults=faults, serial=serial)
    except ValueError as exc:
        fail("emulate", str(exc))
    try:
        asyncio.run(_serve(emulators, scpi_port, serial_port, profile_out, effective, timeout_s))
    except OSError as exc:
        fail(
            "emulate",
            f"cannot listen on 127.0.0.1 ({exc.strerror or exc}); choose other --scpi-port/--serial-port or 0",
        )


async def _serve(
    emulators: Any, scpi_port: int, serial_port: int, profile_out: Path | None, effective: Any, timeout_s: float
) -> None:
    """Start, announce, and serve until a stop signal."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await emulators.start(scpi_port, serial_port)
    try:
        if profile_out is not None:
            name = effective.name if effective.name.endswith("-live") else f"{effective.name}-live"
            path = emulators.write_profile(profile_out, effective, name, timeout_s=timeout_s)
            # The path comes first so a script can read one line and know the emulators are accepting connections.
            print(path, flush=True)
        print(f"SCPI counter/analysers: {emulators.visa_resource}", flush=True)
        print(f"source firmware (build {emulators.build}): {emulators.serial_url}", flush=True)
        if emulators.drift_offsets():
            print(f"drift: {emulators.drift_offsets()}", flush=True)
        print("serving until SIGINT or SIGTERM", flush=True)
        await stop.wait()
    finally:
        with contextlib.suppress(Exception):
            await emulators.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        print(f"stopped; faults injected: {emulators.injected() or 'none'}", file=sys.stderr, flush=True)
        print(f"measurement sessions: {emulators.sessions()} (overlaps: {emulators.overlaps()})", file=sys.stderr)
