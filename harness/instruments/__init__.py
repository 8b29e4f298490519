"""Lab instruments over VISA (pyvisa), serial (pyserial) or Python driver plugins: retries, typed faults, recording."""

from harness.instruments.errors import (
    InstrumentConfigError,
    InstrumentDisconnected,
    InstrumentError,
    InstrumentProtocolError,
    InstrumentTimeout,
    NotSupportedError,
)
from harness.instruments.instrument import (
    DEFAULT_VALIDATORS,
    Instrument,
    InstrumentSpec,
    InstrumentStats,
    nonneg_ints,
    parse_scpi_error,
)
from harness.instruments.python_transport import PythonTransport
from harness.instruments.recorder import SessionRecorder
from harness.instruments.transports import SerialTransport, Transport, VisaTransport

__all__ = [
    "DEFAULT_VALIDATORS",
    "Instrument",
    "InstrumentConfigError",
    "InstrumentDisconnected",
    "InstrumentError",
    "InstrumentProtocolError",
    "InstrumentSpec",
    "InstrumentStats",
    "InstrumentTimeout",
    "NotSupportedError",
    "PythonTransport",
    "SerialTransport",
    "SessionRecorder",
    "Transport",
    "VisaTransport",
    "nonneg_ints",
    "parse_scpi_error",
]
