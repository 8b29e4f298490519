"""Operating characteristics of the gate, simulated from counts: false alarms, power, bench time.

A study draws each build's raw records from the exact outcome probabilities of the Aer stand-in, as `AerDevice`
draws them: Bell and link tomography as Poisson shots per setting and multinomial outcomes, coincidences as a
Poisson count with singles from `harness.physics.link.sample_singles`, and logical memories as binomial failures
at each memory's rate (measured once with stim and matching, `logical_shots` shots per memory). The records go
through the real protocols' estimators (bootstrap replicates included, joint across a protocol's metrics) and the
real gate (`SequentialGate` with the session's plans, re-measurement rule and looks, `run_looks`). So the
false-alarm and power figures include the estimators' bias, the correlation of metrics that share counts, and the
looks. Records are drawn lazily, per protocol and look, and pooled (or, for a superseding protocol, drawn afresh at
the doubled scale) exactly as a session does.

Baselines: measured in the same session (both builds re-measured), or stored: the baseline build measured once at
a stored scale and kept as the store keeps it (no replicates; binomial counts kept), then fixed.
Profiles are modelled without drift.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import numpy as np

from harness.gate import Comparison, GateDesign, SequentialGate, Verdict, overall_verdict, run_looks
from harness.gate.plans import describe_budget, gate_plans, with_binomial
from harness.metrics import Direction, Estimate
from harness.physics.link import LinkRates, profile_rates, sample_singles
from harness.profiles import BUDGET_CAPS, BUDGETS, Profile
from harness.protocols import PROTOCOLS, MeasureContext, Protocol, protocols_for
from harness.records import BASES, BELL_SETTINGS, INPUTS_6, CoincidenceCounts, ProcessCounts, TomographyCounts
from harness.streams import stream


@dataclass(frozen=True)
class BuildModel:
    """One build of a profile as the stand-in draws it: exact outcome probabilities, rates, logical memories."""

    profile: Profile
    build: str
    bell: np.ndarray  # (9, 4) BELL_SETTINGS order
    link: np.ndarray  # (6, 3, 2) INPUTS_6 x BASES
    rates: LinkRates
    memories: dict = field(default_factory=dict)  # code -> CodeReport of a long stim run (its rates)


def build_model(profile: Profile, build: str, *, seed: int = 0, logical_shots: int = 400_000) -> BuildModel:
    """Return a build's model: exact probabilities from the Aer device, each memory's rate from a long stim run."""
    from harness.devices.aer import AerDevice
    from harness.physics import link_block_choi
    from harness.qec.memory import run_code
    from harness.qec.noise import QecNoise

    # The model is the drift-free physics: a drifting stand-in would give session 0's offsets to the probabilities
    # and none to the rates. Session offsets are simulated by the drift benchmarks, session by session.
    profile = profile.model_copy(update={"drift": None})
    with AerDevice(profile, build, seed=seed) as dev:
        bell, link = dev.bell_probabilities(), dev.link_probabilities(INPUTS_6)
    memories = {}
    if profile.link is not None and profile.qec.codes:
        noise = QecNoise.from_profile(profile, link_block_choi(profile.link))
        for i, code in enumerate(profile.qec.codes):
            memories[code] = run_code(code, noise, max_shots=logical_shots, max_errors=logical_shots, seed=seed + i)
    return BuildModel(profile, build, bell, link, profile_rates(profile), memories)


def _logical_record(model: BuildModel, scale: float, rng: np.random.Generator) -> object:
    """A logical record at `scale`: each memory's failures ~ Binomial(shots, its long-run rate)."""
    from harness.physics import link_block_choi
    from harness.protocols.logical import LogicalRecord
    from harness.qec.memory import DecodeTiming, _report

    shots = int(model.profile.measurement.qec_max_shots * scale)
    reports = {}
    for code, long_run in model.memories.items():
        runs = tuple(
            replace(r, shots=shots, errors=int(rng.binomial(shots, r.errors / r.shots)), timing=DecodeTiming())
            for r in long_run.memories
        )
        reports[code] = _report(code, runs)
    return LogicalRecord(link_block_choi(model.profile.link), reports)


