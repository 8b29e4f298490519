"""Driver plugins: the methods a Python counter, analyser, source or decoder implements (docs/drivers.md).

A profile's instrument block with `transport: python` names a driver class; `PythonTransport` makes it an
instrument like any other. The class is built with the block's `options` as keyword arguments, and each bench
command becomes a call of the method of the same name with the command's placeholders as keyword arguments.
Return values become reply lines, so the instrument's validators, retries and recording apply unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable


@runtime_checkable
class SourceDriver(Protocol):
    """The pair-source controller under test."""

    def identify(self) -> str:
        """A non-empty identity line (vendor, model, serial, firmware)."""

    def firmware_build(self) -> str:
        """The firmware build the source runs, e.g. '2.4.0'."""

    def enable(self) -> None:
        """Switch the pair source on; return once it emits."""

    def disable(self) -> None:
        """Switch the pair source off."""


@runtime_checkable
class CounterDriver(Protocol):
    """The coincidence counter (time tagger) of the two arms."""

    def set_integration(self, seconds: float) -> None:
        """Integrate for `seconds` s at the next `coincidences`."""

    def coincidences(self) -> Sequence[int]:
        """Integrate once; return the counts of the outcomes ++, +-, -+, -- (arm A's sign first)."""

    def singles(self, channel: int) -> int:
        """The singles of arm A (channel 1) or B (channel 2) in the last integration."""


@runtime_checkable
class AnalyzerDriver(Protocol):
    """The polarisation analysers; `prepare_state(state)` is optional (link tomography needs it)."""

    def set_basis(self, arm: str, basis: str) -> None:
        """Set analyser `arm` ('A' or 'B') to measure `basis` ('X', 'Y' or 'Z'); return once it is applied."""


@runtime_checkable
class DecoderDriver(Protocol):
    """The firmware's QEC decoder (optional bench instrument)."""

    def decode(self, code: str, syndrome: str) -> int:
        """The logical flip (0 or 1) the decoder predicts for `syndrome` (a '0'/'1' string) of `code`."""


PROTOCOLS: dict[str, type] = {
    "source": SourceDriver,
    "counter": CounterDriver,
    "analyzers": AnalyzerDriver,
    "decoder": DecoderDriver,
}
