"""qharness: a hardware-in-the-loop regression harness for quantum-link firmware."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("qharness")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+src"
