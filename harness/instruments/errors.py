"""Typed failures of lab instruments; all are DeviceErrors, so a suite reports ERROR, never REGRESSION."""

from __future__ import annotations

from harness.errors import DeviceError, NotSupportedError  # noqa: F401  (NotSupportedError re-exported)


class InstrumentError(DeviceError):
    """An instrument exchange failed."""


class InstrumentTimeout(InstrumentError):  # noqa: N818 - name fixed by the bench contract
    """No (complete) reply arrived within the timeout."""


class InstrumentDisconnected(InstrumentError):  # noqa: N818 - name fixed by the bench contract
    """The connection is refused, dropped or broken."""


class InstrumentProtocolError(InstrumentError):
    """The instrument answered, but not with what the command promises; `raw` holds the reply."""

    def __init__(self, message: str, raw: str | None = None) -> None:
        super().__init__(message)
        self.raw = raw


class InstrumentConfigError(InstrumentError):
    """The instrument block of a profile cannot work (unknown command, bad resource, missing field)."""


# Faults the retry loop recovers from; anything else propagates at once.
RETRYABLE: tuple[type[InstrumentError], ...] = (InstrumentTimeout, InstrumentDisconnected, InstrumentProtocolError)

FAULT_TYPES: dict[str, type[InstrumentError]] = {
    cls.__name__: cls for cls in (InstrumentTimeout, InstrumentDisconnected, InstrumentProtocolError)
}
