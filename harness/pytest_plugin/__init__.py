"""pytest plugin: device-profile options, fixtures, markers, the regression gate and its reports.

The `pytest11` entry point names this package; pytest registers the hooks and fixtures it finds here, so the
package re-exports those of `hooks` and `fixtures`. With no `--device-profile` the plugin only adds its
options and markers, so unrelated test suites in the same repository are left alone.
"""

from harness.pytest_plugin.fixtures import (
    baseline,
    device,
    device_profile,
    harness_profile,
    harness_session,
    logical_metric,
    record_metric,
    verdict,
)
from harness.pytest_plugin.hooks import (
    pytest_addoption,
    pytest_collection_finish,
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_configure_node,
    pytest_generate_tests,
    pytest_sessionfinish,
    pytest_terminal_summary,
    pytest_xdist_make_scheduler,
)

__all__ = [
    "baseline",
    "device",
    "device_profile",
    "harness_profile",
    "harness_session",
    "logical_metric",
    "pytest_addoption",
    "pytest_collection_finish",
    "pytest_collection_modifyitems",
    "pytest_configure",
    "pytest_configure_node",
    "pytest_generate_tests",
    "pytest_sessionfinish",
    "pytest_terminal_summary",
    "pytest_xdist_make_scheduler",
    "record_metric",
    "verdict",
]
