"""SIGTERM as Ctrl-C: a terminated pytest run ends as an interrupted one (exit 2), its runs marked aborted.

pytest turns a KeyboardInterrupt into exit code 2 and still runs the session finish, which marks the open runs
aborted; the default SIGTERM action would kill the process before any of that.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


class TerminateAsInterrupt:
    """A SIGTERM handler that raises KeyboardInterrupt; `uninstall` restores the handler it replaced."""

    def __init__(self) -> None:
        self._previous: Any = None
        self._installed = False

    def install(self) -> bool:
        """Install the handler (once; main thread only, where signals are delivered); return whether it is in place."""
        if threading.current_thread() is not threading.main_thread():
            return False
        if not self._installed:
            self._previous = signal.signal(signal.SIGTERM, _interrupt)
            self._installed = True
        return True

    def uninstall(self) -> None:
        """Restore the handler that was in place before `install`."""
        if self._installed and threading.current_thread() is threading.main_thread():
            # None: the replaced handler was not installed from Python; the default is the closest one.
            signal.signal(signal.SIGTERM, signal.SIG_DFL if self._previous is None else self._previous)
            self._installed = False
