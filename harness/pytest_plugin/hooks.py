"""The plugin's hooks: one HarnessState from the options, tests parametrised by profile, outputs at the end.

With no `--device-profile` the hooks only add the options and markers, so unrelated suites are left alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from harness.pytest_plugin import sinks
from harness.pytest_plugin.deprecations import warn_deprecated_paths
from harness.pytest_plugin.options import MARKERS, HarnessOptions, add_options
from harness.pytest_plugin.state import HarnessState

if TYPE_CHECKING:
    from harness.pytest_plugin.scheduler import ProfileScheduling

STATE_KEY = pytest.StashKey[HarnessState]()


def state_of(config: pytest.Config) -> HarnessState | None:
    """The session's HarnessState (None without --device-profile)."""
    return config.stash.get(STATE_KEY, None)


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add the harness options, all in one group."""
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    """Register markers and, with --device-profile, validate options and load the profiles."""
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    if config.option.device_profile:
        session_id = config.workerinput["qharness_session"] if _is_worker(config) else None
        config.stash[STATE_KEY] = HarnessState(HarnessOptions.from_config(config), session_id)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:  # xdist's WorkerController
    """(xdist) Pass the session id to each worker."""
    state = state_of(node.config)
    if state is not None:
        node.workerinput["qharness_session"] = state.session_id


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> ProfileScheduling | None:
    """(xdist) Keep each profile's tests on one worker, so its family is measured and gated once."""
    state = state_of(config)
    if state is None:
        return None
    from harness.pytest_plugin.scheduler import ProfileScheduling

    return ProfileScheduling(config, log, profiles=state.profiles)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run each harness test once per profile, with the profile in the test id."""
    if "harness_profile" not in metafunc.fixturenames:
        return
    state = state_of(metafunc.config)
    if state is None:
        skip = pytest.mark.skip(reason="needs --device-profile NAME|PATH")
        metafunc.parametrize("harness_profile", [pytest.param(None, marks=skip)], ids=["no-profile"], scope="session")
    elif "logical_metric" in metafunc.fixturenames:
        pairs = [(name, metric) for name in state.profiles for metric in state.logical_metrics(name)]
        ids = [f"{p}-{m}" for p, m in pairs]
        metafunc.parametrize(("harness_profile", "logical_metric"), pairs, ids=ids, scope="session")
    else:
        metafunc.parametrize("harness_profile", list(state.profiles), ids=list(state.profiles), scope="session")


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
    state = state_of(config)
    if state is None:
        return
    for item in items:
        found = _harness_param(item)
        if found is None:
            continue
        simulated = state.effective(found[0]).kind == "aer"
        if simulated and item.get_closest_marker("bench_only"):
            item.add_marker(pytest.mark.skip(reason="bench_only test on a simulated profile"))
        if not simulated and item.get_closest_marker("sim_only"):
            item.add_marker(pytest.mark.skip(reason="sim_only test on a bench profile"))


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """Each profile's metric family: the metrics of the tests that will run (after -k/-m and skips)."""
    state = state_of(session.config)
    if state is None:
        return
    if not _is_worker(session.config):
        # Once per session, from the controller only, however many suites take the path.
        warn_deprecated_paths(session.config)
    for item in session.items:
        found = _harness_param(item)
        if found is not None and not item.get_closest_marker("skip"):
            state.add_to_family(*found)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Close devices, finish store runs (aborted when interrupted), write the summary JSON and Allure's environment."""
    state = state_of(session.config)
    if state is None:
        return
    from harness.store import RunStatus

    # Ctrl-C or SIGTERM (exit 2): the runs end aborted; their raw records are already in the store.
    state.finish(RunStatus.ABORTED if exitstatus == pytest.ExitCode.INTERRUPTED else None)
    opts = state.options
    if opts.summary_path and not _is_worker(session.config):
        sinks.write_summary(state.store, state.session_id, opts.summary_path)
    if opts.allure_dir and not _is_worker(session.config) and opts.store_url.exists():
        sinks.write_allure_environment(state.store, state.session_id, opts.allure_dir)
    state.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config) -> None:
    """Print one table per profile: value ± interval, baseline, delta and verdict of each metric."""
    state = state_of(config)
    if state is None or _is_worker(config) or not state.options.store_url.exists():
        return
    sinks.write_tables(terminalreporter, state.store, state.session_id)
    state.close()
