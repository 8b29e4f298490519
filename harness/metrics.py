"""Metric values with their uncertainty, tolerances, QEC code names, and the registry of every reported metric."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from functools import lru_cache
from statistics import NormalDist


@lru_cache(maxsize=64)
def _z(p: float) -> float:
    """Return the standard normal quantile at probability p."""
    return NormalDist().inv_cdf(p)


class Verdict(StrEnum):
    """Outcome of comparing one metric (or a family) with the baseline.

    NOT_GATED: the metric is measured and shown but not tested, with the reason (informational timing, no
    tolerance, or a tolerance the budget cannot resolve); it is neither a failure nor INCONCLUSIVE.
    """

    PASS = "PASS"
    REGRESSION = "REGRESSION"
    IMPROVED = "IMPROVED"
    INCONCLUSIVE = "INCONCLUSIVE"
    NOT_GATED = "NOT_GATED"
    NO_BASELINE = "NO_BASELINE"
    ERROR = "ERROR"


class Direction(StrEnum):
    """Which way is better for a metric."""

    HIGHER = "higher"
    LOWER = "lower"


@dataclass(frozen=True)
class Estimate:
    """A measured number with its interval, sample size, unit and better-direction.

    `n` is the sample size the interval rests on (coincidences, shots, channel uses).
    `samples` optionally holds bootstrap replicates of the value; it is never persisted. The replicates of the
    Estimates one protocol returns are drawn jointly: replicate i of every metric comes from the same resample of
    the counts, so replicates of equal index may be paired across metrics (e.g. for max-T statistics). Metrics whose
    counts share nothing (the Bell tomography and the coincidence counts) have independent replicates; the rates
    protocol resamples the Bell record exactly as the bell protocol does, so its ebit rate's replicate i rests on
    bell_fidelity's resample i. A value carrying a bootstrap bias correction has replicates centred on it. The
    interval need not be read off the replicates (metrics linear in the counts have analytic score intervals).
    `binomial` optionally holds the counts (failures, trials) of a metric that is a binomial share: the value is
    1 - failures/trials for a higher-is-better metric and failures/trials for a lower-is-better one. The gate then
    tests it exactly (valid at zero failures); the session keeps the counts in the stored detail.
    """

    value: float
    ci_low: float
    ci_high: float
    n: int
    unit: str
    direction: Direction
    confidence: float = 0.95
    samples: tuple[float, ...] | None = field(default=None, repr=False, compare=False)
    binomial: tuple[int, int] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not (self.ci_low <= self.value <= self.ci_high) and not any(
            math.isnan(x) for x in (self.value, self.ci_low, self.ci_high)
        ):
            raise ValueError(f"interval [{self.ci_low}, {self.ci_high}] does not contain value {self.value}")
        if self.n < 0:
            raise ValueError(f"sample size must be >= 0, got {self.n}")
        if not 0.0 < self.confidence < 1.0:
            raise ValueError(f"confidence must be in (0, 1), got {self.confidence}")
        if self.binomial is not None:
            failures, trials = self.binomial
            if int(failures) != failures or int(trials) != trials or not 0 <= failures <= trials or trials < 1:
                raise ValueError(
                    f"binomial counts must be integers 0 <= failures <= trials, trials >= 1: {self.binomial}"
                )

    @property
    def standard_error(self) -> float:
        """Normal-approximation standard error implied by the interval's half-width."""
        return (self.ci_high - self.ci_low) / (2 * _z(0.5 + self.confidence / 2))

    def to_dict(self) -> dict:
        """Plain JSON-ready dict (without bootstrap replicates or binomial counts)."""
        d = asdict(self)
        d.pop("samples")
        d.pop("binomial")
        d["direction"] = str(self.direction)
        return d


@dataclass(frozen=True)
class Tolerance:
    """How much worse than the baseline a metric may get before it counts as a regression."""

    absolute: float = 0.0
    relative: float = 0.0

    def __post_init__(self) -> None:
        for label, x in (("absolute", self.absolute), ("relative", self.relative)):
            if not (math.isfinite(x) and x >= 0.0):
                raise ValueError(f"tolerance {label} must be a finite number >= 0, got {x!r}")

    def margin(self, baseline_value: float) -> float:
        """Return the allowed worsening in the metric's unit: max(absolute, relative * |baseline|)."""
        rel = self.relative * abs(baseline_value) if math.isfinite(baseline_value) else 0.0
        return max(self.absolute, rel)


def format_interval(value: float, ci_low: float, ci_high: float, fmt: str | Callable[[float], str] = ".4g") -> str:
    """Return "value [low, high]", each number through a format spec or a formatter (the one way intervals print)."""
    text = fmt if callable(fmt) else (lambda x: f"{x:{fmt}}")
    return f"{text(value)} [{text(ci_low)}, {text(ci_high)}]"


