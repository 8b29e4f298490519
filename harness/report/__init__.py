"""Release reports (HTML, Markdown, JSON) and trend plots from the results store."""

from harness.report.build import (
    ReportResult,
    build_report,
    open_store,
    render_html,
    render_markdown,
    trend_plot_png,
    trend_plot_svg,
    write_allure_environment,
)
from harness.report.data import ReportError, collect_profile
from harness.report.scope import LATEST, collect_release
from harness.report.versions import order_builds

__all__ = [
    "LATEST",
    "ReportError",
    "ReportResult",
    "build_report",
    "collect_profile",
    "collect_release",
    "open_store",
    "order_builds",
    "render_html",
    "render_markdown",
    "trend_plot_png",
    "trend_plot_svg",
    "write_allure_environment",
]
