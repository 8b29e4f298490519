"""Speed of the Aer stand-in: the nine Bell settings of one build at the default budget of aer-reference.

Run: python benchmarks/bench_aer.py. Prints a Markdown table and returns rows (benchmarks.common.row);
ratio = ours / peer.

- Against the 1 s target: our wall time for one `bell_tomography` call (exact density-matrix probabilities
  from one Aer run, then numpy multinomial draws).
- Against Aer shot sampling: the same nine circuits measured and sampled by Aer itself (density-matrix
  method, shots = the largest shot number of the call), the obvious way to get counts from Aer.
"""

from __future__ import annotations

import numpy as np
from qiskit_aer import AerSimulator

from benchmarks.common import format_table, median_time, row
from harness.devices.aer import AerDevice, bell_circuit
from harness.profiles import load_profile
from harness.records import BELL_SETTINGS

PROFILE = "aer-reference"
TARGET_S = 1.0


def main() -> list[dict]:
    """Time the stand-in's Bell tomography; print and return the benchmark rows (times in s)."""
    loaded = load_profile(PROFILE)
    build = loaded.default_build
    profile = loaded.effective(build)
    duration = profile.measurement.integration_time_s
    dev = AerDevice(profile, build, seed=2024)
    dev.open()
    ours = median_time(lambda: dev.bell_tomography(duration))
    shots = int(np.ceil(dev.rates.coincidence_hz * duration))

    measured = [bell_circuit(s, measure=True) for s in BELL_SETTINGS]
    sim = AerSimulator(method="density_matrix", noise_model=dev.noise_model)

    def sampled() -> object:
        return sim.run(measured, shots=shots, seed_simulator=1).result()

    peer = median_time(sampled)
    dev.close()
    figure = f"bell_tomography, 9 settings, {PROFILE} build {build}, T={duration} s (~{shots} events/setting)"
    rows = [
        row(figure, ours, TARGET_S, ours / TARGET_S, "s (peer = target)"),
        row(
            "same 9 settings: exact probabilities + numpy draws vs Aer sampling every shot",
            ours,
            peer,
            ours / peer,
            "s",
        ),
    ]
    print(format_table(rows))
    return rows


if __name__ == "__main__":
    main()
