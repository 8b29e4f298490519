"""One profile's regression run in interleaved mode: ABBA blocks on one device, gated by paired block differences.

`InterleavedProfileSession` stands in for `ProfileSession` when a run interleaves a profile (`--interleave`, the
default on a bench that can flash): the family's interleavable metrics are measured by `measure_interleaved`
(every run stored with its role, block and position) and tested by `verdicts` (t on blocks - 1 df, Holm over the
gated metrics). Their results become the gate's `Comparison`s, stored as the metric rows of one more candidate run
that closes the session (its provenance lists the interleaved runs), so the table, the summary JSON, the report
and the exit codes read them as they read any run.

Metrics of protocols that are not interleaved (QEC memories: logical success, the decoder in the loop) are
NOT_GATED with the reason: gating them needs the candidate on the device and a separately measured baseline, the
very comparison interleaving replaces; `--no-interleave` gates them. A flash that fails or leaves another build, a
dead instrument or records that cannot be analysed make every metric of the profile an ERROR naming that cause;
the runs measured before it stay stored.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence

import numpy as np
from scipy import stats

from harness.devices import open_device
from harness.devices.base import Device
from harness.errors import DeviceError, NotSupportedError
from harness.gate import Comparison, Verdict, error_comparison
from harness.interleave import (
    INTERLEAVED_PROTOCOLS,
    InterleavedMetric,
    InterleavedSession,
    measure_interleaved,
    verdicts,
)
from harness.metrics import Direction, Estimate
from harness.profiles import LoadedProfile, Profile, ProfileError
from harness.protocols import protocol_for, protocols_for
from harness.session import (
    ANALYSIS_ERRORS,
    DeviceFactory,
    pick_comparison,
    status_of,
    store_device_provenance,
    unmeasured,
)
from harness.store import RunStatus, Store

METHOD = "paired t on ABBA block differences (Holm)"


def runs_estimate(runs: Sequence[Estimate], confidence: float = 0.95) -> Estimate:
    """The mean of one build's run estimates, with a t interval from their spread (k - 1 df) and n their sum."""
    values = np.array([r.value for r in runs], dtype=float)
    mean = float(values.mean())
    half = 0.0
    if values.size > 1:
        q = float(stats.t.ppf(0.5 + confidence / 2.0, values.size - 1))
        half = q * float(values.std(ddof=1)) / math.sqrt(values.size)
    first = runs[0]
    return Estimate(mean, mean - half, mean + half, sum(r.n for r in runs), first.unit, first.direction, confidence)


def block_delta(metric: InterleavedMetric, direction: Direction, unit: str, confidence: float = 0.95) -> Estimate:
    """Candidate - baseline as the mean block difference, with the paired test's t interval (blocks - 1 df)."""
    test = metric.test
    assert test is not None
    # The test's differences are oriented so that positive is better; the delta is in the metric's own sense.
    mean = test.mean if direction == Direction.HIGHER else -test.mean
    half = float(stats.t.ppf(0.5 + confidence / 2.0, test.df)) * test.se
    return Estimate(mean, mean - half, mean + half, test.blocks, unit, direction, confidence)


def interleaved_comparison(session: InterleavedSession, metric: InterleavedMetric, alpha: float) -> Comparison:
    """The gate's Comparison of one metric of an interleaved session (its paired test's verdict, unchanged)."""
    runs = {
        lab: [e[metric.name] for e, o in zip(session.estimates, session.order, strict=True) if o == lab] for lab in "AB"
    }
    cand, base = runs_estimate(runs["B"]), runs_estimate(runs["A"])
    test = metric.test
    return Comparison(
        metric.name,
        cand,
        base,
        None if test is None else block_delta(metric, cand.direction, cand.unit),
        0.0 if test is None else metric.margin,
        None if test is None else test.p_less,
        metric.p_worse,
        Verdict(metric.verdict),
        p_improved=None,
        alpha=alpha,
        reason=metric.reason or None,
        look=1,
        looks=1,
        method=METHOD if test is not None else None,
        variance_model=metric.variance_model,
    )


