"""Capacities of the link channel from link tomography: C_E, Q1 (a lower bound on Q) and chi."""

import pytest

from harness.metrics import metric_spec
from harness.protocols import LINK_METRICS

pytestmark = pytest.mark.capacity

CAPACITY_METRICS = [m for m in LINK_METRICS if metric_spec(m).family == "capacity"]


@pytest.mark.parametrize("metric", CAPACITY_METRICS)
def test_capacity(harness_profile, metric, verdict):
    """Each capacity of the link is not worse than the baseline."""
    verdict.check()
