"""Interleaved A/B on one flashable device: baseline (A) and candidate (B) alternate in ABBA blocks.

A bench drifts between sessions and within them; a candidate measured today against a baseline stored last week
carries all of that drift into the comparison. Here both builds are measured in one session, on one device, by
flashing between runs in the order A B B A (repeated), so the block difference (B1 + B2 - A1 - A2) / 2 cancels
any drift that is linear within the block, and the spread of the block differences carries what is left (drift
curvature, shot noise) into a t test on blocks - 1 degrees of freedom (harness.stats.paired).

Every run is stored as its own run (role, block and position in provenance) with its raw records first. Before
each run the device is flashed (unless the previous run had the same build) and asked which build it runs; a flash
that fails or leaves another build is a FlashError naming the build and the command: an ERROR, never a verdict.

Per metric, with d the block differences oriented so that positive is better and m the tolerance's margin at the
baseline's mean:

- REGRESSION when the test rejects "mean d >= -m" (the candidate is worse by more than the margin);
- PASS when it rejects "mean d <= -m" (the candidate is no worse than the margin allows);
- INCONCLUSIVE otherwise. Holm's method adjusts each of the two families of p-values over the gated metrics.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from harness.devices.base import Device
from harness.errors import FlashError, NotSupportedError
from harness.metrics import Direction, Estimate, Tolerance
from harness.profiles import BUDGETS, LoadedProfile, Profile
from harness.protocols import Failure, Ledger, Protocol
from harness.stats.multiplicity import holm
from harness.stats.paired import PairedTest, abba_order, block_differences, paired_test
from harness.store import RunStatus, Store
from harness.streams import stream_seed

LABELS = {"A": "baseline", "B": "candidate"}
# The protocols measured run by run: each run's estimate of their metrics is cheap and independent. QEC memories
# (logical, decoder) sample far longer per run and are not interleaved.
INTERLEAVED_PROTOCOLS = ("bell", "rates", "link")
DEFAULT_BLOCKS = 6


def flash_problem(profile: Profile, option: str) -> str | None:
    """Why `profile` cannot be measured interleaved (one line naming `option` and the fix), else None.

    A stand-in (kind aer) switches builds itself; any other kind needs the profile's firmware.flash.
    """
    if profile.kind == "aer" or profile.firmware.flash is not None:
        return None
    return (
        f"{option}: profile {profile.name!r} cannot flash builds: add firmware.flash to it (see docs/bench.md), "
        "or measure without interleaving"
    )


def interleaves_by_default(profile: Profile) -> bool:
    """Whether a run interleaves `profile` unless told otherwise: a bench that can flash builds does."""
    return profile.kind == "bench" and profile.firmware.flash is not None


@dataclass(frozen=True)
class InterleavedMetric:
    """The verdict of one metric from the paired block differences (oriented: positive is better)."""

    name: str
    verdict: str
    margin: float
    test: PairedTest | None
    values: dict[str, list[float]] = field(default_factory=dict)  # "A"/"B" -> value per run, in run order
    unit: str = ""
    reason: str = ""
    p_worse: float | None = None  # Holm-adjusted p of "worse by more than the margin" (REGRESSION below alpha)
    p_no_worse: float | None = None  # Holm-adjusted p of "no worse than the margin allows" (PASS below alpha)

    @property
    def variance_model(self) -> str:
        """Which variance the verdict accounted for."""
        return self.test.variance_model if self.test else "none (no verdict)"


@dataclass
class InterleavedSession:
    """One interleaved session of a profile: the builds, the run order, each run's id and estimates."""

    loaded: LoadedProfile
    baseline: str
    candidate: str
    blocks: int
    session_id: str | None = None  # the pytest session the runs belong to (None from `qharness interleave`)
    order: tuple[str, ...] = ()
    run_ids: list[int] = field(default_factory=list)
    estimates: list[dict[str, Estimate]] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)  # metric -> why a run could not estimate it
    unsupported: dict[str, str] = field(default_factory=dict)  # protocol -> why the device cannot measure it

    def build_of(self, label: str) -> str:
        """The build a run label stands for ('A' the baseline, 'B' the candidate)."""
        return self.baseline if label == "A" else self.candidate


def measure_interleaved(
    session: InterleavedSession,
    device: Device,
    protocols: Sequence[Protocol],
    store: Store,
    *,
    seed: int = 1,
    budget: str = "standard",
    on_run: Callable[[int, str, str], None] | None = None,
) -> InterleavedSession:
    """Flash, check and measure each run of the ABBA order on an open device, storing every run as it goes."""
    session.order = abba_order(session.blocks)
    # Each run measures a quarter of the budget, so a block gives each build half a budget, and the default 6
    # blocks give each 1.5 budgets: within the cap of the sequential gate's re-measurements (4 at standard).
    scale = BUDGETS[budget] / 4.0
    for i, label in enumerate(session.order):
        build = session.build_of(label)
        run_id = _start(session, store, i, label, seed, budget)
        session.run_ids.append(run_id)
        if hasattr(device, "on_record"):
            # A bench hands over each completed setting before the next starts: a fault mid-run loses none of them.
            device.on_record = partial(store.add_raw, run_id)
        try:
            # B B and A A meet in the middle of blocks: the running build is not flashed again, only checked.
            if i == 0 or session.order[i - 1] != label:
                device.flash(build, session.loaded.effective(build))
            _check_build(session, device, build, i)
            session.estimates.append(_measure_run(session, device, protocols, store, run_id, build, seed, i, scale))
        except BaseException:
            store.finish_run(run_id, RunStatus.ERROR)
            raise
        store.finish_run(run_id, RunStatus.PASSED)
        if on_run is not None:
            on_run(i, label, build)
    return session


