"""State and channel measures against textbook values."""

from __future__ import annotations

import numpy as np
import pytest

from harness.analysis import (
    AnalysisError,
    average_gate_fidelity,
    chsh_max,
    coherent_information,
    concurrence,
    process_fidelity,
    qber,
    state_fidelity,
    von_neumann_entropy,
)
from harness.physics.channels import ChannelError, X, choi_from_kraus, depolarizing_kraus
from harness.physics.link import werner_state


@pytest.mark.parametrize("v", [0.0, 0.2, 1 / 3, 0.5, 0.9, 1.0])
def test_werner_state_measures(v):
    rho = werner_state(v)
    assert state_fidelity(rho) == pytest.approx((3 * v + 1) / 4)
    assert concurrence(rho) == pytest.approx(max(0.0, (3 * v - 1) / 2), abs=1e-7)
    assert chsh_max(rho) == pytest.approx(2 * np.sqrt(2) * v)
    assert qber(rho, "Z") == pytest.approx((1 - v) / 2)
    assert qber(rho, "X") == pytest.approx((1 - v) / 2)
    lam = np.array([(1 + 3 * v) / 4, (1 - v) / 4, (1 - v) / 4, (1 - v) / 4])
    lam = lam[lam > 0]
    assert coherent_information(rho) == pytest.approx(1 + np.sum(lam * np.log2(lam)), abs=1e-9)


def test_mixed_target_fidelity_and_entropy():
    rho = np.diag([0.5, 0.5, 0, 0]).astype(complex)
    sigma = np.diag([0.5, 0, 0.5, 0]).astype(complex)
    assert state_fidelity(rho, sigma) == pytest.approx(0.25)
    assert state_fidelity(rho, rho) == pytest.approx(1.0)
    assert von_neumann_entropy(rho) == pytest.approx(1.0)


def test_process_and_average_gate_fidelity():
    p = 0.3
    choi = choi_from_kraus(depolarizing_kraus(p))
    assert process_fidelity(choi) == pytest.approx(1 - 3 * p / 4)
    assert average_gate_fidelity(choi) == pytest.approx(1 - p / 2)
    assert process_fidelity(choi_from_kraus([X]), X) == pytest.approx(1.0)
    assert process_fidelity(choi_from_kraus([X])) == pytest.approx(0.0)
    assert process_fidelity(choi, choi_from_kraus([np.eye(2)])) == pytest.approx(1 - 3 * p / 4)


def test_bad_measure_input():
    with pytest.raises(AnalysisError, match="wrong shape"):
        concurrence(np.eye(2) / 2)
    with pytest.raises(AnalysisError, match="NaN"):
        state_fidelity(np.full((4, 4), np.nan))
    with pytest.raises(AnalysisError, match="length"):
        state_fidelity(np.eye(4) / 4, np.ones(2))
    with pytest.raises(AnalysisError, match="basis"):
        qber(np.eye(4) / 4, "Y")
    with pytest.raises(AnalysisError, match="unitary"):
        process_fidelity(choi_from_kraus([np.eye(2)]), np.ones((2, 2)))
    with pytest.raises(ChannelError, match="not PSD"):
        process_fidelity(np.diag([1.0, -1.0, 1.0, 1.0]))