@dataclass(frozen=True)
class MetricSpec:
    """Static description of a metric: family, unit, direction, meaning, the protocol that yields it, primary or not.

    A spec whose `name` ends in "_" is a pattern: it describes every metric named `<name><code>` (the logical
    metrics, one per QEC code of a profile).
    `alias_of` names the metric this one is a function of (a pattern's alias is the same code's metric): the gate
    tests the pair once and reports both. `timing` is "host" for wall-clock times of this machine (informational,
    never gated) or "device" for round trips of the device (gated only with a tolerance in the profile).
    `informational` says why a metric is measured and shown but never gated (its verdict is NOT_GATED with it).
    """

    name: str
    family: str
    unit: str
    direction: Direction
    description: str
    protocol: str
    primary: bool = False
    alias_of: str | None = None
    timing: str | None = None
    informational: str | None = None

    @property
    def is_pattern(self) -> bool:
        """True for a parametrised name (a prefix such as 'logical_success_')."""
        return self.name.endswith("_")


H, L = Direction.HIGHER, Direction.LOWER

_SPECS = [
    MetricSpec(
        "bell_fidelity",
        "fidelity",
        "",
        H,
        "Fidelity of the delivered state to |Phi+> (linear inversion)",
        "bell",
        primary=True,
    ),
    # For the states a link delivers (Werner-like) C = 2F - 1: one test serves both (replicates correlate at 1.00).
    MetricSpec(
        "concurrence",
        "fidelity",
        "",
        H,
        "Wootters concurrence of the delivered state",
        "bell",
        alias_of="bell_fidelity",
    ),
    MetricSpec("chsh_s", "fidelity", "", H, "CHSH S at the settings optimal for |Phi+>: sqrt2 (E_XX + E_ZZ)", "bell"),
    MetricSpec("qber_z", "fidelity", "", L, "Quantum bit error rate in the Z basis", "bell"),
    MetricSpec("qber_x", "fidelity", "", L, "Quantum bit error rate in the X basis", "bell"),
    MetricSpec("link_process_fidelity", "fidelity", "", H, "Process fidelity of the link to identity", "link"),
    MetricSpec(
        "capacity_ce_bits",
        "capacity",
        "bit/use",
        H,
        "Entanglement-assisted classical capacity C_E",
        "link",
        primary=True,
    ),
    # For a unital qubit channel C_E = 1 + Q1 exactly.
    MetricSpec(
        "capacity_q1_bits",
        "capacity",
        "bit/use",
        H,
        "Maximised coherent information Q1 (<= Q)",
        "link",
        alias_of="capacity_ce_bits",
    ),
    # Its bias correction at the denoised Choi matrix varies with the data as much as the estimate does
    # (benchmarks/RESULTS.md, estimators): near the identity channel +0.4-0.5 SE of bias remain and the spread is
    # 1.5x the replicates'. Shown with its interval, never gated; C_E and Q1 gate the link's capacity.
    MetricSpec(
        "capacity_chi_bits",
        "capacity",
        "bit/use",
        H,
        "Holevo quantity chi (<= C)",
        "link",
        informational="Holevo chi keeps a bias near the identity channel; shown, never gated (C_E and Q1 are)",
    ),
    MetricSpec(
        "pair_rate_hz",
        "entanglement_rate",
        "Hz",
        H,
        "Coincidences per second, accidentals removed",
        "rates",
        primary=True,
    ),
    MetricSpec("heralding_efficiency_a", "entanglement_rate", "", H, "Coincidences / singles of arm B", "rates"),
    MetricSpec("heralding_efficiency_b", "entanglement_rate", "", H, "Coincidences / singles of arm A", "rates"),
    MetricSpec("car", "entanglement_rate", "", H, "Coincidence-to-accidental ratio", "rates"),
    MetricSpec(
        "ebit_rate_hz", "entanglement_rate", "ebit/s", H, "Pair rate x coherent information (hashing bound)", "rates"
    ),
    MetricSpec(
        "secret_key_rate_bps", "entanglement_rate", "bit/s", H, "Asymptotic BBM92 key rate with sifting", "rates"
    ),
    MetricSpec("plob_fraction", "entanglement_rate", "", H, "Ebits per channel use / PLOB bound", "rates"),
    MetricSpec(
        "logical_success_", "logical", "", H, "Logical success 1 - p_L of a memory experiment", "logical", primary=True
    ),
    MetricSpec(
        "logical_error_per_round_",
        "logical",
        "",
        L,
        "Logical error per syndrome round",
        "logical",
        alias_of="logical_success_",
    ),
    MetricSpec(
        "decode_time_us_",
        "logical",
        "us",
        L,
        "Decoder time per shot",
        "logical",
        timing="host",
        informational="wall-clock time of this host, never gated",
    ),
    MetricSpec(
        "decoder_agreement", "logical", "", H, "Share of syndromes where device and matching decoders agree", "decoder"
    ),
    MetricSpec(
        "decoder_logical_success", "logical", "", H, "Logical success with the device decoder's corrections", "decoder"
    ),
    MetricSpec(
        "decoder_latency_p50_us", "logical", "us", L, "Median decoder round-trip latency", "decoder", timing="device"
    ),
    MetricSpec(
        "decoder_latency_p99_us",
        "logical",
        "us",
        L,
        "99th-percentile decoder round-trip latency",
        "decoder",
        timing="device",
    ),
]

