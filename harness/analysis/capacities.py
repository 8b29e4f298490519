"""Capacities of qubit-input channels, in bits per channel use.

General optimiser (any CPTP qubit-input channel, any output dimension, batched over channels):
for an input with Bloch vector r, S(N(ρ)) and the environment entropy S(N^c(ρ)) = S(ρ_RB) with
ρ_RB = (√ρ^T ⊗ 1) J (√ρ^T ⊗ 1) are evaluated for many points at once with batched eigvalsh.
C_E = max I(ρ, N) is a concave problem: a trust-region Newton ascent from the maximally mixed
state, with derivatives from a 19-point finite-difference stencil. Q1 = max I_c(ρ, N) is not
concave in general: the same ascent starts from the best points of a coarse grid over the Bloch
ball that lie far apart. Pure inputs give I_c = 0, so Q1 >= 0.
chi: BFGS over ensembles of 4 pure states (unit vectors and softmax weights) with an analytic
gradient, from three structured starts (antipodal pairs on the two widest output axes and a
tetrahedron); one batched BFGS runs every channel and start of a batch side by side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar

from harness.analysis.measures import binary_entropy, entropy_from_eigenvalues
from harness.analysis.optimise import batched_bfgs
from harness.analysis.validation import AnalysisError
from harness.physics.channels import I2, X, Y, Z, choi_from_kraus, validate_choi

_SIG = np.array([I2, X, Y, Z])
_LN2 = np.log(2.0)
_RMAX = 1.0 - 1e-12


@dataclass(frozen=True)
class Capacities:
    """Entanglement-assisted capacity C_E, maximised coherent information Q1 and Holevo chi, bits/use."""

    C_E: float
    Q1: float
    chi: float


def as_choi_batch(channel: np.ndarray | Sequence[np.ndarray], atol: float = 1e-6) -> tuple[np.ndarray, bool]:
    """Return validated Choi matrices as a (B, 2d, 2d) array and whether the input was a single channel.

    Accepts one Choi matrix (2d x 2d), a batch of them (B, 2d, 2d) or one Kraus list (k, d, 2).
    """
    try:
        arr = np.asarray(channel, dtype=complex)
    except (TypeError, ValueError) as exc:
        raise AnalysisError(f"channel: not numeric ({exc})") from None
    if arr.ndim == 3 and arr.shape[-1] == 2:
        arr = choi_from_kraus(arr)  # a Kraus list (k, d_out, 2); a Choi batch has square 2d x 2d entries, d >= 2
    single = arr.ndim == 2
    batch = arr[None] if single else arr
    if batch.ndim != 3:
        raise AnalysisError(f"channel: wrong shape {arr.shape}, expected a Choi matrix, a batch of them or Kraus list")
    for m in batch:
        validate_choi(m, atol=atol)
    return (batch + batch.conj().swapaxes(-1, -2)) / 2, single


class _Evaluator:
    """Entropies S(ρ), S(N(ρ)), S(ρ_RB) at batches of Bloch vectors for a batch of channels."""

    def __init__(self, choi: np.ndarray) -> None:
        b, n, _ = choi.shape
        self.d = d = n // 2
        j = choi.reshape(b, 2, d, 2, d)
        # N(σ_μ) = Σ_ik (σ_μ)_ik J[i,:,k,:]; N(ρ) = ½ (N(1) + Σ r_μ N(σ_μ)).
        self.n_sig = 0.5 * np.einsum("mik,biakc->bmac", _SIG, j)
        # ρ_RB = Σ_mn m_m m_n (σ_m ⊗ 1) J (σ_n ⊗ 1) for √ρ^T = Σ m_m σ_m with real m.
        self.kmn = np.einsum("mip,bpaqc,nqk->bmniakc", _SIG, j, _SIG).reshape(b, 4, 4, n, n)

    def entropies(self, r: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """r (N, ..., 3) Bloch vectors for channels idx (N,); returns S_in, S_out, S_env (N, ...) in bits."""
        b = r.shape[0]
        rest = r.shape[1:-1]
        rr = r.reshape(b, -1, 3)
        n_sig = self.n_sig[idx]
        norm = np.sqrt(np.sum(rr**2, axis=-1))
        s_in = binary_entropy((1 + norm) / 2)
        out = n_sig[:, None, 0] + np.einsum("bpm,bmac->bpac", rr, n_sig[:, 1:])
        if self.d == 2:
            # Closed-form 2x2 eigenvalues are far cheaper than a LAPACK call per point.
            a, dd = out[..., 0, 0].real, out[..., 1, 1].real
            disc = np.sqrt(np.maximum((a - dd) ** 2 / 4 + np.abs(out[..., 0, 1]) ** 2, 0))
            lam_out = np.stack([(a + dd) / 2 - disc, (a + dd) / 2 + disc], axis=-1)
        else:
            lam_out = np.linalg.eigvalsh(out)
        s_out = entropy_from_eigenvalues(lam_out)
        s = np.sqrt(np.maximum(1 - norm**2, 0) / 4)  # √det ρ
        scale = 1 / np.sqrt(1 + 2 * s)
        # √ρ^T = (ρ^T + s 1)/√(1 + 2s); ρ^T has Bloch vector (x, -y, z).
        m = np.stack([(0.5 + s), rr[..., 0] / 2, -rr[..., 1] / 2, rr[..., 2] / 2], axis=-1) * scale[..., None]
        mm = (m[..., :, None] * m[..., None, :]).reshape(b, -1, 16)
        rb = np.matmul(mm, self.kmn[idx].reshape(b, 16, -1)).reshape(b, -1, 2 * self.d, 2 * self.d)
        s_env = entropy_from_eigenvalues(np.linalg.eigvalsh(rb))
        return s_in.reshape(b, *rest), s_out.reshape(b, *rest), s_env.reshape(b, *rest)

    def objective(self, r: np.ndarray, w: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """w (broadcast to r's point axes) weighs S(ρ): 1 gives I(ρ,N), 0 gives I_c(ρ,N)."""
        s_in, s_out, s_env = self.entropies(r, idx)
        return w * s_in + s_out - s_env


def _stencil() -> np.ndarray:
    e = np.eye(3)
    pts = [np.zeros(3)]
    pts += [s * e[i] for i in range(3) for s in (1, -1)]
    pts += [si * e[i] + sj * e[j] for i in range(3) for j in range(i + 1, 3) for si in (1, -1) for sj in (1, -1)]
    return np.array(pts)


_STENCIL = _stencil()
_PAIRS = [(i, j) for i in range(3) for j in range(i + 1, 3)]


def _clip_ball(r: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(r, axis=-1, keepdims=True)
    return np.where(norm > _RMAX, r * (_RMAX / np.maximum(norm, 1e-300)), r)


def _derivatives(
    ev: _Evaluator, r: np.ndarray, w: np.ndarray, idx: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Value, gradient and Hessian of the objective at r (N, 3) from one 19-point stencil call."""
    h = np.clip(0.5 * (1 - np.linalg.norm(r, axis=-1)), 1e-9, 1e-4)
    v = ev.objective(r[:, None, :] + h[:, None, None] * _STENCIL, w[:, None], idx)
    f0 = v[:, 0]
    g = (v[:, 1:7:2] - v[:, 2:7:2]) / (2 * h[:, None])
    hess = np.empty((f0.shape[0], 3, 3))
    hess[:, [0, 1, 2], [0, 1, 2]] = (v[:, 1:7:2] + v[:, 2:7:2] - 2 * f0[:, None]) / h[:, None] ** 2
    for k, (i, j) in enumerate(_PAIRS):
        pp, pm, mp, mm = (v[:, 7 + 4 * k + q] for q in range(4))
        hess[:, i, j] = hess[:, j, i] = (pp - pm - mp + mm) / (4 * h**2)
    return f0, g, hess


def _ascend(
    ev: _Evaluator, r: np.ndarray, w: np.ndarray, idx: np.ndarray, iters: int = 40
) -> tuple[np.ndarray, np.ndarray]:
    """Trust-region saddle-free Newton ascent from r (N, 3) for channels idx (N,); returns (r, f)."""
    r = r.copy()
    f, g, hess = _derivatives(ev, r, w, idx)
    radius = np.full(f.shape, 0.3)
    act = np.arange(r.shape[0])  # rows still moving; converged rows drop out of the batch
    for _ in range(iters):
        lam, vec = np.linalg.eigh(hess[act])
        # |λ| makes every step an ascent direction, even at saddles of the non-concave I_c.
        coeff = np.einsum("nki,nk->ni", vec, g[act]) / np.maximum(np.abs(lam), 1e-3)
        step = np.einsum("nki,ni->nk", vec, coeff)
        norm = np.linalg.norm(step, axis=-1)
        rad = radius[act]
        clipped = norm > rad
        step = np.where(clipped[:, None], step * (rad / np.maximum(norm, 1e-300))[:, None], step)
        # A step this small moves the value by ~1e-14 bits; the finite-difference gradient is noisier.
        moving = np.minimum(norm, rad) >= 1e-7
        act, step, clipped, rad = act[moving], step[moving], clipped[moving], rad[moving]
        if act.size == 0:
            break
        cand = _clip_ball(r[act] + step)
        fc, gc, hc = _derivatives(ev, cand, w[act], idx[act])
        accept = fc >= f[act] - 1e-15
        acc = act[accept]
        r[acc], f[acc], g[acc], hess[acc] = cand[accept], fc[accept], gc[accept], hc[accept]
        radius[act] = np.where(accept, np.where(clipped, 2 * rad, rad), rad / 4)
    return r, f


def _grid() -> np.ndarray:
    n = 26
    k = np.arange(n) + 0.5
    phi = np.arccos(1 - 2 * k / n)
    theta = np.pi * (1 + 5**0.5) * k
    dirs = np.stack([np.cos(theta) * np.sin(phi), np.sin(theta) * np.sin(phi), np.cos(phi)], axis=-1)
    axes = np.concatenate([np.eye(3), -np.eye(3)])
    dirs = np.concatenate([axes, dirs])
    shells = [dirs * s for s in (0.35, 0.7, 0.92, 0.99)]
    return np.concatenate([np.zeros((1, 3)), *shells])


_GRID = _grid()


def _q1_starts(r_grid: np.ndarray, f_grid: np.ndarray, k: int = 3, sep: float = 0.5) -> np.ndarray:
    """Greedy choice of k good grid points per channel at least `sep` apart (B, k, 3)."""
    f = f_grid.copy()
    b = np.arange(f.shape[0])
    starts = []
    for _ in range(k):
        idx = np.argmax(f, axis=1)
        chosen = r_grid[idx]
        starts.append(chosen)
        dist = np.linalg.norm(r_grid[None] - chosen[:, None], axis=-1)
        f = np.where(dist < sep, -np.inf, f)
        f[b, idx] = -np.inf
    return np.stack(starts, axis=1)


def _optimise(choi: np.ndarray, want_ce: bool, want_q1: bool) -> tuple[np.ndarray, np.ndarray]:
    ev = _Evaluator(choi)
    b = choi.shape[0]
    chans = np.arange(b)
    starts, weights, idx = [], [], []
    if want_ce:
        starts.append(np.zeros((b, 3)))  # concave objective: any start reaches the maximum
        weights.append(np.ones(b))
        idx.append(chans)
    q1_floor = np.zeros(b)
    if want_q1:
        fg = ev.objective(np.broadcast_to(_GRID, (b, *_GRID.shape)), np.zeros(1), chans)
        q1_floor = np.maximum(0.0, fg.max(axis=1))
        q_starts = _q1_starts(_GRID, fg)  # (b, k, 3)
        k = q_starts.shape[1]
        starts.append(q_starts.reshape(-1, 3))
        weights.append(np.zeros(b * k))
        idx.append(np.repeat(chans, k))
    _, f = _ascend(ev, np.concatenate(starts), np.concatenate(weights), np.concatenate(idx))
    ce = f[:b] if want_ce else np.full(b, np.nan)
    q_vals = f[b:] if want_ce else f
    q1 = np.maximum(q1_floor, q_vals.reshape(b, -1).max(axis=1)) if want_q1 else np.full(b, np.nan)
    return ce, q1


def mutual_information(channel: np.ndarray | Sequence[np.ndarray], rho: np.ndarray) -> np.ndarray:
    """Return the quantum mutual information I(ρ, N) = S(ρ) + S(N(ρ)) - S(N^c(ρ)) in bits."""
    choi, _ = as_choi_batch(channel)
    if choi.shape[0] != 1:
        raise AnalysisError("mutual_information takes one channel")
    r = _bloch_of(rho)
    return _Evaluator(choi).objective(r[None], np.ones(1), np.zeros(1, dtype=int))[0]


def coherent_information_channel(channel: np.ndarray | Sequence[np.ndarray], rho: np.ndarray) -> np.ndarray:
    """Return the coherent information I_c(ρ, N) = S(N(ρ)) - S(N^c(ρ)) in bits."""
    choi, _ = as_choi_batch(channel)
    if choi.shape[0] != 1:
        raise AnalysisError("coherent_information_channel takes one channel")
    return _Evaluator(choi).objective(_bloch_of(rho)[None], np.zeros(1), np.zeros(1, dtype=int))[0]


def _bloch_of(rho: np.ndarray) -> np.ndarray:
    from harness.analysis.validation import check_density_matrix

    r = check_density_matrix(rho, "rho", dim=2)
    return np.real(np.stack([np.einsum("ab,...ba->...", p, r) for p in (X, Y, Z)], axis=-1))


def entanglement_assisted_capacity(channel: np.ndarray | Sequence[np.ndarray]) -> np.ndarray | float:
    """Return C_E = max_ρ I(ρ, N) in bits per use (Bennett-Shor-Smolin-Thapliyal); batched over Choi matrices."""
    choi, single = as_choi_batch(channel)
    ce, _ = _optimise(choi, True, False)
    return float(ce[0]) if single else ce


def coherent_information_capacity(channel: np.ndarray | Sequence[np.ndarray]) -> np.ndarray | float:
    """Return Q1 = max(0, max_ρ I_c(ρ, N)) in bits per use; batched over Choi matrices."""
    choi, single = as_choi_batch(channel)
    _, q1 = _optimise(choi, False, True)
    return float(q1[0]) if single else q1


def ce_and_q1(channel: np.ndarray | Sequence[np.ndarray]) -> tuple:
    """Return (C_E, Q1) in bits per use with one shared evaluation; floats or arrays for a batch."""
    choi, single = as_choi_batch(channel)
    ce, q1 = _optimise(choi, True, True)
    return (float(ce[0]), float(q1[0])) if single else (ce, q1)


# ---------------------------------------------------------------- Holevo chi

_N_STATES = 4


def _chi_terms(n_sig: np.ndarray, u: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return chi (B,), dchi/du (B,K,3), dchi/da (B,K) for states n = u/|u| and weights softmax(a)."""
    un = np.linalg.norm(u, axis=-1, keepdims=True)
    n = u / un
    p = np.exp(a - a.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    outs = n_sig[:, None, 0] + np.einsum("bkm,bmac->bkac", n, n_sig[:, 1:])
    avg = np.einsum("bk,bkac->bac", p, outs)
    lam_k, v_k = np.linalg.eigh(outs)
    lam_a, v_a = np.linalg.eigh(avg)
    s_k = entropy_from_eigenvalues(lam_k)
    chi = entropy_from_eigenvalues(lam_a) - np.sum(p * s_k, axis=-1)
    # dS(σ)/dσ = -(log σ + 1)/ln 2; the identity part drops out because outputs keep unit trace.
    log_a = np.einsum("bxk,bk,byk->bxy", v_a, np.log(np.clip(lam_a, 1e-15, None)), v_a.conj())
    log_k = np.einsum("bjxk,bjk,bjyk->bjxy", v_k, np.log(np.clip(lam_k, 1e-15, None)), v_k.conj())
    grad_out = (log_k - log_a[:, None]) / _LN2  # dchi/dσ_k divided by p_k
    dn = p[..., None] * np.real(np.einsum("bkxy,bmyx->bkm", grad_out, n_sig[:, 1:]))
    du = (dn - np.sum(dn * n, axis=-1, keepdims=True) * n) / un
    g_p = -np.real(np.einsum("bkxy,byx->bk", outs, log_a)) / _LN2 - s_k
    da = p * (g_p - np.sum(p * g_p, axis=-1, keepdims=True))
    return chi, du, da


def _chi_starts(n_sig: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    b = n_sig.shape[0]
    # Principal axes of the linear part of n -> N(ψ_n) rank the input directions by output spread.
    lin = n_sig[:, 1:].reshape(b, 3, -1)
    gram = np.real(np.einsum("bmx,bnx->bmn", lin, lin.conj()))
    _, axes = np.linalg.eigh(gram)
    starts = []
    for k in (2, 1):
        ax = axes[:, :, k]
        other = axes[:, :, (k + 1) % 3]
        u = np.stack([ax, -ax, 0.5 * ax + other, 0.5 * ax - other], axis=1)
        a = np.tile(np.array([0.0, 0.0, -3.0, -3.0]), (b, 1))
        starts.append((u, a))
    tetra = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=float) / np.sqrt(3)
    starts.append((np.tile(tetra, (b, 1, 1)), np.zeros((b, 4))))
    return starts


def _chi_optimise(choi: np.ndarray) -> np.ndarray:
    n_sig = _Evaluator(choi).n_sig  # ½ N(σ_μ): pure input n has output n_sig[0] + n·n_sig[1:]
    b = choi.shape[0]
    starts = _chi_starts(n_sig)
    m = len(starts)
    u0 = np.concatenate([u for u, _ in starts])
    a0 = np.concatenate([a for _, a in starts])
    sig = np.concatenate([n_sig] * m)
    k = _N_STATES

    def fun(x: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        chi, du, da = _chi_terms(sig[rows], x[:, : 3 * k].reshape(-1, k, 3), x[:, 3 * k :])
        return -chi, -np.concatenate([du.reshape(x.shape[0], -1), da], axis=1)

    x0 = np.concatenate([u0.reshape(b * m, -1), a0], axis=1)
    _, f = batched_bfgs(fun, x0)
    return np.maximum(0.0, (-f).reshape(m, b).max(axis=0))


def holevo_chi(channel: np.ndarray | Sequence[np.ndarray]) -> np.ndarray | float:
    """Return the Holevo quantity chi maximised over ensembles of up to 4 pure states, bits per use."""
    choi, single = as_choi_batch(channel)
    chi = _chi_optimise(choi)
    return float(chi[0]) if single else chi


def channel_capacities(channel: np.ndarray | Sequence[np.ndarray]) -> Capacities:
    """Return C_E, Q1 and chi (bits per use) of one qubit-input channel with the general optimisers."""
    choi, single = as_choi_batch(channel)
    if not single:
        raise AnalysisError("channel_capacities takes one channel; use ce_and_q1 / holevo_chi for batches")
    ce, q1 = _optimise(choi, True, True)
    return Capacities(float(ce[0]), float(q1[0]), float(_chi_optimise(choi)[0]))


# ---------------------------------------------------------------- closed forms


def _pauli_entropy(probs: Sequence[float]) -> float:
    return float(entropy_from_eigenvalues(np.array(probs)))


def depolarizing_capacities(p: float) -> Capacities:
    """Return closed-form C_E, Q1, chi (bits/use) of rho -> (1-p) rho + p I/2, p in [0, 4/3]."""
    from harness.physics.channels import depolarizing_kraus

    depolarizing_kraus(p)  # validates the range
    h = _pauli_entropy([1 - 3 * p / 4, p / 4, p / 4, p / 4])
    lam = abs(1 - p)
    return Capacities(2 - h, max(0.0, 1 - h), float(1 - binary_entropy((1 + lam) / 2)))


def dephasing_capacities(p: float) -> Capacities:
    """Return closed-form C_E, Q1, chi (bits/use) of rho -> (1-p) rho + p Z rho Z."""
    from harness.physics.channels import dephasing_kraus

    dephasing_kraus(p)
    h = float(binary_entropy(p))
    return Capacities(2 - h, 1 - h, 1.0)


def _max_on_unit(fn, grid: int = 2001) -> float:
    xs = np.linspace(0, 1, grid)
    vals = fn(xs)
    i = int(np.argmax(vals))
    lo, hi = xs[max(i - 1, 0)], xs[min(i + 1, grid - 1)]
    if hi <= lo:
        return float(vals[i])
    res = minimize_scalar(
        lambda x: -float(fn(np.array([x]))[0]), bounds=(lo, hi), method="bounded", options={"xatol": 1e-12}
    )
    return float(max(vals[i], -res.fun))


def amplitude_damping_capacities(gamma: float) -> Capacities:
    """Return C_E, Q1, chi (bits/use) of amplitude damping from its one-parameter closed forms."""
    from harness.physics.channels import amplitude_damping_kraus

    amplitude_damping_kraus(gamma)
    g = float(gamma)
    ce = _max_on_unit(lambda p: binary_entropy(p) + binary_entropy((1 - g) * p) - binary_entropy(g * p))
    q1 = 0.0 if g >= 0.5 else max(0.0, _max_on_unit(lambda p: binary_entropy((1 - g) * p) - binary_entropy(g * p)))

    def chi_fn(c: np.ndarray) -> np.ndarray:
        cz = 2 * c - 1  # cos(theta) of a symmetric pair of pure inputs about the z axis
        z = g + (1 - g) * cz
        single = np.sqrt((1 - g) * (1 - cz**2) + z**2)
        return binary_entropy((1 + np.abs(z)) / 2) - binary_entropy((1 + np.minimum(single, 1)) / 2)

    return Capacities(ce, q1, _max_on_unit(chi_fn))


def erasure_capacities(epsilon: float) -> Capacities:
    """Return closed-form C_E = 2(1-ε), Q1 = max(0, 1-2ε), chi = 1-ε of the qubit erasure channel."""
    from harness.physics.channels import erasure_kraus

    erasure_kraus(epsilon)
    e = float(epsilon)
    return Capacities(2 * (1 - e), max(0.0, 1 - 2 * e), 1 - e)


CLOSED_FORMS = {
    "depolarizing": ("p", depolarizing_capacities),
    "dephasing": ("p", dephasing_capacities),
    "amplitude_damping": ("gamma", amplitude_damping_capacities),
    "erasure": ("epsilon", erasure_capacities),
}


def plob_bound(eta: float | np.ndarray) -> np.ndarray:
    """Return the PLOB bound -log2(1 - eta) in ebits (or secret bits) per use of a pure-loss link."""
    e = np.asarray(eta, dtype=float)
    if np.any(~np.isfinite(e)) or np.any((e < 0) | (e > 1)):
        raise AnalysisError(f"transmissivity eta must be in [0, 1], got {eta}")
    with np.errstate(divide="ignore"):
        return -np.log1p(-e) / _LN2


def bbm92_key_fraction(e_x: float | np.ndarray, e_z: float | np.ndarray) -> np.ndarray:
    """Return the asymptotic BBM92 secret fraction max(0, 1 - h(e_x) - h(e_z)), bits per sifted pair."""
    ex, ez = np.asarray(e_x, dtype=float), np.asarray(e_z, dtype=float)
    if np.any(~np.isfinite(ex)) or np.any(~np.isfinite(ez)) or np.any((ex < 0) | (ex > 1) | (ez < 0) | (ez > 1)):
        raise AnalysisError(f"QBERs must be in [0, 1], got e_x={e_x}, e_z={e_z}")
    return np.maximum(0.0, 1 - binary_entropy(ex) - binary_entropy(ez))
