"""Maximum-likelihood tomography of two-qubit states and one-qubit processes from counts of any projections.

Model. Count j (a setting and an outcome of a `Scheme`) is Poisson with mean
mu_j = c_j Tr(E_j X) + a_j, where E_j is the measured operator (a projector, or rho_in^T ⊗ projector for
the Choi matrix of a link), X = I·rho is the state times a free overall intensity I, c_j = (relative
intensity of the setting) x (product of the two detectors' efficiencies), and a_j the expected accidentals
(singles_a * singles_b * window / duration). Accidentals are part of the model rather than subtracted from
the counts, so the likelihood stays Poisson. A process is fitted as its Choi matrix (input first): X = I·J/2
with Tr_out X ∝ 1 (trace preservation, three linear constraints), so I is again free.

Parametrisation and solver. X = T T† with T lower triangular and a real diagonal (James, Kwiat, Munro and
White, PRA 64 052312 (2001); also `quantum-tomography`), so positivity costs nothing and Tr X carries the
intensity. Each mu_j is a quadratic form t^T P_j t in the 16 real entries of T, so the gradient and the exact
Hessian are small matrix products, batched over data sets with numpy. The solver is Newton's method (SQP with
the trace-preserving constraints), the Hessian's eigenvalues replaced by their floored absolute values, with a
backtracking Armijo line search on f + nu*|constraints| that also tries 2, 4 and 8 times the step where the
full one is accepted. Exact-Hessian Newton, rather than Gauss-Newton or R·rho·R, converges quadratically at
the rank-deficient optima of near-pure states (F ~ 0.998), where the Gauss-Newton matrix is singular in the
directions that matter and R·rho·R crawls. T lives in a fixed generic basis (`_FRAME`): in the computational
basis the Bell-state null vectors of near-Bell states zero a middle Cholesky pivot and leave a flat valley.
Fits take 6-12 iterations on average (up to ~50 for the hardest near-boundary replicates).

Convergence criterion. The negative log-likelihood f is convex in X, and at the optimum Tr(S X*) <= N
(S = sum_j c_j E_j, N the total count), so for any iterate f(X) - f(X*) <= gap with
gap = Tr(G X) - N min(0, lambda_min(S^-1/2 G S^-1/2)), G = df/dX (plus the multipliers of the constraints).
A fit stops when gap <= tol (nats, default 1e-7): the likelihood is certified within tol of its maximum, so
the estimate is within ~sqrt(2 tol) standard errors of the exact MLE. Where a pivot of T heads for zero the
bound is loose and Newton is linear for a while; a fit therefore also stops, and counts as converged, after
three consecutive iterations that lower f by less than `stall` (1e-6 nats: steps of ~0.001 standard errors).
`FitResult.gap` reports the certificate either way. For objective="pearson" (sum (mu - n)^2 / mu, the
least-squares objective of `quantum-tomography`, kept to compare with it) the gap is a stationarity measure.
Bootstrap replicates and their intervals: `harness.analysis.mle_bootstrap`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import xlogy

from harness.analysis.schemes import Scheme, check_complete
from harness.analysis.validation import AnalysisError
from harness.physics.channels import X as SX
from harness.physics.channels import Y as SY
from harness.physics.channels import Z as SZ

OBJECTIVES = ("poisson", "pearson")


def _t_basis(d: int) -> np.ndarray:
    """Real-parameter basis (d², d, d) of lower-triangular T: diagonal, then real and imaginary parts below it."""
    basis = [np.zeros((d, d), dtype=complex) for _ in range(d * d)]
    k = 0
    for i in range(d):
        basis[k][i, i] = 1.0
        k += 1
    for i in range(d):
        for j in range(i):
            basis[k][i, j] = 1.0
            basis[k + 1][i, j] = 1.0j
            k += 2
    return np.array(basis)


def _quadratic_forms(ops: np.ndarray) -> np.ndarray:
    """Return P (M, p, p) with Tr(E_m T T†) = t^T P_m t for the T basis of `_t_basis`."""
    d = ops.shape[-1]
    b = _t_basis(d)
    bb = np.einsum("kab,lcb->klac", b, b.conj())  # B_k B_l†
    return np.real(np.einsum("mab,klba->mkl", ops, bb))


@dataclass
class _Problem:
    """A batch of fits sharing a scheme: quadratic forms, scales, accidentals, counts and constraints."""

    ops: np.ndarray  # (M, d, d)
    P: np.ndarray  # (M, p, p)
    c: np.ndarray  # (B, M)
    a: np.ndarray  # (B, M)
    n: np.ndarray  # (B, M)
    cons_ops: np.ndarray  # (K, d, d), Tr(C X) = 0
    cons_p: np.ndarray  # (K, p, p)
    objective: str

    def __post_init__(self) -> None:
        self.PfT = np.ascontiguousarray(self.P.reshape(len(self.P), -1).T)  # (p², M); contiguous for BLAS
        self.Pf = np.ascontiguousarray(self.P.reshape(len(self.P), -1))
        self.Pt = np.ascontiguousarray(np.transpose(self.P, (2, 0, 1)).reshape(self.P.shape[2], -1))  # (p, M*p)
        self.opsf = self.ops.reshape(len(self.ops), -1)
        self.s_inv_half = _inv_sqrt(np.einsum("bm,mij->bij", self.c, self.ops))
        self.total = self.n.sum(axis=1)


def _inv_sqrt(m: np.ndarray) -> np.ndarray:
    lam, v = np.linalg.eigh(m)
    return np.einsum("bik,bk,bjk->bij", v, lam**-0.5, v.conj())


def _phi(mu: np.ndarray, n: np.ndarray, objective: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-count objective and its first two derivatives in mu (Poisson: half the deviance); inf where mu = 0 < n."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(n > 0, n / mu, 0.0)
        if objective == "poisson":
            return mu - n + xlogy(n, ratio), 1 - ratio, np.where(n > 0, ratio / mu, 0.0)
        return np.where(n > 0, (mu - n) * (1 - ratio), mu), 1 - ratio**2, np.where(n > 0, 2 * ratio**2 / mu, 0.0)


def _means(prob: _Problem, t: np.ndarray, rows: np.ndarray) -> np.ndarray:
    tt = (t[:, :, None] * t[:, None, :]).reshape(len(t), -1)
    return prob.c[rows] * (tt @ prob.PfT) + prob.a[rows]


def _merit(prob: _Problem, t: np.ndarray, rows: np.ndarray, nu: np.ndarray) -> np.ndarray:
    f = _phi(_means(prob, t, rows), prob.n[rows], prob.objective)[0].sum(axis=1)
    if len(prob.cons_p):
        h = np.einsum("bk,ckl,bl->bc", t, prob.cons_p, t)
        f = f + nu * np.abs(h).sum(axis=1)
    return f


def _newton(prob: _Problem, t: np.ndarray, rows: np.ndarray, lam: np.ndarray) -> tuple:
    """Return the Newton (SQP) step, multipliers, weights df/dmu * c, the merit's slope, penalty and value at t."""
    mu = _means(prob, t, rows)
    f, d1, d2 = _phi(mu, prob.n[rows], prob.objective)
    c = prob.c[rows]
    w = d1 * c
    jac = 2 * c[:, :, None] * (t @ prob.Pt).reshape(len(t), *prob.P.shape[:2])
    w_mat = (w @ prob.Pf).reshape(len(t), *prob.P.shape[1:])
    grad = 2 * np.einsum("bkl,bl->bk", w_mat, t)
    hess = np.swapaxes(jac * d2[:, :, None], 1, 2) @ jac + 2 * w_mat
    if len(prob.cons_p):
        hess = hess + 2 * np.einsum("bc,ckl->bkl", lam, prob.cons_p)
    ev, vec = np.linalg.eigh(hess)
    ev = np.maximum(np.abs(ev), 1e-12 * np.abs(ev).max(axis=1, keepdims=True) + 1e-300)

    def h_inv(x: np.ndarray) -> np.ndarray:  # (B, p, r) -> (B, p, r)
        return vec @ ((np.swapaxes(vec, 1, 2) @ x) / ev[:, :, None])

    if not len(prob.cons_p):
        step = -h_inv(grad[:, :, None])[:, :, 0]
        return step, lam, w, np.einsum("bk,bk->b", grad, step), np.zeros(len(t)), f.sum(axis=1)
    a_mat = 2 * np.einsum("ckl,bl->bck", prob.cons_p, t)  # (B, K, p)
    h = np.einsum("bk,ckl,bl->bc", t, prob.cons_p, t)
    hinv_g = h_inv(grad[:, :, None])[:, :, 0]
    hinv_at = h_inv(np.swapaxes(a_mat, 1, 2))
    schur = a_mat @ hinv_at
    rhs = h - np.einsum("bck,bk->bc", a_mat, hinv_g)
    lam_new = np.linalg.solve(schur, rhs[:, :, None])[:, :, 0]
    step = -hinv_g - np.einsum("bkc,bc->bk", hinv_at, lam_new)
    nu = np.abs(lam_new).max(axis=1) + 1.0
    slope = np.einsum("bk,bk->b", grad, step) - nu * np.abs(h).sum(axis=1)
    return step, lam_new, w, slope, nu, f.sum(axis=1) + nu * np.abs(h).sum(axis=1)


