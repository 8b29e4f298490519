"""Measurement plans: what to measure on a device, for how long, and which metrics it yields.

A protocol measures raw records on a `Device` (stored before any analysis), pools a re-measurement into earlier
records, and turns records into `Estimate`s (see `harness.protocols.base`). Which metrics a protocol yields is
the metric registry's `protocol` column (`harness.metrics`); this module keeps the protocols by name.
"""

from __future__ import annotations

from collections.abc import Iterable

from harness.errors import NotSupportedError
from harness.metrics import metrics_of
from harness.protocols.base import (
    Analysis,
    Failure,
    FailureKind,
    Ledger,
    MeasureContext,
    Protocol,
    raw_payload,
)
from harness.protocols.decoder import DECODER_METRICS, DecoderProtocol
from harness.protocols.link import BellProtocol, LinkProtocol, RatesProtocol
from harness.protocols.logical import LogicalProtocol, LogicalRecord

__all__ = [
    "BELL_METRICS",
    "DECODER_METRICS",
    "LINK_METRICS",
    "PROTOCOLS",
    "RATE_METRICS",
    "Analysis",
    "Failure",
    "FailureKind",
    "Ledger",
    "LogicalRecord",
    "MeasureContext",
    "NotSupportedError",
    "Protocol",
    "protocol_for",
    "protocols_for",
    "raw_payload",
    "register_protocol",
]

BELL_METRICS = metrics_of("bell")
LINK_METRICS = metrics_of("link")
RATE_METRICS = metrics_of("rates")

PROTOCOLS: dict[str, Protocol] = {
    p.name: p for p in (BellProtocol(), LinkProtocol(), RatesProtocol(), LogicalProtocol(), DecoderProtocol())
}


def register_protocol(protocol: Protocol) -> None:
    """Add a protocol (and so its metrics) to the registry; names must be new."""
    clash = set(protocol.metrics) & {m for p in PROTOCOLS.values() for m in p.metrics}
    if protocol.name in PROTOCOLS or clash:
        raise ValueError(f"protocol {protocol.name!r} or its metrics {sorted(clash)} are already registered")
    PROTOCOLS[protocol.name] = protocol


def protocol_for(metric: str) -> Protocol:
    """Return the protocol that yields `metric`; raise KeyError naming the known metrics."""
    for p in PROTOCOLS.values():
        if p.yields(metric):
            return p
    known = sorted(m for p in PROTOCOLS.values() for m in p.metrics)
    raise KeyError(f"no protocol yields metric {metric!r}; known metrics: {', '.join(known)}")


def protocols_for(metrics: Iterable[str]) -> list[Protocol]:
    """Return the protocols behind `metrics` in dependency order (a protocol after those it requires)."""
    needed: dict[str, Protocol] = {}

    def add(p: Protocol) -> None:
        for dep in p.requires:
            add(PROTOCOLS[dep])
        needed.setdefault(p.name, p)

    for m in sorted(metrics):
        add(protocol_for(m))
    return list(needed.values())
