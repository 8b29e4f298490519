"""Creep across releases: the trend from the pinned reference through every release's sessions."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from store_support import RUN_KW

from harness.creep import creep_family, release_order
from harness.metrics import Direction, Estimate, Tolerance
from harness.store import Store

PROFILE = RUN_KW["profile"]
Z975 = float(stats.norm.ppf(0.975))
TOL = {"v": Tolerance(absolute=0.004), "w": Tolerance(absolute=0.004)}


def _store_session(s: Store, build: str, values: dict[str, float], seed: int, se: float = 0.0005) -> None:
    rid = s.start_run(**{**RUN_KW, "build": build, "seed": seed}, provenance={"kind": "bench"})
    for name, v in values.items():
        s.add_metric(rid, name, Estimate(v, v - Z975 * se, v + Z975 * se, 10_000, "", Direction.HIGHER))
    s.finish_run(rid, "passed")


def _history(s: Store, step: float, rng: np.random.Generator, releases: int = 5, sessions: int = 3) -> None:
    # Reference 2.3.0 in 5 sessions, then each release in `sessions` sessions; session SD 0.003 (drift).
    seed = 0
    for _ in range(5):
        seed += 1
        _store_session(s, "2.3.0", {"v": 0.95 + rng.normal(0, 0.003), "w": 0.5 + rng.normal(0, 0.003)}, seed)
    for r in range(1, releases + 1):
        for _ in range(sessions):
            seed += 1
            v = 0.95 - step * r + rng.normal(0, 0.003)
            _store_session(s, f"3.{r}", {"v": v, "w": 0.5 + rng.normal(0, 0.003)}, seed)


def test_steps_under_the_tolerance_that_add_up_are_flagged(store_url: str) -> None:
    with Store(store_url) as s:
        _history(s, 0.003, np.random.default_rng(4))  # each step 0.003 < tolerance 0.004; 0.015 by release 5
        assert release_order(s, PROFILE, "2.3.0", "3.5") == ["2.3.0", "3.1", "3.2", "3.3", "3.4", "3.5"]
        early = creep_family(s, PROFILE, "2.3.0", "3.1", TOL, ["v", "w"])
        late = creep_family(s, PROFILE, "2.3.0", "3.5", TOL, ["v", "w"])
    assert not early["v"].flagged  # one step is within the tolerance
    v = late["v"]
    assert v.flagged and not late["w"].flagged
    assert v.change == pytest.approx(-0.015, abs=0.004) and v.releases == 5 and v.sessions == 20
    assert v.df == 18 and v.variance_model == "REML trend over 20 sessions, HKSJ t with 18 df"


def test_unchanged_releases_are_not_flagged_and_the_order_is_checked(store_url: str) -> None:
    with Store(store_url) as s:
        _history(s, 0.0, np.random.default_rng(5))
        found = creep_family(s, PROFILE, "2.3.0", "3.5", TOL, ["v", "w"])
        with pytest.raises(LookupError, match="first measured before the reference"):
            creep_family(s, PROFILE, "3.2", "3.1", TOL, ["v"])
        with pytest.raises(LookupError, match=r"no completed run of '9\.9'"):
            creep_family(s, PROFILE, "2.3.0", "9.9", TOL, ["v"])
    assert not any(t.flagged for t in found.values())
    assert all(t.p_adjusted > 0.05 for t in found.values())
