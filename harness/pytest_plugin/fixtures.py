"""The plugin's fixtures: each one call into code that also works outside pytest."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from harness.errors import DeviceError, ExitCode
from harness.pytest_plugin.hooks import state_of
from harness.pytest_plugin.verdict import VerdictCheck, comparison_or_skip, meet_cause, verdict_of

if TYPE_CHECKING:
    from harness.devices.base import Device
    from harness.gate import Comparison
    from harness.profiles import Profile
    from harness.session import ProfileSession


@pytest.fixture(scope="session")
def harness_profile(request: pytest.FixtureRequest) -> str:
    """Name of the device profile under test (parametrised by the plugin)."""
    return request.param


@pytest.fixture(scope="session")
def harness_session(request: pytest.FixtureRequest, harness_profile: str) -> ProfileSession:
    """The ProfileSession of the profile under test: devices, store runs and the gate."""
    return state_of(request.config).session(harness_profile)


@pytest.fixture(scope="session")
def device_profile(harness_session: ProfileSession) -> Profile:
    """The effective profile (pydantic model) of the build under test."""
    return harness_session.profile


def _require_lease(request: pytest.FixtureRequest, harness_session: ProfileSession) -> None:
    """Stop the run (exit 4, one line) if this run's lease of the bench lapsed: it may no longer measure alone."""
    why = state_of(request.config).lost_lease(harness_session.loaded.name)
    if why is not None:
        pytest.exit(why, returncode=ExitCode.USAGE_ERROR)


@pytest.fixture
def device(request: pytest.FixtureRequest, harness_session: ProfileSession) -> Device:
    """The device under test, opened once per profile and always closed; a build mismatch is an ERROR (once)."""
    _require_lease(request, harness_session)
    try:
        return harness_session.open_candidate()
    except DeviceError as exc:
        cause = str(exc) or type(exc).__name__
        meet_cause(state_of(request.config).causes, harness_session.loaded.name, cause, request.node.nodeid)


@pytest.fixture(scope="session")
def baseline(harness_session: ProfileSession) -> str:
    """The baseline build the gate compares against."""
    return harness_session.baseline_build


@pytest.fixture
def logical_metric(request: pytest.FixtureRequest) -> str:
    """Name of a logical-success metric chosen by the profile's qec.codes (parametrised by the plugin)."""
    return request.param


@pytest.fixture
def record_metric(request: pytest.FixtureRequest, harness_session: ProfileSession) -> Callable[[str], Comparison]:
    """Return the gate's Comparison for a metric: measures the profile's family once, stores it, gates it.

    A device fault surfaces here, in setup, so it is a pytest ERROR and never a REGRESSION.
    """
    _require_lease(request, harness_session)
    return functools.partial(comparison_or_skip, harness_session)


@pytest.fixture
def verdict(request: pytest.FixtureRequest, harness_session: ProfileSession) -> VerdictCheck:
    """The gate's verdict for the test's `metric` (or `logical_metric`), measured at setup time."""
    _require_lease(request, harness_session)
    metric = request.getfixturevalue("logical_metric" if "logical_metric" in request.fixturenames else "metric")
    state = state_of(request.config)
    return verdict_of(harness_session, metric, state.options, state.causes, request.node)
