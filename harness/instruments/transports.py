"""Byte transports under an instrument: VISA through pyvisa, serial through pyserial URLs.

A transport sends one command line and reads one reply line. It maps every library failure to
InstrumentTimeout or InstrumentDisconnected; retrying is the instrument's job, not the transport's.
"""

from __future__ import annotations

import contextlib
import errno
import socket
import threading
from typing import Protocol, runtime_checkable

from harness.instruments.errors import InstrumentConfigError, InstrumentDisconnected, InstrumentTimeout


@runtime_checkable
class Transport(Protocol):
    """One line-oriented connection to an instrument."""

    description: str

    def open(self, timeout_s: float) -> None:
        """Connect; raise InstrumentDisconnected if the peer cannot be reached."""

    def close(self) -> None:
        """Disconnect; never raises, safe to call twice."""

    def write(self, text: str, timeout_s: float) -> None:
        """Send one command line."""

    def query(self, text: str, timeout_s: float) -> str:
        """Send one command line and return the reply line without its termination."""


def _peek_state(sock: socket.socket) -> str:
    """'ok', 'eof' (peer closed), 'stale' (unread bytes waiting) or 'error' for a connected socket, without blocking."""
    try:
        data = sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return "ok"
    except OSError:
        return "error"
    return "stale" if data else "eof"


def _drain(sock: socket.socket) -> None:
    """Discard every byte already waiting on the socket (a late reply to an abandoned query)."""
    with contextlib.suppress(OSError):
        while sock.recv(65536, socket.MSG_DONTWAIT):
            pass


_RM_LOCK = threading.Lock()
_RESOURCE_MANAGERS: dict[str, object] = {}


def _resource_manager(backend: str):
    """A ResourceManager per backend, created once: creating one costs tens of milliseconds."""
    import pyvisa

    with _RM_LOCK:
        rm = _RESOURCE_MANAGERS.get(backend)
        if rm is None:
            try:
                rm = pyvisa.ResourceManager(backend)
            except (OSError, ValueError, pyvisa.errors.Error) as exc:
                raise InstrumentConfigError(
                    f"VISA backend {backend!r} cannot be loaded ({exc}); "
                    "use '@py' (pyvisa-py) or install the vendor VISA library"
                ) from exc
            _RESOURCE_MANAGERS[backend] = rm
        return rm


class VisaTransport:
    """A VISA resource (TCPIP SOCKET, INSTR, USB, GPIB...) through pyvisa."""

    def __init__(self, resource: str, *, backend: str, read_termination: str, write_termination: str) -> None:
        self.resource = resource
        self.backend = backend
        self.read_termination = read_termination
        self.write_termination = write_termination
        self.description = f"VISA {resource} ({backend})"
        self._res = None
        self._sock: socket.socket | None = None
        self._timeout_ms: int | None = None

    def _socket(self) -> socket.socket | None:
        """The raw socket of a pyvisa-py TCPIP SOCKET session, used to see a dropped peer before writing."""
        if self._sock is not None:
            return self._sock
        try:
            sess = self._res.visalib.sessions[self._res.session]  # type: ignore[union-attr]
        except (AttributeError, KeyError, TypeError):
            return None
        sock = getattr(sess, "interface", None)
        return sock if isinstance(sock, socket.socket) else None

    def open(self, timeout_s: float) -> None:
        """Open the resource; a refused TCP port is detected here rather than at the first query."""
        import pyvisa

        if self._res is not None:
            return
        rm = _resource_manager(self.backend)
        ms = max(1, round(timeout_s * 1000))
        try:
            res = rm.open_resource(  # type: ignore[attr-defined]
                self.resource,
                read_termination=self.read_termination,
                write_termination=self.write_termination,
                timeout=ms,
                open_timeout=ms,
            )
        except pyvisa.errors.VisaIOError as exc:
            raise InstrumentDisconnected(f"cannot open {self.description}: {exc.description}") from exc
        except (ValueError, pyvisa.errors.Error) as exc:
            raise InstrumentConfigError(
                f"VISA resource {self.resource!r} is not valid ({exc}); e.g. 'TCPIP0::192.0.2.10::5025::SOCKET'"
            ) from exc
        except OSError as exc:
            raise InstrumentDisconnected(f"cannot open {self.description}: {exc}") from exc
        self._res = res
        self._timeout_ms = ms
        sock = self._sock = self._socket()
        # pyvisa-py connects without checking the result, so a refused port would only show at the first query.
        if sock is not None and _peek_state(sock) in ("error", "eof"):
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            self.close()
            reason = errno.errorcode.get(err, "peer closed") if err else "peer closed"
            raise InstrumentDisconnected(
                f"cannot connect to {self.description}: {reason}; is the instrument on and the port right?"
            )

    def close(self) -> None:
        """Close the resource, ignoring errors of an already dead connection."""
        res, self._res, self._sock = self._res, None, None
        if res is not None:
            with contextlib.suppress(Exception):
                res.close()

    def _ready(self, timeout_s: float):
        if self._res is None:
            raise InstrumentDisconnected(f"{self.description} is not open")
        ms = max(1, round(timeout_s * 1000))
        if ms != self._timeout_ms:
            self._res.timeout = ms
            self._timeout_ms = ms
        sock = self._socket()
        if sock is not None:
            state = _peek_state(sock)
            if state == "stale":
                _drain(sock)
            elif state != "ok":
                # The peer closed while idle; writing now would be silently lost.
                raise InstrumentDisconnected(f"{self.description}: connection closed by the instrument")
        return self._res

    def _map(self, exc: Exception, timeout_s: float) -> Exception:
        import pyvisa

        if isinstance(exc, pyvisa.errors.VisaIOError):
            if exc.error_code == pyvisa.constants.StatusCode.error_timeout:
                sock = self._socket()
                # pyvisa-py reports a peer that hung up mid-read as a timeout; tell the two apart.
                if sock is not None and _peek_state(sock) in ("eof", "error"):
                    return InstrumentDisconnected(f"{self.description}: connection closed by the instrument")
                return InstrumentTimeout(f"timeout after {round(timeout_s, 3)} s")
            return InstrumentDisconnected(f"{self.description}: {exc.description}")
        if isinstance(exc, UnicodeDecodeError):
            return InstrumentTimeout(f"undecodable reply ({exc.reason})")
        return InstrumentDisconnected(f"{self.description}: {type(exc).__name__}: {exc}")

    def write(self, text: str, timeout_s: float) -> None:
        """Send one command line."""
        import pyvisa

        try:
            res = self._ready(timeout_s)
            res.write(text)
        except (pyvisa.errors.VisaIOError, OSError) as exc:
            raise self._map(exc, timeout_s) from exc

    def query(self, text: str, timeout_s: float) -> str:
        """Send a command and return its reply line."""
        import pyvisa

        try:
            res = self._ready(timeout_s)
            res.write(text)
            return res.read()
        except (pyvisa.errors.VisaIOError, OSError, UnicodeDecodeError) as exc:
            raise self._map(exc, timeout_s) from exc


