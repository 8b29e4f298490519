"""pytest plugin: device-profile options, fixtures, markers and the regression gate."""

from __future__ import annotations

import pytest

MARKERS = {
    "fidelity": "metric of the fidelity family (Bell state, link process)",
    "entanglement_rate": "metric of the entanglement-rate family",
    "capacity": "channel-capacity metric (C_E, Q1, chi)",
    "logical": "logical-success metric (QEC memory, decoder in the loop)",
    "bench_only": "runs only against a lab bench or its replay",
    "sim_only": "runs only against a simulated device",
}


def pytest_configure(config: pytest.Config) -> None:
    """Register the harness markers."""
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
