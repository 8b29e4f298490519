"""Protocols of a pair link: Bell-state tomography, the link's process tomography, and coincidence rates."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from harness.protocols.base import Analysis, MeasureContext, Protocol, matrix_payload
from harness.records import INPUTS_6, CoincidenceCounts, ProcessCounts, TomographyCounts
from harness.streams import stream


def bell_bootstrap_stream(ctx: MeasureContext, bell: TomographyCounts) -> np.random.Generator:
    """The generator that resamples a Bell tomography, keyed by its counts (not by the call).

    The bell and rates protocols both resample the same pooled Bell record with it, so the ebit rate's replicate i
    rests on the same Bell resample as bell_fidelity's replicate i.
    """
    text = ",".join(bell.settings).encode() + np.ascontiguousarray(bell.counts, dtype=np.int64).tobytes()
    key = int.from_bytes(hashlib.sha256(text).digest()[:4], "little")
    return stream(ctx.seed, ctx.profile.name, ctx.build, "bell-bootstrap", key)


class BellProtocol(Protocol):
    """Two-qubit Pauli tomography of the delivered pair: fidelity, concurrence, CHSH S and the QBERs."""

    name = "bell"

    def _measure(self, device: Any, ctx: MeasureContext) -> TomographyCounts:
        return device.bell_tomography(ctx.profile.measurement.integration_time_s * ctx.scale)

    def _estimate(self, raw: TomographyCounts, ctx: MeasureContext, deps: dict) -> Analysis:
        from harness.analysis.estimators import analyse_bell
        from harness.analysis.tomography import STATE_TOMOGRAPHY_METHOD

        found = analyse_bell(raw, rng=bell_bootstrap_stream(ctx, raw), n_boot=ctx.n_boot)
        # The report draws the physical state instead of reconstructing it again. Its fidelity and Horodecki's
        # maximal S are display values: the gated estimates are the unbiased linear ones.
        fidelity = {
            "rho": matrix_payload(found.rho),
            "method": STATE_TOMOGRAPHY_METHOD,
            "physical_value": found.physical_fidelity,
        }
        chsh = {"horodecki_max": found.chsh_max}
        return Analysis(found.estimates, {"bell_fidelity": fidelity, "chsh_s": chsh})


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

        bell = deps["bell"]
        found = estimate_rate_metrics(
            raw, bell, rng=ctx.rng("rates-bootstrap"), n_boot=ctx.n_boot, bell_rng=bell_bootstrap_stream(ctx, bell)
        )
        return Analysis(found)
