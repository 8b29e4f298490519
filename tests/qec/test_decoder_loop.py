"""Decoder in the loop: the emulated firmware decoder against matching, and the decoder protocol's metrics."""

from __future__ import annotations

import itertools

import numpy as np
import pymatching
import pytest

from harness.emulators import LinkParameters
from harness.emulators.decoder import DECODER_BUGS, SURFACE_D3_SINGLE_X_CHECK, EmulatedDecoder
from harness.instruments import NotSupportedError as InstrumentNotSupportedError
from harness.profiles import load_profile
from harness.protocols import PROTOCOLS, MeasureContext, NotSupportedError, protocol_for
from harness.protocols.decoder import (
    DECODER_CODES,
    DECODER_METRICS,
    TRIVIAL_SAMPLE,
    DecoderRecord,
    DecoderRequestError,
    decoder_memory,
    decoder_noise,
    decoder_shots,
    parse_syndrome,
    quantile_interval,
    syndrome_strings,
)
from harness.qec.codes import memory_circuit
from harness.qec.memory import wilson_interval

SCALE = 0.25  # 5,000 shots per code


@pytest.fixture(scope="module")
def profile():
    """The effective bench-emulated profile of build 2.4.0."""
    return load_profile("bench-emulated").effective("2.4.0")


@pytest.fixture(scope="module")
def noise(profile):
    """The QEC noise of the decoder codes under bench-emulated."""
    return decoder_noise(profile.link, profile.qec)


def reference_matching(code_id: str, noise) -> pymatching.Matching:
    """Matching built here from the memory circuit, independently of the cached decoder memories."""
    code, d, basis = DECODER_CODES[code_id]
    circuit = memory_circuit(code, d, basis, d).to_stim(noise)
    dem = circuit.detector_error_model(decompose_errors=True, approximate_disjoint_errors=True)
    return pymatching.Matching.from_detector_error_model(dem)


def all_syndromes(n: int, max_weight: int) -> np.ndarray:
    """Every boolean syndrome of length n with at most max_weight detectors set."""
    rows = [np.zeros(n, dtype=bool)]
    for w in range(1, max_weight + 1):
        idx = np.array(list(itertools.combinations(range(n), w)))
        block = np.zeros((len(idx), n), dtype=bool)
        block[np.arange(len(idx))[:, None], idx] = True
        rows.append(block)
    return np.vstack([np.atleast_2d(r) for r in rows])


# ---- the emulated firmware decoder ---------------------------------------------------------------------------------


def known_syndromes(code_id: str, decoder: EmulatedDecoder, noise) -> np.ndarray:
    """Every syndrome of the repetition code (2^8); for the surface code all of weight <= 3 plus 20,000 sampled."""
    n = decoder.num_detectors(code_id)
    if n <= 12:
        return np.array(list(itertools.product([False, True], repeat=n)))
    sampled, _ = (
        decoder_memory(code_id, noise)
        .circuit.compile_detector_sampler(seed=11)
        .sample(20_000, separate_observables=True)
    )
    return np.vstack([all_syndromes(n, 3), sampled])


@pytest.mark.parametrize("code_id", list(DECODER_CODES))
def test_emulated_decoder_agrees_with_matching_on_every_syndrome(code_id, profile, noise):
    decoder = EmulatedDecoder.from_params(LinkParameters.from_profile(profile), "2.4.0")
    dets = known_syndromes(code_id, decoder, noise)
    expected = reference_matching(code_id, noise).decode_batch(dets)[:, 0]
    assert np.array_equal(decoder.decode_many(code_id, dets), expected)
    # The command path (table lookup, one syndrome per line) answers the same on a slice of them.
    lines = syndrome_strings(dets[:300])
    answers = np.array([int(decoder.handle(f"{code_id},{s}")) for s in lines])
    assert np.array_equal(answers, expected[:300])
    assert expected.any()  # the check covers both answers, not only the empty correction


@pytest.mark.parametrize("code_id", list(DECODER_CODES))
def test_faulty_build_differs_from_matching_only_at_its_bug_entry(code_id, profile, noise):
    decoder = EmulatedDecoder.from_params(LinkParameters.from_profile(profile), "2.5.0-rc1")
    dets = known_syndromes(code_id, decoder, noise)
    expected = reference_matching(code_id, noise).decode_batch(dets)[:, 0]
    bad = np.flatnonzero(decoder.decode_many(code_id, dets) != expected)
    bugs = {s for c, s in DECODER_BUGS["2.5.0-rc1"] if c == code_id}
    assert set(syndrome_strings(dets[bad])) == bugs
    for s in bugs:
        assert decoder.handle(f"{code_id},{s}") != str(
            reference_matching(code_id, noise).decode(parse_syndrome(s, dets.shape[1]))[0]
        )


