"""Abort on a signal: run an action (mark the open runs aborted) on SIGTERM/SIGINT, then do what was done before."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

ABORT_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class SignalGuard:
    """Signal handlers that run one action and chain to the handlers they replaced, which uninstall restores."""

    def __init__(self) -> None:
        """Start with nothing installed."""
        self._previous: dict[int, Any] = {}

    def install(self, action: Callable[[], None], signals: tuple[int, ...] = ABORT_SIGNALS) -> bool:
        """Run `action` on each of `signals`, then chain to the previous handler; return False off the main thread."""
        if threading.current_thread() is not threading.main_thread():
            return False
        for signum in signals:
            previous = signal.getsignal(signum)
            self._previous.setdefault(signum, previous)

            def handler(num: int, frame: FrameType | None, _prev: Any = previous) -> None:
                # The process is going down: a failing action must not hide the signal's own outcome.
                with contextlib.suppress(Exception):
                    action()
                _chain(num, frame, _prev)

            signal.signal(signum, handler)
        return True

    def uninstall(self) -> None:
        """Restore the handlers that were in place before the first install (main thread only)."""
        if threading.current_thread() is not threading.main_thread():
            return
        for signum, previous in self._previous.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(signum, previous)
        self._previous.clear()


def _chain(signum: int, frame: FrameType | None, previous: Any) -> None:
    """Behave as the `previous` handler would: call it, ignore the signal, raise KeyboardInterrupt, or die by it."""
    if callable(previous):
        previous(signum, frame)
    elif previous == signal.SIG_IGN:
        return
    elif signum == signal.SIGINT:
        raise KeyboardInterrupt
    else:
        # Default action: die by the same signal so the parent sees the true cause.
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
