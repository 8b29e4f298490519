"""The Device protocol every device form implements, and the raw records it returns.

Conventions shared by all devices and estimators:
- two-qubit states and settings put qubit A (the local arm) first;
- a setting is a string of bases, one per qubit, from "XYZ", e.g. "XZ" = X on A, Z on B;
- the 4 outcomes of a two-qubit setting are ordered ++, +-, -+, -- (A first), where "+" is
  the +1 eigenvector of the basis;
- link tomography inputs are "0", "1", "+", "+i" (or the 6 with "-", "-i"), measured in the
  bases "X", "Y", "Z", outcomes ordered +, -.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

BASES = ("X", "Y", "Z")
BELL_SETTINGS = tuple("".join(s) for s in itertools.product(BASES, repeat=2))
INPUTS_4 = ("0", "1", "+", "+i")
INPUTS_6 = ("0", "1", "+", "-", "+i", "-i")


class DeviceError(RuntimeError):
    """A device could not deliver a measurement (an ERROR verdict, never a REGRESSION)."""


class NotSupportedError(RuntimeError):
    """The device cannot perform a measurement (the metric's test is skipped with this reason)."""


class IdentityMismatchError(DeviceError):
    """The device reports a firmware build other than the one under test."""


@dataclass(frozen=True)
class Identity:
    """Who the device says it is."""

    kind: str
    profile: str
    build: str
    detail: str = ""


@dataclass(frozen=True)
class TomographyCounts:
    """Counts of a two-qubit Pauli tomography: one row of 4 outcomes per setting."""

    settings: tuple[str, ...]
    counts: np.ndarray  # shape (len(settings), 4), int64
    duration_s: float  # integration time per setting

    def to_dict(self) -> dict:
        """JSON-ready form for the store."""
        return {
            "settings": list(self.settings),
            "counts": np.asarray(self.counts).tolist(),
            "duration_s": self.duration_s,
        }


@dataclass(frozen=True)
class ProcessCounts:
    """Counts of a qubit process tomography: inputs x bases x outcomes (+, -)."""

    inputs: tuple[str, ...]
    bases: tuple[str, ...]
    counts: np.ndarray  # shape (len(inputs), len(bases), 2), int64
    duration_s: float

    def to_dict(self) -> dict:
        """JSON-ready form for the store."""
        return {
            "inputs": list(self.inputs),
            "bases": list(self.bases),
            "counts": np.asarray(self.counts).tolist(),
            "duration_s": self.duration_s,
        }


@dataclass(frozen=True)
class CoincidenceCounts:
    """Singles per arm and coincidences over one integration."""

    singles_a: int
    singles_b: int
    coincidences: int
    window_s: float
    duration_s: float
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-ready form for the store."""
        return {
            "singles_a": self.singles_a,
            "singles_b": self.singles_b,
            "coincidences": self.coincidences,
            "window_s": self.window_s,
            "duration_s": self.duration_s,
            **self.extra,
        }


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
