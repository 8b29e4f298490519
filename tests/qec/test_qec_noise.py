"""Pauli twirl of link channels, QecNoise validation and the stim <-> qiskit depolarising conversions."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import numpy as np
import pytest
import stim
from qiskit.quantum_info import Kraus
from qiskit_aer.noise import depolarizing_error

from harness.physics.channels import (
    PAULIS,
    amplitude_damping_kraus,
    choi_from_kraus,
    dephasing_kraus,
    depolarizing_kraus,
)
from harness.physics.link import link_kraus
from harness.qec.noise import QecError, QecNoise, pauli_twirl


@pytest.mark.parametrize("p", [0.0, 0.01, 0.3])
def test_twirl_of_dephasing_is_pure_z(p: float) -> None:
    assert pauli_twirl(choi_from_kraus(dephasing_kraus(p))) == pytest.approx((0.0, 0.0, p), abs=1e-12)


@pytest.mark.parametrize("p", [0.02, 0.5, 4 / 3])
def test_twirl_of_depolarising_is_uniform(p: float) -> None:
    # rho -> (1-p) rho + p I/2 = (1 - 3p/4) rho + p/4 (X rho X + Y rho Y + Z rho Z)
    assert pauli_twirl(choi_from_kraus(depolarizing_kraus(p))) == pytest.approx((p / 4,) * 3, abs=1e-12)


@pytest.mark.parametrize("gamma", [0.01, 0.2, 1.0])
def test_twirl_of_amplitude_damping(gamma: float) -> None:
    # K0 = (1+s)/2 I + (1-s)/2 Z, K1 = sqrt(g) (X + iY)/2 with s = sqrt(1-g)
    s = np.sqrt(1 - gamma)
    expected = (gamma / 4, gamma / 4, (1 - s) ** 2 / 4)
    assert pauli_twirl(choi_from_kraus(amplitude_damping_kraus(gamma))) == pytest.approx(expected, abs=1e-12)


def test_twirl_of_coherent_rotation_and_process_fidelity() -> None:
    theta = 0.3
    rx = np.cos(theta / 2) * PAULIS[0] - 1j * np.sin(theta / 2) * PAULIS[1]
    px, py, pz = pauli_twirl(choi_from_kraus([rx]))
    assert (px, py, pz) == pytest.approx((np.sin(theta / 2) ** 2, 0.0, 0.0), abs=1e-12)
    # Twirling keeps the process fidelity 1 - px - py - pz = <Phi+|J/2|Phi+>.
    kraus = link_kraus(0.05, 0.02, 0.01)
    J = choi_from_kraus(kraus)
    phi = np.array([1, 0, 0, 1]) / np.sqrt(2)
    fid = float(np.real(phi @ J @ phi)) / 2
    assert 1 - sum(pauli_twirl(J)) == pytest.approx(fid, abs=1e-12)


def test_twirl_rejects_invalid_choi() -> None:
    with pytest.raises(QecError, match="Choi"):
        pauli_twirl(np.eye(4) * 2)
    with pytest.raises(QecError, match="Choi"):
        pauli_twirl(np.eye(3))


def _pauli_probabilities(kraus: list[np.ndarray], n: int) -> dict[str, float]:
    """Diagonal of the chi matrix: p_P = sum_k |Tr(P K_k)|^2 / 4^n."""
    labels = "IXYZ"
    out = {}
    for combo in itertools.product(range(4), repeat=n):
        P = np.array([[1.0]])
        for c in combo:
            P = np.kron(P, PAULIS[c])
        out["".join(labels[c] for c in combo)] = sum(abs(np.trace(P.conj().T @ k)) ** 2 for k in kraus) / 4**n
    return out


@pytest.mark.parametrize("p", [1e-3, 0.05, 0.3])
def test_qiskit_two_qubit_depolarising_equals_depolarize2(p: float) -> None:
    lam = 16 * p / 15
    probs = _pauli_probabilities(Kraus(depolarizing_error(lam, 2).to_quantumchannel()).data, 2)
    non_identity = {k: v for k, v in probs.items() if k != "II"}
    assert sum(non_identity.values()) == pytest.approx(15 * lam / 16, abs=1e-12)
    assert sum(non_identity.values()) == pytest.approx(p, abs=1e-12)
    assert all(v == pytest.approx(p / 15, abs=1e-12) for v in non_identity.values())


@pytest.mark.parametrize("p", [1e-3, 0.05, 0.3])
def test_qiskit_one_qubit_depolarising_equals_depolarize1(p: float) -> None:
    probs = _pauli_probabilities(Kraus(depolarizing_error(4 * p / 3, 1).to_quantumchannel()).data, 1)
    assert [probs[k] for k in "XYZ"] == pytest.approx([p / 3] * 3, abs=1e-12)


def test_stim_depolarize2_total_probability_by_sampling() -> None:
    # On |00> measured in Z, DEPOLARIZE2(p) shows 01, 10, 11 each with 4p/15 (4 of the 15 Paulis each).
    p, shots = 0.3, 400_000
    c = stim.Circuit(f"R 0 1\nDEPOLARIZE2({p}) 0 1\nM 0 1")
    m = c.compile_sampler(seed=7).sample(shots).astype(int)
    outcome = m[:, 0] * 2 + m[:, 1]
    freq = np.bincount(outcome, minlength=4) / shots
    sigma = np.sqrt(4 * p / 15 * (1 - 4 * p / 15) / shots)
    assert np.all(np.abs(freq[1:] - 4 * p / 15) < 5 * sigma)


def test_qec_noise_validation() -> None:
    with pytest.raises(QecError, match="gate_error_2q"):
        QecNoise(gate_error_2q=0.99)
    with pytest.raises(QecError, match="idle_error"):
        QecNoise(idle_error=-0.1)
    with pytest.raises(QecError, match=r"px \+ py \+ pz"):
        QecNoise(px=0.5, py=0.4, pz=0.3)
    with pytest.raises(QecError, match="measurement_error"):
        QecNoise(measurement_error="high")


def test_from_profile_maps_keys_and_twirls_link() -> None:
    profile = SimpleNamespace(
        qec=SimpleNamespace(gate_error_1q=1e-4, gate_error_2q=1e-3, measurement_error=2e-3, idle_error=3e-4)
    )
    noise = QecNoise.from_profile(profile, choi_from_kraus(dephasing_kraus(0.01)))
    assert (noise.px, noise.py, noise.pz) == pytest.approx((0.0, 0.0, 0.01), abs=1e-15)
    assert (noise.gate_error_1q, noise.gate_error_2q, noise.measurement_error, noise.idle_error) == (
        1e-4,
        1e-3,
        2e-3,
        3e-4,
    )
    partial = SimpleNamespace(qec=SimpleNamespace(gate_error_1q=0, gate_error_2q=0, measurement_error=0))
    with pytest.raises(QecError, match=r"qec\.idle_error"):
        QecNoise.from_profile(partial, choi_from_kraus(dephasing_kraus(0.01)))
    with pytest.raises(QecError, match="'qec' section"):
        QecNoise.from_profile(SimpleNamespace(), choi_from_kraus(dephasing_kraus(0.01)))
