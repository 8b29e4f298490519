"""Heralded pair rate, heralding efficiencies, CAR, and the rates of ebits and secret key."""

import pytest

from harness.protocols import RATE_METRICS

pytestmark = pytest.mark.entanglement_rate


@pytest.mark.parametrize("metric", RATE_METRICS)
def test_entanglement_rate(harness_profile, metric, verdict):
    """Each rate metric of the link is not worse than the baseline."""
    verdict.check()
