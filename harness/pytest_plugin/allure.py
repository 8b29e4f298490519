"""Allure output of a metric test: labels at setup, the metric with its raw counts and trend plot in the body."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING

import allure

from harness.metrics import metric_spec
from harness.pytest_plugin.sinks import json_default

if TYPE_CHECKING:
    from harness.gate import Comparison
    from harness.session import ProfileSession


class Plain:
    """A parameter value Allure shows as given: it quotes a str ("'2.4.0'") but shows anything else by its repr."""

    def __init__(self, value: object) -> None:
        self.text = str(value)

    def __repr__(self) -> str:
        return self.text


def label(session: ProfileSession, comp: Comparison, params: Mapping[str, object]) -> None:
    """Label the running test: epic = profile, feature = family, story = metric; parameters shown unquoted.

    `params` are the test's own parameters (profile, metric), which Allure would otherwise show quoted.
    """
    spec = metric_spec(comp.name)
    allure.dynamic.epic(session.loaded.name)
    allure.dynamic.feature(spec.family)
    allure.dynamic.story(comp.name)
    shown = {**params, "build": session.build, "baseline": session.baseline_build, "seed": session.seed}
    for name, value in shown.items():
        allure.dynamic.parameter(name, Plain(value))


def attach(session: ProfileSession, comp: Comparison) -> None:
    """Attach the metric with its raw counts, and its trend plot when it has a history, to the running test."""
    from harness.report.build import ReportError, trend_plot_png

    body = {"metric": comp.to_dict(), "raw": session.raw_counts(comp.name)}
    allure.attach(
        json.dumps(body, indent=1, default=json_default),
        name=f"{comp.name}.json",
        attachment_type=allure.attachment_type.JSON,
    )
    try:
        png = trend_plot_png(session.store, session.loaded.name, comp.name)
    except ReportError:
        return  # no history of this metric yet
    allure.attach(png, name=f"{comp.name} trend", attachment_type=allure.attachment_type.PNG)
