"""The general capacity optimisers against closed forms and an independent slow reference."""

from __future__ import annotations

import time

import numpy as np
import pytest
from scipy.optimize import minimize

from harness.analysis import (
    AnalysisError,
    ChannelError,
    amplitude_damping_capacities,
    bbm92_key_fraction,
    ce_and_q1,
    channel_capacities,
    coherent_information_capacity,
    dephasing_capacities,
    depolarizing_capacities,
    entanglement_assisted_capacity,
    erasure_capacities,
    holevo_chi,
    mutual_information,
    plob_bound,
)
from harness.physics.channels import (
    amplitude_damping_kraus,
    choi_from_kraus,
    dephasing_kraus,
    depolarizing_kraus,
    erasure_kraus,
)

from .helpers import random_channel_kraus

FAMILIES = [
    ("depolarizing", depolarizing_kraus, depolarizing_capacities, np.linspace(0, 4 / 3, 17)),
    ("dephasing", dephasing_kraus, dephasing_capacities, np.linspace(0, 1, 11)),
    ("amplitude_damping", amplitude_damping_kraus, amplitude_damping_capacities, np.linspace(0, 1, 41)),
    ("erasure", erasure_kraus, erasure_capacities, np.linspace(0, 1, 11)),
]


@pytest.mark.parametrize(("name", "kraus", "closed", "grid"), FAMILIES, ids=[f[0] for f in FAMILIES])
def test_general_optimiser_matches_closed_forms(name, kraus, closed, grid):
    chois = np.array([choi_from_kraus(kraus(x)) for x in grid])
    ce, q1 = ce_and_q1(chois)  # the general optimiser, batched; no family-specific code path
    chi = holevo_chi(chois)
    want = [closed(x) for x in grid]
    np.testing.assert_allclose(ce, [c.C_E for c in want], atol=1e-6)
    np.testing.assert_allclose(q1, [c.Q1 for c in want], atol=1e-6)
    np.testing.assert_allclose(chi, [c.chi for c in want], atol=1e-6)


def test_amplitude_damping_q1_vanishes_from_one_half():
    for g in (0.5, 0.55, 0.7, 0.9, 1.0):
        assert coherent_information_capacity(amplitude_damping_kraus(g)) == pytest.approx(0.0, abs=1e-9)
    assert coherent_information_capacity(amplitude_damping_kraus(0.45)) > 0.05


# ---- independent slow reference: Stinespring dilation, dense Bloch-ball search, Nelder-Mead polish


def _entropy(m: np.ndarray) -> float:
    w = np.linalg.eigvalsh(m)
    w = w[w > 1e-15]
    return float(-(w * np.log2(w)).sum())


def _reference_terms(kraus: list[np.ndarray], r: np.ndarray) -> tuple[float, float, float]:
    rho = 0.5 * np.array([[1 + r[2], r[0] - 1j * r[1]], [r[0] + 1j * r[1], 1 - r[2]]])
    v = np.concatenate(kraus, axis=0)  # isometry 2 -> d_out * n_env, environment index outer
    d_out, n_env = kraus[0].shape[0], len(kraus)
    big = v @ rho @ v.conj().T  # joint state of environment and output
    t = big.reshape(n_env, d_out, n_env, d_out)
    out = np.einsum("eaeb->ab", t)
    env = np.einsum("eafa->ef", t)
    return _entropy(rho), _entropy(out), _entropy(env)


def _reference_capacity(kraus: list[np.ndarray], weight: float) -> float:
    def f(r: np.ndarray) -> float:
        n = np.linalg.norm(r)
        if n >= 1:
            r = r / n * (1 - 1e-12)
        s_in, s_out, s_env = _reference_terms(kraus, r)
        return weight * s_in + s_out - s_env

    rng = np.random.default_rng(99)
    pts = rng.normal(size=(3000, 3))
    pts *= (rng.random(3000) ** (1 / 3) / np.linalg.norm(pts, axis=1))[:, None]
    vals = np.array([f(p) for p in pts])
    best = max(0.0, vals.max())
    for i in np.argsort(vals)[-4:]:
        res = minimize(lambda x: -f(x), pts[i], method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-13})
        best = max(best, -res.fun)
    return best


@pytest.mark.parametrize("seed", range(6))
def test_random_channels_match_slow_reference(seed):
    rng = np.random.default_rng(1000 + seed)
    kraus = random_channel_kraus(rng, n_kraus=int(rng.integers(2, 5)))
    ce, q1 = ce_and_q1(choi_from_kraus(kraus))
    assert ce == pytest.approx(_reference_capacity(kraus, 1.0), abs=1e-5)
    assert q1 == pytest.approx(_reference_capacity(kraus, 0.0), abs=1e-5)