def draw_record(model: BuildModel, protocol: str, scale: float, rng: np.random.Generator) -> object:
    """Return one raw record of `protocol` at budget `scale`, drawn as the Aer stand-in draws it."""
    m, r = model.profile.measurement, model.rates
    if protocol == "bell":
        t = m.integration_time_s * scale
        shots = rng.poisson(r.coincidence_hz * t, size=len(BELL_SETTINGS))
        return TomographyCounts(BELL_SETTINGS, rng.multinomial(shots, model.bell).astype(np.int64), t)
    if protocol == "link":
        t = m.integration_time_s * scale
        probs = model.link.reshape(-1, 2)
        shots = rng.poisson(r.coincidence_hz * t, size=probs.shape[0])
        counts = rng.multinomial(shots, probs).astype(np.int64).reshape(len(INPUTS_6), len(BASES), 2)
        return ProcessCounts(INPUTS_6, BASES, counts, t)
    if protocol == "rates":
        t = m.coincidence_time_s * scale
        c = int(rng.poisson(r.coincidence_hz * t))
        n_a, n_b = sample_singles(r, c, t, rng)
        return CoincidenceCounts(n_a, n_b, c, r.window_s, t)
    if protocol == "logical":
        return _logical_record(model, scale, rng)
    raise ValueError(f"a study cannot draw protocol {protocol!r} (bell, link, rates, logical)")


class Side:
    """One build's measurements in one simulated run: records drawn lazily per look, estimates cached."""

    def __init__(self, model: BuildModel, metrics: Iterable[str], first: float, seed: int, run: int) -> None:
        self.model, self.first, self.seed, self.run = model, first, seed, run
        self.protocols = {p.name: p for p in protocols_for(metrics)}
        self.scale = {name: first for name in self.protocols}
        self._records: dict[tuple[str, float], object] = {}
        self._estimates: dict[tuple, dict[str, Estimate]] = {}

    def _rng(self, purpose: str, scale: float) -> np.random.Generator:
        key = f"{purpose}@{scale:.6g}"
        return stream(self.seed, self.model.profile.name, f"{self.model.build}#{self.run}", key)

    def record(self, name: str, scale: float) -> object:
        """The (pooled) record of a protocol at total `scale`."""
        key = (name, scale)
        if key not in self._records:
            proto = self.protocols[name]
            if scale <= self.first or proto.supersedes:
                self._records[key] = draw_record(self.model, name, scale, self._rng(name, scale))
            else:
                half = scale / 2.0
                fresh = draw_record(self.model, name, half, self._rng(name, scale))
                self._records[key] = proto.pool(self.record(name, half), fresh)
        return self._records[key]

    def estimates(self) -> dict[str, Estimate]:
        """Every metric's estimate at the current scales (real estimators, cached)."""
        out: dict[str, Estimate] = {}
        for proto in self.protocols.values():
            out.update(self._estimate(proto))
        return out

    def _estimate(self, proto: Protocol) -> dict[str, Estimate]:
        deps = {d: self.scale[d] for d in proto.requires}
        key = (proto.name, self.scale[proto.name], tuple(sorted(deps.items())))
        if key not in self._estimates:
            raw = self.record(proto.name, self.scale[proto.name])
            ctx = MeasureContext(
                self.model.profile,
                self.scale[proto.name],
                self.seed,
                self.model.profile.measurement.bootstrap,
                build=f"{self.model.build}#{self.run}",
                call=len(self._estimates) + 1,
            )
            found = proto.analyse(raw, ctx, {d: self.record(d, s) for d, s in deps.items()})
            self._estimates[key] = with_binomial(found.estimates, raw)
        return self._estimates[key]


def stored(estimates: dict[str, Estimate]) -> dict[str, Estimate]:
    """Estimates as the store keeps them: without bootstrap replicates (binomial counts stay in the detail)."""
    return {m: replace(e, samples=None) for m, e in estimates.items()}


def shifted(e: Estimate, amount: float) -> Estimate:
    """Return an estimate made worse by `amount` in its metric's unit (value, interval and replicates moved)."""
    d = -amount if e.direction == Direction.HIGHER else amount
    samples = None if e.samples is None else tuple(x + d for x in e.samples)
    return replace(e, value=e.value + d, ci_low=e.ci_low + d, ci_high=e.ci_high + d, samples=samples, binomial=None)


@dataclass(frozen=True)
class RunOutcome:
    """One simulated run: every metric's comparison and the overall verdict."""

    comparisons: dict[str, Comparison]
    verdict: Verdict


