"""Decoder in the loop: a device's QEC decoder answers sampled syndromes and is compared with matching.

Plan of one measurement, per decoder code (the d = 3 bit-flip repetition code and the d = 3 rotated surface
code in the Z basis, each over `distance` receiver rounds):

1. stim samples `shots` detection-event vectors (syndromes) and their true observable flips under the
   profile's QEC noise: `QecNoise.from_profile` with the twirled channel of the profile's `link` block.
2. Every non-trivial syndrome is sent to the device, plus the first `TRIVIAL_SAMPLE` all-zero syndromes
   (a fixed sample: shots are i.i.d., so the first ones are a uniform sample). The remaining all-zero shots
   are not sent: a decoder answers a function of the syndrome, so they are given the device's majority
   answer over the trivial syndromes it was sent - a device that answers the empty syndrome wrongly is
   caught, and is charged for every trivial shot. The raw record says how many shots were extrapolated.
3. pymatching decodes the same syndromes on the same detector error model.

Metrics, over all shots of both codes (n = shots, not round trips):
- decoder_agreement: share of shots where the device and matching predict the same flip (Wilson interval);
- decoder_logical_success: 1 - share of shots where the device's prediction differs from the true observable
  flip (Wilson interval of the failure share, mapped through 1 - p);
- decoder_latency_p50_us / _p99_us: quantiles of the round-trip times of the exchanges (µs), with the
  distribution-free order-statistic interval of a quantile.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.stats import binom

from harness.analysis.intervals import make_estimate
from harness.analysis.validation import AnalysisError
from harness.errors import DeviceError, NotSupportedError
from harness.metrics import Estimate, metrics_of
from harness.protocols.base import Analysis, MeasureContext, Protocol

if TYPE_CHECKING:
    from harness.qec.memory import CompiledMemory
    from harness.qec.noise import QecNoise

DECODER_METRICS = metrics_of("decoder")
# Decoder code id (the {code} field of the decode command) -> (memory code, distance, basis); rounds = distance.
DECODER_CODES: dict[str, tuple[str, int, str]] = {
    "repetition_bitflip_d3": ("repetition_bitflip", 3, "Z"),
    "surface_d3_z": ("surface", 3, "Z"),
}
# Shots per code at the standard budget (capped by measurement.qec_max_shots). At the bench-emulated noise about 2 %
# of repetition-code and 20 % of surface-code syndromes are non-trivial: about 4,500 round trips in all, well under a
# second over loopback (round trips of ~40 µs).
DECODER_SHOTS = 20_000
# All-zero syndromes sent per code and measurement, to learn the device's answer to the empty syndrome.
TRIVIAL_SAMPLE = 50
CONFIDENCE = 0.95


class DecoderRequestError(ValueError):
    """A decode request names an unknown code or carries a malformed syndrome; the message says which."""


def decoder_noise(link: Any, qec: Any) -> QecNoise:
    """Return the QecNoise of the decoder codes: `qec` gate/measurement/idle errors and the twirled `link` channel."""
    from harness.physics import link_block_choi
    from harness.qec.noise import QecNoise

    return QecNoise.from_profile(_QecView(qec), link_block_choi(link))


@dataclass(frozen=True)
class _QecView:
    """Adapter so QecNoise.from_profile reads any object with the four qec error attributes."""

    qec: Any


def decoder_memory(code_id: str, noise: QecNoise) -> CompiledMemory:
    """Return the (cached) CompiledMemory of a decoder code id under `noise`; raise DecoderRequestError if unknown."""
    from harness.qec.memory import compiled_memory

    spec = DECODER_CODES.get(code_id)
    if spec is None:
        raise DecoderRequestError(f"unknown decoder code {code_id!r}; known: {', '.join(DECODER_CODES)}")
    code, distance, basis = spec
    return compiled_memory(code, distance, basis, distance, noise)


def syndrome_strings(dets: np.ndarray) -> list[str]:
    """Return each row of a boolean (shots, detectors) array as a '0'/'1' string, detector 0 first."""
    arr = np.ascontiguousarray(np.asarray(dets, dtype=np.uint8) + ord("0"))
    if arr.ndim != 2:
        raise ValueError(f"syndromes must be a 2-D array (shots, detectors), got shape {arr.shape}")
    if arr.shape[0] == 0:
        return []
    return arr.view(f"S{arr.shape[1]}").ravel().astype(f"U{arr.shape[1]}").tolist()


def parse_syndrome(text: str, num_detectors: int) -> np.ndarray:
    """Return a '0'/'1' syndrome string as a boolean vector; raise DecoderRequestError unless it has the right size."""
    s = text.strip()
    if len(s) != num_detectors or s.strip("01"):
        raise DecoderRequestError(
            f"syndrome {s[:40]!r} must be {num_detectors} characters of 0/1 (one per detector, detector 0 first)"
        )
    return np.frombuffer(s.encode(), dtype=np.uint8) == ord("1")


# ---- raw record ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CodeExchanges:
    """The exchanges of one decoder code: what was sent, both decoders' answers, the truth and the latencies."""

    code: str
    shots: int  # syndromes sampled, sent or not
    syndromes: tuple[str, ...]  # sent syndromes
    trivial: np.ndarray  # bool per sent syndrome: all zero
    device: np.ndarray  # uint8 per sent syndrome: the device's predicted observable flip
    matching: np.ndarray  # uint8 per sent syndrome: pymatching's prediction
    observed: np.ndarray  # uint8 per sent syndrome: the true observable flip
    latency_us: np.ndarray  # float64 per sent syndrome: round-trip time
    unsent_trivial: int  # all-zero shots not sent (given the device's answer to the empty syndrome)
    unsent_trivial_flips: int  # of those, shots whose observable flipped anyway (undetectable logical errors)

    def tally(self) -> tuple[int, int, int]:
        """Return (shots, shots where device and matching agree, shots where the device's prediction is wrong)."""
        agree = int(np.count_nonzero(self.device == self.matching))
        wrong = int(np.count_nonzero(self.device != self.observed))
        if self.unsent_trivial:
            if not self.trivial.any():
                raise AnalysisError(
                    f"decoder record of {self.code}: {self.unsent_trivial} trivial shots were not sent and no "
                    "trivial syndrome was, so the device's answer to them is unknown"
                )
            answer = int(2 * np.count_nonzero(self.device[self.trivial]) > np.count_nonzero(self.trivial))
            expected = int(2 * np.count_nonzero(self.matching[self.trivial]) > np.count_nonzero(self.trivial))
            agree += self.unsent_trivial if answer == expected else 0
            wrong += self.unsent_trivial_flips if answer == 0 else self.unsent_trivial - self.unsent_trivial_flips
        return self.shots, agree, wrong

    def __add__(self, other: CodeExchanges) -> CodeExchanges:
        """Concatenate two measurements of the same code (their shots are independent)."""
        if self.code != other.code:
            raise ValueError(f"cannot pool decoder exchanges of {self.code} and {other.code}")
        return CodeExchanges(
            code=self.code,
            shots=self.shots + other.shots,
            syndromes=self.syndromes + other.syndromes,
            trivial=np.concatenate([self.trivial, other.trivial]),
            device=np.concatenate([self.device, other.device]),
            matching=np.concatenate([self.matching, other.matching]),
            observed=np.concatenate([self.observed, other.observed]),
            latency_us=np.concatenate([self.latency_us, other.latency_us]),
            unsent_trivial=self.unsent_trivial + other.unsent_trivial,
            unsent_trivial_flips=self.unsent_trivial_flips + other.unsent_trivial_flips,
        )

    def to_dict(self) -> dict:
        """JSON-ready form for the store."""
        return {
            "code": self.code,
            "shots": self.shots,
            "syndromes": list(self.syndromes),
            "device": self.device.tolist(),
            "matching": self.matching.tolist(),
            "observed": self.observed.tolist(),
            "latency_us": self.latency_us.tolist(),
            "unsent_trivial": self.unsent_trivial,
            "unsent_trivial_flips": self.unsent_trivial_flips,
        }


