"""(xdist) Load scheduling that keeps each device profile's tests on one worker.

A profile's metric family is measured and gated once, by the worker that runs its tests; splitting the
tests over workers would measure it once per worker and gate each part without the others.
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from xdist.scheduler import LoadScopeScheduling


def profile_scope(nodeid: str, profiles: Iterable[str]) -> str:
    """The scheduling scope of a test: its profile (read from the test id's parameters), else the test itself."""
    params = nodeid.rpartition("[")[2]
    # Longest first, so "aer-reference-x" is not taken for "aer-reference".
    for name in sorted(profiles, key=len, reverse=True):
        if params.startswith((f"{name}-", f"{name}]")):
            return f"qharness-profile:{name}"
    return nodeid


class ProfileScheduling(LoadScopeScheduling):
    """Load scheduling with one scope per device profile."""

    def __init__(self, config: pytest.Config, log: object | None = None, *, profiles: Iterable[str] = ()) -> None:
        super().__init__(config, log)
        self.profiles = tuple(profiles)

    def _split_scope(self, nodeid: str) -> str:
        return profile_scope(nodeid, self.profiles)
