"""Profiles written to real YAML files for the Aer device tests, and small exact count statistics."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from harness.profiles import LoadedProfile, deep_merge, load_profile

BASE: dict[str, Any] = {
    "name": "aer-test",
    "description": "test link",
    "kind": "aer",
    "firmware": {"build": "2.4.0", "baseline": "2.3.0"},
    "source": {"pair_rate_hz": 2.0e6, "visibility": 0.97},
    "link": {"loss_db": 3.0, "depolarizing": 0.0, "dephasing": 0.01, "amplitude_damping": 0.0},
    "detectors": {
        "efficiency_a": 0.8,
        "efficiency_b": 0.8,
        "dark_count_hz_a": 100,
        "dark_count_hz_b": 100,
        "coincidence_window_s": 1.0e-9,
        "readout_error_a": 0.01,
        "readout_error_b": 0.01,
    },
    "measurement": {"integration_time_s": 0.05},
    "builds": {"2.3.0": {}, "2.4.0": {}},
}


def write_profile(directory: Path, override: dict[str, Any] | None = None) -> LoadedProfile:
    """Write BASE deep-merged with `override` to a YAML file under `directory` and load it."""
    data = deep_merge(copy.deepcopy(BASE), override or {})
    path = directory / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_profile(path)


def linear_bell_fidelity(counts: np.ndarray) -> float:
    """<Phi+|rho|Phi+> = (1 + <XX> - <YY> + <ZZ>) / 4 from the XX, YY, ZZ rows (settings in BELL_SETTINGS order)."""
    c = np.asarray(counts, dtype=float)
    corr = (c[:, 0] - c[:, 1] - c[:, 2] + c[:, 3]) / c.sum(axis=1)
    return float((1 + corr[0] - corr[4] + corr[8]) / 4)