@dataclass(frozen=True)
class DecoderRecord:
    """Raw record of the decoder protocol: the exchanges of every decoder code."""

    codes: tuple[CodeExchanges, ...]

    def __add__(self, other: DecoderRecord) -> DecoderRecord:
        """Pool two measurements code by code; a code measured only once is kept as it is."""
        first = {c.code: c for c in self.codes}
        pooled = [first.pop(c.code) + c if c.code in first else c for c in other.codes]
        return DecoderRecord((*first.values(), *pooled))

    def to_dict(self) -> dict:
        """JSON-ready form for the store."""
        return {"exchanges": [c.to_dict() for c in self.codes], "trivial_sample": TRIVIAL_SAMPLE}


# ---- measurement --------------------------------------------------------------------------------------------------


def _check_support(device: Any, profile: Any) -> None:
    name = getattr(profile, "name", "?")
    if not callable(getattr(device, "decode", None)) or not getattr(device, "has_decoder", False):
        raise NotSupportedError(
            f"profile {name!r} (kind {getattr(profile, 'kind', '?')}) has no decoder instrument: decoder-in-the-loop "
            'needs a bench.decoder block with a decode command, e.g. decode: "DEC? {code},{syndrome}"'
        )
    if getattr(profile, "link", None) is None:
        raise NotSupportedError(
            f"profile {name!r} has no 'link' block: the decoder's syndromes are sampled under the link's noise; "
            "add link: {loss_db, dephasing, ...}"
        )


def decoder_shots(profile: Any, scale: float) -> int:
    """Return the syndromes sampled per decoder code at budget `scale` (count)."""
    return max(1, int(min(profile.measurement.qec_max_shots, DECODER_SHOTS) * scale))


