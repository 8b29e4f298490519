"""Typed errors shared by devices, protocols, the session and the faces that report them."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes of `qharness` and of `pytest test_suites`, following pytest's."""

    OK = 0  # no regression
    REGRESSION = 1  # a REGRESSION or an ERROR verdict, or INCONCLUSIVE under --strict
    INTERRUPTED = 2  # SIGINT or SIGTERM; the run is marked aborted, raw records kept
    INTERNAL_ERROR = 3  # a bug in qharness (a traceback is printed)
    USAGE_ERROR = 4  # bad option, bad profile, unusable results store, unknown build
    NO_TESTS = 5  # nothing collected


class DeviceError(RuntimeError):
    """A device could not deliver a measurement (an ERROR verdict, never a REGRESSION)."""


class NotSupportedError(RuntimeError):
    """The device cannot perform a measurement (the metric's test is skipped with this reason)."""


class IdentityMismatchError(DeviceError):
    """The device reports a firmware build other than the one under test."""


class FlashError(DeviceError):
    """Putting a build on a device failed: the command failed or timed out, or the device reports another build."""


class HarnessUsageError(ValueError):
    """A user-supplied option or combination cannot work; the message says how to fix it."""
