"""Measurement sessions seen by an emulated instrument, and the overlaps that a bench lease must prevent.

A session belongs to one client connection: it begins at the connection's first command that measures (the
source's PAIR:ON, the counter's first integration) and ends at the command that ends it (PAIR:OFF) or when the
connection closes. A session that begins while another connection's session is open is an overlap: two runs
measured the bench at once. One run has one source connection and one counter connection, so its own sessions on
an instrument never overlap each other (a client that reconnects after a fault closes its old connection first).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class SessionLog:
    """The sessions of one instrument: each as (client, start, end) on the monotonic clock, and the overlap count."""

    clock: Callable[[], float] = time.monotonic
    sessions: list[tuple[int, float, float]] = field(default_factory=list)
    overlaps: int = 0
    _open: dict[int, float] = field(default_factory=dict)

    def begin(self, client: int) -> None:
        """Start `client`'s session (if it has none open); count an overlap if another client's is open."""
        if client in self._open:
            return
        if self._open:
            self.overlaps += 1
        self._open[client] = self.clock()

    def end(self, client: int) -> None:
        """End `client`'s open session, if it has one."""
        start = self._open.pop(client, None)
        if start is not None:
            self.sessions.append((client, start, self.clock()))

    @property
    def active(self) -> int:
        """How many sessions are open now."""
        return len(self._open)

    def summary(self) -> dict[str, int]:
        """Sessions ended, sessions open now and overlaps counted so far."""
        return {"sessions": len(self.sessions), "open": self.active, "overlaps": self.overlaps}