def _start(session: InterleavedSession, store: Store, i: int, label: str, seed: int, budget: str) -> int:
    loaded = session.loaded
    return store.start_run(
        profile=loaded.name,
        profile_hash=loaded.content_hash,
        build=session.build_of(label),
        baseline_build=session.baseline if label == "B" else None,
        seed=seed,
        budget=budget,
        session_id=session.session_id,
        provenance={
            "kind": loaded.base.kind,
            "role": LABELS[label],
            "interleave": {"block": i // 4, "position": i, "order": "".join(session.order)},
        },
    )


def _check_build(session: InterleavedSession, device: Device, build: str, i: int) -> None:
    """Ask the device which build it runs; another than run `i` needs is a FlashError (an ERROR, not a verdict)."""
    found = device.identify().build
    if found != build:
        raise FlashError(
            f"{session.loaded.name}: the device reports build {found!r} but run {i + 1} of the interleaved session "
            f"needs {build!r}"
        )


def _measure_run(
    session: InterleavedSession,
    device: Device,
    protocols: Sequence[Protocol],
    store: Store,
    run_id: int,
    build: str,
    seed: int,
    i: int,
    scale: float,
) -> dict[str, Estimate]:
    """Measure every protocol once on the device (raw records stored first) and estimate its metrics."""
    profile = session.loaded.effective(build)
    # Each run draws its own streams: two runs of one build must not repeat each other's shot noise.
    ledger = Ledger(profile, build, stream_seed(seed, profile.name, build, "interleave", i))
    found: dict[str, Estimate] = {}
    for proto in protocols:
        if {proto.name, *proto.requires} & set(session.unsupported):
            continue
        try:
            proto.take(device, ledger, scale, lambda name, payload: store.add_raw(run_id, name, payload))
        except NotSupportedError as exc:
            # The device cannot measure it at all (it does not get better in a later run): its metrics are skipped.
            session.unsupported[proto.name] = str(exc) or type(exc).__name__
            continue
        estimates, _ = proto.assemble(ledger, proto.metrics)
        for name, est in estimates.items():
            if isinstance(est, Failure):
                session.failures.setdefault(name, f"run {i + 1} ({build}): {est.reason}")
                continue
            found[name] = est
            store.add_metric(run_id, name, est)
    return found


def _oriented(values: np.ndarray, direction: Direction) -> np.ndarray:
    return values if direction == Direction.HIGHER else -values


def verdicts(
    session: InterleavedSession, tolerances: dict[str, Tolerance], alpha: float = 0.05
) -> dict[str, InterleavedMetric]:
    """Per gated metric, the paired test of its block differences against the tolerance; Holm over the family."""
    names = sorted(set.intersection(*(set(e) for e in session.estimates)) if session.estimates else set())
    tests: dict[str, InterleavedMetric] = {}
    for name in names:
        runs = [e[name] for e in session.estimates]
        values = np.array([r.value for r in runs], dtype=float)
        per_label = {lab: [float(v) for v, o in zip(values, session.order, strict=True) if o == lab] for lab in "AB"}
        tol = tolerances.get(name)
        if tol is None:
            tests[name] = InterleavedMetric(name, "NOT_GATED", math.nan, None, per_label, runs[0].unit, "no tolerance")
            continue
        margin = tol.margin(float(np.mean(per_label["A"])))
        test = paired_test(block_differences(_oriented(values, runs[0].direction), session.order), shift=-margin)
        tests[name] = InterleavedMetric(name, "INCONCLUSIVE", margin, test, per_label, runs[0].unit)
    gated = [m for m in tests.values() if m.test is not None]
    worse = holm([m.test.p_less for m in gated]) if gated else []
    no_worse = holm([m.test.p_greater for m in gated]) if gated else []
    for m, p_reg, p_pass in zip(gated, worse, no_worse, strict=True):
        verdict = "REGRESSION" if p_reg < alpha else "PASS" if p_pass < alpha else "INCONCLUSIVE"
        tests[m.name] = InterleavedMetric(
            m.name, verdict, m.margin, m.test, m.values, m.unit, p_worse=float(p_reg), p_no_worse=float(p_pass)
        )
    return tests


def overall(results: dict[str, InterleavedMetric]) -> str:
    """REGRESSION if any metric regressed, else INCONCLUSIVE if any is, else PASS (NO_BASELINE when none gated)."""
    found = {m.verdict for m in results.values()} - {"NOT_GATED"}
    for verdict in ("REGRESSION", "INCONCLUSIVE"):
        if verdict in found:
            return verdict
    return "PASS" if found else "NO_BASELINE"
