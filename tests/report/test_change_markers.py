"""Change points on the report's trend plots: a dashed marker where a metric's history changes level."""

from __future__ import annotations

import numpy as np

from harness.report.data import Trend, TrendPoint
from harness.report.plots import change_builds, trend_figure, trend_svg


def _trend(values: list[float]) -> Trend:
    builds = [f"3.{i}" for i in range(len(values))]
    points = [
        TrendPoint(b, v, v - 0.002, v + 0.002, "PASS", i) for i, (b, v) in enumerate(zip(builds, values, strict=True))
    ]
    return Trend("aer-reference", "bell_fidelity", "", "higher", builds, points, release_build=builds[-1])


def test_a_step_gets_one_marker_before_the_build_that_starts_it() -> None:
    noise = 0.002 * np.random.default_rng(5).standard_normal(10)
    trend = _trend(list(np.r_[np.full(5, 0.95), np.full(5, 0.92)] + noise))
    assert change_builds(trend) == ("3.5",)
    svg = trend_svg(trend)
    assert svg.count('class="change-point"') == 1
    assert "changes level at 3.5</title>" in svg
    ax = trend_figure(trend).axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["change point"]


def test_a_steady_history_or_a_short_one_has_no_marker() -> None:
    noise = 0.002 * np.random.default_rng(6).standard_normal(10)
    for trend in (_trend(list(0.95 + noise)), _trend([0.95, 0.90, 0.95])):
        assert change_builds(trend) == ()
        assert 'class="change-point"' not in trend_svg(trend)
        assert trend_figure(trend).axes[0].get_legend() is None