def gate_run(
    candidate: Side,
    baseline: Side | dict[str, Estimate],
    metrics: list[str],
    budget: str,
    design: GateDesign,
    shift: dict[str, float] | None = None,
) -> RunOutcome:
    """Gate one simulated run as a session does: first look at the budget's base, doubling up to its cap.

    `baseline` is a Side (measured in the same session) or fixed stored estimates; `shift` makes the candidate's
    named metrics worse by the given amounts (metric-level regressions, e.g. exactly at the tolerance).
    """
    fixed = not isinstance(baseline, Side)
    plans = gate_plans(candidate.model.profile, set(metrics), budget, fixed_baseline=fixed)
    gate = SequentialGate(design, plans, describe_scale=describe_budget)
    cap = BUDGETS[budget] * BUDGET_CAPS[budget]
    shift = shift or {}

    def observe() -> tuple:
        cand = {m: e for m, e in candidate.estimates().items() if m in plans}
        cand = {m: shifted(e, shift[m]) if m in shift else e for m, e in cand.items()}
        base = baseline if fixed else baseline.estimates()  # type: ignore[union-attr]
        scales = {m: (candidate.scale[PROTOCOLS_OF[m]], _scale(baseline, m)) for m in cand}
        return cand, base, scales

    def remeasure(pending: set[str]) -> bool:
        retry = {PROTOCOLS_OF[m] for m in pending}
        retry = {p for p in retry if 2 * candidate.scale[p] <= cap + 1e-9}
        retry |= {n for n, p in candidate.protocols.items() if set(p.requires) & retry}
        for side in (candidate, baseline):
            if isinstance(side, Side):
                for p in retry:
                    side.scale[p] *= 2.0
        return bool(retry)

    comps = run_looks(gate, observe, remeasure)
    return RunOutcome(comps, overall_verdict(c.verdict for c in comps.values()))


def _scale(baseline: Side | dict, metric: str) -> float:
    return baseline.scale[PROTOCOLS_OF[metric]] if isinstance(baseline, Side) else 1.0


class _ProtocolOf(dict):
    """metric -> the name of the protocol that yields it (memoised)."""

    def __missing__(self, metric: str) -> str:
        name = next(p.name for p in PROTOCOLS.values() if p.yields(metric))
        self[metric] = name
        return name


PROTOCOLS_OF = _ProtocolOf()


@dataclass
class StudyResult:
    """Outcomes of many simulated runs of one scenario."""

    outcomes: list[RunOutcome]

    @property
    def runs(self) -> int:
        """Number of runs."""
        return len(self.outcomes)

    def count(self, verdict: Verdict | str, metric: str | None = None) -> int:
        """Runs whose overall verdict (or `metric`'s verdict) is `verdict`."""
        v = Verdict(verdict)
        if metric is None:
            return sum(o.verdict is v for o in self.outcomes)
        return sum(o.comparisons[metric].verdict is v for o in self.outcomes if metric in o.comparisons)

    def rate(self, verdict: Verdict | str, metric: str | None = None) -> float:
        """Share of runs with that verdict."""
        return self.count(verdict, metric) / self.runs

    def interval(self, verdict: Verdict | str, metric: str | None = None, confidence: float = 0.95) -> tuple:
        """Wilson interval of `rate`."""
        from harness.analysis.intervals import wilson_interval

        low, high = wilson_interval(self.count(verdict, metric), self.runs, confidence)
        return float(low), float(high)

    def per_metric(self, verdict: Verdict | str) -> dict[str, int]:
        """Per metric, the number of runs with `verdict`."""
        names = sorted({m for o in self.outcomes for m in o.comparisons})
        return {m: self.count(verdict, m) for m in names}


_MODELS: dict[tuple[str, str, int], BuildModel] = {}


def model(profile: Profile, build: str, seed: int = 0) -> BuildModel:
    """Return the (memoised) model of a build's effective profile."""
    key = (profile.model_dump_json(), build, seed)
    if key not in _MODELS:
        _MODELS[key] = build_model(profile, build, seed=seed)
    return _MODELS[key]


def simulate(
    candidate: BuildModel,
    baseline: BuildModel,
    metrics: list[str],
    *,
    budget: str,
    runs: int,
    seed: int = 0,
    alpha: float = 0.05,
    stored_scale: float | None = None,
    shift: dict[str, float] | None = None,
    first_run: int = 0,
) -> StudyResult:
    """Simulate `runs` seeded gate runs of a candidate against a baseline (stored at `stored_scale`, else measured
    in the same session); `shift` makes candidate metrics worse by fixed amounts.

    Run i draws from (seed, i) alone, so runs first_run .. first_run + runs - 1 split over processes give the same
    outcomes as one call."""
    design = GateDesign(alpha=alpha)
    first = BUDGETS[budget]
    outcomes = []
    for run in range(first_run, first_run + runs):
        cand = Side(candidate, metrics, first, seed, run)
        base: Side | dict[str, Estimate] = Side(baseline, metrics, first, seed + 7919, run)
        if stored_scale is not None:
            keep = Side(baseline, metrics, stored_scale, seed + 7919, run)
            base = stored(keep.estimates())
        outcomes.append(gate_run(cand, base, metrics, budget, design, shift))
    return StudyResult(outcomes)
