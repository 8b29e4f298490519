"""pytest plugin: device-profile options, fixtures, markers, the regression gate and its reports.

With no `--device-profile` the plugin only adds its options and markers, so unrelated test
suites in the same repository are left alone.
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

import pytest

from harness.metrics import metric_spec

MARKERS = {
    "fidelity": "metric of the fidelity family (Bell state, link process)",
    "entanglement_rate": "metric of the entanglement-rate family",
    "capacity": "channel-capacity metric (C_E, Q1, chi)",
    "logical": "logical-success metric (QEC memory, decoder in the loop)",
    "bench_only": "runs only against a lab bench or its replay",
    "sim_only": "runs only against a simulated device",
}
BUDGET_CHOICES = ("quick", "standard", "release")
_KEY = pytest.StashKey["HarnessState"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add the harness options, all in one group."""
    g = parser.getgroup("qharness", "qharness regression harness")
    g.addoption(
        "--device-profile",
        action="append",
        default=[],
        metavar="NAME|PATH",
        help="device profile to test (repeatable: the suites run once per profile)",
    )
    g.addoption(
        "--firmware-build", default=None, metavar="B", help="build under test (default: the profile's firmware.build)"
    )
    g.addoption(
        "--baseline-build",
        default=None,
        metavar="B",
        help="baseline build (default: the store's marked baseline, then the profile's firmware.baseline)",
    )
    g.addoption(
        "--results-db",
        default="reports/qharness.db",
        metavar="PATH",
        help="SQLite results store (default: reports/qharness.db)",
    )
    g.addoption("--harness-seed", default="1", metavar="N", help="seed of every simulated random stream (default 1)")
    g.addoption(
        "--budget", default="standard", metavar="quick|standard|release", help="measurement budget (default: standard)"
    )
    g.addoption(
        "--alpha", default="0.05", metavar="A", help="family-wise false-alarm rate per profile and run (default 0.05)"
    )
    g.addoption("--harness-summary", default=None, metavar="PATH", help="write a JSON summary of the verdicts")
    g.addoption(
        "--record-session",
        default=None,
        metavar="PATH",
        help="record every instrument exchange of a bench run as JSONL (replay with kind: replay)",
    )


class HarnessState:
    """Everything the plugin keeps for one pytest session."""

    def __init__(self, config: pytest.Config) -> None:
        from harness.profiles import ProfileError, load_profile

        opt = config.option
        self.seed = _parse(opt.harness_seed, int, "--harness-seed", "an integer, e.g. --harness-seed 7")
        self.alpha = _parse(opt.alpha, float, "--alpha", "a number in (0, 1), e.g. --alpha 0.05")
        if not 0.0 < self.alpha < 1.0:
            raise pytest.UsageError(f"--alpha must be in (0, 1), got {opt.alpha}")
        if opt.budget not in BUDGET_CHOICES:
            raise pytest.UsageError(f"--budget must be one of {', '.join(BUDGET_CHOICES)}, got {opt.budget!r}")
        self.budget = opt.budget
        # pytest owns `--strict` (all of its strictness checks); a strict harness run also fails on INCONCLUSIVE.
        self.strict = bool(getattr(opt, "strict", False))
        self.summary_path = opt.harness_summary
        self.db_path = Path(opt.results_db)
        self.record_session = opt.record_session
        # Under xdist the controller hands its session id to the workers, so their runs group into one session.
        workerinput = getattr(config, "workerinput", None)
        self.session_id = workerinput["qharness_session"] if workerinput else uuid.uuid4().hex
        self.profiles = {}
        for ref in opt.device_profile:
            try:
                loaded = load_profile(ref)
                if opt.firmware_build is not None:
                    loaded.effective(opt.firmware_build)
                if opt.baseline_build is not None:
                    loaded.effective(opt.baseline_build)
            except ProfileError as exc:
                raise pytest.UsageError(f"--device-profile {ref}: {exc}") from None
            if loaded.name in self.profiles:
                raise pytest.UsageError(f"--device-profile {ref}: profile {loaded.name!r} is given twice")
            self.profiles[loaded.name] = loaded
        self.sessions: dict = {}
        self._store = None
        self._recorder = None

    @property
    def recorder(self):
        """The session recorder of --record-session, opened on first use (None without the option)."""
        if self.record_session and self._recorder is None:
            from harness.instruments import SessionRecorder

            self._recorder = SessionRecorder(self.record_session)
        return self._recorder

    @property
    def store(self):
        """The results store, opened on first use."""
        if self._store is None:
            from harness.store import Store

            self._store = Store(self.db_path)
            # A run killed by SIGTERM/SIGINT is marked aborted; its raw records are already committed.
            self._store.install_abort_handler()
        return self._store

    def session(self, name: str):
        """The ProfileSession of one profile, created on first use."""
        if name not in self.sessions:
            from harness.session import ProfileSession

            self.sessions[name] = ProfileSession(
                self.profiles[name],
                self.store,
                build=self._config_option("firmware_build"),
                baseline_build=self._config_option("baseline_build"),
                seed=self.seed,
                budget=self.budget,
                alpha=self.alpha,
                session_id=self.session_id,
                recorder=self.recorder,
            )
            self.sessions[name].family.update(self.families.get(name, ()))
        return self.sessions[name]

    def _config_option(self, name: str):
        return getattr(self.config.option, name)