def test_q1_positive_on_a_weakly_noisy_random_channel():
    rng = np.random.default_rng(7)
    noise = random_channel_kraus(rng, n_kraus=3)
    kraus = [np.sqrt(0.9) * np.eye(2)] + [np.sqrt(0.1) * k for k in noise]
    q1 = coherent_information_capacity(kraus)
    assert q1 > 0.1
    assert q1 == pytest.approx(_reference_capacity(kraus, 0.0), abs=1e-5)


def test_chi_beats_every_random_ensemble_and_respects_bounds():
    rng = np.random.default_rng(5)
    for _ in range(5):
        kraus = random_channel_kraus(rng, n_kraus=2)
        choi = choi_from_kraus(kraus)
        chi = holevo_chi(choi)
        # chi is a maximum: no ensemble of up to 4 pure states may exceed it.
        best = 0.0
        for _ in range(300):
            n = rng.normal(size=(4, 3))
            n /= np.linalg.norm(n, axis=1, keepdims=True)
            p = rng.dirichlet(np.ones(4))
            outs = [sum(k @ _ket_proj(v) @ k.conj().T for k in kraus) for v in n]
            avg = sum(pi * o for pi, o in zip(p, outs, strict=True))
            best = max(best, _entropy(avg) - sum(pi * _entropy(o) for pi, o in zip(p, outs, strict=True)))
        assert chi >= best - 1e-9
        assert chi <= 1.0 + 1e-12
        assert chi <= entanglement_assisted_capacity(choi) + 1e-9


def _ket_proj(n: np.ndarray) -> np.ndarray:
    return 0.5 * np.array([[1 + n[2], n[0] - 1j * n[1]], [n[0] + 1j * n[1], 1 - n[2]]])


def test_batch_equals_single_and_capacities_bundle():
    rng = np.random.default_rng(3)
    chois = np.array([choi_from_kraus(random_channel_kraus(rng)) for _ in range(4)])
    ce, q1 = ce_and_q1(chois)
    for i, c in enumerate(chois):
        caps = channel_capacities(c)
        assert pytest.approx(ce[i], abs=1e-9) == caps.C_E
        assert pytest.approx(q1[i], abs=1e-9) == caps.Q1


def test_mutual_information_at_maximally_mixed_input_of_depolarizing():
    p = 0.2
    probs = np.array([1 - 3 * p / 4, p / 4, p / 4, p / 4])
    want = 2 + float(np.sum(probs * np.log2(probs)))
    assert mutual_information(depolarizing_kraus(p), np.eye(2) / 2) == pytest.approx(want, abs=1e-12)


def test_general_optimiser_is_fast():
    rng = np.random.default_rng(11)
    chois = [choi_from_kraus(random_channel_kraus(rng)) for _ in range(25)]
    ce_and_q1(chois[0])
    times = []
    for c in chois:
        t0 = time.perf_counter()
        ce_and_q1(c)
        times.append(time.perf_counter() - t0)
    # Target is 5 ms; the bound leaves headroom for a loaded CI machine.
    assert np.median(times) < 0.015


def test_pl0b_and_bbm92():
    assert plob_bound(0.5) == pytest.approx(1.0)
    assert plob_bound(0.0) == pytest.approx(0.0)
    assert bbm92_key_fraction(0.0, 0.0) == pytest.approx(1.0)
    assert bbm92_key_fraction(0.11, 0.11) == pytest.approx(0.0, abs=2e-3)
    assert bbm92_key_fraction(0.2, 0.2) == 0.0
    with pytest.raises(AnalysisError, match="eta"):
        plob_bound(1.5)
    with pytest.raises(AnalysisError, match="QBER"):
        bbm92_key_fraction(float("nan"), 0.1)


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (np.diag([1.0, -0.5, 0.5, 1.0]), "not PSD"),
        (np.eye(4), "partial trace"),
        (np.full((4, 4), np.nan), "NaN"),
        (np.eye(3), "wrong shape"),
        (np.eye(4)[:3], "wrong shape"),
    ],
)
def test_bad_channels_are_rejected(bad, match):
    with pytest.raises(ChannelError, match=match):
        entanglement_assisted_capacity(bad)


def test_bad_family_parameters_are_rejected():
    with pytest.raises(ChannelError, match="gamma"):
        amplitude_damping_capacities(1.5)
    with pytest.raises(ChannelError, match="p must be"):
        depolarizing_capacities(float("nan"))
