"""Fidelity of the delivered Bell state and of the link's process."""

import pytest

from harness.protocols import BELL_METRICS

pytestmark = pytest.mark.fidelity


@pytest.mark.parametrize("metric", BELL_METRICS)
def test_bell_state(harness_profile, metric, verdict):
    """Bell fidelity, concurrence, CHSH S and the QBERs of the delivered pair are not worse than the baseline."""
    verdict.check()


@pytest.mark.parametrize("metric", ["link_process_fidelity"])
def test_link_process(harness_profile, metric, verdict):
    """The link's process fidelity to the identity channel is not worse than the baseline."""
    verdict.check()