def _parse(text: str, kind: type, option: str, expected: str):
    try:
        return kind(text)
    except (TypeError, ValueError):
        raise pytest.UsageError(f"{option} must be {expected}; got {text!r}") from None


def pytest_configure(config: pytest.Config) -> None:
    """Register markers and, with --device-profile, validate options and load the profiles."""
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    if not config.option.device_profile:
        return
    state = HarnessState(config)
    state.config = config
    state.families = {}
    config.stash[_KEY] = state


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    """(xdist) Pass the session id to each worker."""
    state = _state(node.config)
    if state is not None:
        node.workerinput["qharness_session"] = state.session_id


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """(xdist) Keep each profile's tests on one worker, so its family is measured and gated once."""
    state = _state(config)
    if state is None:
        return None
    from xdist.scheduler import LoadScopeScheduling

    # Longest first, so "aer-reference-x" is not taken for "aer-reference".
    profiles = sorted(state.profiles, key=len, reverse=True)

    class ProfileScheduling(LoadScopeScheduling):
        """Load scheduling with one scope per device profile (read from the test id's parameters)."""

        def _split_scope(self, nodeid: str) -> str:
            params = nodeid.rpartition("[")[2]
            for name in profiles:
                if params.startswith((f"{name}-", f"{name}]")):
                    return f"qharness-profile:{name}"
            return nodeid

    return ProfileScheduling(config, log)


def _state(config: pytest.Config) -> HarnessState | None:
    return config.stash.get(_KEY, None)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run each harness test once per profile, with the profile in the test id."""
    state = _state(metafunc.config)
    if "harness_profile" not in metafunc.fixturenames:
        return
    if state is None:
        skip = pytest.mark.skip(reason="needs --device-profile NAME|PATH")
        metafunc.parametrize("harness_profile", [pytest.param(None, marks=skip)], ids=["no-profile"], scope="session")
        return
    names = list(state.profiles)
    if "logical_metric" in metafunc.fixturenames:
        pairs = [
            (n, f"logical_success_{code}")
            for n in names
            for code in state.profiles[n].effective(state.config.option.firmware_build).qec.codes
        ]
        metafunc.parametrize(
            ("harness_profile", "logical_metric"), pairs, ids=[f"{p}-{m}" for p, m in pairs], scope="session"
        )
        return
    metafunc.parametrize("harness_profile", names, ids=names, scope="session")


def _harness_param(item: pytest.Item) -> tuple[str, str] | None:
    """(profile, metric) of a harness metric test, else None."""
    callspec = getattr(item, "callspec", None)
    if callspec is None or "harness_profile" not in getattr(item, "fixturenames", ()):
        return None
    profile = callspec.params.get("harness_profile")
    metric = callspec.params.get("metric") or callspec.params.get("logical_metric")
    return (profile, metric) if profile is not None and metric is not None else None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip bench_only tests on simulated profiles and sim_only tests on benches."""
    state = _state(config)
    if state is None:
        return
    for item in items:
        found = _harness_param(item)
        if found is not None:
            _apply_kind_markers(item, state.profiles[found[0]].effective(config.option.firmware_build).kind)


class HarnessDeprecationWarning(DeprecationWarning):
    """A deprecated path that qharness can see being taken in the session."""


