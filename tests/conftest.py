import signal
import threading
import warnings

import pytest

pytest_plugins = ["pytester"]

_STOP = {signal.SIGINT, signal.SIGTERM, signal.SIGCHLD}


@pytest.fixture(autouse=True)
def _stop_signals_restored():
    """Give every test the test process's normal SIGINT and an unblocked signal mask, and name a test that leaks.

    A child inherits an ignored SIGINT and a blocked signal mask across exec: one test that leaves either behind
    makes every later Ctrl-C test of the same xdist worker wait for a child that cannot hear it.
    """
    yield
    if threading.current_thread() is not threading.main_thread():
        return
    leaked = []
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        leaked.append(f"SIGINT handler {signal.getsignal(signal.SIGINT)!r}")
        signal.signal(signal.SIGINT, signal.default_int_handler)
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, []) & _STOP
    if blocked:
        leaked.append(f"blocked {sorted(s.name for s in blocked)}")
        signal.pthread_sigmask(signal.SIG_UNBLOCK, blocked)
    if leaked:
        warnings.warn(f"this test left {', '.join(leaked)}; restored", RuntimeWarning, stacklevel=1)
