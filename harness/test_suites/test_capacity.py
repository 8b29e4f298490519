"""Capacities of the link channel from link tomography: C_E, Q1 (a lower bound on Q) and chi."""

import pytest

pytestmark = pytest.mark.capacity


@pytest.mark.parametrize("metric", ["capacity_ce_bits", "capacity_q1_bits", "capacity_chi_bits"])
def test_capacity(harness_profile, metric, verdict):
    """Each capacity of the link is not worse than the baseline."""
    verdict.check()