SAMPLER_WARNING = (
    "qiskit-ibm-runtime is loaded in this session: its SamplerV2 on a local simulator is a deprecated path and is not "
    "what qharness measures with. The Aer stand-in runs AerSimulator directly; for your own circuits use "
    "qiskit.primitives.BackendSamplerV2(backend=AerSimulator(...))."
)


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """Each profile's metric family: the metrics of the tests that will run (after -k/-m and skips)."""
    state = _state(session.config)
    if state is None:
        return
    if "qiskit_ibm_runtime" in sys.modules and not hasattr(session.config, "workerinput"):
        # Once per session, from the controller only, however many suites import it.
        session.config.issue_config_time_warning(HarnessDeprecationWarning(SAMPLER_WARNING), stacklevel=2)
    for item in session.items:
        found = _harness_param(item)
        if found is not None and not item.get_closest_marker("skip"):
            state.families.setdefault(found[0], set()).add(found[1])


def _apply_kind_markers(item: pytest.Item, kind: str) -> None:
    if item.get_closest_marker("bench_only") and kind == "aer":
        item.add_marker(pytest.mark.skip(reason="bench_only test on a simulated profile"))
    if item.get_closest_marker("sim_only") and kind != "aer":
        item.add_marker(pytest.mark.skip(reason="sim_only test on a bench profile"))


@pytest.fixture(scope="session")
def harness_profile(request: pytest.FixtureRequest) -> str:
    """Name of the device profile under test (parametrised by the plugin)."""
    return request.param


@pytest.fixture(scope="session")
def harness_session(request: pytest.FixtureRequest, harness_profile: str):
    """The ProfileSession of the profile under test: devices, store runs and the gate."""
    state = _state(request.config)
    return state.session(harness_profile)


@pytest.fixture(scope="session")
def device_profile(harness_session):
    """The effective profile (pydantic model) of the build under test."""
    return harness_session.profile


@pytest.fixture(scope="session")
def device(harness_session):
    """The device under test, opened once per profile and always closed; a build mismatch is an ERROR."""
    return harness_session.open_candidate()


@pytest.fixture(scope="session")
def baseline(harness_session) -> str:
    """The baseline build the gate compares against."""
    return harness_session.baseline_build


@pytest.fixture
def logical_metric(request: pytest.FixtureRequest) -> str:
    """Name of a logical-success metric chosen by the profile's qec.codes (parametrised by the plugin)."""
    return request.param


@pytest.fixture
def record_metric(request: pytest.FixtureRequest, harness_session):
    """Return the gate's Comparison for a metric: measures the profile's family once, stores it, gates it.

    A device fault surfaces here, in setup, so it is a pytest ERROR and never a REGRESSION.
    """
    from harness.errors import DeviceError

    def _record(metric: str):
        comparisons = harness_session.evaluate()
        if metric in harness_session.skipped:
            pytest.skip(harness_session.skipped[metric])
        comp = comparisons.get(metric)
        if comp is None:
            raise DeviceError(f"metric {metric!r} was not measured for profile {harness_session.loaded.name}")
        return comp

    return _record


@pytest.fixture
def verdict(request: pytest.FixtureRequest, record_metric, harness_session):
    """The gate's verdict for the test's `metric` (or `logical_metric`), measured at setup time."""
    from harness.gate import Verdict

    names = request.fixturenames
    metric = request.getfixturevalue("logical_metric" if "logical_metric" in names else "metric")
    metric_spec(metric)
    comp = record_metric(metric)
    _allure_labels(request, harness_session, comp)
    if comp.verdict is Verdict.ERROR:
        raise _MeasurementError(f"{metric}: {comp.error}")
    allure_on = bool(request.config.getoption("allure_report_dir", default=None))
    return _VerdictCheck(comp, harness_session, _state(request.config).strict, allure_on)


class _MeasurementError(RuntimeError):
    """A metric could not be measured (instrument fault, identity mismatch): reported as a pytest ERROR."""


class _VerdictCheck:
    """Asserts a metric's verdict: REGRESSION fails, INCONCLUSIVE fails under --strict."""

    def __init__(self, comparison, session, strict: bool, allure: bool) -> None:
        self.comparison = comparison
        self.session = session
        self.strict = strict
        self.allure = allure

    def check(self) -> None:
        """Fail the test on REGRESSION (and on INCONCLUSIVE with --strict)."""
        from harness.gate import Verdict

        comp = self.comparison
        if self.allure:
            # In the test body, not the fixture: Allure files setup-time attachments under the fixture.
            _allure_attachments(self.session, comp)
        message = comp.message(self.session.build, self.session.baseline_build)
        if comp.verdict is Verdict.REGRESSION:
            pytest.fail(message, pytrace=False)
        if comp.verdict is Verdict.INCONCLUSIVE and self.strict:
            pytest.fail(f"{message} (--strict: INCONCLUSIVE fails)", pytrace=False)


