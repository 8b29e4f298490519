"""Interleaved A/B on the emulated bench under drift: false REGRESSION on an unchanged build, power for a drop.

Each session starts the loopback emulators of every build of bench-emulated with the drift of a typical optical bench
(between sessions: visibility SD 0.005, pair rate 3 %, efficiencies 1 %, analyser angle 1 degree; within a
session: Ornstein-Uhlenbeck wander of visibility SD 0.002 and pair rate 1 %, correlation time 60 s) drawn for
that session's index, and runs `measure_interleaved` over real pyvisa-py and pyserial on loopback, flashing between
runs through the emulated firmware (FW:LOAD). Null: 2.4.0 against 2.3.0 (identical physics). Power: a build whose
visibility is 0.01 lower (0.97 -> 0.96). Verdicts as `qharness interleave` gives them (bell and rates protocols,
Holm over the family, alpha 0.05); false REGRESSION counts sessions with any REGRESSION, power counts sessions
whose bell_fidelity is REGRESSION.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import yaml

from benchmarks.common import Section, row

ALPHA = 0.05
DRIFT = {
    "between_sessions": {
        "visibility_sd": 0.005,
        "pair_rate_rel_sd": 0.03,
        "basis_angle_sd_deg": 1.0,
        "efficiency_rel_sd": 0.01,
    },
    "within_session": {"visibility_sd": 0.002, "pair_rate_rel_sd": 0.01, "correlation_time_s": 60},
}
DROP_BUILD = "2.6.0-vis"


def _profile(work: Path) -> Path:
    """bench-emulated with the drift above and a build 0.01 lower in visibility."""
    from harness.profiles import load_profile

    shipped = load_profile("bench-emulated")
    visibility = shipped.effective("2.3.0").source.visibility
    builds = {**shipped.base.builds, DROP_BUILD: {"source": {"visibility": round(visibility - 0.01, 6)}}}
    path = work / "device_profiles" / "bench-drift.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        yaml.safe_dump({"name": "bench-drift", "extends": "bench-emulated", "drift": DRIFT, "builds": builds})
    )
    return path


def one_session(path: Path, candidate: str, index: int, blocks: int, budget: str, store: object) -> dict[str, str]:
    """Verdict per metric of one interleaved session of `candidate` against 2.3.0, drift drawn for `index`."""
    from harness.devices.bench import BenchDevice
    from harness.emulators import EmulatorSet, ThreadedEmulators
    from harness.interleave import InterleavedSession, measure_interleaved, verdicts
    from harness.profiles import Profile, load_profile
    from harness.protocols import protocols_for

    loaded = load_profile(path)
    emulators = EmulatorSet.from_profile(loaded, "2.3.0", seed=1000 + index, session=index)
    runner = ThreadedEmulators(emulators=emulators).start()
    try:
        data = runner.set.profile_dict(loaded.effective("2.3.0"), "bench-drift")
        live = path.parent / f"live-{index}.yaml"
        live.write_text(yaml.safe_dump({**data, "builds": loaded.base.builds}))
        live_loaded = load_profile(live)
        session = InterleavedSession(live_loaded, "2.3.0", candidate, blocks)
        with BenchDevice(Profile.model_validate(data), "2.3.0") as device:
            protocols = protocols_for(["bell_fidelity", "pair_rate_hz"])
            measure_interleaved(session, device, protocols, store, seed=index, budget=budget)
    finally:
        runner.stop()
    results = verdicts(session, live_loaded.effective(candidate).gate_tolerances(), ALPHA)
    return {m.name: m.verdict for m in results.values()}


def run(sessions: int = 30, blocks: int = 6, budget: str = "standard") -> Section:
    """Run `sessions` null and `sessions` power sessions; return the section (key `interleave`)."""
    from harness.analysis.intervals import wilson_interval
    from harness.store import Store

    sec = Section("interleave", "Interleaved A/B under drift on the emulated bench (flashing over loopback)")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        path = _profile(work)
        with Store(work / "q.db") as store:
            null = [one_session(path, "2.4.0", i, blocks, budget, store) for i in range(sessions)]
            drop = [one_session(path, DROP_BUILD, sessions + i, blocks, budget, store) for i in range(sessions)]
    false_reg = sum("REGRESSION" in v.values() for v in null)
    caught = sum(v.get("bell_fidelity") == "REGRESSION" for v in drop)
    lo, hi = wilson_interval(false_reg, sessions)
    plo, phi = wilson_interval(caught, sessions)
    sec.rows.append(
        row(
            f"unchanged build (2.4.0 vs 2.3.0): sessions with any REGRESSION, {sessions} sessions, Wilson 95% "
            f"[{lo:.3f}, {hi:.3f}]",
            false_reg / sessions,
            ALPHA,
            (false_reg / sessions) / ALPHA,
            "share (ratio = rate / alpha)",
            f"<= {ALPHA}: " + ("met" if false_reg / sessions <= ALPHA else "MISSED"),
            false_reg / sessions <= ALPHA,
        )
    )
    sec.rows.append(
        row(
            f"visibility -0.01: bell_fidelity REGRESSION, {sessions} sessions, Wilson 95% [{plo:.3f}, {phi:.3f}]",
            caught / sessions,
            0.9,
            (caught / sessions) / 0.9,
            "share (ratio = power / 0.9)",
            ">= 0.9: " + ("met" if caught / sessions >= 0.9 else "MISSED"),
            caught / sessions >= 0.9,
        )
    )
    sec.seconds = time.perf_counter() - t0
    sec.notes = (
        f"{blocks} ABBA blocks per session at the {budget} budget (each run a quarter of it), bell and rates "
        "protocols, tolerances of bench-emulated. " + (__doc__ or "").split("\n\n", 1)[1].replace("\n", " ")
    )
    return sec
