"""A batched quasi-Newton minimiser: many independent smooth problems advanced side by side with numpy."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def batched_bfgs(fun: Callable, x: np.ndarray, iters: int = 80, gtol: float = 1e-7) -> tuple[np.ndarray, np.ndarray]:
    """Minimise independent problems row by row with BFGS and backtracking; returns (x, f).

    fun(x_rows (M, P), rows (M,)) -> (f (M,), g (M, P)) evaluates the problems numbered `rows`.
    """
    x = x.copy()
    n, p = x.shape
    f, g = fun(x, np.arange(n))
    hinv = np.broadcast_to(np.eye(p), (n, p, p)).copy()
    act = np.arange(n)
    for _ in range(iters):
        d = -np.einsum("nij,nj->ni", hinv[act], g[act])
        slope = np.sum(d * g[act], axis=1)
        bad = slope >= 0
        if np.any(bad):  # lost descent: restart that row from steepest descent
            hinv[act[bad]] = np.eye(p)
            d[bad] = -g[act[bad]]
            slope[bad] = -np.sum(g[act[bad]] ** 2, axis=1)
        t = np.ones(act.size)
        pending = np.arange(act.size)
        f_new = np.empty(act.size)
        g_new = np.empty((act.size, p))
        for _ls in range(30):
            fx, gx = fun(x[act[pending]] + t[pending, None] * d[pending], act[pending])
            ok = fx <= f[act[pending]] + 1e-4 * t[pending] * slope[pending]
            done = pending[ok]
            f_new[done], g_new[done] = fx[ok], gx[ok]
            pending = pending[~ok]
            if pending.size == 0:
                break
            t[pending] /= 4
        if pending.size:  # no decrease found: the row is at its optimum to working precision
            f_new[pending], g_new[pending] = f[act[pending]], g[act[pending]]
            t[pending] = 0.0
        s_vec = t[:, None] * d
        y_vec = g_new - g[act]
        x_new = x[act] + s_vec
        sy = np.sum(s_vec * y_vec, axis=1)
        upd = sy > 1e-14
        if np.any(upd):
            rho = 1.0 / sy[upd]
            h = hinv[act[upd]]
            sv, yv = s_vec[upd], y_vec[upd]
            hy = np.einsum("nij,nj->ni", h, yv)
            yhy = np.sum(yv * hy, axis=1)
            h = (
                h
                - rho[:, None, None] * (hy[:, :, None] * sv[:, None, :] + sv[:, :, None] * hy[:, None, :])
                + (rho**2 * yhy + rho)[:, None, None] * sv[:, :, None] * sv[:, None, :]
            )
            hinv[act[upd]] = h
        improvement = f[act] - f_new
        x[act], f[act], g[act] = x_new, f_new, g_new
        keep = (np.max(np.abs(g_new), axis=1) > gtol) & (t > 0) & (improvement > 1e-15)
        act = act[keep]
        if act.size == 0:
            break
    return x, f
