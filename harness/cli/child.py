"""Run pytest as a child of `qharness run`: in its own session, told once to stop on SIGINT/SIGTERM, never orphaned.

The child gets its own session so that a terminal's Ctrl-C or a signal to qharness's process group reaches only
qharness, which forwards exactly one SIGINT; the child then marks its runs aborted and ends. SIGINT and SIGTERM are
blocked and collected with sigwaitinfo while the child runs (with SIGCHLD for its end), so no signal can arrive
between "the child ended" and "stop waiting" unseen.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}
GRACE_S = 60.0  # how long the child may take to clean up after the forwarded SIGINT before it is killed
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class ChildResult:
    """How the child ended: its return code (negative: killed by that signal) and the signal qharness received."""

    returncode: int
    signum: int | None = None
    killed: bool = False  # True when the child outlived the grace period and was SIGKILLed

    @property
    def interrupted(self) -> bool:
        """True when qharness was told to stop while the child ran."""
        return self.signum is not None


def _child_setup(blocked: set[int]) -> Callable[[], None]:
    """Return the preexec_fn: unblock the signals qharness blocks, and on Linux get SIGTERM when qharness dies."""
    prctl = None
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before fork: no dlopen in the forked child
    parent = os.getpid()

    def preexec() -> None:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, blocked)  # a signal mask survives exec
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
            if os.getppid() != parent:  # qharness died before prctl took effect
                os.kill(os.getpid(), signal.SIGTERM)

    return preexec


def _wait_for_end(proc: subprocess.Popen, deadline: float | None) -> int | None:
    """Wait (signals blocked) for the child's end or a stop signal; return the stop signal, or None once it ended."""
    watched = STOP_SIGNALS | {signal.SIGCHLD}
    while proc.poll() is None:
        if deadline is None:
            info = signal.sigwaitinfo(watched)
        else:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise subprocess.TimeoutExpired(proc.args, 0)
            info = signal.sigtimedwait(watched, remaining)
        if info is not None and info.si_signo in STOP_SIGNALS:
            return info.si_signo
    return None


def _stop(proc: subprocess.Popen, grace_s: float) -> bool:
    """Send the child one SIGINT and wait up to `grace_s` for it; SIGKILL it after that and return True."""
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGINT)  # pytest's clean stop, whichever signal qharness received
    deadline = time.monotonic() + grace_s
    try:
        # Further stop signals are swallowed: the child was told once and is cleaning up.
        while _wait_for_end(proc, deadline) is not None:
            pass
    except subprocess.TimeoutExpired:
        proc.kill()
        return True
    return False


def run_child(cmd: Sequence[str], grace_s: float = GRACE_S, env: Mapping[str, str] | None = None) -> ChildResult:
    """Run `cmd` in its own session; on SIGINT/SIGTERM forward one SIGINT, wait up to `grace_s`, then SIGKILL."""
    blocked = STOP_SIGNALS | {signal.SIGCHLD}
    # An inherited SIG_IGN for SIGCHLD would let the kernel reap the child and hide its exit status.
    previous_chld = signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    # Blocked before the fork: a signal that comes while the child starts waits for sigwaitinfo below.
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
    try:
        proc = subprocess.Popen(list(cmd), start_new_session=True, preexec_fn=_child_setup(blocked), env=env)
        signum = _wait_for_end(proc, None)
        killed = _stop(proc, grace_s) if signum is not None else False
        returncode = proc.wait()
        # Signals still pending (a second Ctrl-C) are consumed so that unblocking does not deliver them.
        while signal.sigtimedwait(blocked, 0) is not None:
            pass
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        signal.signal(signal.SIGCHLD, previous_chld)
    return ChildResult(returncode, signum, killed)
