"""Section 4: channel capacities - time per channel of C_E + Q1 and of chi, and their error against closed forms."""

from __future__ import annotations

import time

import numpy as np

from benchmarks.common import Section, row, target_row

CE_Q1_TARGET_MS = 5.0
GRID = {
    "depolarizing": (0.02, 0.1, 0.25, 0.5, 0.9),
    "dephasing": (0.01, 0.05, 0.2, 0.4),
    "amplitude_damping": (0.05, 0.2, 0.4, 0.6, 0.9),
    "erasure": (0.05, 0.3, 0.6),
}


def random_choi(rng: np.random.Generator) -> np.ndarray:
    """Choi matrix (input first, trace 2) of a random qubit channel with 4 Kraus operators."""
    from harness.physics.channels import choi_from_kraus

    k = rng.normal(size=(4, 2, 2)) + 1j * rng.normal(size=(4, 2, 2))
    s = np.einsum("kab,kac->bc", k.conj(), k)
    w, v = np.linalg.eigh(s)
    s_inv_half = v @ np.diag(w**-0.5) @ v.conj().T
    return choi_from_kraus([m @ s_inv_half for m in k])


def _per_channel_ms(fn, chois: list[np.ndarray], repeats: int) -> float:
    """Median over repeats of the mean time per channel (ms) of `fn` called once per channel."""
    fn(chois[0])
    samples = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        for c in chois:
            fn(c)
        samples.append(1e3 * (time.perf_counter() - t0) / len(chois))
    return float(np.median(samples))


def closed_form_errors(grid: dict[str, tuple[float, ...]] = GRID) -> dict[str, tuple[float, str]]:
    """Per channel family: the largest abs error (bit/use) of C_E, Q1, chi against the closed form, and where."""
    from harness.analysis.capacities import CLOSED_FORMS, ce_and_q1, holevo_chi
    from harness.physics.channels import (
        amplitude_damping_kraus,
        choi_from_kraus,
        dephasing_kraus,
        depolarizing_kraus,
        erasure_kraus,
    )

    kraus = {
        "depolarizing": depolarizing_kraus,
        "dephasing": dephasing_kraus,
        "amplitude_damping": amplitude_damping_kraus,
        "erasure": erasure_kraus,
    }
    out = {}
    for family, params in grid.items():
        worst, where = 0.0, ""
        for p in params:
            choi = choi_from_kraus(kraus[family](p))
            ce, q1 = ce_and_q1(choi)
            chi = holevo_chi(choi)
            exact = CLOSED_FORMS[family][1](p)
            for name, got, want in (("C_E", ce, exact.C_E), ("Q1", q1, exact.Q1), ("chi", chi, exact.chi)):
                err = abs(float(np.asarray(got).ravel()[0]) - float(want))
                if err >= worst:
                    worst, where = err, f"{name} at {CLOSED_FORMS[family][0]}={p}"
        out[family] = (worst, where)
    return out


def run(n_channels: int = 50, repeats: int = 5, seed: int = 0) -> Section:
    """Time C_E + Q1 and chi per random qubit channel; compare all three with the closed forms."""
    from harness.analysis.capacities import ce_and_q1, holevo_chi

    rng = np.random.default_rng(seed)
    chois = [random_choi(rng) for _ in range(n_channels)]
    sec = Section("capacities", "4. Capacities: time per channel and error against closed forms")
    t_ceq1 = _per_channel_ms(ce_and_q1, chois, repeats)
    t_chi = _per_channel_ms(holevo_chi, chois, repeats)
    batch = np.array(chois)
    t_batch = _per_channel_ms(lambda _c: ce_and_q1(batch), [batch], repeats) / n_channels
    sec.rows += [
        target_row(
            f"C_E + Q1 per random qubit channel ({n_channels} channels, one call each)",
            t_ceq1,
            CE_Q1_TARGET_MS,
            t_ceq1 / CE_Q1_TARGET_MS,
            "ms (peer = target)",
            at_most=1.0,
        ),
        row(
            f"C_E + Q1 per channel, one batched call over {n_channels}",
            t_batch,
            CE_Q1_TARGET_MS,
            t_batch / CE_Q1_TARGET_MS,
            "ms (peer = target)",
        ),
        row("chi (Holevo) per random qubit channel, one call each", t_chi, float("nan"), float("nan"), "ms"),
    ]
    for family, (err, where) in closed_form_errors().items():
        params = ", ".join(f"{p:g}" for p in GRID[family])
        sec.rows.append(
            row(
                f"max abs error vs closed form, {family} ({params}): worst is {where}",
                err,
                0.0,
                err,
                "bit/use (ratio = the error)",
            )
        )
    sec.notes = (
        f"{n_channels} random qubit channels (4 Gaussian Kraus operators, normalised; seed {seed}); time per "
        f"channel is the median over {repeats} passes (after a warm-up) of the mean time per call. The general "
        "optimisers (`ce_and_q1`, `holevo_chi`) are compared with the closed forms of "
        "`harness.analysis.capacities` (depolarising, dephasing, amplitude damping, erasure) on the grids shown; "
        "the error is the largest over C_E, Q1 and chi."
    )
    return sec