def test_bug_entry_is_frequent_enough_to_be_caught(noise):
    comp = decoder_memory("surface_d3_z", noise)
    dets, obs = comp.circuit.compile_detector_sampler(seed=5).sample(100_000, separate_observables=True)
    bug = parse_syndrome(SURFACE_D3_SINGLE_X_CHECK, comp.num_detectors)
    hits = (dets == bug).all(axis=1)
    # ~1.8 % of surface shots: ~90 wrong answers among the 5,000 surface shots of the quick budget.
    assert 0.01 < hits.mean() < 0.03
    assert not obs[hits, 0].any()  # a Z error: the observable never flips, so the faulty answer is always wrong


def test_decoder_command_errors_are_replies_not_crashes(profile):
    decoder = EmulatedDecoder.from_params(LinkParameters.from_profile(profile), "2.4.0", faulty=())
    assert decoder.handle("surface_d5_z,0101").startswith("ERR unknown decoder code")
    assert decoder.handle("surface_d3_z,0101").startswith("ERR syndrome")
    assert decoder.handle("surface_d3_z").startswith("ERR expected")
    assert decoder.handle("repetition_bitflip_d3,00000000") == "0"
    with pytest.raises(DecoderRequestError, match="unknown code"):
        EmulatedDecoder(decoder.noise, [("toric_d3", "0")])


def test_syndrome_strings_round_trip():
    rng = np.random.default_rng(3)
    dets = rng.random((50, 32)) < 0.2
    strings = syndrome_strings(dets)
    assert all(len(s) == 32 for s in strings)
    assert np.array_equal(np.array([parse_syndrome(s, 32) for s in strings]), dets)
    assert syndrome_strings(np.zeros((0, 8), dtype=bool)) == []
    with pytest.raises(DecoderRequestError, match="8 characters of 0/1"):
        parse_syndrome("0120", 8)


# ---- the protocol on synthetic devices -----------------------------------------------------------------------------


class SyntheticDecoder:
    """A device whose decoder is `answer(code, dets)`, with latencies 1..n µs in a shuffled order."""

    has_decoder = True

    def __init__(self, noise, answer) -> None:
        self.noise = noise
        self.answer = answer
        self.calls: list[tuple[str, int]] = []

    def decode(self, code, syndromes):
        n = decoder_memory(code, self.noise).num_detectors
        dets = np.array([parse_syndrome(s, n) for s in syndromes]).reshape(-1, n)
        self.calls.append((code, len(syndromes)))
        latency = np.random.default_rng(len(syndromes)).permutation(np.arange(1, len(syndromes) + 1, dtype=float))
        return self.answer(code, dets), latency


def ground_truth(ctx: MeasureContext, noise, answer) -> tuple[int, int, int]:
    """(shots, agreements, device failures) over EVERY sampled shot, the device asked about each one."""
    n = agree = wrong = 0
    shots = decoder_shots(ctx.profile, ctx.scale)
    for code in DECODER_CODES:
        comp = decoder_memory(code, noise)
        dets, obs = comp.circuit.compile_detector_sampler(seed=ctx.int_seed(f"decoder-{code}")).sample(
            shots, separate_observables=True
        )
        device = answer(code, dets)
        ref = reference_matching(code, noise).decode_batch(dets)[:, 0]
        n += shots
        agree += int(np.count_nonzero(device == ref))
        wrong += int(np.count_nonzero(device != obs[:, 0]))
    return n, agree, wrong


def run_protocol(profile, device) -> tuple[DecoderRecord, dict, MeasureContext]:
    proto = PROTOCOLS["decoder"]
    ctx = MeasureContext(profile, SCALE, 1, 200, build="2.4.0")
    raw = proto.measure(device, ctx)
    return raw, proto.estimate(raw, ctx, {}), ctx


def matching_answer(noise):
    return lambda code, dets: reference_matching(code, noise).decode_batch(dets)[:, 0].astype(np.uint8)