class SerialTransport:
    """A serial line through pyserial: a device path or any URL (socket://, rfc2217://, loop://)."""

    def __init__(self, url: str, *, baudrate: int, read_termination: str, write_termination: str) -> None:
        self.url = url
        self.baudrate = baudrate
        self.read_termination = read_termination.encode()
        self.write_termination = write_termination.encode()
        self.description = f"serial {url}"
        self._port = None

    def open(self, timeout_s: float) -> None:
        """Open the port or URL."""
        import serial

        if self._port is not None:
            return
        try:
            port = serial.serial_for_url(self.url, baudrate=self.baudrate, timeout=timeout_s, write_timeout=timeout_s)
        except ValueError as exc:
            raise InstrumentConfigError(
                f"serial URL {self.url!r} is not valid ({exc}); e.g. '/dev/ttyUSB0' or 'socket://host:port'"
            ) from exc
        except (serial.SerialException, OSError) as exc:
            raise InstrumentDisconnected(f"cannot open {self.description}: {exc}") from exc
        with contextlib.suppress(Exception):
            port.reset_input_buffer()
        self._port = port

    def close(self) -> None:
        """Close the port, ignoring errors of a dead line."""
        port, self._port = self._port, None
        if port is None:
            return
        sock = getattr(port, "_socket", None)
        if isinstance(sock, socket.socket):
            # pyserial's socket:// close() sleeps 0.3 s unconditionally, which would dominate every reconnect.
            with contextlib.suppress(OSError):
                sock.close()
            port._socket = None
            port.is_open = False
            return
        with contextlib.suppress(Exception):
            port.close()

    def _ready(self, timeout_s: float):
        if self._port is None:
            raise InstrumentDisconnected(f"{self.description} is not open")
        if self._port.timeout != timeout_s:
            self._port.timeout = timeout_s
        # A late reply to an abandoned query must not be taken for the answer to this one.
        if self._port.in_waiting:
            self._port.reset_input_buffer()
        return self._port

    def write(self, text: str, timeout_s: float) -> None:
        """Send one command line."""
        import serial

        try:
            port = self._ready(timeout_s)
            port.write(text.encode() + self.write_termination)
            port.flush()
        except serial.SerialTimeoutException as exc:
            raise InstrumentTimeout(f"write timeout after {round(timeout_s, 3)} s") from exc
        except (serial.SerialException, OSError) as exc:
            raise InstrumentDisconnected(f"{self.description}: {exc}") from exc

    def query(self, text: str, timeout_s: float) -> str:
        """Send a command and return its reply line."""
        import serial

        try:
            port = self._ready(timeout_s)
            port.write(text.encode() + self.write_termination)
            raw = port.read_until(self.read_termination)
        except serial.SerialTimeoutException as exc:
            raise InstrumentTimeout(f"write timeout after {round(timeout_s, 3)} s") from exc
        except (serial.SerialException, OSError) as exc:
            raise InstrumentDisconnected(f"{self.description}: {exc}") from exc
        if not raw.endswith(self.read_termination):
            raise InstrumentTimeout(f"timeout after {round(timeout_s, 3)} s")
        return raw[: -len(self.read_termination)].decode(errors="replace").rstrip("\r")
