"""Section 1: tomography analysis against qiskit-experiments' linear_inversion fitter on identical counts.

- State: two-qubit Pauli tomography (9 settings x 4 outcomes) of a Werner state sent through a noisy link, our
  `state_tomography` + `state_fidelity` to |Phi+> against `StateTomography`'s analysis.
- Process: one-qubit tomography (inputs 0, 1, +, +i = qiskit's PauliPreparationBasis 0..3; bases X, Y, Z) of
  the same link channel, our `process_tomography` + `process_fidelity` to the identity against
  `ProcessTomography`'s analysis.

Conventions. Our qubit A is qiskit qubit 0 (clbit 0 = the rightmost bit of a count key); qiskit's density matrix
puts qubit 0 as the right kron factor, so it is compared after a SWAP. Qiskit's Choi matrix is
sum_ij |i><j| (x) N(|i><j|), input first, trace 2 - the same as ours (checked against `Choi(Kraus(...))`);
both are normalised to trace 2 before comparing. Both fitters map the raw linear inversion to a physical
estimate (ours: SGS eigenvalue projection and a CPTP projection; qiskit: `rescale_positive`), so small
differences in the matrices are expected where the linear inversion is not physical.
"""

from __future__ import annotations

import numpy as np

from benchmarks.common import Section, median_time, require_qiskit_experiments, row
from harness.analysis import state_fidelity, state_tomography
from harness.analysis.measures import process_fidelity
from harness.analysis.tomography import pauli_settings, process_tomography
from harness.physics.channels import X, Y, Z
from harness.physics.link import apply_to_b, link_kraus, werner_state
from harness.records import INPUT_BLOCH

PHI_PLUS = np.array([1, 0, 0, 1], dtype=complex) / np.sqrt(2)
OPS = {"X": X, "Y": Y, "Z": Z}
M_INDEX = {"Z": 0, "X": 1, "Y": 2}  # qiskit's PauliMeasurementBasis order
P_INDEX = {"0": 0, "1": 1, "+": 2, "+i": 3}  # qiskit's PauliPreparationBasis order
INPUTS = ("0", "1", "+", "+i")
BASES = ("X", "Y", "Z")
LINK = (0.1, 0.05, 0.1)  # amplitude damping, dephasing, depolarising: not symmetric under any convention slip
SWAP = np.eye(4)[[0, 2, 1, 3]]


def _projectors(basis: str) -> list[np.ndarray]:
    return [(np.eye(2) + OPS[basis]) / 2, (np.eye(2) - OPS[basis]) / 2]


def state_counts(rng: np.random.Generator, shots: int) -> np.ndarray:
    """Multinomial counts (9, 4), A-first outcomes ++,+-,-+,--, of a Werner 0.9 state through the link."""
    rho = apply_to_b(link_kraus(*LINK), werner_state(0.9))
    probs = []
    for s in pauli_settings(2):
        probs.append([np.trace(rho @ np.kron(a, b)).real for a in _projectors(s[0]) for b in _projectors(s[1])])
    p = np.clip(np.array(probs), 0, None)
    return rng.multinomial(shots, p / p.sum(axis=1, keepdims=True))


def process_counts(rng: np.random.Generator, shots: int) -> np.ndarray:
    """Multinomial counts (4 inputs, 3 bases, +/-) of the link channel's process tomography."""
    kraus = link_kraus(*LINK)
    out = np.zeros((len(INPUTS), len(BASES), 2), dtype=np.int64)
    for i, s in enumerate(INPUTS):
        r = INPUT_BLOCH[s]
        rho_in = (np.eye(2) + r[0] * X + r[1] * Y + r[2] * Z) / 2
        rho_out = sum(k @ rho_in @ k.conj().T for k in kraus)
        for j, b in enumerate(BASES):
            p = np.clip([np.trace(rho_out @ m).real for m in _projectors(b)], 0, None)
            out[i, j] = rng.multinomial(shots, p / p.sum())
    return out


def _run_analysis(exp: object, data: list[dict]) -> object:
    from qiskit_experiments.framework import ExperimentData

    expdata = ExperimentData(experiment=exp)
    expdata.add_data(data)
    exp.analysis.run(expdata, replace_results=True).block_for_results()  # type: ignore[attr-defined]
    return expdata


def qiskit_state_analysis(counts: np.ndarray) -> tuple[object, list[dict]]:
    """StateTomography (linear_inversion, target Phi+) and our counts as its data records."""
    from qiskit import QuantumCircuit
    from qiskit.quantum_info import Statevector
    from qiskit_experiments.library import StateTomography

    exp = StateTomography(QuantumCircuit(2))
    exp.analysis.set_options(fitter="linear_inversion", target=Statevector(PHI_PLUS))
    data = []
    for counts_row, setting in zip(counts, pauli_settings(2), strict=True):
        # Outcome index o = 2a + b (A first); qiskit's key is "b a" with clbit 0 (= A) rightmost.
        hist = {f"{o & 1}{o >> 1}": int(n) for o, n in enumerate(counts_row) if n}
        meta = {"clbits": [0, 1], "cond_clbits": None, "m_idx": [M_INDEX[setting[0]], M_INDEX[setting[1]]]}
        data.append({"counts": hist, "metadata": meta, "shots": int(counts_row.sum())})
    return exp, data