@pytest.mark.parametrize(
    "kind",
    ["matching", "always-one", "faulty-table", "wrong-on-empty"],
)
def test_protocol_metrics_equal_the_ground_truth_of_every_shot(kind, profile, noise):
    emulated = EmulatedDecoder(noise, DECODER_BUGS["2.5.0-rc1"])
    answers = {
        "matching": matching_answer(noise),
        "always-one": lambda code, dets: np.ones(len(dets), dtype=np.uint8),
        "faulty-table": lambda code, dets: emulated.decode_many(code, dets),
        "wrong-on-empty": lambda code, dets: matching_answer(noise)(code, dets) ^ ~dets.any(axis=1),
    }
    answer = answers[kind]
    raw, est, ctx = run_protocol(profile, SyntheticDecoder(noise, answer))
    n, agree, wrong = ground_truth(ctx, noise, answer)
    assert n == 2 * decoder_shots(profile, SCALE) == 10_000
    a, s = est["decoder_agreement"], est["decoder_logical_success"]
    # Exact: the extrapolated trivial shots are counted with the device's own answer to the empty syndrome.
    assert (a.n, a.value) == (n, agree / n)
    assert s.value == pytest.approx(1 - wrong / n, abs=1e-12)
    assert (a.ci_low, a.ci_high) == pytest.approx(wilson_interval(agree, n))
    low, high = wilson_interval(wrong, n)
    assert (s.ci_low, s.ci_high) == pytest.approx((1 - high, 1 - low))
    if kind == "matching":
        assert a.value == 1.0 and 0.999 < s.value < 1.0
    if kind == "faulty-table":
        assert 0.99 < a.value < 0.995  # ~1.8 % of the surface half of the shots
    # Only non-trivial syndromes and TRIVIAL_SAMPLE empty ones per code made a round trip.
    for rec in raw.codes:
        assert np.count_nonzero(rec.trivial) == TRIVIAL_SAMPLE
        assert len(rec.syndromes) + rec.unsent_trivial == rec.shots


def test_latency_quantiles_and_record(profile, noise):
    raw, est, _ = run_protocol(profile, SyntheticDecoder(noise, matching_answer(noise)))
    lat = np.concatenate([c.latency_us for c in raw.codes])
    for name, q in (("decoder_latency_p50_us", 0.5), ("decoder_latency_p99_us", 0.99)):
        e = est[name]
        assert e.value == np.quantile(lat, q) and e.n == lat.size and e.unit == "us"
        assert e.ci_low < e.value < e.ci_high
    assert set(est) == set(DECODER_METRICS)
    d = raw.to_dict()
    assert [x["code"] for x in d["exchanges"]] == list(DECODER_CODES)
    first = d["exchanges"][0]
    assert len(first["syndromes"]) == len(first["device"]) == len(first["matching"]) == len(first["latency_us"])


def test_pooling_concatenates_independent_measurements(profile, noise):
    proto = PROTOCOLS["decoder"]
    device = SyntheticDecoder(noise, lambda code, dets: np.ones(len(dets), dtype=np.uint8))
    a = proto.measure(device, MeasureContext(profile, SCALE, 1, 200, build="2.4.0", call=1))
    b = proto.measure(device, MeasureContext(profile, SCALE, 1, 200, build="2.4.0", call=2))
    pooled = proto.pool(a, b)
    ctx = MeasureContext(profile, 2 * SCALE, 1, 200, build="2.4.0")
    tallies = [np.array([c.tally() for c in r.codes]).sum(axis=0) for r in (a, b)]
    n, agree, _ = tallies[0] + tallies[1]
    assert proto.estimate(pooled, ctx, {})["decoder_agreement"].value == agree / n
    assert sum(c.shots for c in pooled.codes) == n == 4 * decoder_shots(profile, SCALE)


def test_quantile_interval_covers_the_true_quantile():
    rng = np.random.default_rng(2024)
    reps, n = 2000, 400
    x = rng.exponential(100.0, size=(reps, n))
    for q in (0.5, 0.99):
        truth = -100.0 * np.log(1 - q)
        hits = sum(lo <= truth <= hi for _, lo, hi in (quantile_interval(row, q) for row in x))
        # Distribution-free interval at 95 %: conservative, so at least ~95 % (2000 reps: sd ~0.5 %).
        assert hits / reps >= 0.935, (q, hits / reps)


def test_devices_without_a_decoder_are_not_supported(profile):
    class NoDecoder:
        pass

    proto = protocol_for("decoder_agreement")
    ctx = MeasureContext(profile, SCALE, 1, 200, build="2.4.0")
    with pytest.raises(NotSupportedError, match=r"bench\.decoder block"):
        proto.measure(NoDecoder(), ctx)

    from harness.devices.bench import BenchDevice, DecoderNotSupportedError

    data = profile.model_dump(mode="json")
    data["bench"]["decoder"] = None
    no_decoder = type(profile).model_validate(data)
    device = BenchDevice(no_decoder, "2.4.0")
    with pytest.raises(NotSupportedError, match=r"bench\.decoder block"):
        proto.measure(device, MeasureContext(no_decoder, SCALE, 1, 200, build="2.4.0"))
    with pytest.raises(DecoderNotSupportedError, match=r"no bench\.decoder instrument") as info:
        device.decode("surface_d3_z", ["0" * 32])
    # The session turns the protocol's NotSupportedError into a skip; the bench's error is also an instrument one.
    assert isinstance(info.value, NotSupportedError) and isinstance(info.value, InstrumentNotSupportedError)
