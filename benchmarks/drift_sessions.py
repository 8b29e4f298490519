"""Sessions of the Aer stand-in under drift, shared by the drift benchmarks (not a section of its own).

A session is one `AerDevice(profile, build, seed, session=k)`: it draws that session's between-session offsets
from `harness.physics.drift` (seeded streams keyed by seed, profile, build and session), applies them to the
source, samples the counts of the real protocols (`bell` tomography, 9 settings, and the `rates` singles and
coincidences) at the budget's scale, and estimates the metrics with the real estimators. Nothing is drawn from a
normal at the metric level.
"""

from __future__ import annotations

from collections.abc import Iterable

from harness.metrics import Estimate
from harness.profiles import BUDGETS, Profile, load_profile

PROFILE = "aer-reference"
METRICS = ("bell_fidelity", "pair_rate_hz")
DRIFT = {"between_sessions": {"visibility_sd": 0.005, "pair_rate_rel_sd": 0.03}}


def drifting(profile: Profile, drift: dict | None = None, **source: float) -> Profile:
    """Return `profile` with a `drift` block (default DRIFT) and the source values given (visibility, pair_rate_hz)."""
    from harness.profiles.schema import Drift

    # 50 bootstrap replicates (the schema's minimum): both gated metrics have analytic intervals (a score interval of
    # weighted binomial shares for bell_fidelity, Garwood for pair_rate_hz), so the replicates only feed the
    # nonlinear metrics the protocols compute alongside, and 200 would cost 2.4x the time for nothing measured here.
    update: dict = {
        "drift": Drift.model_validate(drift or DRIFT),
        "measurement": profile.measurement.model_copy(update={"bootstrap": 50}),
    }
    if source:
        update["source"] = profile.source.model_copy(update=source)
    return profile.model_copy(update=update)


def reference_profile(build: str) -> Profile:
    """The effective aer-reference profile of `build`, drifting as DRIFT says."""
    return drifting(load_profile(PROFILE).effective(build))


def measure_session(
    profile: Profile, build: str, *, seed: int, session: int, metrics: Iterable[str] = METRICS, budget: str = "standard"
) -> dict[str, Estimate]:
    """Measure one session of `build` on the drifting Aer stand-in; return metric -> Estimate."""
    from harness.devices.aer import AerDevice
    from harness.protocols import MeasureContext, protocols_for

    wanted = set(metrics)
    raws: dict[str, object] = {}
    out: dict[str, Estimate] = {}
    with AerDevice(profile, build=build, seed=seed, session=session) as device:
        for call, proto in enumerate(protocols_for(wanted)):
            ctx = MeasureContext(profile, BUDGETS[budget], seed, profile.measurement.bootstrap, build=build, call=call)
            raws[proto.name] = proto.measure(device, ctx)
            found = proto.estimate(raws[proto.name], ctx, {d: raws[d] for d in proto.requires})
            out.update({k: v for k, v in found.items() if k in wanted})
    return out
