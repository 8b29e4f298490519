"""The plugin's modules on their own: the package's exports, options, state and scheduler scopes."""

import dataclasses
import signal
from pathlib import Path

import pytest

import harness.pytest_plugin as plugin
from harness.pytest_plugin import fixtures, hooks
from harness.pytest_plugin.options import HarnessOptions
from harness.pytest_plugin.scheduler import profile_scope
from harness.pytest_plugin.state import HarnessState


def _options(pytester: pytest.Pytester, *args: str) -> HarnessOptions:
    config = pytester.parseconfig("--device-profile", "aer-reference", *args)
    return HarnessOptions.from_config(config)


def test_package_exports_every_hook_and_fixture():
    hook_names = {n for n in vars(hooks) if n.startswith("pytest_")}
    fixture_names = {n for n, v in vars(fixtures).items() if isinstance(v, type(fixtures.verdict))}
    assert hook_names <= set(vars(plugin)) and fixture_names <= set(vars(plugin))
    assert {"verdict", "record_metric", "harness_session", "device"} <= fixture_names


def test_options_are_parsed_once_into_a_frozen_object(pytester: pytest.Pytester, tmp_path: Path):
    opts = _options(pytester, "--alpha", "0.1", "--harness-seed", "7", "--results-db", str(tmp_path / "q.db"))
    assert (opts.alpha, opts.seed, opts.budget, opts.strict) == (0.1, 7, "standard", False)
    assert list(opts.profiles) == ["aer-reference"] and opts.store_url.path == tmp_path / "q.db"
    assert opts.summary_path is None and opts.allure_dir is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.alpha = 0.2  # type: ignore[misc]
    with pytest.raises(TypeError):
        opts.profiles["other"] = opts.profiles["aer-reference"]  # type: ignore[index]


def test_bad_option_is_a_usage_error(pytester: pytest.Pytester):
    with pytest.raises(pytest.UsageError, match=r"--budget must be one of quick, standard, release, got 'huge'"):
        _options(pytester, "--budget", "huge")


def test_state_opens_the_store_lazily_and_closes_it(pytester: pytest.Pytester, tmp_path: Path):
    before = signal.getsignal(signal.SIGTERM)
    state = HarnessState(_options(pytester, "--results-db", str(tmp_path / "q.db")))
    assert len(state.session_id) == 32 and state.recorder is None
    assert not (tmp_path / "q.db").exists()
    state.add_to_family("aer-reference", "bell_fidelity")
    session = state.session("aer-reference")
    assert session.family == {"bell_fidelity"} and session.session_id == state.session_id
    assert state.session("aer-reference") is session
    assert signal.getsignal(signal.SIGTERM) is not before, "the store marks runs aborted on SIGTERM"
    state.close()
    state.close()  # a second close is harmless
    assert signal.getsignal(signal.SIGTERM) is before and state.sessions == {}
    assert HarnessState(state.options, "given").session_id == "given"


def test_logical_metrics_follow_the_profile_codes(pytester: pytest.Pytester):
    state = HarnessState(_options(pytester))
    codes = state.effective("aer-reference").qec.codes
    assert state.logical_metrics("aer-reference") == [f"logical_success_{c}" for c in codes]


@pytest.mark.parametrize(
    ("nodeid", "scope"),
    [
        ("t.py::test_a[aer-reference-bell_fidelity]", "qharness-profile:aer-reference"),
        ("t.py::test_a[aer-reference-x-bell_fidelity]", "qharness-profile:aer-reference-x"),
        ("t.py::test_a[aer-reference-x]", "qharness-profile:aer-reference-x"),
        ("t.py::test_a[other-profile]", "t.py::test_a[other-profile]"),
        ("t.py::test_plain", "t.py::test_plain"),
    ],
)
def test_a_profile_is_one_scheduling_scope(nodeid: str, scope: str):
    assert profile_scope(nodeid, ["aer-reference", "aer-reference-x"]) == scope