def measure_code(device: Any, code_id: str, noise: QecNoise, shots: int, seed: int) -> CodeExchanges:
    """Sample `shots` syndromes of one decoder code, stream the sent ones to `device`, return the exchanges."""
    comp = decoder_memory(code_id, noise)
    dets, obs = comp.circuit.compile_detector_sampler(seed=seed).sample(shots, separate_observables=True)
    nontrivial = dets.any(axis=1)
    trivial_idx = np.flatnonzero(~nontrivial)
    sent = np.sort(np.concatenate([np.flatnonzero(nontrivial), trivial_idx[:TRIVIAL_SAMPLE]]))
    unsent = trivial_idx[TRIVIAL_SAMPLE:]
    sent_dets = dets[sent]
    syndromes = syndrome_strings(sent_dets)
    answers, latency_us = device.decode(code_id, syndromes)
    answers = np.asarray(answers, dtype=np.uint8).reshape(-1)
    latency_us = np.asarray(latency_us, dtype=np.float64).reshape(-1)
    if answers.shape != (sent.size,) or latency_us.shape != (sent.size,):
        raise DeviceError(
            f"device decode of {code_id} returned {answers.size} answers and {latency_us.size} latencies for "
            f"{sent.size} syndromes"
        )
    matching = comp.matching.decode_batch(sent_dets)[:, 0].astype(np.uint8) if sent.size else np.zeros(0, np.uint8)
    return CodeExchanges(
        code=code_id,
        shots=int(shots),
        syndromes=tuple(syndromes),
        trivial=~nontrivial[sent],
        device=answers,
        matching=matching,
        observed=obs[sent, 0].astype(np.uint8),
        latency_us=latency_us,
        unsent_trivial=int(unsent.size),
        unsent_trivial_flips=int(np.count_nonzero(obs[unsent, 0])),
    )


# ---- estimation ---------------------------------------------------------------------------------------------------


def quantile_interval(x: np.ndarray, q: float, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """Return (quantile, low, high) of sample `x` at level `q`, with the order-statistic interval (x's unit).

    The interval [x_(l), x_(u)] takes l, u from Binomial(n, q) so that P(l <= B < u) >= confidence: it needs no
    assumption about the distribution of x (a latency tail is anything but normal).
    """
    s = np.sort(np.asarray(x, dtype=np.float64).reshape(-1))
    n = s.size
    if n == 0:
        return float("nan"), float("nan"), float("nan")
    alpha = 1.0 - confidence
    lo = int(binom.ppf(alpha / 2, n, q))
    hi = int(binom.ppf(1 - alpha / 2, n, q)) + 1
    value = float(np.quantile(s, q))
    low = float(s[min(max(lo, 1), n) - 1])
    high = float(s[min(max(hi, 1), n) - 1])
    return value, min(low, value), max(high, value)


class DecoderProtocol(Protocol):
    """Decoder in the loop: the device's decoder answers sampled syndromes and is compared with matching."""

    name = "decoder"

    def _measure(self, device: Any, ctx: MeasureContext) -> DecoderRecord:
        _check_support(device, ctx.profile)
        noise = decoder_noise(ctx.profile.link, ctx.profile.qec)
        shots = decoder_shots(ctx.profile, ctx.scale)
        return DecoderRecord(
            tuple(
                measure_code(device, code_id, noise, shots, ctx.int_seed(f"decoder-{code_id}"))
                for code_id in DECODER_CODES
            )
        )

    def _estimate(self, raw: DecoderRecord, ctx: MeasureContext, deps: dict) -> Analysis:
        return Analysis(estimate_decoder_metrics(raw))


def estimate_decoder_metrics(raw: DecoderRecord) -> dict[str, Estimate]:
    """Return agreement and logical success (Wilson intervals) and latency quantiles (µs) over all shots."""
    from harness.qec.memory import wilson_interval

    tallies = np.array([c.tally() for c in raw.codes], dtype=np.int64).reshape(-1, 3)
    n, agree, wrong = (int(v) for v in tallies.sum(axis=0))
    if n == 0:
        raise AnalysisError("decoder record holds no shots")
    out: dict[str, Estimate] = {}
    low, high = wilson_interval(agree, n, CONFIDENCE)
    out["decoder_agreement"] = make_estimate("decoder_agreement", agree / n, low, high, n, CONFIDENCE)
    low, high = wilson_interval(wrong, n, CONFIDENCE)
    out["decoder_logical_success"] = make_estimate(
        "decoder_logical_success", 1 - wrong / n, 1 - high, 1 - low, n, CONFIDENCE
    )
    lat = np.concatenate([c.latency_us for c in raw.codes])
    for name, q in (("decoder_latency_p50_us", 0.5), ("decoder_latency_p99_us", 0.99)):
        value, low, high = quantile_interval(lat, q, CONFIDENCE)
        out[name] = make_estimate(name, value, low, high, int(lat.size), CONFIDENCE)
    return out
