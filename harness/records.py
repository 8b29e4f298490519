"""Raw measurement records shared by devices, protocols and estimators, and the tables that label them.

Conventions shared by all devices and estimators:
- two-qubit states and settings put qubit A (the local arm) first;
- a setting is a string of bases, one per qubit, from "XYZ", e.g. "XZ" = X on A, Z on B;
- the 4 outcomes of a two-qubit setting are ordered ++, +-, -+, -- (A first), where "+" is
  the +1 eigenvector of the basis;
- link tomography inputs are "0", "1", "+", "+i" (or the 6 with "-", "-i"), measured in the
  bases "X", "Y", "Z", outcomes ordered +, -.

Records add: `a + b` pools two measurements of the same settings (counts and integration times add), so a
re-measurement joins the earlier data with one operator, as sinter's task statistics do.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

BASES = ("X", "Y", "Z")
BELL_SETTINGS = tuple("".join(s) for s in itertools.product(BASES, repeat=2))
INPUTS_4 = ("0", "1", "+", "+i")
INPUTS_6 = ("0", "1", "+", "-", "+i", "-i")
# Bloch vector of each link-tomography input state.
INPUT_BLOCH: dict[str, tuple[float, float, float]] = {
    "0": (0.0, 0.0, 1.0),
    "1": (0.0, 0.0, -1.0),
    "+": (1.0, 0.0, 0.0),
    "-": (-1.0, 0.0, 0.0),
    "+i": (0.0, 1.0, 0.0),
    "-i": (0.0, -1.0, 0.0),
}


@dataclass(frozen=True)
class Identity:
    """Who the device says it is."""

    kind: str
    profile: str
    build: str
    detail: str = ""


def _pooled_counts(a: Any, b: Any) -> Any:
    """Return `a` with `b`'s counts and integration time added (the caller checked that the settings match)."""
    return replace(a, counts=np.asarray(a.counts) + np.asarray(b.counts), duration_s=a.duration_s + b.duration_s)


@dataclass(frozen=True)
class TomographyCounts:
    """Counts of a two-qubit Pauli tomography: one row of 4 outcomes per setting."""

    settings: tuple[str, ...]
    counts: np.ndarray  # shape (len(settings), 4), int64
    duration_s: float  # integration time per setting

    def __add__(self, other: TomographyCounts) -> TomographyCounts:
        """Pool two tomographies of the same settings: counts and integration times add."""
        if self.settings != other.settings:
            raise ValueError(f"cannot pool tomography over different settings {self.settings} and {other.settings}")
        return _pooled_counts(self, other)

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

    def __add__(self, other: ProcessCounts) -> ProcessCounts:
        """Pool two process tomographies of the same inputs and bases."""
        if (self.inputs, self.bases) != (other.inputs, other.bases):
            raise ValueError("cannot pool process tomography over different inputs or bases")
        return _pooled_counts(self, other)

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

    def __post_init__(self) -> None:
        for name in ("singles_a", "singles_b", "coincidences"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"coincidence counts: {name} must be >= 0, got {getattr(self, name)}")

    def __add__(self, other: CoincidenceCounts) -> CoincidenceCounts:
        """Pool two integrations taken with the same coincidence window."""
        if self.window_s != other.window_s:
            raise ValueError("cannot pool coincidence counts taken with different windows")
        return replace(
            self,
            singles_a=self.singles_a + other.singles_a,
            singles_b=self.singles_b + other.singles_b,
            coincidences=self.coincidences + other.coincidences,
            duration_s=self.duration_s + other.duration_s,
        )

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
