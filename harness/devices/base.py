"""The Device protocol every device form implements (records and errors live in harness.records and harness.errors)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from harness.records import INPUTS_4, CoincidenceCounts, Identity, ProcessCounts, TomographyCounts


class DeviceContext:
    """Mixin: a device used in a `with` block is opened on entry and always closed on exit."""

    def __enter__(self):
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@runtime_checkable
class Device(Protocol):
    """What a regression suite can ask of a device under test, whatever its form."""

    def open(self) -> None:
        """Connect to the device (idempotent)."""

    def close(self) -> None:
        """Release the device; safe to call twice."""

    def identify(self) -> Identity:
        """Report kind, profile and firmware build."""

    def bell_tomography(self, duration_s: float) -> TomographyCounts:
        """Counts for the 9 Pauli settings, each integrated for `duration_s`."""

    def link_tomography(self, duration_s: float, inputs: tuple[str, ...] = INPUTS_4) -> ProcessCounts:
        """Counts for the link's process tomography over `inputs`, each setting integrated for `duration_s`."""

    def coincidences(self, duration_s: float) -> CoincidenceCounts:
        """Singles and coincidences over `duration_s`."""
