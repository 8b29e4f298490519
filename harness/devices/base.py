"""The Device protocol every device form implements (records and errors live in harness.records and harness.errors)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from harness.profiles import Profile
from harness.records import INPUTS_4, INPUTS_6, CoincidenceCounts, Identity, ProcessCounts, TomographyCounts

# Receives each completed measurement record (kind, JSON-ready payload) as soon as the device has it.
RecordCallback = Callable[[str, dict], None]


def require_profile(profile: object, device: str) -> Profile:
    """Return `profile` if it is an effective Profile; raise TypeError saying how to get one otherwise."""
    if not isinstance(profile, Profile):
        raise TypeError(
            f"{device} takes an effective harness.profiles.Profile, got {type(profile).__name__}; "
            "pass load_profile(name).effective(build)"
        )
    return profile


def check_duration(duration_s: float) -> float:
    """Return `duration_s` as a float; raise ValueError unless it is a positive, finite number of seconds."""
    d = float(duration_s)
    if not math.isfinite(d) or d <= 0:
        raise ValueError(f"duration_s must be a positive number of seconds, got {duration_s!r}")
    return d


def check_inputs(inputs: Sequence[str]) -> tuple[str, ...]:
    """Return the link-tomography `inputs` as a tuple; raise ValueError unless each is one of INPUTS_6."""
    inputs = tuple(inputs)
    if not inputs or any(s not in INPUTS_6 for s in inputs):
        raise ValueError(f"link tomography inputs must be drawn from {INPUTS_6}, got {inputs!r}")
    return inputs


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

    def flash(self, build: str, profile: Profile) -> None:
        """Put `build` on the device (`profile` is that build's effective profile); FlashError if it did not take."""
