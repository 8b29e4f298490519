"""Putting a firmware build on a bench: the profile's `firmware.flash` as a source command or a shell command.

A source command is sent on the source controller's line like any other command (recorded, counted), under the
flash's timeout and without retries: a flash is not repeated behind the user's back. A header ending in '?' is a
query whose reply must not be an error ("ERR ..." or a negative SCPI code); any other command is a write. A shell
command runs on this machine in its own process group, killed with its children on timeout; exit status 0 means
flashed. Either way the caller then asks the source which build it runs: only that answer says the flash took.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shlex
import signal
import subprocess
from collections.abc import Callable, Iterator

from harness.errors import FlashError
from harness.instruments import Instrument, InstrumentError, InstrumentSpec
from harness.profiles.schema import BUILD, Flash

# The name the flash command takes among the source's command templates (a dot keeps it clear of user names).
FLASH_COMMAND = "firmware.flash"
_ERROR_REPLY = re.compile(r"^\s*(ERR|ERROR\b|-\d+\s*,)", re.IGNORECASE)


def with_flash_command(spec: InstrumentSpec, flash: Flash | None) -> InstrumentSpec:
    """The source's spec with the profile's flash command among its templates (unchanged without one)."""
    if flash is None or flash.command is None:
        return spec
    block = spec.block.model_copy(update={"commands": {**spec.block.commands, FLASH_COMMAND: flash.command}})
    return dataclasses.replace(spec, block=block)


def check_build_name(build: str) -> str:
    """Return `build`; raise FlashError unless it is a build name (it goes into a command line)."""
    if not re.fullmatch(BUILD, str(build)):
        raise FlashError(f"cannot flash build {build!r}: a build name must match {BUILD}")
    return str(build)


def render_shell(flash: Flash, build: str, profile_name: str) -> str:
    """The shell command of `flash` with {build} and {profile} filled in, each quoted for the shell."""
    assert flash.shell is not None
    return flash.shell.format(build=shlex.quote(build), profile=shlex.quote(profile_name))


@contextlib.contextmanager
def patient(instrument: Instrument, timeout_s: float) -> Iterator[None]:
    """Within the block the instrument waits up to `timeout_s` for each reply and never retries."""
    saved = instrument.timeout_s, instrument.retries
    instrument.timeout_s, instrument.retries = timeout_s, 0
    try:
        yield
    finally:
        instrument.timeout_s, instrument.retries = saved


def send_flash_command(source: Instrument, build: str, line: str) -> None:
    """Send the flash command `line` for `build` on the source's line, as a query or a write by its header."""
    if line.split(" ", 1)[0].endswith("?"):
        reply = source.query(FLASH_COMMAND, build=build)
        if _ERROR_REPLY.match(reply):
            raise FlashError(f"flashing build {build!r} with {line!r} failed: the source replied {reply.strip()!r}")
    else:
        source.write(FLASH_COMMAND, build=build)


def run_flash_shell(line: str, build: str, timeout_s: float) -> None:
    """Run the shell flash command `line`; FlashError on a non-zero exit or when it outlives `timeout_s`."""
    try:
        proc = subprocess.Popen(
            line, shell=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
    except OSError as exc:
        raise FlashError(f"flashing build {build!r} with {line!r} failed: cannot start it ({exc})") from None
    try:
        _, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise FlashError(
            f"flashing build {build!r} with {line!r} failed: it did not finish within {timeout_s:g} s "
            "(firmware.flash.timeout_s); it was killed"
        ) from None
    if proc.returncode != 0:
        last = next((ln.strip() for ln in reversed(err.splitlines()) if ln.strip()), "no message on stderr")
        raise FlashError(f"flashing build {build!r} with {line!r} failed: exit status {proc.returncode} ({last[:200]})")


def flash_source(
    source: Instrument,
    flash: Flash,
    build: str,
    profile_name: str,
    run_shell: Callable[[str, str, float], None] = run_flash_shell,
) -> None:
    """Flash `build` with `flash` (source command or shell), then ask the source's build; FlashError unless it took."""
    if flash.command is not None:
        line = source.render(FLASH_COMMAND, build=build)
    else:
        line = render_shell(flash, build, profile_name)
    with patient(source, flash.timeout_s):
        try:
            if flash.command is not None:
                send_flash_command(source, build, line)
            else:
                run_shell(line, build, flash.timeout_s)
            reported = source.query("firmware_build").strip()
        except InstrumentError as exc:
            raise FlashError(f"flashing build {build!r} with {line!r} failed: {exc}") from exc
    if reported != build:
        raise FlashError(
            f"flashing build {build!r} with {line!r} left the source reporting build {reported!r}; "
            "check that the flasher has that build, or flash it by hand"
        )
