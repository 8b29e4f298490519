"""Fidelity of the delivered Bell state and of the link's process."""

import pytest

from harness.metrics import metric_spec
from harness.protocols import BELL_METRICS, LINK_METRICS

pytestmark = pytest.mark.fidelity


@pytest.mark.parametrize("metric", BELL_METRICS)
def test_bell_state(harness_profile, metric, verdict):
    """Bell fidelity, concurrence, CHSH S and the QBERs of the delivered pair are not worse than the baseline."""
    verdict.check()


@pytest.mark.parametrize("metric", [m for m in LINK_METRICS if metric_spec(m).family == "fidelity"])
def test_link_process(harness_profile, metric, verdict):
    """The link's process fidelity to the identity channel is not worse than the baseline."""
    verdict.check()