def _allure_labels(request: pytest.FixtureRequest, session, comp) -> None:
    """Label the test for Allure (epic = profile, feature = family, story = metric) when allure is active."""
    if not request.config.getoption("allure_report_dir", default=None):
        return
    import allure

    spec = metric_spec(comp.name)
    allure.dynamic.epic(session.loaded.name)
    allure.dynamic.feature(spec.family)
    allure.dynamic.story(comp.name)
    allure.dynamic.parameter("build", session.build)
    allure.dynamic.parameter("baseline", session.baseline_build)
    allure.dynamic.parameter("seed", session.seed)


def _allure_attachments(session, comp) -> None:
    """Attach the metric with its raw counts, and its trend plot, to the running test (Allure only)."""
    import allure

    body = {"metric": comp.to_dict(), "raw": session.raw_counts(comp.name)}
    allure.attach(
        json.dumps(body, indent=1, default=_json_default),
        name=f"{comp.name}.json",
        attachment_type=allure.attachment_type.JSON,
    )
    from harness.report.build import ReportError, trend_plot_png

    try:
        png = trend_plot_png(session.store, session.loaded.name, comp.name)
    except ReportError:
        return  # no history of this metric yet
    allure.attach(png, name=f"{comp.name} trend", attachment_type=allure.attachment_type.PNG)


def _json_default(obj: object) -> object:
    import numpy as np

    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return str(obj)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Close devices, finish store runs, and write the JSON summary."""
    state = _state(session.config)
    if state is None:
        return
    for ps in state.sessions.values():
        ps.close()
    if state._recorder is not None:
        state._recorder.close()
    controller = not hasattr(session.config, "workerinput")
    if state.summary_path and controller:
        # Under xdist only the controller writes it; workers' runs are in the store under one session id.
        write_summary(state, Path(state.summary_path))
    alluredir = session.config.getoption("allure_report_dir", default=None)
    if alluredir and controller and state.db_path.exists():
        _write_allure_environment(state, alluredir)
    if state._store is not None:
        state._store.uninstall_abort_handler()
        state._store.close()
        state._store = None


def _write_allure_environment(state: HarnessState, alluredir: str) -> None:
    """Provenance of the session's candidate runs as Allure's environment.properties."""
    from harness.report.build import write_allure_environment
    from harness.summary import candidate_runs

    provenance = {}
    for run in candidate_runs(state.store, state.session_id):
        provenance[run.profile] = {
            "profile_hash": run.profile_hash,
            "build": run.build,
            "baseline": run.baseline_build,
            "seed": run.seed,
            "budget": run.budget,
            "git_sha": run.git_sha,
            "host": run.host,
            **run.versions,
        }
    write_allure_environment(alluredir, provenance)


def write_summary(state: HarnessState, path: Path) -> None:
    """Write the summary JSON of this session's candidate runs, read back from the store."""
    from harness.summary import session_summary

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(session_summary(state.store, state.session_id), indent=2, default=_json_default))


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """Print one table per profile: value ± interval, baseline, delta and verdict of each metric."""
    state = _state(config)
    if state is None or hasattr(config, "workerinput") or not state.db_path.exists():
        return
    from harness.summary import candidate_runs, run_summary

    tr = terminalreporter
    for run in candidate_runs(state.store, state.session_id):
        obj = run_summary(state.store, run)
        tr.write_sep(
            "=", f"qharness {obj['profile']}: build {obj['build']} vs {obj['baseline_build']}: {obj['verdict']}"
        )
        for line in format_table(obj["metrics"]):
            tr.write_line(line)
    state.store.close()


def _interval(d: dict | None, fmt: str) -> str:
    if not d or d.get("value") is None:
        return "-"
    return f"{d['value']:{fmt}} [{d['ci_low']:{fmt}}, {d['ci_high']:{fmt}}]"


def format_table(metrics: list[dict]) -> list[str]:
    """Plain-text rows of a verdict table from summary metric entries."""
    rows = [f"{'metric':<34} {'value [95% CI]':<36} {'baseline':<12} {'delta [95% CI]':<34} verdict"]
    for m in metrics:
        base = f"{m['baseline']['value']:.6g}" if m.get("baseline") else "-"
        delta = _interval(m.get("delta"), "+.4g")
        rows.append(f"{m['name']:<34} {_interval(m, '.6g'):<36} {base:<12} {delta:<34} {m['verdict']}")
    return rows
