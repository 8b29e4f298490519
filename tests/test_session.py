"""ProfileSession without pytest's plugin: a scripted device through the factory, a real store and profile."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import yaml

import harness.analysis.estimators as estimators
import harness.session as session_module
from harness.analysis import PHI_PLUS, STATE_TOMOGRAPHY_METHOD, reconstruct_bell_state, state_fidelity
from harness.analysis.estimators import linear_bell_values
from harness.errors import DeviceError, IdentityMismatchError, NotSupportedError
from harness.gate import Verdict
from harness.instruments.errors import InstrumentDisconnected
from harness.metrics import Direction
from harness.profiles import BUDGET_CAPS, BUDGETS, load_profile
from harness.protocols import Failure, FailureKind, protocols_for
from harness.qec.memory import wilson_interval
from harness.records import BELL_SETTINGS, CoincidenceCounts, Identity, ProcessCounts, TomographyCounts
from harness.session import ProfileSession, unmeasured
from harness.store import RunStatus, Store

BUILD, BASELINE = "2.4.0", "2.3.0"
INTEGRATION_S = 0.05  # the profile's measurement.integration_time_s: one budget unit of tomography
CODE = "repetition_bitflip_d3"
SHOTS = 2000  # qec_max_shots of the test profile: a memory run of a few milliseconds
# Counts per setting and budget unit (multiples of 4, so a quick budget's quarter unit is whole): ZZ and XX
# correlated, YY anticorrelated (|Phi+>), the other settings uniform.
ROWS = {"XX": [472, 28, 28, 472], "YY": [28, 472, 472, 28], "ZZ": [480, 20, 20, 480]}
UNIFORM = [252, 248, 252, 248]
PASSING = {"absolute": 0.5}  # a tolerance no scripted difference comes near


def write_profile(tmp_path: Path, tolerances: dict, kind: str = "aer") -> Path:
    """A copy of aer-reference with one cheap code, a small shot cap and the given tolerances."""
    raw = yaml.safe_load(Path(load_profile("aer-reference").path).read_text(encoding="utf-8"))
    raw.update(name="session-unit", tolerances=tolerances)
    raw["qec"]["codes"] = [CODE]
    raw["measurement"].update(qec_max_shots=SHOTS, qec_max_errors=SHOTS)
    path = tmp_path / "session-unit.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


class ScriptedDevice:
    """A device whose counts are proportional to the integration time; `faults` maps a method to an error."""

    def __init__(self, profile, build: str, faults: dict[str, BaseException], log: list) -> None:
        self.profile, self.build, self.faults, self.log = profile, build, faults, log
        self.opened = False

    def open(self) -> None:
        self.opened = True

    def close(self) -> None:
        self.opened = False

    def identify(self) -> Identity:
        return Identity("aer", self.profile.name, self.build)

    def _counts(self, method: str, duration_s: float, per_unit: object) -> np.ndarray:
        """Log the call, raise its scripted fault, else return `per_unit` counts times the budget units."""
        self.log.append((self.build, method, round(duration_s, 9)))
        if method in self.faults:
            raise self.faults[method]
        return np.rint(np.asarray(per_unit) * duration_s / INTEGRATION_S).astype(np.int64)

    def bell_tomography(self, duration_s: float) -> TomographyCounts:
        counts = self._counts("bell_tomography", duration_s, [ROWS.get(s, UNIFORM) for s in BELL_SETTINGS])
        return TomographyCounts(BELL_SETTINGS, counts, duration_s)

    def link_tomography(self, duration_s: float, inputs: tuple[str, ...]) -> ProcessCounts:
        counts = self._counts("link_tomography", duration_s, np.full((len(inputs), 3, 2), 500))
        return ProcessCounts(tuple(inputs), ("X", "Y", "Z"), counts, duration_s)

    def coincidences(self, duration_s: float) -> CoincidenceCounts:
        singles_a, singles_b, coincidences = (
            int(x) for x in self._counts("coincidences", duration_s, [25e3, 25e3, 5e3])
        )
        return CoincidenceCounts(singles_a, singles_b, coincidences, 1e-9, duration_s)


class Bench:
    """A store on tmp_path, a profile file and the factory that hands out scripted devices (logged)."""

    def __init__(self, tmp_path: Path, tolerances: dict, faults: dict | None = None, profile: str = "") -> None:
        self.store = Store(tmp_path / "results.db")
        self.loaded = load_profile(profile or write_profile(tmp_path, tolerances))
        self.faults = faults or {}
        self.log: list[tuple[str, str, float]] = []
        self.device_class = ScriptedDevice
        self.opened = 0

    def factory(self, profile, build, seed, *, on_record=None, recorder=None) -> ScriptedDevice:
        self.opened += 1
        return self.device_class(profile, build, self.faults, self.log)

    def session(self, family, **kw) -> ProfileSession:
        kw.setdefault("baseline_build", BASELINE)
        s = ProfileSession(self.loaded, self.store, build=kw.pop("build", BUILD), device_factory=self.factory, **kw)
        s.family.update(family)
        return s

    def durations(self, build: str, method: str) -> list[float]:
        return [d for b, m, d in self.log if (b, m) == (build, method)]

    def scales(self, run_id: int, protocol: str) -> list[float]:
        return [r["payload"]["budget_scale"] for r in self.store.raw_records(run_id) if r["protocol"] == protocol]


@pytest.fixture
def bench(tmp_path: Path) -> Bench:
    """A bench whose profile gives no tolerances: every metric is measured and NOT_GATED."""
    return Bench(tmp_path, tolerances={})


def test_protocols_come_in_dependency_order():
    # Rates need the Bell tomography's records, so bell is measured first whether or not a Bell metric is asked for.
    assert [p.name for p in protocols_for({"pair_rate_hz", "capacity_ce_bits"})] == ["link", "bell", "rates"]
    assert [p.name for p in protocols_for({"ebit_rate_hz", "bell_fidelity"})] == ["bell", "rates"]


def _table(rows: dict) -> np.ndarray:
    return np.asarray([rows.get(x, UNIFORM) for x in BELL_SETTINGS], dtype=float)[None]


@pytest.mark.parametrize(("budget", "durations"), [("standard", [0.05, 0.05, 0.1]), ("quick", [0.0125, 0.0125, 0.025])])
def test_undecided_metrics_double_up_to_the_cap_and_no_further(tmp_path, budget, durations):
    # The candidate is worse by exactly its tolerance at every look (counts scale with time): neither test can
    # cross, so re-measurement doubles up to the cap (4x standard; quick reaches the standard budget's base).
    worse = {"XX": [440, 60, 60, 440], "YY": [60, 440, 440, 60], "ZZ": [440, 60, 60, 440]}
    drop = float(
        linear_bell_values(_table(ROWS))["bell_fidelity"][0] - linear_bell_values(_table(worse))["bell_fidelity"][0]
    )

    class AtTheTolerance(ScriptedDevice):
        def bell_tomography(self, duration_s: float) -> TomographyCounts:
            rows = worse if self.build == BUILD else ROWS
            counts = self._counts("bell_tomography", duration_s, [rows.get(x, UNIFORM) for x in BELL_SETTINGS])
            return TomographyCounts(BELL_SETTINGS, counts, duration_s)

    bench = Bench(tmp_path, {"bell_fidelity": {"absolute": drop}})
    bench.device_class = AtTheTolerance
    session = bench.session({"bell_fidelity"}, budget=budget)
    comp = session.comparison("bell_fidelity")
    assert comp.verdict is Verdict.INCONCLUSIVE and comp.looks == 3
    assert bench.durations(BUILD, "bell_tomography") == durations
    assert bench.durations(BASELINE, "bell_tomography") == durations
    units = [d / INTEGRATION_S for d in durations]
    assert bench.scales(session.candidate.run_id, "bell") == units
    assert session.candidate.ledger.scale["bell"] == sum(units) == BUDGETS[budget] * BUDGET_CAPS[budget]
    assert comp.candidate.n == sum(units) * 9000  # the pooled counts: 1000 per setting and budget unit


def test_a_superseding_protocol_doubles_its_own_scale_and_dependants_follow(bench, monkeypatch):
    # The session's re-measurement rule alone: a gate that keeps both metrics pending until nothing more fits.
    def undecided(gate, observe, remeasure):
        gate.look(*observe())
        while remeasure({"logical_success_" + CODE, "pair_rate_hz"}):
            gate.look(*observe())
        return gate.look(*observe(), final=True)

    monkeypatch.setattr(session_module, "run_looks", undecided)
    session = bench.session({"logical_success_" + CODE, "pair_rate_hz"})
    session.evaluate()
    # Memories stop on an error count: each re-measurement replaces the last at twice its scale.
    assert bench.scales(session.candidate.run_id, "logical") == [1.0, 2.0, 4.0]
    assert session.candidate.ledger.scale["logical"] == 4.0
    # Rates pool (1 + 1 + 2); bell, which it requires, is measured once and re-measured only with a bell metric.
    assert bench.durations(BUILD, "coincidences") == [0.2, 0.2, 0.4]
    assert bench.durations(BUILD, "bell_tomography") == [0.05]


def test_baseline_source_is_measured_then_store(tmp_path):
    bench = Bench(tmp_path, {"bell_fidelity": PASSING})
    first = bench.session({"bell_fidelity"}, build=BASELINE, baseline_build=BUILD)
    first.evaluate()
    first.close("passed")
    assert bench.store.run(first.candidate.run_id).provenance["baseline_source"] == "measured"
    assert first.baseline is not None and bench.store.run(first.baseline.run_id).provenance["role"] == "baseline"

    second = bench.session({"bell_fidelity"})
    second.evaluate()
    second.close()
    assert bench.store.run(second.candidate.run_id).provenance["baseline_source"] == "store"
    assert second.baseline is None and bench.durations(BASELINE, "bell_tomography") == [0.05]  # only as candidate
    assert second.comparison("bell_fidelity").baseline is not None


def test_baseline_source_is_none_for_a_bench_without_a_stored_baseline(tmp_path):
    # The scripted device stands in for the bench's instruments; the session only reads the profile's kind.
    bench = Bench(tmp_path, {}, profile="bench-emulated")
    session = bench.session({"bell_fidelity"})
    assert session.comparison("bell_fidelity").verdict is Verdict.NO_BASELINE
    assert bench.store.run(session.candidate.run_id).provenance["baseline_source"] == "none"
    assert bench.durations(BASELINE, "bell_tomography") == []


def test_a_protocol_the_device_cannot_run_skips_its_metrics_with_the_reason(tmp_path):
    reason = "link tomography needs a 'prepare_state' command in bench.analyzers"
    bench = Bench(tmp_path, {"bell_fidelity": PASSING}, faults={"link_tomography": NotSupportedError(reason)})
    session = bench.session({"bell_fidelity", "link_process_fidelity", "capacity_ce_bits"})
    assert session.comparison("bell_fidelity").verdict is Verdict.PASS
    assert session.skipped == {"link_process_fidelity": reason, "capacity_ce_bits": reason}
    with pytest.raises(NotSupportedError, match="prepare_state"):
        session.comparison("capacity_ce_bits")
    assert session.candidate.ledger.raw["link"] == Failure(reason, FailureKind.NOT_SUPPORTED)
    assert session.run_status() == "passed"


def test_a_failed_prerequisite_is_an_error_naming_it(tmp_path):
    bench = Bench(tmp_path, {}, faults={"bell_tomography": DeviceError("counter: COUN:COIN? timed out")})
    session = bench.session({"bell_fidelity", "pair_rate_hz"})
    bell, rate = session.comparison("bell_fidelity"), session.comparison("pair_rate_hz")
    assert bell.verdict is Verdict.ERROR and bell.error == "counter: COUN:COIN? timed out"
    assert rate.verdict is Verdict.ERROR
    assert rate.error == "rates: prerequisite measurement bell failed: counter: COUN:COIN? timed out"
    assert session.candidate.estimates["pair_rate_hz"].kind is FailureKind.PREREQUISITE
    assert session.candidate.estimates["bell_fidelity"].kind is FailureKind.DEVICE
    assert bench.durations(BUILD, "coincidences") == []  # a rate without its tomography is not measured at all
    assert session.run_status() == "error"


def test_records_the_analysis_cannot_use_are_an_analysis_error(tmp_path, monkeypatch):
    bench = Bench(tmp_path, {})
    monkeypatch.setitem(ROWS, "XY", [0, 0, 0, 0])
    session = bench.session({"bell_fidelity"})
    comp = session.comparison("bell_fidelity")
    assert comp.verdict is Verdict.ERROR and "integrate longer" in comp.error
    assert session.candidate.estimates["bell_fidelity"].kind is FailureKind.ANALYSIS


@pytest.mark.parametrize("bug", [ValueError("bad duration"), KeyError("setting"), TypeError("not a number")])
def test_a_bug_in_a_device_crashes_instead_of_becoming_an_error_verdict(tmp_path, bug):
    bench = Bench(tmp_path, {}, faults={"bell_tomography": bug})
    session = bench.session({"bell_fidelity"})
    with pytest.raises(type(bug)):
        session.evaluate()


def test_a_bug_in_an_estimator_crashes(bench, monkeypatch):
    def broken(*args, **kwargs):
        raise KeyError("bell_fidelity")

    monkeypatch.setattr(estimators, "analyse_bell", broken)
    with pytest.raises(KeyError):
        bench.session({"bell_fidelity"}).evaluate()


def test_analysis_products_are_stored_with_candidate_and_baseline_metrics(tmp_path):
    tolerances = {"bell_fidelity": PASSING, "concurrence": PASSING, f"logical_success_{CODE}": PASSING}
    bench = Bench(tmp_path, tolerances)
    session = bench.session({"bell_fidelity", "concurrence", f"logical_success_{CODE}"})
    session.evaluate()
    session.close()
    cand = bench.store.metrics(session.candidate.run_id)
    base = bench.store.metrics(session.baseline.run_id)

    bell = cand["bell_fidelity"][2]
    assert bell["verdict"] == "PASS" and bell["artifacts"]["method"] == STATE_TOMOGRAPHY_METHOD
    rho = np.array(bell["artifacts"]["rho"]["real"]) + 1j * np.array(bell["artifacts"]["rho"]["imag"])
    counts = ScriptedDevice(None, BUILD, {}, []).bell_tomography(INTEGRATION_S)
    np.testing.assert_allclose(rho, reconstruct_bell_state(counts), atol=1e-12)
    assert state_fidelity(rho, PHI_PLUS) == pytest.approx(cand["bell_fidelity"][0].value, abs=1e-12)
    assert "artifacts" not in cand["concurrence"][2]
    assert base["bell_fidelity"][2]["artifacts"]["rho"] == bell["artifacts"]["rho"]  # same counts, same state
    assert base["concurrence"][2] is None

    (memory,) = cand[f"logical_success_{CODE}"][2]["artifacts"]["memories"]
    assert {k: memory[k] for k in ("code", "basis", "distance", "rounds", "shots")} == {
        "code": CODE,
        "basis": "Z",
        "distance": 3,
        "rounds": 3,
        "shots": SHOTS,
    }
    assert memory["p_fail"] == memory["errors"] / SHOTS
    assert (memory["ci_low"], memory["ci_high"]) == pytest.approx(wilson_interval(memory["errors"], SHOTS))
    assert base[f"logical_success_{CODE}"][2]["artifacts"]["memories"][0]["shots"] == SHOTS


class WrongBuildDevice(ScriptedDevice):
    """A device that reports another firmware build than the one it was opened for."""

    def identify(self) -> Identity:
        return Identity("aer", self.profile.name, "9.9.9")


class RefusingDevice(ScriptedDevice):
    """A device whose connection is refused."""

    def open(self) -> None:
        raise InstrumentDisconnected("source: cannot open socket://127.0.0.1:9: [Errno 111] Connection refused")


FAMILY = {"bell_fidelity", "pair_rate_hz", "qber_x", f"logical_success_{CODE}"}


@pytest.mark.parametrize(
    ("device", "cause"),
    [
        (WrongBuildDevice, "device reports firmware build '9.9.9' but the build under test is '2.4.0'"),
        (RefusingDevice, "Connection refused"),
    ],
    ids=["identity mismatch", "refused connection"],
)
def test_a_device_that_cannot_be_opened_ends_the_profile_with_every_metric_an_error(tmp_path, device, cause):
    bench = Bench(tmp_path, {})
    bench.device_class = device
    session = bench.session(FAMILY)
    comparisons = session.evaluate()
    assert set(comparisons) == FAMILY
    assert {c.verdict for c in comparisons.values()} == {Verdict.ERROR}
    assert len({c.error for c in comparisons.values()}) == 1 and cause in comparisons["qber_x"].error
    assert session.evaluate() is comparisons and bench.opened == 1, "a dead device is not opened again"
    with pytest.raises(DeviceError, match=re.escape(cause)):
        session.open_candidate()  # the `device` fixture sees the same cause, without a new attempt
    assert bench.opened == 1 and bench.log == []
    session.close()
    run = bench.store.run(session.candidate.run_id)
    assert run.status is RunStatus.ERROR and bench.store.raw_records(run.id) == []
    stored = bench.store.metrics(run.id)
    assert set(stored) == FAMILY  # stored although unmeasured, so every report lists them
    estimate, verdict, detail = stored["qber_x"]
    assert verdict == "ERROR" and cause in detail["error"]
    assert estimate.n == 0 and np.isnan(estimate.value) and np.isnan(estimate.ci_low)
    assert (estimate.unit, estimate.direction) == ("", Direction.LOWER)
    assert (stored["pair_rate_hz"][0].unit, stored["pair_rate_hz"][0].direction) == ("Hz", Direction.HIGHER)


def test_a_bug_while_opening_the_device_crashes(tmp_path):
    class Broken(ScriptedDevice):
        def open(self) -> None:
            raise TypeError("a bug, not a device fault")

    bench = Bench(tmp_path, {})
    bench.device_class = Broken
    session = bench.session({"bell_fidelity"})
    for _ in range(2):
        with pytest.raises(TypeError):
            session.evaluate()
    assert bench.opened == 1


def test_the_open_error_of_the_candidate_is_raised_by_open_candidate(tmp_path):
    bench = Bench(tmp_path, {})
    bench.device_class = WrongBuildDevice
    with pytest.raises(IdentityMismatchError, match=r"flash '2\.4\.0' or pass --firmware-build '9\.9\.9'"):
        bench.session({"bell_fidelity"}).open_candidate()


def test_the_baseline_build_is_never_compared_with_itself(tmp_path):
    bench = Bench(tmp_path, {"bell_fidelity": PASSING})
    session = bench.session({"bell_fidelity", "qber_x"}, build=BASELINE, baseline_build=BASELINE)
    assert {c.verdict for c in session.evaluate().values()} == {Verdict.NO_BASELINE}
    assert session.baseline is None and bench.durations(BASELINE, "bell_tomography") == [0.05]  # measured once
    session.close()
    run = bench.store.run(session.candidate.run_id)
    assert run.status is RunStatus.PASSED and run.provenance["baseline_source"] == "none"
    assert [r.build for r in bench.store.runs()] == [BASELINE]


# Counts of a visibly worse build: 20 % disagreement instead of 4-6 %.
WORSE = {"XX": [400, 100, 100, 400], "YY": [100, 400, 400, 100], "ZZ": [400, 100, 100, 400]}


class WorseCandidate(ScriptedDevice):
    """The candidate build delivers a worse Bell state; the baseline build is the scripted one."""

    def bell_tomography(self, duration_s: float) -> TomographyCounts:
        if self.build != BUILD:
            return super().bell_tomography(duration_s)
        counts = self._counts("bell_tomography", duration_s, [WORSE.get(s, UNIFORM) for s in BELL_SETTINGS])
        return TomographyCounts(BELL_SETTINGS, counts, duration_s)


class FailingBaseline(ScriptedDevice):
    """The baseline build's Bell tomography fails; the candidate's works."""

    def bell_tomography(self, duration_s: float) -> TomographyCounts:
        if self.build == BASELINE:
            raise DeviceError("counter: COUN:COIN? timed out")
        return super().bell_tomography(duration_s)


@pytest.mark.parametrize(
    ("device", "candidate", "baseline"),
    [
        (WorseCandidate, RunStatus.FAILED, RunStatus.PASSED),
        (FailingBaseline, RunStatus.PASSED, RunStatus.ERROR),
        (ScriptedDevice, RunStatus.PASSED, RunStatus.PASSED),
    ],
    ids=["candidate regressed", "baseline failed", "both measured"],
)
def test_an_in_session_baseline_run_has_its_own_status(tmp_path, device, candidate, baseline):
    bench = Bench(tmp_path, {"bell_fidelity": {"absolute": 0.001}})
    bench.device_class = device
    session = bench.session({"bell_fidelity"})
    session.evaluate()
    session.close()
    assert bench.store.run(session.candidate.run_id).status is candidate
    assert bench.store.run(session.baseline.run_id).status is baseline


def test_an_interrupted_session_finishes_both_runs_aborted(tmp_path):
    bench = Bench(tmp_path, {"bell_fidelity": PASSING})
    session = bench.session({"bell_fidelity"})
    session.evaluate()
    session.close(RunStatus.ABORTED)
    assert {r.status for r in bench.store.runs()} == {RunStatus.ABORTED}


def test_a_stored_baseline_metric_that_was_not_measured_is_no_baseline(tmp_path):
    bench = Bench(tmp_path, {"concurrence": PASSING})
    first = bench.session({"concurrence"}, build=BASELINE, baseline_build=BASELINE)
    first.evaluate()
    first.close()
    # The baseline build's run could not measure bell_fidelity: it is stored unmeasured, with the ERROR.
    bench.store.add_metric(first.candidate.run_id, "bell_fidelity", unmeasured("bell_fidelity"), "ERROR")
    comparisons = bench.session({"bell_fidelity", "concurrence"}).evaluate()
    assert comparisons["bell_fidelity"].verdict is Verdict.NO_BASELINE
    assert comparisons["concurrence"].verdict is Verdict.PASS


def test_a_drifting_stand_in_keeps_its_applied_offsets_with_the_run(tmp_path: Path):
    raw = yaml.safe_load(write_profile(tmp_path, {"bell_fidelity": PASSING}).read_text(encoding="utf-8"))
    raw["drift"] = {"between_sessions": {"visibility_sd": 0.005, "pair_rate_rel_sd": 0.03}}
    path = tmp_path / "session-unit.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    offsets = {}
    for session in (0, 1):
        with Store(tmp_path / f"q{session}.db") as store:
            ps = ProfileSession(load_profile(path), store, build=BUILD, budget="quick", session=session)
            ps.family.add("bell_fidelity")
            ps.evaluate()
            ps.close()
            run = store.run(ps.candidate.run_id)
            assert run.provenance["drift"]["session"] == session
            offsets[session] = run.provenance["drift"]["offsets"]
    # Each session draws its own offsets; the same session index draws the same ones (reproducible).
    assert offsets[0] != offsets[1]
    with Store(tmp_path / "again.db") as store:
        ps = ProfileSession(load_profile(path), store, build=BUILD, budget="quick", session=1)
        ps.family.add("bell_fidelity")
        ps.evaluate()
        ps.close()
        assert store.run(ps.candidate.run_id).provenance["drift"]["offsets"] == offsets[1]


def _drifting_profile(tmp_path: Path) -> Path:
    raw = yaml.safe_load(write_profile(tmp_path, {"bell_fidelity": {"absolute": 0.01}}).read_text(encoding="utf-8"))
    raw["tolerances"]["pair_rate_hz"] = {"relative": 0.05}
    raw["drift"] = {"between_sessions": {"visibility_sd": 0.005, "pair_rate_rel_sd": 0.03}}
    path = tmp_path / "session-unit.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def _measure(path: Path, store: Store, build: str, session: int) -> ProfileSession:
    ps = ProfileSession(
        load_profile(path), store, build=build, baseline_build=BASELINE, budget="quick", session=session
    )
    ps.family.update({"bell_fidelity", "pair_rate_hz"})
    ps.evaluate()
    ps.close()
    return ps


@pytest.mark.parametrize("sessions", [1, 3])
def test_a_stored_baseline_of_several_sessions_is_pooled_and_says_so(tmp_path: Path, sessions: int):
    path = _drifting_profile(tmp_path)
    with Store(tmp_path / "q.db") as store:
        for s in range(sessions):
            _measure(path, store, BASELINE, s)  # the baseline build measured as itself: nothing compared
        ps = _measure(path, store, BUILD, 7)
        comps = {m: ps.comparison(m) for m in ("bell_fidelity", "pair_rate_hz")}
        stored = store.metrics(ps.candidate.run_id)
    for name, comp in comps.items():
        assert comp.verdict is not Verdict.REGRESSION, comp  # identical physics, drift within the tolerances
        assert stored[name][2]["variance_model"] == comp.variance_model  # kept for the summary JSON
        if sessions == 1:
            assert comp.variance_model == "between-session variance unknown (1 stored session): shot noise only"
        else:
            assert comp.variance_model == "REML over 3 sessions, HKSJ t with 2 df", comp.variance_model
            assert comp.method == "pooled sessions (random effects)" and comp.looks == 1
            # The pooled baseline's interval is a t interval over the sessions, wider than one session's.
            assert comp.baseline.ci_high - comp.baseline.ci_low > 0


def test_a_candidate_measured_in_several_sessions_is_pooled_with_them(tmp_path: Path):
    path = _drifting_profile(tmp_path)
    with Store(tmp_path / "q.db") as store:
        for s in range(3):
            _measure(path, store, BASELINE, s)
        for s in (5, 6):
            _measure(path, store, BUILD, s)  # earlier sessions of the build under test
        _measure(path, store, BUILD, 7)
        again = _measure(path, store, BUILD, 7)  # a re-run of session 7 repeats its draws: not a fourth session
        comp = again.comparison("bell_fidelity")
    assert comp.variance_model == "REML over 3 baseline + 3 candidate sessions, HKSJ t with 4 df", comp.variance_model
    assert comp.verdict is not Verdict.REGRESSION and comp.looks == 1


def test_an_in_session_baseline_names_shot_noise_as_its_variance(tmp_path: Path):
    with Store(tmp_path / "q.db") as store:
        ps = _measure(_drifting_profile(tmp_path), store, BUILD, 0)
        assert ps.comparison("bell_fidelity").variance_model == "shot noise only (baseline measured in this session)"
