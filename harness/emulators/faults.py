"""Fault injection for the emulators: parsing `--fault SPEC` strings and deciding, per command, what goes wrong."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

FAULT_KINDS = {
    "drop": "drop:P - no reply to a query, with probability P in [0, 1]",
    "garbage": "garbage:P - a garbage reply to a query, with probability P in [0, 1]",
    "disconnect": "disconnect:N - close the connection at the first query after every N commands (N >= 1)",
    "slow": "slow:T - reply after T seconds (T >= 0)",
    "wrong-build": "wrong-build:B - FW? (and *IDN?) report build B",
    "scpi-error": "scpi-error:N - queue N SCPI errors, reported one by one by SYST:ERR? (N >= 0)",
    "stuck-flash": "stuck-flash:P - FW:LOAD acknowledges but keeps the running build, with probability P in [0, 1]",
}


class FaultSpecError(ValueError):
    """A fault SPEC string is malformed; the message shows the accepted forms."""


def _help() -> str:
    return "accepted: " + "; ".join(FAULT_KINDS.values())


@dataclass(frozen=True)
class Fault:
    """One parsed fault: its kind and its parameter."""

    kind: str
    value: float | int | str

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


def parse_fault(spec: str) -> Fault:
    """Parse one SPEC such as 'drop:0.1' or 'wrong-build:2.3.0'; raise FaultSpecError saying what is wrong."""
    kind, sep, arg = str(spec).strip().partition(":")
    kind = kind.strip().lower()
    if not sep or kind not in FAULT_KINDS or not arg.strip():
        raise FaultSpecError(f"bad fault spec {spec!r}: expected KIND:VALUE; {_help()}")
    arg = arg.strip()
    try:
        if kind in ("drop", "garbage", "stuck-flash"):
            p = float(arg)
            if not 0.0 <= p <= 1.0:
                raise ValueError
            return Fault(kind, p)
        if kind == "slow":
            t = float(arg)
            if not 0.0 <= t < 3600:
                raise ValueError
            return Fault(kind, t)
        if kind == "disconnect":
            n = int(arg)
            if n < 1:
                raise ValueError
            return Fault(kind, n)
        if kind == "scpi-error":
            n = int(arg)
            if n < 0:
                raise ValueError
            return Fault(kind, n)
    except ValueError:
        raise FaultSpecError(f"bad fault spec {spec!r}: {FAULT_KINDS[kind]}") from None
    return Fault(kind, arg)  # wrong-build: any non-empty build string


@dataclass
class FaultPlan:
    """The active faults of one emulator and a seeded RNG deciding when they strike.

    Kept apart from the physics RNG so that adding a fault never changes the counts a run measures.
    """

    drop_p: float = 0.0
    garbage_p: float = 0.0
    disconnect_every: int = 0
    slow_s: float = 0.0
    wrong_build: str | None = None
    scpi_errors: int = 0
    stuck_flash_p: float = 0.0
    seed: int | None = None
    injected: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)
        self._since_disconnect = 0

    @classmethod
    def from_specs(cls, specs: Iterable[str | Fault], seed: int | None = None) -> FaultPlan:
        """A plan from SPEC strings (later specs of the same kind win)."""
        plan = cls(seed=seed)
        for spec in specs:
            plan.add(spec if isinstance(spec, Fault) else parse_fault(spec))
        return plan

    def add(self, fault: Fault | str) -> None:
        """Activate one more fault (e.g. between runs of a test)."""
        f = fault if isinstance(fault, Fault) else parse_fault(fault)
        if f.kind == "drop":
            self.drop_p = float(f.value)
        elif f.kind == "garbage":
            self.garbage_p = float(f.value)
        elif f.kind == "disconnect":
            self.disconnect_every = int(f.value)
            self._since_disconnect = 0
        elif f.kind == "slow":
            self.slow_s = float(f.value)
        elif f.kind == "wrong-build":
            self.wrong_build = str(f.value)
        elif f.kind == "scpi-error":
            self.scpi_errors += int(f.value)
        elif f.kind == "stuck-flash":
            self.stuck_flash_p = float(f.value)

    def clear(self) -> None:
        """Deactivate every fault (counters of injected faults are kept)."""
        self.drop_p = self.garbage_p = self.slow_s = self.stuck_flash_p = 0.0
        self.disconnect_every = self.scpi_errors = 0
        self.wrong_build = None

    def decide(self, is_query: bool) -> str | None:
        """What happens to this command: None (normal), 'disconnect', 'drop' or 'garbage'."""
        self._since_disconnect += 1
        if not is_query:
            return None
        # A connection is only closed in place of a reply, so a write is never silently lost by the emulator.
        if self.disconnect_every and self._since_disconnect >= self.disconnect_every:
            self._since_disconnect = 0
            self.injected["disconnect"] += 1
            return "disconnect"
        if self.drop_p and self._rng.random() < self.drop_p:
            self.injected["drop"] += 1
            return "drop"
        if self.garbage_p and self._rng.random() < self.garbage_p:
            self.injected["garbage"] += 1
            return "garbage"
        return None

    def flash_sticks(self) -> bool:
        """Whether this flash leaves the running build in place (the stuck-flash fault)."""
        if self.stuck_flash_p and self._rng.random() < self.stuck_flash_p:
            self.injected["stuck-flash"] += 1
            return True
        return False

    def garbage(self) -> str:
        """A reply no validator accepts: control bytes around random hex."""
        return "\x15#" + self._rng.bytes(4).hex() + "\x7f"