def _gap(prob: _Problem, t: np.ndarray, rows: np.ndarray, w: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """Certified bound on f(X) - f(X*) in nats (see the module docstring)."""
    d = prob.ops.shape[-1]
    T = np.einsum("bk,kij->bij", t, _T_BASES[d])
    X = T @ np.swapaxes(T.conj(), 1, 2)
    G = (w @ prob.opsf).reshape(len(t), d, d)
    if len(prob.cons_ops):
        G = G + np.einsum("bc,cij->bij", lam, prob.cons_ops)
    inner = np.real(np.einsum("bij,bji->b", G, X))
    sg = prob.s_inv_half[rows] @ G @ prob.s_inv_half[rows]
    lam_min = np.linalg.eigvalsh((sg + np.swapaxes(sg.conj(), 1, 2)) / 2)[:, 0]
    return np.abs(inner) - prob.total[rows] * np.minimum(0.0, lam_min)


_T_BASES = {2: _t_basis(2), 4: _t_basis(4)}
# The solver works in a fixed generic basis U (seeded, so fits are reproducible): near-Bell states have Bell-state
# null vectors, which in the computational basis zero a middle Cholesky pivot and leave a flat valley in T
# where Newton crawls; in a generic basis the zero pivots come last and convergence stays quadratic.
_FRAME = np.linalg.qr(np.random.default_rng(20011023).normal(size=(4, 4, 2)) @ np.array([1, 1j]))[0]


def _to_frame(x: np.ndarray) -> np.ndarray:
    return _FRAME.conj().T @ x @ _FRAME


def _from_frame(x: np.ndarray) -> np.ndarray:
    return _FRAME @ x @ _FRAME.conj().T


def _line_search(
    prob: _Problem, t: np.ndarray, rows: np.ndarray, step: np.ndarray, slope: np.ndarray, nu: np.ndarray, m0: np.ndarray
) -> tuple:
    """Backtracking Armijo search from merit m0; return the new parameters, which rows moved, the merit's decrease."""
    alpha, best = np.ones(len(t)), m0.copy()
    todo = np.arange(len(t))
    new = t.copy()
    for _ in range(40):
        trial = t[todo] + alpha[todo, None] * step[todo]
        m1 = _merit(prob, trial, rows[todo], nu[todo])
        # The allowance lets Newton finish below the merit's rounding error (~1e-16 x the counts' sum).
        ok = m1 <= m0[todo] + 1e-4 * alpha[todo] * np.minimum(slope[todo], 0.0) + 1e-13 * prob.total[rows[todo]]
        new[todo[ok]], best[todo[ok]] = trial[ok], m1[ok]
        todo = todo[~ok]
        if not len(todo):
            break
        alpha[todo] *= 0.5
    moved = np.ones(len(t), dtype=bool)
    moved[todo] = False
    # A pivot of T heading for zero shrinks only by half per Newton step (f is quartic in it there): where the
    # full step was accepted, try longer ones while the merit keeps falling.
    grow = np.flatnonzero(moved & (alpha == 1.0) & (slope < -1e-4))  # not once Newton is quadratic
    for k in (2.0, 4.0, 8.0):
        if not len(grow):
            break
        trial = t[grow] + k * step[grow]
        m1 = _merit(prob, trial, rows[grow], nu[grow])
        better = m1 < best[grow] - 1e-13 * prob.total[rows[grow]]
        new[grow[better]], best[grow[better]] = trial[better], m1[better]
        grow = grow[better]
    return new, moved, m0 - best


def _solve(prob: _Problem, t0: np.ndarray, tol: float, max_iter: int, stall: float = 1e-6) -> tuple:
    """Run the batched Newton iterations; return t, multipliers, gap, iterations and convergence flags."""
    t = t0.copy()
    lam = np.zeros((len(t), len(prob.cons_p)))
    gap = np.full(len(t), np.inf)
    iters = np.zeros(len(t), dtype=int)
    slow = np.zeros(len(t), dtype=int)  # consecutive iterations that lowered the merit by < stall nats
    ok = np.zeros(len(t), dtype=bool)
    active = np.arange(len(t))
    while len(active):
        step, lam_new, w, slope, nu, m0 = _newton(prob, t[active], active, lam[active])
        near = -slope <= 1e-2  # f - f* ~ -slope/2 for Newton: elsewhere the certificate cannot pass
        gap[active[near]] = _gap(prob, t[active[near]], active[near], w[near], lam_new[near])
        lam[active] = lam_new
        ok[active] = (gap[active] <= tol) | (slow[active] >= 3)
        keep = ~ok[active] & (iters[active] < max_iter)
        active = active[keep]
        if not len(active):
            break
        new, moved, drop = _line_search(prob, t[active], active, step[keep], slope[keep], nu[keep], m0[keep])
        t[active] = new
        iters[active] += 1
        slow[active] = np.where(drop < stall, slow[active] + 1, 0)
        ok[active[~moved]] = slow[active[~moved]] >= 1  # no step possible: at the rounding floor
        active = active[moved]
    return t, lam, gap, iters, ok


def _pauli_basis(d: int) -> np.ndarray:
    single = [np.eye(2, dtype=complex), SX, SY, SZ]
    return np.array(single) if d == 2 else np.array([np.kron(a, b) for a in single for b in single])


_PAULIS = {2: _pauli_basis(2), 4: _pauli_basis(4)}


def _tp_normalise(x: np.ndarray) -> np.ndarray:
    """Return (Y^-1/2 ⊗ 1) X (Y^-1/2 ⊗ 1) * Tr(Y)/2 with Y = Tr_out X: trace preserving up to the intensity."""
    y = np.einsum("biaja->bij", x.reshape(len(x), 2, 2, 2, 2))
    a = np.einsum("bij,kl->bikjl", _inv_sqrt(y), np.eye(2)).reshape(len(x), 4, 4)
    return a @ x @ np.swapaxes(a.conj(), 1, 2) * (np.real(np.einsum("bii->b", y)) / 2)[:, None, None]


def _least_squares(prob: _Problem) -> np.ndarray:
    """Return the unweighted least-squares Hermitian X (B, d, d) of n - a = c Tr(E X) (linear inversion)."""
    d = prob.ops.shape[-1]
    paulis = _PAULIS[d]
    design = np.real(np.einsum("mab,kba->mk", prob.ops, paulis)) / d
    dm = prob.c[:, :, None] * design[None]
    normal = np.swapaxes(dm, 1, 2) @ dm
    rhs = np.einsum("bmk,bm->bk", dm, prob.n - prob.a)
    coef = np.linalg.solve(normal, rhs[:, :, None])[:, :, 0]
    return np.einsum("bk,kij->bij", coef, paulis) / d


def _start(prob: _Problem, process: bool, x: np.ndarray | None = None) -> np.ndarray:
    """Return starting parameters t0: `x` (or the linear inversion) made positive and mixed with the identity."""
    mix = 0.01 if x is None else 0.001  # a full-rank start keeps Newton off the saddles of T at rank-deficient X
    x = _least_squares(prob) if x is None else _to_frame(x)
    d = x.shape[-1]
    lam, v = np.linalg.eigh(x)
    lam = np.clip(lam, 0.0, None)
    scale = np.real(np.einsum("bm,mii->b", prob.c, prob.ops)) / d
    total = np.where(lam.sum(axis=1) > 0, lam.sum(axis=1), np.maximum(prob.total, 1.0) / scale)
    lam = (1 - mix) * lam + mix * total[:, None] / d
    x0 = np.einsum("bik,bk,bjk->bij", v, lam, v.conj())
    if process:
        x0 = _to_frame(_tp_normalise(_from_frame(x0)))
    T = np.linalg.cholesky(x0)
    rows, cols = np.tril_indices(d, -1)
    diag = np.real(np.einsum("bii->bi", T))
    low = T[:, rows, cols]
    return np.concatenate([diag, np.stack([low.real, low.imag], axis=2).reshape(len(T), -1)], axis=1)


@dataclass(frozen=True)
class FitResult:
    """Maximum-likelihood fits of a batch of data sets (leading axes as in the counts).

    `rho` is the unit-trace density matrix (states) or the trace-2 CPTP Choi matrix (processes);
    `intensity` the fitted counts of a unit-probability outcome at relative intensity 1 and unit efficiency;
    `means` the fitted expected counts (accidentals included); `nll` the objective at the fit (Poisson: half
    the deviance, in nats); `gap` the certified bound on its distance to the optimum.
    """

    rho: np.ndarray
    intensity: np.ndarray
    means: np.ndarray
    nll: np.ndarray
    gap: np.ndarray
    iterations: np.ndarray
    converged: np.ndarray


def _problem(scheme: Scheme, counts: np.ndarray, accidentals, intensities, efficiencies, objective) -> _Problem:
    """Flatten a batch of data sets of `scheme` into a `_Problem` of B rows and M counts."""
    if objective not in OBJECTIVES:
        raise AnalysisError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    shape = scheme.counts_shape
    lead = counts.shape[: counts.ndim - len(shape)]
    rel = np.ones(shape[:-1]) if intensities is None else np.asarray(intensities, dtype=float)
    acc = np.zeros(shape) if accidentals is None else np.asarray(accidentals, dtype=float)
    if not (np.all(rel > 0) and np.all(np.isfinite(rel)) and np.all(acc >= 0) and np.all(np.isfinite(acc))):
        raise AnalysisError("intensities must be finite and > 0, accidentals finite and >= 0")
    try:
        c = np.broadcast_to(rel[..., None] * scheme.outcome_efficiencies(efficiencies), (*lead, *shape))
        a = np.broadcast_to(acc, (*lead, *shape))
    except ValueError:
        raise AnalysisError(
            f"intensities {rel.shape} / accidentals {acc.shape} do not fit counts {counts.shape}"
        ) from None
    ops, P, cons, cons_p = _compiled(scheme)
    m = int(np.prod(shape))
    return _Problem(
        ops, P, c.reshape(-1, m).copy(), a.reshape(-1, m).copy(), counts.reshape(-1, m), cons, cons_p, objective
    )


_COMPILED: dict[bytes, tuple] = {}


def _compiled(scheme: Scheme) -> tuple:
    """Return the scheme's operators and quadratic forms in the solver's basis, checked complete (cached)."""
    key = scheme.vectors.tobytes() + bytes([scheme.detectors_per_arm])
    key += b"" if scheme.inputs is None else b"in" + scheme.inputs.tobytes()
    if key not in _COMPILED:
        check_complete(scheme)
        raw = scheme.operators()
        ops = _to_frame(raw.reshape(-1, *raw.shape[-2:]))
        cons = np.array([np.kron(s, np.eye(2)) for s in (SX, SY, SZ)]) if scheme.is_process else np.zeros((0, 4, 4))
        cons = _to_frame(cons)
        cons_p = _quadratic_forms(cons) if len(cons) else np.zeros((0, 16, 16))
        if len(_COMPILED) > 64:
            _COMPILED.clear()
        _COMPILED[key] = (ops, _quadratic_forms(ops), cons, cons_p)
    return _COMPILED[key]


def _finish(scheme: Scheme, prob: _Problem, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d = prob.ops.shape[-1]
    T = np.einsum("bk,kij->bij", t, _T_BASES[d])
    x = _from_frame(T @ np.swapaxes(T.conj(), 1, 2))
    if scheme.is_process:
        x = _tp_normalise(x)
    tr = np.real(np.einsum("bii->b", x))
    k = 2.0 if scheme.is_process else 1.0
    return k * x / tr[:, None, None], tr / k


def fit_tomography(
    scheme: Scheme,
    counts: object,
    *,
    accidentals: object = None,
    intensities: object = None,
    efficiencies: object = None,
    objective: str = "poisson",
    tol: float = 1e-7,
    max_iter: int = 60,
    stall: float = 1e-6,
    chunk: int = 4096,
    start: object = None,
) -> FitResult:
    """Return the maximum-likelihood state (or CPTP Choi matrix of a process scheme) of counts (..., *counts_shape).

    `accidentals`: expected accidental counts per count (see `harness.analysis.singles`); `intensities`: relative
    source intensity per setting (shape counts_shape[:-1]); `efficiencies`: per-detector (n_arms, detectors_per_arm);
    `tol`, `stall`, `max_iter`: stopping rules (module docstring); `start`: optional starting intensity x rho
    (..., d, d), e.g. a previous fit, instead of the linear inversion.
    """
    data = scheme.check_counts(counts)
    lead = data.shape[: data.ndim - len(scheme.counts_shape)]
    prob = _problem(scheme, data, accidentals, intensities, efficiencies, objective)
    d = prob.ops.shape[-1]
    x0 = None if start is None else np.broadcast_to(np.asarray(start, dtype=complex), (*lead, d, d)).reshape(-1, d, d)
    parts = []
    for lo in range(0, len(prob.n), chunk):
        sl = slice(lo, lo + chunk)
        sub = _Problem(prob.ops, prob.P, prob.c[sl], prob.a[sl], prob.n[sl], prob.cons_ops, prob.cons_p, objective)
        t0 = _start(sub, scheme.is_process, None if x0 is None else x0[sl])
        t, _, gap, iters, ok = _solve(sub, t0, tol, max_iter, stall)
        rows = np.arange(len(t))
        rho, inten = _finish(scheme, sub, t)
        mu = sub.c * np.real(np.einsum("bij,mji->bm", rho, _from_frame(sub.ops))) * inten[:, None] + sub.a
        nll = _phi(mu, sub.n, objective)[0].sum(axis=1)
        parts.append((rho, inten, mu, nll, gap, iters, ok, rows))
    cat = [np.concatenate([p[i] for p in parts]) for i in range(7)]
    d = cat[0].shape[-1]
    return FitResult(
        cat[0].reshape(*lead, d, d), cat[1].reshape(lead), cat[2].reshape(*lead, *scheme.counts_shape),
        cat[3].reshape(lead), cat[4].reshape(lead), cat[5].reshape(lead), cat[6].reshape(lead),
    )  # fmt: skip


def linear_inversion(
    scheme: Scheme,
    counts: object,
    *,
    accidentals: object = None,
    intensities: object = None,
    efficiencies: object = None,
) -> np.ndarray:
    """Return the least-squares Hermitian estimate (unit trace; trace-2 Choi for processes), maybe not positive."""
    data = scheme.check_counts(counts)
    lead = data.shape[: data.ndim - len(scheme.counts_shape)]
    x = _from_frame(_least_squares(_problem(scheme, data, accidentals, intensities, efficiencies, "poisson")))
    k = 2.0 if scheme.is_process else 1.0
    x = k * x / np.real(np.einsum("bii->b", x))[:, None, None]
    return x.reshape(*lead, *x.shape[-2:])
