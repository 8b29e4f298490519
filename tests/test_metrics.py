import math

import pytest

from harness.metrics import REGISTRY, Direction, Estimate, metric_spec


def test_estimate_rejects_value_outside_interval():
    with pytest.raises(ValueError, match="does not contain"):
        Estimate(0.5, 0.6, 0.7, 10, "", Direction.HIGHER)


def test_standard_error_from_interval():
    e = Estimate(0.5, 0.5 - 1.959963984540054, 0.5 + 1.959963984540054, 100, "", Direction.HIGHER)
    assert math.isclose(e.standard_error, 1.0, rel_tol=1e-9)


def test_every_metric_has_unit_and_direction():
    for name, spec in REGISTRY.items():
        assert spec.name == name
        assert spec.direction in (Direction.HIGHER, Direction.LOWER)
    assert metric_spec("qber_z").direction is Direction.LOWER
    assert metric_spec("logical_success_surface_d5").direction is Direction.HIGHER
    with pytest.raises(KeyError, match="unknown metric"):
        metric_spec("bell_fidelty")
