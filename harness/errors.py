"""Typed errors shared by devices, protocols, the session and the faces that report them."""

from __future__ import annotations


class DeviceError(RuntimeError):
    """A device could not deliver a measurement (an ERROR verdict, never a REGRESSION)."""


class NotSupportedError(RuntimeError):
    """The device cannot perform a measurement (the metric's test is skipped with this reason)."""


class IdentityMismatchError(DeviceError):
    """The device reports a firmware build other than the one under test."""


class HarnessUsageError(ValueError):
    """A user-supplied option or combination cannot work; the message says how to fix it."""
