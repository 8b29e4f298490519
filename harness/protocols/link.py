"""Protocols of a pair link: Bell-state tomography, the link's process tomography, and coincidence rates."""

from __future__ import annotations

from typing import Any

from harness.protocols.base import Analysis, MeasureContext, Protocol, matrix_payload
from harness.records import INPUTS_6, CoincidenceCounts, ProcessCounts, TomographyCounts


class BellProtocol(Protocol):
    """Two-qubit Pauli tomography of the delivered pair: fidelity, concurrence, CHSH S and the QBERs."""

    name = "bell"

    def _measure(self, device: Any, ctx: MeasureContext) -> TomographyCounts:
        return device.bell_tomography(ctx.profile.measurement.integration_time_s * ctx.scale)

    def _estimate(self, raw: TomographyCounts, ctx: MeasureContext, deps: dict) -> Analysis:
        from harness.analysis.estimators import analyse_bell
        from harness.analysis.tomography import STATE_TOMOGRAPHY_METHOD

        found = analyse_bell(raw, rng=ctx.rng("bell-bootstrap"), n_boot=ctx.n_boot)
        # The report draws the state the fidelity was computed from instead of reconstructing it again.
        rho = {"rho": matrix_payload(found.rho), "method": STATE_TOMOGRAPHY_METHOD}
        return Analysis(found.estimates, {"bell_fidelity": rho})


class LinkProtocol(Protocol):
    """Process tomography of the link channel: process fidelity and the capacities C_E, Q1 and chi."""

    name = "link"

    def _measure(self, device: Any, ctx: MeasureContext) -> ProcessCounts:
        # The over-complete six inputs condition the Choi fit far better than four (C_E spread ~3x smaller).
        return device.link_tomography(ctx.profile.measurement.integration_time_s * ctx.scale, INPUTS_6)

    def _estimate(self, raw: ProcessCounts, ctx: MeasureContext, deps: dict) -> Analysis:
        from harness.analysis.estimators import estimate_link_metrics

        return Analysis(estimate_link_metrics(raw, rng=ctx.rng("link-bootstrap"), n_boot=ctx.n_boot))


class RatesProtocol(Protocol):
    """Singles and coincidences: pair rate, heralding, CAR, and (with the Bell tomography) ebit and key rates."""

    name = "rates"
    requires = ("bell",)

    def _measure(self, device: Any, ctx: MeasureContext) -> CoincidenceCounts:
        return device.coincidences(ctx.profile.measurement.coincidence_time_s * ctx.scale)

    def _estimate(self, raw: CoincidenceCounts, ctx: MeasureContext, deps: dict) -> Analysis:
        from harness.analysis.rates import estimate_rate_metrics

        return Analysis(estimate_rate_metrics(raw, deps["bell"], rng=ctx.rng("rates-bootstrap"), n_boot=ctx.n_boot))
