"""Plain SciPy implementation of the ACD scheme with all-at-once Newton (the benchmark baseline).

This module is deliberately independent of ``mfg_solvers``: it re-implements, from the scheme's
description in docs/theory.md (discrete HJB, discrete FP, Newton's method, the periodic
benchmark), the Achdou--Capuzzo-Dolcetta finite-difference scheme on the 1-D torus
:math:`[0, 1)` for

.. math::

    -\\partial_t u - \\nu u_{xx} + \\tfrac12 u_x^2 = V(x) + c\\,m, \\qquad u(T) = 0,\\qquad
    \\partial_t m - \\nu m_{xx} - (m\\,u_x)_x = 0, \\qquad m(0) = m_0,

with the quadratic Godunov Hamiltonian :math:`g(q_1, q_2) = \\tfrac12[(q_1^-)^2 + (q_2^+)^2]`,
implicit Euler in time (HJB step ``n`` coupled to :math:`M^{n+1}`), the FP operator as the
transpose of the linearised HJB operator, and Newton's method on the whole space--time system
of size :math:`2 N_x N_t` (unknowns :math:`U^0..U^{N_T-1}`, :math:`M^1..M^{N_T}`). The Jacobian is
built block by block with ``scipy.sparse.diags`` in a Python loop over the time steps and
solved with ``scipy.sparse.linalg.spsolve`` (SuperLU, default COLAMD ordering): the
straightforward way to write it, and the reference point of ``benchmarks/fd_newton.py``.

Scheme order: first order in :math:`h` and :math:`\\Delta t`.

Run ``python benchmarks/baseline_scipy_acd.py --n 100`` to solve the periodic benchmark of
periodic benchmark with it.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import spsolve


def benchmark_potential(x):
    """:math:`V(x) = -\\cos 2\\pi x` (periodic benchmark)."""
    return -np.cos(2 * np.pi * x)


def benchmark_m0(x):
    """:math:`m_0 \\propto 1 + \\tfrac12\\cos(2\\pi(x - 1/4))` (periodic benchmark), before
    normalisation."""
    return 1.0 + 0.5 * np.cos(2 * np.pi * (x - 0.25))


def _periodic_difference(nx: int, h: float, shift: int) -> sp.csr_matrix:
    """Forward (``shift=+1``: (W[i+1]-W[i])/h) or backward (``-1``: (W[i]-W[i-1])/h) difference."""
    e = np.ones(nx)
    if shift == 1:
        D = sp.diags([-e, e[:-1], e[:1]], [0, 1, -(nx - 1)], shape=(nx, nx))
    else:
        D = sp.diags([e, -e[:-1], -e[:1]], [0, -1, nx - 1], shape=(nx, nx))
    return (D / h).tocsr()


class PeriodicACD:
    """The discrete system on ``nx`` nodes :math:`x_i = i/n_x` and ``nt`` implicit steps."""

    def __init__(self, nx: int, nt: int, *, nu=0.1, T=1.0, coupling=1.0,
                 potential=benchmark_potential, m0=benchmark_m0):
        if nx < 3 or nt < 1:
            raise ValueError(f"nx={nx!r} must be >= 3 and nt={nt!r} >= 1")
        self.nx, self.nt, self.nu, self.T, self.c = nx, nt, float(nu), float(T), float(coupling)
        self.h = 1.0 / nx
        self.dt = self.T / nt
        self.x = self.h * np.arange(nx)
        self.t = np.linspace(0.0, self.T, nt + 1)
        self.V = potential(self.x)
        m = m0(self.x)
        self.m0 = m / (m.sum() * self.h)
        self.uT = np.zeros(nx)
        self.Dp = _periodic_difference(nx, self.h, +1)
        self.Dm = _periodic_difference(nx, self.h, -1)
        self.lap = (self.Dp - self.Dm) / self.h  # (W[i+1] - 2 W[i] + W[i-1]) / h^2
        self.eye = sp.identity(nx, format="csr")

    # -- pieces of the scheme --------------------------------------------------------------
    def slots(self, U):
        """:math:`(q_1, q_2) = (D^+U, D^-U)`."""
        return self.Dp @ U, self.Dm @ U

    def hamiltonian(self, U):
        q1, q2 = self.slots(U)
        return 0.5 * (np.minimum(q1, 0.0) ** 2 + np.maximum(q2, 0.0) ** 2)

    def transport(self, U):
        """:math:`A(U) = \\operatorname{diag}(\\partial_{q_1}g)\\,D^+
        + \\operatorname{diag}(\\partial_{q_2}g)\\,D^-`,
        the Jacobian of :math:`U \\mapsto g(D_hU)`."""
        q1, q2 = self.slots(U)
        A = sp.diags(np.minimum(q1, 0.0)) @ self.Dp + sp.diags(np.maximum(q2, 0.0)) @ self.Dm
        return A.tocsr()

    def transport_derivative(self, U, M):
        """:math:`\\partial_U (A(U)^\\top M) = D^{+\\top}\\operatorname{diag}(M\\,1[q_1<0])\\,D^+
        + D^{-\\top}\\operatorname{diag}(M\\,1[q_2>0])\\,D^-`."""
        q1, q2 = self.slots(U)
        return (self.Dp.T @ sp.diags(M * (q1 < 0)) @ self.Dp
                + self.Dm.T @ sp.diags(M * (q2 > 0)) @ self.Dm).tocsr()

    # -- unknowns <-> vector ----------------------------------------------------------------
    def split(self, z):
        nx, nt = self.nx, self.nt
        U = np.empty((nt + 1, nx))
        M = np.empty((nt + 1, nx))
        U[:nt] = z[: nt * nx].reshape(nt, nx)
        U[nt] = self.uT
        M[0] = self.m0
        M[1:] = z[nt * nx :].reshape(nt, nx)
        return U, M

    @staticmethod
    def join(U, M):
        return np.concatenate([U[:-1].ravel(), M[1:].ravel()])

    # -- residual and Jacobian --------------------------------------------------------------
    def residual(self, U, M):
        """:math:`(R_U^0..R_U^{N_T-1}, R_M^1..R_M^{N_T})` of the Newton system."""
        nt, dt, nu = self.nt, self.dt, self.nu
        RU = np.empty((nt, self.nx))
        RM = np.empty((nt, self.nx))
        for n in range(nt):
            RU[n] = ((U[n] - U[n + 1]) / dt - nu * (self.lap @ U[n]) + self.hamiltonian(U[n])
                     - self.V - self.c * M[n + 1])
            RM[n] = ((M[n + 1] - M[n]) / dt - nu * (self.lap @ M[n + 1])
                     + self.transport(U[n]).T @ M[n + 1])
        return RU, RM

    def jacobian(self, U, M):
        nt, dt, nu = self.nt, self.dt, self.nu
        blocks = [[None] * (2 * nt) for _ in range(2 * nt)]
        base = self.eye / dt - nu * self.lap
        for n in range(nt):
            A = self.transport(U[n])
            # rows of R_U^n: unknowns U^n (col n), U^{n+1} (col n+1), M^{n+1} (col nt+n)
            blocks[n][n] = base + A
            if n + 1 < nt:
                blocks[n][n + 1] = -self.eye / dt
            blocks[n][nt + n] = -self.c * self.eye
            # rows of R_M^{n+1}: unknowns M^{n+1} (col nt+n), M^n (col nt+n-1), U^n (col n)
            blocks[nt + n][nt + n] = base + A.T
            if n > 0:
                blocks[nt + n][nt + n - 1] = -self.eye / dt
            blocks[nt + n][n] = self.transport_derivative(U[n], M[n + 1])
        return sp.bmat(blocks, format="csc")


def solve_newton(disc: PeriodicACD, *, tol=1e-10, max_iter=30, raise_on_failure=True,
                 verbose=False):
    """Plain Newton (full steps) from :math:`U \\equiv u_T`, :math:`M \\equiv m_0`.

    Stops when the residual (max norm of the residuals of the Newton system) is below ``tol``; after
    ``max_iter`` iterations it raises ``RuntimeError`` or, with ``raise_on_failure=False``,
    returns the last iterate with ``info["converged"] = False`` (on fine grids the residual's
    round-off floor -- about 1.3e-10 at 400 x 400 -- can lie above a tolerance of 1e-10).

    Returns ``(U, M, info)`` with ``info`` holding the residual history, the iteration count,
    the wall-clock assembly / linear-solve times and the process CPU time.
    """
    U = np.tile(disc.uT, (disc.nt + 1, 1))
    M = np.tile(disc.m0, (disc.nt + 1, 1))
    history, t_assembly, t_solve, converged = [], 0.0, 0.0, False
    start = time.perf_counter()
    cpu_start = time.process_time()
    for it in range(max_iter + 1):
        tic = time.perf_counter()
        RU, RM = disc.residual(U, M)
        res = max(np.abs(RU).max(), np.abs(RM).max())
        history.append(float(res))
        if verbose:
            print(f"  baseline Newton {it}: residual {res:.3e} "
                  f"({time.perf_counter() - start:.1f} s)", flush=True)
        if not np.isfinite(res):
            raise FloatingPointError(f"baseline Newton: residual is {res} at iteration {it}")
        if res < tol or it == max_iter:
            t_assembly += time.perf_counter() - tic
            converged = bool(res < tol)
            break
        J = disc.jacobian(U, M)
        rhs = -np.concatenate([RU.ravel(), RM.ravel()])
        t_assembly += time.perf_counter() - tic
        tic = time.perf_counter()
        dz = spsolve(J, rhs)
        t_solve += time.perf_counter() - tic
        U, M = disc.split(disc.join(U, M) + dz)
    if not converged and raise_on_failure:
        raise RuntimeError(
            f"baseline Newton did not reach {tol} in {max_iter} iterations: {history}"
        )
    info = {
        "converged": converged,
        "iterations": len(history) - 1,
        "residual_history": history,
        "time_total": time.perf_counter() - start,
        "cpu_time_total": time.process_time() - cpu_start,
        "time_assembly": t_assembly,
        "time_linear_solve": t_solve,
        "unknowns": 2 * disc.nx * disc.nt,
    }
    return U, M, info


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="Nx = Nt (default 100)")
    args = parser.parse_args(argv)
    disc = PeriodicACD(args.n, args.n)
    U, M, info = solve_newton(disc, verbose=True)
    mass = M.sum(axis=1) * disc.h
    print(f"Nx = Nt = {args.n}: {info['iterations']} Newton iterations, "
          f"{info['time_total']:.2f} s (assembly {info['time_assembly']:.2f} s, "
          f"SuperLU {info['time_linear_solve']:.2f} s); min m = {M.min():.4f}, "
          f"mass drift {np.abs(mass - 1).max():.1e}")


if __name__ == "__main__":
    main()
