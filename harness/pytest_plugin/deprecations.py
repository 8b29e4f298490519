"""Deprecated paths that qharness can see being taken in a session, and the one warning for each."""

from __future__ import annotations

import sys

import pytest

SAMPLER_WARNING = (
    "qiskit-ibm-runtime is loaded in this session: its SamplerV2 on a local simulator is a deprecated path and is not "
    "what qharness measures with. The Aer stand-in runs AerSimulator directly; for your own circuits use "
    "qiskit.primitives.BackendSamplerV2(backend=AerSimulator(...))."
)


class HarnessDeprecationWarning(DeprecationWarning):
    """A deprecated path that qharness can see being taken in the session."""


def warn_deprecated_paths(config: pytest.Config) -> None:
    """Warn once per session for each deprecated path whose module is loaded (call from the controller only)."""
    if "qiskit_ibm_runtime" in sys.modules:
        config.issue_config_time_warning(HarnessDeprecationWarning(SAMPLER_WARNING), stacklevel=2)
