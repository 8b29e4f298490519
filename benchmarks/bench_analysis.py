"""Benchmarks of the analysis core: capacity optimiser speed and two-qubit tomography against qiskit-experiments.

Run as `python benchmarks/bench_analysis.py`; `main()` prints a Markdown table and returns its rows.
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks.common import format_table, median_time
from harness.analysis import ce_and_q1, state_fidelity, state_tomography
from harness.analysis.tomography import pauli_settings
from harness.physics.channels import X, Y, Z, choi_from_kraus
from harness.physics.link import apply_to_b, link_kraus, werner_state

PHI_PLUS = np.array([1, 0, 0, 1], dtype=complex) / np.sqrt(2)


def _random_choi(rng: np.random.Generator) -> np.ndarray:
    k = rng.normal(size=(4, 2, 2)) + 1j * rng.normal(size=(4, 2, 2))
    s = np.einsum("kab,kac->bc", k.conj(), k)
    w, v = np.linalg.eigh(s)
    s_inv_half = v @ np.diag(w**-0.5) @ v.conj().T
    return choi_from_kraus([m @ s_inv_half for m in k])


def bench_capacity(n_channels: int = 50) -> dict:
    """Median wall time of C_E + Q1 (general optimiser) over random qubit channels, ms."""
    rng = np.random.default_rng(0)
    chois = [_random_choi(rng) for _ in range(n_channels)]
    ce_and_q1(chois[0])
    times = []
    for c in chois:
        t0 = time.perf_counter()
        ce_and_q1(c)
        times.append(time.perf_counter() - t0)
    ms = 1e3 * float(np.median(times))
    return {
        "figure": "C_E + Q1, random qubit channel (median)",
        "ours": ms,
        "peer": 5.0,
        "ratio": ms / 5.0,
        "unit": "ms",
    }


def _sample_counts(rng: np.random.Generator, shots: int) -> np.ndarray:
    rho = apply_to_b(link_kraus(0.1, 0.05, 0.1), werner_state(0.9))
    ops = {"X": X, "Y": Y, "Z": Z}
    probs = []
    for s in pauli_settings(2):
        pa = [(np.eye(2) + ops[s[0]]) / 2, (np.eye(2) - ops[s[0]]) / 2]
        pb = [(np.eye(2) + ops[s[1]]) / 2, (np.eye(2) - ops[s[1]]) / 2]
        probs.append([np.trace(rho @ np.kron(a, b)).real for a in pa for b in pb])
    p = np.clip(np.array(probs), 0, None)
    return rng.multinomial(shots, p / p.sum(axis=1, keepdims=True))


def _qiskit_tomography(counts: np.ndarray):
    """Run qiskit-experiments' StateTomography analysis (linear_inversion) on our counts; return (fn, result)."""
    from qiskit import QuantumCircuit
    from qiskit.quantum_info import Statevector
    from qiskit_experiments.framework import ExperimentData
    from qiskit_experiments.library import StateTomography

    exp = StateTomography(QuantumCircuit(2))
    exp.analysis.set_options(fitter="linear_inversion", target=Statevector(PHI_PLUS))
    m_index = {"Z": 0, "X": 1, "Y": 2}  # PauliMeasurementBasis order
    data = []
    for row, setting in zip(counts, pauli_settings(2), strict=True):
        # Our qubit A is qiskit qubit 0 (clbit 0, the rightmost bit of a count key).
        hist = {f"{o & 1}{o >> 1}": int(n) for o, n in enumerate(row) if n}
        meta = {"clbits": [0, 1], "cond_clbits": None, "m_idx": [m_index[setting[0]], m_index[setting[1]]]}
        data.append({"counts": hist, "metadata": meta, "shots": int(row.sum())})

    def run():
        expdata = ExperimentData(experiment=exp)
        expdata.add_data(data)
        exp.analysis.run(expdata, replace_results=True).block_for_results()
        return expdata

    return run


def bench_tomography(shots: int = 2000) -> list[dict]:
    """Our 2-qubit state tomography + fidelity vs qiskit-experiments' linear_inversion analysis on identical counts."""
    counts = _sample_counts(np.random.default_rng(1), shots)

    def ours() -> float:
        return float(state_fidelity(state_tomography(counts), PHI_PLUS))

    run_qiskit = _qiskit_tomography(counts)
    t_ours = median_time(ours)
    t_qiskit = median_time(run_qiskit)
    expdata = run_qiskit()
    q_state = expdata.analysis_results("state", dataframe=True).iloc[0].value.data
    q_fid = float(expdata.analysis_results("state_fidelity", dataframe=True).iloc[0].value)
    swap = np.eye(4)[[0, 2, 1, 3]]  # qiskit puts qubit 0 as the right kron factor
    ours_rho = state_tomography(counts)
    diff_rho = float(np.max(np.abs(swap @ q_state @ swap - ours_rho)))
    return [
        {
            "figure": "2-qubit state tomography + fidelity (median)",
            "ours": 1e3 * t_ours,
            "peer": 1e3 * t_qiskit,
            "ratio": t_qiskit / t_ours,
            "unit": "ms",
        },
        {"figure": "fidelity to Phi+", "ours": ours(), "peer": q_fid, "ratio": abs(ours() - q_fid), "unit": ""},
        {"figure": "max |rho_ours - rho_qiskit|", "ours": diff_rho, "peer": 0.0, "ratio": diff_rho, "unit": ""},
    ]


def main() -> list[dict]:
    """Run every benchmark, print a Markdown table and return the rows."""
    rows = [bench_capacity(), *bench_tomography()]
    print(format_table(rows))
    return rows


if __name__ == "__main__":
    main()