class InterleavedProfileSession:
    """Measure one profile's family interleaved (ABBA) on one device, store every run, gate the paired blocks."""

    def __init__(
        self,
        loaded: LoadedProfile,
        store: Store,
        *,
        build: str,
        baseline_build: str,
        blocks: int,
        seed: int = 1,
        budget: str = "standard",
        alpha: float = 0.05,
        session_id: str | None = None,
        recorder: object | None = None,
        device_factory: DeviceFactory = open_device,
    ) -> None:
        self.loaded, self.store = loaded, store
        self.build, self.baseline_build = build, baseline_build
        self.seed, self.budget, self.alpha = seed, budget, alpha
        self.session_id, self.recorder, self._factory = session_id, recorder, device_factory
        self.family: set[str] = set()
        self.interleaved = InterleavedSession(loaded, baseline_build, build, blocks, session_id=session_id)
        self.comparisons: dict[str, Comparison] | None = None
        self.skipped: dict[str, str] = {}
        self.run_id: int | None = None  # the run that holds the session's verdicts
        self._device: Device | None = None
        self._open_error: Exception | None = None

    @property
    def profile(self) -> Profile:
        """The effective profile of the build under test."""
        return self.loaded.effective(self.build)

    def open_candidate(self) -> Device:
        """Open the session's device once (a failure is raised again on every later call).

        The ABBA order starts with the baseline, so the device opens as the baseline build's; each run flashes the
        build it needs and checks the device's answer.
        """
        if self._open_error is not None:
            raise self._open_error
        if self._device is None:
            try:
                profile = self.loaded.effective(self.baseline_build)
                self._device = self._factory(profile, self.baseline_build, self.seed, recorder=self.recorder)
                self._device.open()
            except Exception as exc:
                self._open_error = exc
                raise
        return self._device

    def evaluate(self) -> dict[str, Comparison]:
        """Measure the family's interleavable protocols in ABBA blocks, gate the pairs and store the verdicts."""
        if self.comparisons is not None:
            return self.comparisons
        protocols = [p for p in protocols_for(self.family) if p.name in INTERLEAVED_PROTOCOLS]
        try:
            device = self.open_candidate()
            if protocols:
                measure_interleaved(self.interleaved, device, protocols, self.store, seed=self.seed, budget=self.budget)
        except (DeviceError, NotSupportedError, *ANALYSIS_ERRORS) as exc:
            self.comparisons = self._errors(str(exc) or type(exc).__name__)
        except ProfileError as exc:
            self.comparisons = self._errors(str(exc).splitlines()[0])
        except BaseException:
            # Interrupted (or a bug): the session's run still closes it, without verdicts, so the summary and the
            # table describe the session (aborted) and not whichever interleaved run happened to be the last.
            self._start_verdict_run()
            raise
        else:
            self.comparisons = self._gated()
        self._start_verdict_run()
        for name, comp in self.comparisons.items():
            estimate = comp.candidate or unmeasured(name)
            self.store.add_metric(self.run_id, name, estimate, str(comp.verdict), comp.to_dict())
        return self.comparisons

    def _errors(self, cause: str) -> dict[str, Comparison]:
        """Every metric of the family an ERROR naming the one cause that stopped the session."""
        return {m: error_comparison(m, None, None, cause, self.alpha) for m in sorted(self.family)}

    def _gated(self) -> dict[str, Comparison]:
        """Each family metric's Comparison: the paired verdict, NOT_GATED when not interleaved, ERROR unmeasured."""
        tolerances = {m: t for m, t in self.profile.gate_tolerances().items() if m in self.family}
        results = verdicts(self.interleaved, tolerances, self.alpha)
        out: dict[str, Comparison] = {}
        for m in sorted(self.family):
            proto = protocol_for(m)
            if proto.name not in INTERLEAVED_PROTOCOLS:
                reason = (
                    f"not interleaved: {proto.name} is measured only by a run with --no-interleave, where supported"
                )
                out[m] = Comparison(
                    m, None, None, None, 0.0, None, None, Verdict.NOT_GATED, alpha=self.alpha, reason=reason
                )
            elif {proto.name, *proto.requires} & set(self.interleaved.unsupported):
                unsupported = self.interleaved.unsupported
                self.skipped[m] = next(unsupported[n] for n in (*proto.requires, proto.name) if n in unsupported)
            elif m in results:
                out[m] = interleaved_comparison(self.interleaved, results[m], self.alpha)
            else:
                reason = self.interleaved.failures.get(m, f"{m} was not estimated in every interleaved run")
                out[m] = error_comparison(m, None, None, reason, self.alpha)
        return out

    def _start_verdict_run(self) -> None:
        """Start the candidate run that holds the session's verdicts (its metric rows) and lists its runs."""
        session = self.interleaved
        self.run_id = self.store.start_run(
            profile=self.loaded.name,
            profile_hash=self.loaded.content_hash,
            build=self.build,
            baseline_build=self.baseline_build,
            seed=self.seed,
            budget=self.budget,
            session_id=self.session_id,
            provenance={
                "kind": self.profile.kind,
                "role": "candidate",
                "baseline_source": "interleaved",
                "interleave": {"order": "".join(session.order), "blocks": session.blocks, "runs": session.run_ids},
            },
        )

    def comparison(self, metric: str) -> Comparison:
        """The Comparison of one metric, measuring and gating the family first if needed (see `pick_comparison`)."""
        return pick_comparison(self.evaluate(), self.skipped, metric, self.loaded.name, self.alpha)

    def raw_counts(self, metric: str) -> dict:
        """Where the metric's raw records are: the interleaved runs, each stored with its own records."""
        return {"interleaved_runs": list(self.interleaved.run_ids), "order": "".join(self.interleaved.order)}

    def run_status(self) -> RunStatus:
        """The verdict run's status: failed on REGRESSION, error on ERROR (or when never gated), else passed."""
        return status_of(self.comparisons)

    def close(self, status: RunStatus | None = None) -> None:
        """Close the device (never raises) and finish the verdict run: with `status` if given, else its own."""
        if self._device is not None:
            if self.run_id is not None:
                store_device_provenance(self.store, self.run_id, self._device)
            with contextlib.suppress(Exception):
                self._device.close()
            self._device = None
        if self.run_id is not None:
            self.store.finish_run(self.run_id, status or self.run_status())
            self.run_id = None
