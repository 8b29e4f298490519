"""Logical success of QEC memories over the link's noise; the profile's qec.codes chooses the codes."""

import pytest

pytestmark = pytest.mark.logical


def test_logical_success(harness_profile, logical_metric, verdict):
    """Logical success 1 - p_L of each configured code is not worse than the baseline."""
    verdict.check()