def qiskit_process_analysis(counts: np.ndarray) -> tuple[object, list[dict]]:
    """ProcessTomography (linear_inversion, target identity) and our counts as its data records."""
    from qiskit import QuantumCircuit
    from qiskit_experiments.library import ProcessTomography

    exp = ProcessTomography(QuantumCircuit(1))
    exp.analysis.set_options(fitter="linear_inversion")
    data = []
    for i, s in enumerate(INPUTS):
        for j, b in enumerate(BASES):
            hist = {str(o): int(n) for o, n in enumerate(counts[i, j]) if n}
            meta = {"clbits": [0], "cond_clbits": None, "m_idx": [M_INDEX[b]], "p_idx": [P_INDEX[s]]}
            data.append({"counts": hist, "metadata": meta, "shots": int(counts[i, j].sum())})
    return exp, data


def _result(expdata: object, name: str) -> object:
    return expdata.analysis_results(name, dataframe=True).iloc[0].value  # type: ignore[attr-defined]


def run(shots: int = 2000, repeats: int = 7, seed: int = 1) -> Section:
    """Time both analyses on identical counts; return the section with speed and agreement rows."""
    require_qiskit_experiments()
    rng = np.random.default_rng(seed)
    sec = Section("tomography", "1. Tomography analysis vs qiskit-experiments (linear_inversion)")

    s_counts = state_counts(rng, shots)
    s_exp, s_data = qiskit_state_analysis(s_counts)
    t_ours = median_time(lambda: float(state_fidelity(state_tomography(s_counts), PHI_PLUS)), repeats)
    t_peer = median_time(lambda: _run_analysis(s_exp, s_data), repeats)
    ours_rho = state_tomography(s_counts)
    f_ours = float(state_fidelity(ours_rho, PHI_PLUS))
    expdata = _run_analysis(s_exp, s_data)
    q_rho = SWAP @ np.asarray(_result(expdata, "state").data) @ SWAP
    f_peer = float(_result(expdata, "state_fidelity"))
    sec.rows += [
        row(
            "2-qubit state tomography + fidelity, time (median)",
            1e3 * t_ours,
            1e3 * t_peer,
            t_peer / t_ours,
            "ms (ratio = speed-up)",
        ),
        row("2-qubit state: fidelity to Phi+", f_ours, f_peer, abs(f_ours - f_peer), "ratio = abs. difference"),
        row(
            "2-qubit state: max abs(rho_ours - rho_qiskit)",
            float(np.max(np.abs(q_rho - ours_rho))),
            0.0,
            float(np.max(np.abs(q_rho - ours_rho))),
            "ratio = the difference",
        ),
    ]

    p_counts = process_counts(rng, shots)
    p_exp, p_data = qiskit_process_analysis(p_counts)
    t_ours = median_time(lambda: float(process_fidelity(process_tomography(p_counts, INPUTS, BASES))), repeats)
    t_peer = median_time(lambda: _run_analysis(p_exp, p_data), repeats)
    ours_choi = process_tomography(p_counts, INPUTS, BASES)
    f_ours = float(process_fidelity(ours_choi))
    expdata = _run_analysis(p_exp, p_data)
    q_choi = np.asarray(_result(expdata, "state").data)
    q_choi = 2 * q_choi / np.trace(q_choi).real
    f_peer = float(_result(expdata, "process_fidelity"))
    sec.rows += [
        row(
            "1-qubit process tomography + fidelity, time (median)",
            1e3 * t_ours,
            1e3 * t_peer,
            t_peer / t_ours,
            "ms (ratio = speed-up)",
        ),
        row(
            "1-qubit process: process fidelity to identity",
            f_ours,
            f_peer,
            abs(f_ours - f_peer),
            "ratio = abs. difference",
        ),
        row(
            "1-qubit process: max abs(J_ours - J_qiskit), trace 2",
            float(np.max(np.abs(q_choi - ours_choi))),
            0.0,
            float(np.max(np.abs(q_choi - ours_choi))),
            "ratio = the difference",
        ),
    ]
    sec.notes = (
        f"Identical multinomial counts ({shots} per setting, seed {seed}) of a Werner(0.9) pair whose qubit B "
        f"crosses a link (amplitude damping {LINK[0]}, dephasing {LINK[1]}, depolarising {LINK[2]}), and of that "
        "link's one-qubit process tomography (inputs 0, 1, +, +i; bases X, Y, Z). Both sides are timed in one "
        f"process, median of {repeats} after a warm-up; qiskit's time includes building its ExperimentData from "
        "the prepared records (its normal entry point). Our qubit A is qiskit qubit 0; qiskit's state is compared "
        "after a SWAP (qubit 0 is its right kron factor). Qiskit's Choi convention (input first, trace 2) is ours; "
        "both are normalised to trace 2. Process fidelity is to the identity, Tr(J J_I)/d^2 on both sides. Both "
        "fitters make the linear inversion physical (ours: SGS / CPTP projection; qiskit: rescale_positive); with "
        "these counts the inversion is already physical, so agreement to machine precision is the expected result "
        "(a projection would otherwise leave differences of the order of the shot noise)."
    )
    return sec
