"""How `qharness` ends: usage errors exit 4 on one line, SIGINT/SIGTERM exit 2 on one line, a bug exits 3 with its
traceback (`harness.errors.ExitCode`, the same contract as `pytest test_suites`)."""

from __future__ import annotations

import signal
import sys
import traceback
from collections.abc import Sequence
from types import FrameType
from typing import Any

import typer

from harness.errors import ExitCode

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

# Click's exceptions, wherever this typer takes click from (recent typers vendor it as typer._click).
_CLICK = sys.modules[typer.BadParameter.__module__]
UsageError: type[Exception] = _CLICK.UsageError
ClickException: type[Exception] = _CLICK.ClickException
NoArgsIsHelpError: type[Exception] | None = getattr(_CLICK, "NoArgsIsHelpError", None)


class Interrupted(BaseException):
    """SIGINT or SIGTERM reached qharness; a BaseException so that no `except Exception` swallows it."""

    def __init__(self, signum: int) -> None:
        """Remember which signal arrived."""
        super().__init__(signum)
        self.signum = signum

    @property
    def name(self) -> str:
        """The signal's name, e.g. SIGINT."""
        return signal.Signals(self.signum).name


def raise_interrupted(signum: int, frame: FrameType | None) -> None:
    """Signal handler: turn SIGINT/SIGTERM into Interrupted (click and typer turn KeyboardInterrupt into 1 or 130)."""
    raise Interrupted(signum)


def _usage_line(exc: Any) -> str:
    """Click's message on one line, prefixed by the command and followed by where to read about the options."""
    where = exc.ctx.command_path if getattr(exc, "ctx", None) is not None else "qharness"
    message = " ".join(exc.format_message().split())
    return f"{where}: {message} (see '{where} --help')"


def run_app(app: typer.Typer, argv: Sequence[str] | None = None) -> int:
    """Run the application on `argv` (default: sys.argv[1:]) and return its exit status by the contract."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, raise_interrupted)
    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="qharness", standalone_mode=False)
    except ClickException as exc:  # a missing or unknown option, a bad value, an unreadable file argument
        if NoArgsIsHelpError is not None and isinstance(exc, NoArgsIsHelpError):
            print(exc.format_message(), file=sys.stderr)  # a bare group: its help is the useful answer
            return ExitCode.USAGE_ERROR
        print(
            _usage_line(exc) if isinstance(exc, UsageError) else f"qharness: {exc.format_message()}",
            file=sys.stderr,
        )
        return ExitCode.USAGE_ERROR
    except Interrupted as exc:
        print(f"qharness: interrupted by {exc.name}", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except (KeyboardInterrupt, typer.Abort):
        print("qharness: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except Exception:
        traceback.print_exc()
        print(
            "qharness: internal error (a bug in qharness); please report it with the traceback above", file=sys.stderr
        )
        return ExitCode.INTERNAL_ERROR
    return ExitCode.OK if code is None else int(code)
