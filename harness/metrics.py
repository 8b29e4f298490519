"""Metric values with their uncertainty, and the registry of every metric the suites report."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from enum import StrEnum


class Direction(StrEnum):
    """Which way is better for a metric."""

    HIGHER = "higher"
    LOWER = "lower"


@dataclass(frozen=True)
class Estimate:
    """A measured number with its interval, sample size, unit and better-direction.

    `n` is the sample size the interval rests on (coincidences, shots, channel uses).
    `samples` optionally holds bootstrap replicates; it is never persisted.
    """

    value: float
    ci_low: float
    ci_high: float
    n: int
    unit: str
    direction: Direction
    confidence: float = 0.95
    samples: tuple[float, ...] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not (self.ci_low <= self.value <= self.ci_high) and not any(
            math.isnan(x) for x in (self.value, self.ci_low, self.ci_high)
        ):
            raise ValueError(f"interval [{self.ci_low}, {self.ci_high}] does not contain value {self.value}")
        if self.n < 0:
            raise ValueError(f"sample size must be >= 0, got {self.n}")
        if not 0.0 < self.confidence < 1.0:
            raise ValueError(f"confidence must be in (0, 1), got {self.confidence}")

    @property
    def standard_error(self) -> float:
        """Normal-approximation standard error implied by the interval's half-width."""
        from scipy.stats import norm

        z = float(norm.ppf(0.5 + self.confidence / 2))
        return (self.ci_high - self.ci_low) / (2 * z)

    def to_dict(self) -> dict:
        """Plain JSON-ready dict (without bootstrap replicates)."""
        d = asdict(self)
        d.pop("samples")
        d["direction"] = str(self.direction)
        return d


@dataclass(frozen=True)
class MetricSpec:
    """Static description of a metric: its family, unit, direction and meaning."""

    name: str
    family: str
    unit: str
    direction: Direction
    description: str


H, L = Direction.HIGHER, Direction.LOWER

_SPECS = [
    MetricSpec("bell_fidelity", "fidelity", "", H, "Fidelity of the delivered state to |Phi+>"),
    MetricSpec("concurrence", "fidelity", "", H, "Wootters concurrence of the delivered state"),
    MetricSpec("chsh_s", "fidelity", "", H, "CHSH S maximised over settings (Horodecki)"),
    MetricSpec("qber_z", "fidelity", "", L, "Quantum bit error rate in the Z basis"),
    MetricSpec("qber_x", "fidelity", "", L, "Quantum bit error rate in the X basis"),
    MetricSpec("link_process_fidelity", "fidelity", "", H, "Process fidelity of the link to identity"),
    MetricSpec("pair_rate_hz", "entanglement_rate", "Hz", H, "Coincidences per second, accidentals removed"),
    MetricSpec("heralding_efficiency_a", "entanglement_rate", "", H, "Coincidences / singles of arm B"),
    MetricSpec("heralding_efficiency_b", "entanglement_rate", "", H, "Coincidences / singles of arm A"),
    MetricSpec("car", "entanglement_rate", "", H, "Coincidence-to-accidental ratio"),
    MetricSpec("ebit_rate_hz", "entanglement_rate", "ebit/s", H, "Pair rate x coherent information (hashing bound)"),
    MetricSpec("secret_key_rate_bps", "entanglement_rate", "bit/s", H, "Asymptotic BBM92 key rate with sifting"),
    MetricSpec("plob_fraction", "entanglement_rate", "", H, "Ebits per channel use / PLOB bound"),
    MetricSpec("capacity_ce_bits", "capacity", "bit/use", H, "Entanglement-assisted classical capacity C_E"),
    MetricSpec("capacity_q1_bits", "capacity", "bit/use", H, "Maximised coherent information Q1 (<= Q)"),
    MetricSpec("capacity_chi_bits", "capacity", "bit/use", H, "Holevo quantity chi (<= C)"),
    MetricSpec("decoder_agreement", "logical", "", H, "Share of syndromes where device and matching decoders agree"),
    MetricSpec("decoder_logical_success", "logical", "", H, "Logical success with the device decoder's corrections"),
    MetricSpec("decoder_latency_p50_us", "logical", "us", L, "Median decoder round-trip latency"),
    MetricSpec("decoder_latency_p99_us", "logical", "us", L, "99th-percentile decoder round-trip latency"),
]

REGISTRY: dict[str, MetricSpec] = {s.name: s for s in _SPECS}


def _logical_spec(name: str) -> MetricSpec | None:
    """Specs for the parametrised logical-memory metric names (code and distance in the name)."""
    if name.startswith("logical_success_"):
        return MetricSpec(name, "logical", "", H, "Logical success 1 - p_L of a memory experiment")
    if name.startswith("logical_error_per_round_"):
        return MetricSpec(name, "logical", "", L, "Logical error per syndrome round")
    if name.startswith("decode_time_us_"):
        return MetricSpec(name, "logical", "us", L, "Decoder time per shot")
    return None


def metric_spec(name: str) -> MetricSpec:
    """Return the registered spec of a metric; raise KeyError naming the known ones."""
    spec = REGISTRY.get(name) or _logical_spec(name)
    if spec is None:
        raise KeyError(f"unknown metric {name!r}; known: {', '.join(sorted(REGISTRY))}")
    return spec