# Fixed metric names -> spec (patterns are kept apart: their names are prefixes, not metrics).
REGISTRY: dict[str, MetricSpec] = {s.name: s for s in _SPECS if not s.is_pattern}
PATTERNS: tuple[MetricSpec, ...] = tuple(s for s in _SPECS if s.is_pattern)
LOGICAL_PREFIXES: tuple[str, ...] = tuple(s.name for s in PATTERNS)


def metrics_of(protocol: str) -> tuple[str, ...]:
    """Return the fixed metric names a protocol yields, in registry order."""
    return tuple(s.name for s in _SPECS if s.protocol == protocol and not s.is_pattern)


def prefixes_of(protocol: str) -> tuple[str, ...]:
    """Return the parametrised name prefixes a protocol yields (e.g. 'logical_success_')."""
    return tuple(s.name for s in PATTERNS if s.protocol == protocol)


def _pattern_spec(name: str) -> MetricSpec | None:
    """Return the spec of `name` made from a pattern (a prefix followed by a non-empty code), or None."""
    for p in PATTERNS:
        if name.startswith(p.name) and len(name) > len(p.name):
            alias = p.alias_of + name[len(p.name) :] if p.alias_of else None
            return replace(p, name=name, alias_of=alias)
    return None


def is_known_metric(name: str) -> bool:
    """True when `name` is a registered metric or a pattern's metric (e.g. 'logical_success_surface_d3')."""
    return name in REGISTRY or _pattern_spec(name) is not None


def metric_spec(name: str) -> MetricSpec:
    """Return the registered spec of a metric; raise KeyError naming the known ones."""
    spec = REGISTRY.get(name) or _pattern_spec(name)
    if spec is None:
        known = [*sorted(REGISTRY), *(f"{p}<code>" for p in LOGICAL_PREFIXES)]
        raise KeyError(f"unknown metric {name!r}; known: {', '.join(known)}")
    return spec


def logical_headline(names: Iterable[str]) -> str | None:
    """Return the one logical headline among `names`: logical success of the largest surface code, else of the
    largest code (ties by name); None without logical-success metrics.

    The surface code is the code a link serves, its headline 1 - (p_L,Z + p_L,X) covers both logical errors, and
    the largest distance is the most sensitive to gate and link noise; repetition codes protect one basis only.
    """
    prefix = "logical_success_"
    found = []
    for n in names:
        if n.startswith(prefix):
            code = n[len(prefix) :]
            m = _CODE.fullmatch(code)
            if m is not None:
                found.append((m.group(1) != "surface", -int(m.group(2)), n))
    return min(found)[2] if found else None


def primary_metrics(names: Iterable[str]) -> tuple[str, ...]:
    """Return those of `names` that the registry marks primary, with ONE logical headline (`logical_headline`).

    Primaries are gated first, at the full alpha (see docs/baselines.md).
    """
    names = list(names)
    headline = logical_headline(names)
    return tuple(
        n
        for n in names
        if is_known_metric(n) and metric_spec(n).primary and (not n.startswith("logical_success_") or n == headline)
    )


def alias_of(name: str) -> str | None:
    """Return the metric `name` is declared a function of (tested once with it), or None."""
    return metric_spec(name).alias_of if is_known_metric(name) else None


_CODE = re.compile(r"([a-z][a-z0-9_]*)_d([0-9]+)")


@dataclass(frozen=True)
class CodeName:
    """A QEC code name such as 'surface_d5': family 'surface', distance 5."""

    family: str
    distance: int

    def __str__(self) -> str:
        return f"{self.family}_d{self.distance}"


def parse_code(name: str) -> CodeName:
    """Parse '<family>_d<odd distance >= 3>' (e.g. 'surface_d3'); raise ValueError saying what is wrong."""
    m = _CODE.fullmatch(str(name))
    if m is None:
        raise ValueError(f"code {name!r} is not of the form '<family>_d<distance>', e.g. 'surface_d3'")
    d = int(m.group(2))
    if d < 3 or d % 2 == 0:
        raise ValueError(f"code {name!r} has distance {d}; the distance must be odd and >= 3")
    return CodeName(m.group(1), d)
