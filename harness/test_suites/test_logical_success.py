"""Logical success of QEC memories over the link's noise; the profile's qec.codes chooses the codes.

The decoder-in-the-loop test streams sampled syndromes to the device's own decoder (bench.decoder) and gates its
agreement with matching, its logical success and its latency; profiles without a decoder skip it.
"""

import pytest

from harness.protocols.decoder import DECODER_METRICS

pytestmark = pytest.mark.logical


def test_logical_success(harness_profile, logical_metric, verdict):
    """Logical success 1 - p_L of each configured code is not worse than the baseline."""
    verdict.check()


@pytest.mark.bench_only
@pytest.mark.parametrize("metric", DECODER_METRICS)
def test_decoder_in_the_loop(harness_profile, metric, verdict):
    """The device decoder's agreement with matching, logical success and latency are not worse than the baseline."""
    verdict.check()
