"""Fixtures of the bench tests: emulators on ephemeral loopback ports and profiles pointing at them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from harness.emulators import EmulatorSet, LinkParameters, ThreadedEmulators
from harness.profiles import Profile, load_profile

BUILD = "2.4.0"


@pytest.fixture(scope="session")
def reference_profile() -> Profile:
    """The effective bench-emulated profile of build 2.4.0 (physics of aer-reference)."""
    return load_profile("bench-emulated").effective(BUILD)


@pytest.fixture(scope="session")
def params(reference_profile: Profile) -> LinkParameters:
    """Link parameters of the reference profile."""
    return LinkParameters.from_profile(reference_profile)


@pytest.fixture
def emulators(params: LinkParameters) -> Iterator[Callable[..., EmulatorSet]]:
    """Factory starting an EmulatorSet in a background loop; every one started is stopped at teardown."""
    started: list[ThreadedEmulators] = []

    def start(**kw: Any) -> EmulatorSet:
        kw.setdefault("seed", 7)
        runner = ThreadedEmulators(params, kw.pop("build", BUILD), **kw).start()
        started.append(runner)
        runner.set.runner = runner  # lets a test stop the bench mid-run
        return runner.set

    yield start
    for runner in started:
        runner.stop()


def live_profile(reference: Profile, emu: EmulatorSet, **bench_kw: Any) -> Profile:
    """A validated kind-bench Profile with the reference physics and a bench block at the live emulator ports."""
    return Profile.model_validate(emu.profile_dict(reference, "bench-live", **bench_kw))
