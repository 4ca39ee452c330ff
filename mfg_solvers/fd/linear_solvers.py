"""Linear algebra of the finite-difference discretisation.

* :class:`StepMatrices` -- the per-time-step stencil matrices ``C_n`` of a space-time operator,
  factorised once (tridiagonal elimination in numba in 1-D, SuperLU in 2-D/3-D) and reused for
  the *backward sweep* (block upper-bidiagonal HJB Jacobian ``L``: ``C_n x_n - x_{n+1}/dt = r_n``)
  and the *forward sweep* (block lower-bidiagonal FP Jacobian ``K``:
  ``C_n^T x_n - x_{n-1}/dt = r_n``).
* :func:`gmres` -- restarted GMRES (modified Gram-Schmidt, Givens rotations) for a matrix-free
  operator, stopping on the true (unpreconditioned) residual.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse.linalg as spla
from numba import njit

from . import kernels as K
from .stencil import Stencil

#: SuperLU column ordering for the per-step (2d+1)-point matrices.
STEP_ORDERING = "MMD_AT_PLUS_A"


class StepMatrices:
    """Per-time-step stencil matrices ``C_n`` (coefficients ``coef`` of shape (nb, N, 2d+1)).

    In 1-D nothing is factorised ahead: the numba sweeps eliminate the tridiagonal blocks as they
    go (O(N) each). In 2-D/3-D each block is factorised by SuperLU on first use and kept.
    """

    def __init__(self, stencil: Stencil, coef: np.ndarray, periodic_1d: bool | None = None):
        self.stencil = stencil
        self.coef = np.ascontiguousarray(coef)
        self.nb = coef.shape[0]
        self.one_d = stencil.dim == 1
        self.periodic = bool(stencil.grid.periodic[0]) if self.one_d else False
        self._lu: list = [None] * self.nb
        self._fac: dict = {}

    def _factors_1d(self, transpose: bool):
        key = bool(transpose)
        if key not in self._fac:
            N = self.coef.shape[1]
            fac = np.empty((self.nb, 4, N))
            scal = np.empty((self.nb, 3))
            K.factor_1d(self.coef, self.periodic, key, fac, scal)
            self._fac[key] = (fac, scal)
        return self._fac[key]

    def lu(self, n: int):
        if self._lu[n] is None:
            self._lu[n] = spla.splu(
                self.stencil.csc(self.coef[n]), permc_spec=STEP_ORDERING
            )
        return self._lu[n]

    def factorise_all(self):
        if not self.one_d:
            for n in range(self.nb):
                self.lu(n)

    def solve(self, n: int, rhs: np.ndarray, transpose: bool = False) -> np.ndarray:
        """``C_n^{-1} rhs`` (or ``C_n^{-T} rhs``)."""
        rhs = np.ascontiguousarray(rhs, dtype=float)
        if self.one_d:
            x = np.empty_like(rhs)
            K.solve_stencil_1d(self.coef[n], self.periodic, transpose, rhs, x)
            return x
        return self.lu(n).solve(rhs, trans="T" if transpose else "N")

    def backward(self, rhs: np.ndarray, inv_dt: float, terminal: bool) -> np.ndarray:
        """Solve ``C_n x_n - x_{n+1} inv_dt = rhs_n`` backward (``x_nb = rhs_nb`` if terminal)."""
        rhs = np.ascontiguousarray(rhs, dtype=float)
        out = np.empty_like(rhs)
        if self.one_d:
            fac, scal = self._factors_1d(False)
            K.factored_sweep_1d(fac, scal, self.periodic, inv_dt, rhs, True, terminal, out)
            return out
        nb = self.nb
        if terminal:
            out[nb] = rhs[nb]
        for n in range(nb - 1, -1, -1):
            r = rhs[n] + out[n + 1] * inv_dt if (n + 1 < nb or terminal) else rhs[n]
            out[n] = self.lu(n).solve(r)
        return out

    def forward(self, rhs: np.ndarray, inv_dt: float) -> np.ndarray:
        """Solve ``C_n^T x_n - x_{n-1} inv_dt = rhs_n`` forward."""
        rhs = np.ascontiguousarray(rhs, dtype=float)
        out = np.empty_like(rhs)
        if self.one_d:
            fac, scal = self._factors_1d(True)
            K.factored_sweep_1d(fac, scal, self.periodic, inv_dt, rhs, False, False, out)
            return out
        for n in range(self.nb):
            r = rhs[n] + out[n - 1] * inv_dt if n > 0 else rhs[n]
            out[n] = self.lu(n).solve(r, trans="T")
        return out


@njit(cache=True)
def _norm(x):
    acc = 0.0
    for i in range(x.shape[0]):
        acc += x[i] * x[i]
    return np.sqrt(acc)


_BLOCK = 2048


@njit(cache=True, fastmath=True)
def _arnoldi_orthogonalise(V, k, w, hcol):
    """Orthogonalise ``w`` against ``V[0..k]`` by classical Gram-Schmidt applied twice (CGS2).

    Returns ``||w||`` and accumulates the projections in ``hcol``. The loops run over blocks
    of ``w`` so that each pass streams the basis once (the cost is memory traffic); plain loops
    instead of BLAS, whose threads only add start-up cost on a loaded machine.
    """
    n = w.shape[0]
    kk = k + 1
    tmp = np.empty(kk)
    for j in range(kk):
        hcol[j] = 0.0
    for _ in range(2):
        for j in range(kk):
            tmp[j] = 0.0
        for i0 in range(0, n, _BLOCK):
            i1 = min(n, i0 + _BLOCK)
            for j in range(kk):
                acc = 0.0
                for i in range(i0, i1):
                    acc += V[j, i] * w[i]
                tmp[j] += acc
        for i0 in range(0, n, _BLOCK):
            i1 = min(n, i0 + _BLOCK)
            for j in range(kk):
                c = tmp[j]
                for i in range(i0, i1):
                    w[i] -= c * V[j, i]
        for j in range(kk):
            hcol[j] += tmp[j]
    return _norm(w)


@njit(cache=True)
def _scaled_copy(src, alpha, dst):
    for i in range(src.shape[0]):
        dst[i] = alpha * src[i]


@njit(cache=True)
def _combine(V, y, x):
    """``x += V[:len(y)].T @ y``."""
    n = x.shape[0]
    for j in range(y.shape[0]):
        yj = y[j]
        for i in range(n):
            x[i] += yj * V[j, i]


class GMRESInfo:
    """Outcome of :func:`gmres`: ``iterations``, ``residual`` (2-norm), ``converged``."""

    __slots__ = ("iterations", "residual", "converged", "target")

    def __init__(self, iterations, residual, converged, target):
        self.iterations = iterations
        self.residual = residual
        self.converged = converged
        self.target = target

    def __repr__(self):
        return (
            f"GMRESInfo(iterations={self.iterations}, residual={self.residual:.3e}, "
            f"target={self.target:.3e}, converged={self.converged})"
        )


def gmres(apply, b, *, rtol=1e-12, atol=0.0, restart=100, maxiter=1000, x0=None):
    """Restarted GMRES for ``apply(x) = b`` (vectors are flat float arrays).

    Arnoldi with classical Gram-Schmidt applied twice (CGS2) and Givens rotations. Stops when
    ``||b - A x||_2 <= max(rtol ||b||_2, atol)``; the final residual is recomputed explicitly.
    Returns ``(x, GMRESInfo)``.
    """
    b = np.ascontiguousarray(b, dtype=float).ravel()
    n = b.size
    bnorm = _norm(b)
    target = max(rtol * bnorm, atol)
    x = np.zeros(n) if x0 is None else np.array(x0, dtype=float).ravel()
    if bnorm == 0.0 and x0 is None:
        return x, GMRESInfo(0, 0.0, True, target)
    total = 0
    r = b - apply(x) if x0 is not None else b.copy()
    beta = _norm(r)
    V = None
    while True:
        if beta <= target:
            return x, GMRESInfo(total, beta, True, target)
        if total >= maxiter:
            return x, GMRESInfo(total, beta, False, target)
        m = min(restart, maxiter - total)
        if V is None or V.shape[0] < m + 1:
            V = np.empty((m + 1, n))
        H = np.zeros((m + 1, m))
        cs = np.zeros(m)
        sn = np.zeros(m)
        g = np.zeros(m + 1)
        g[0] = beta
        _scaled_copy(r, 1.0 / beta, V[0])
        k_used = 0
        hcol = np.zeros(m + 1)
        for k in range(m):
            w = np.ascontiguousarray(apply(V[k]), dtype=float)
            hn = _arnoldi_orthogonalise(V, k, w, hcol)
            H[: k + 1, k] = hcol[: k + 1]
            H[k + 1, k] = hn
            if hn > 0:
                _scaled_copy(w, 1.0 / hn, V[k + 1])
            for j in range(k):
                t = cs[j] * H[j, k] + sn[j] * H[j + 1, k]
                H[j + 1, k] = -sn[j] * H[j, k] + cs[j] * H[j + 1, k]
                H[j, k] = t
            den = float(np.hypot(H[k, k], H[k + 1, k]))
            cs[k] = H[k, k] / den if den > 0 else 1.0
            sn[k] = H[k + 1, k] / den if den > 0 else 0.0
            H[k, k] = den
            H[k + 1, k] = 0.0
            g[k + 1] = -sn[k] * g[k]
            g[k] = cs[k] * g[k]
            total += 1
            k_used = k + 1
            if abs(g[k + 1]) <= 0.5 * target or den == 0.0:
                break
        y = np.zeros(k_used)
        for i in range(k_used - 1, -1, -1):  # back substitution (tiny, no LAPACK)
            y[i] = (g[i] - float(np.dot(H[i, i + 1 : k_used], y[i + 1 : k_used]))) / H[i, i]
        _combine(V, y, x)
        r = b - apply(x)
        beta = _norm(r)


class HeatSweeps:
    """Backward/forward sweeps of the block-bidiagonal *heat* operator, solved spectrally.

    Blocks ``H = I/dt - nu*Delta_h`` (the ACD Jacobian blocks without the transport part) are
    diagonalised exactly by the DCT-II along reflecting axes (the Laplacian that drops the
    differences leaving the box) and the DFT along periodic axes, with eigenvalues
    :math:`(2 - 2\\cos(\\pi j/n))/h^2` and :math:`(2 - 2\\cos(2\\pi j/n))/h^2` of
    :math:`-\\Delta_h`. All time levels are transformed at once; the time recurrence is
    elementwise in spectral space. Used as the preconditioner of the multi-dimensional Krylov
    solver (``nu > 0``); ``H`` is symmetric, so the forward (FP) sweep uses the same blocks.
    """

    def __init__(self, grid, nu: float, inv_dt: float):
        import scipy.fft as sfft

        self._fft = sfft
        self.grid = grid
        self.shape = grid.shape
        self.neumann_axes = tuple(k for k in range(grid.dim) if not grid.periodic[k])
        self.periodic_axes = tuple(k for k in range(grid.dim) if grid.periodic[k])
        self.inv_dt = float(inv_dt)
        eig = np.zeros(())
        spec_shape = list(self.shape)
        if self.periodic_axes:
            spec_shape[self.periodic_axes[-1]] = self.shape[self.periodic_axes[-1]] // 2 + 1
        eig = np.zeros(spec_shape)
        for k in range(grid.dim):
            n, h = self.shape[k], grid.spacing[k]
            j = np.arange(spec_shape[k])
            freq = 2.0 * np.pi * j / n if grid.periodic[k] else np.pi * j / n
            lam = (2.0 - 2.0 * np.cos(freq)) / h**2
            sh = [1] * grid.dim
            sh[k] = spec_shape[k]
            eig = eig + lam.reshape(sh)
        self.denom = 1.0 / (self.inv_dt + nu * eig)

    def _forward_transform(self, a):
        f = self._fft
        axes_n = tuple(k + 1 for k in self.neumann_axes)
        axes_p = tuple(k + 1 for k in self.periodic_axes)
        if axes_n:
            a = f.dctn(a, type=2, axes=axes_n, norm="ortho")
        if axes_p:
            a = f.rfftn(a, axes=axes_p, norm="ortho")
        return a

    def _inverse_transform(self, a):
        f = self._fft
        axes_n = tuple(k + 1 for k in self.neumann_axes)
        axes_p = tuple(k + 1 for k in self.periodic_axes)
        if axes_p:
            a = f.irfftn(a, s=[self.shape[k - 1] for k in axes_p], axes=axes_p, norm="ortho")
        if axes_n:
            a = f.idctn(a, type=2, axes=axes_n, norm="ortho")
        return a

    def _sweep(self, rhs, backward: bool, terminal: bool):
        nr = rhs.shape[0]
        out = np.empty_like(rhs)
        nb = nr - 1 if terminal else nr
        if terminal:
            out[nb] = rhs[nb]
        if nb == 0:
            return out
        r = self._forward_transform(rhs[:nb].reshape((nb,) + self.shape))
        x = np.empty_like(r)
        prev = None
        if terminal:
            prev = self._forward_transform(rhs[nb].reshape((1,) + self.shape))[0]
        order = range(nb - 1, -1, -1) if backward else range(nb)
        for t in order:
            if prev is None:
                x[t] = self.denom * r[t]
            else:
                x[t] = self.denom * (r[t] + self.inv_dt * prev)
            prev = x[t]
        out[:nb] = self._inverse_transform(x).reshape(nb, -1)
        return out

    def backward(self, rhs, terminal: bool = False):
        """Solve ``H x_n - x_{n+1}/dt = rhs_n`` backward (``x_nb = rhs_nb`` if ``terminal``)."""
        return self._sweep(np.ascontiguousarray(rhs, dtype=float), True, terminal)

    def forward(self, rhs):
        """Solve ``H x_n - x_{n-1}/dt = rhs_n`` forward."""
        return self._sweep(np.ascontiguousarray(rhs, dtype=float), False, False)
