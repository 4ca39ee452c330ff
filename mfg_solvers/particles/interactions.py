"""Pairwise interactions of a particle cloud.

The interaction drift of particle :math:`i` among :math:`N` particles of mass :math:`1/N` is

.. math::

    b^W_i = -(\\nabla W * \\mu^N)(X_i) = -\\frac1N \\sum_{j} \\nabla W(X_i - X_j),

the finite-:math:`N` version of :math:`-\\nabla W * \\mu_t` in the McKean--Vlasov drift
(particles move down the interaction energy; :math:`W > 0` decreasing in :math:`|x|` repels).
With absorbing walls :math:`\\mu^N` is the sub-probability measure of the surviving particles
(dead particles carry no mass, the normalisation stays :math:`1/N`).

Three ways to evaluate it:

* :class:`QuadraticInteraction` -- :math:`W = \\tfrac k2|x|^2` gives
  :math:`b_i = -k\\,(m X_i - \\textstyle\\sum_j X_j / N)` with :math:`m` the surviving mass: the
  interaction reduces to the first moment, :math:`O(N)`, exact. It is folded into the affine part
  of the drift (and so works with the exact linear step).
* :class:`PairwiseInteraction` with ``method="direct"`` -- the double sum, parallel over
  :math:`i`, :math:`O(N^2)`: the reference.
* :class:`PairwiseInteraction` with ``method="pm"`` (particle--mesh) -- cloud-in-cell deposition
  of the masses on a grid of spacing :math:`h`, discrete convolution with :math:`\\nabla W`
  sampled on the grid (FFT, :math:`O(G\\log G)`), and interpolation back with the same CIC
  weights, :math:`O(N + G\\log G)`. The error against the direct sum is :math:`O(h^2)` for smooth
  kernels (CIC deposition and interpolation are both second order; the kernel gradient is sampled
  exactly, not differenced). Periodic axes use the minimal-image kernel (circular convolution);
  other axes are zero-padded (free-space, linear convolution). An evaluation makes three
  parallel passes over the particles (bounds and finiteness of the live ones, deposition,
  gathering); none depends on the number of threads.

Kernels (radial, :math:`\\nabla W(x) = g(|x|^2)\\,x`):

* :class:`QuadraticKernel` -- :math:`W = \\tfrac k2 |x|^2` (smooth);
* :class:`GaussianKernel` -- :math:`W = s\\,e^{-|x|^2/(2\\ell^2)}` (smooth);
* :class:`MorseKernel` -- :math:`W = C_r e^{-r_\\epsilon/\\ell_r} - C_a e^{-r_\\epsilon/\\ell_a}`,
  :math:`r_\\epsilon = \\sqrt{|x|^2+\\epsilon^2}` (smooth if :math:`\\epsilon > 0`; the cusp of
  :math:`\\epsilon = 0` makes the particle--mesh error first order);
* :class:`RegularisedCoulombKernel` -- :math:`W = s\\,\\Phi_d(\\sqrt{|x|^2+\\epsilon^2})` with
  :math:`\\Phi_1(r) = -r`, :math:`\\Phi_2 = -\\log r`, :math:`\\Phi_3 = 1/r` (smooth).
"""

from __future__ import annotations

import math

import numba
import numpy as np
import scipy.fft
from numba import njit, prange

from ..grid import Grid
from ._threads import threads_for
from .density import (
    GATHER_BLOCK,
    _alive_array,
    _check_positions,
    _deposit_checked,
    _gather_kernel,
    grid_geometry,
    live_bounds,
)

K_QUADRATIC, K_GAUSSIAN, K_MORSE, K_COULOMB = 0, 1, 2, 3
#: Extended (padded) mesh size from which the mesh FFTs use the numba thread count.
_FFT_THREADED_SIZE = 1 << 19


# ---------------------------------------------------------------------------------------------
# kernels
# ---------------------------------------------------------------------------------------------
class Kernel:
    """A radial interaction potential :math:`W(x)`; ``kind`` and ``params`` feed numba."""

    kind: int = -1

    @property
    def params(self) -> np.ndarray:
        raise NotImplementedError

    def value(self, *dx) -> np.ndarray:
        """:math:`W` at displacement components ``dx`` (NumPy, broadcasting)."""
        r2 = sum(np.asarray(c, dtype=float) ** 2 for c in dx)
        return _radial_value(self.kind, self.params, r2, len(dx))

    def gradient(self, *dx) -> tuple[np.ndarray, ...]:
        """:math:`\\nabla W` components at displacement ``dx`` (NumPy, broadcasting)."""
        dx = [np.asarray(c, dtype=float) for c in dx]
        r2 = sum(c**2 for c in dx)
        g = _radial_factor_np(self.kind, self.params, r2, len(dx))
        return tuple(g * c for c in dx)

    def __repr__(self):
        return f"{type(self).__name__}{tuple(float(p) for p in self.params)}"


def _finite(name, v, positive=False):
    v = float(v)
    if not np.isfinite(v) or (positive and v <= 0):
        raise ValueError(f"{name}={v!r} must be a finite{' positive' if positive else ''} number")
    return v


class QuadraticKernel(Kernel):
    """:math:`W = \\tfrac k2|x|^2` (attractive for ``k > 0``)."""

    kind = K_QUADRATIC

    def __init__(self, k: float = 1.0):
        self.k = _finite("k", k)

    @property
    def params(self):
        return np.array([self.k, 0.0, 0.0, 0.0, 0.0])


class GaussianKernel(Kernel):
    """:math:`W = s\\,e^{-|x|^2/(2\\ell^2)}` (repulsive for ``strength > 0``)."""

    kind = K_GAUSSIAN

    def __init__(self, strength: float = 1.0, width: float = 1.0):
        self.strength = _finite("strength", strength)
        self.width = _finite("width", width, positive=True)

    @property
    def params(self):
        return np.array([self.strength, self.width, 0.0, 0.0, 0.0])


class MorseKernel(Kernel):
    """:math:`W = C_r e^{-r_\\epsilon/\\ell_r} - C_a e^{-r_\\epsilon/\\ell_a}`,
    :math:`r_\\epsilon = \\sqrt{|x|^2 + \\epsilon^2}` (``eps=0``: the classical, cusped Morse
    potential; its gradient is taken as 0 at coincident points)."""

    kind = K_MORSE

    def __init__(self, c_attr=1.0, l_attr=2.0, c_rep=1.0, l_rep=0.5, eps=0.0):
        self.c_attr = _finite("c_attr", c_attr)
        self.l_attr = _finite("l_attr", l_attr, positive=True)
        self.c_rep = _finite("c_rep", c_rep)
        self.l_rep = _finite("l_rep", l_rep, positive=True)
        self.eps = _finite("eps", eps)
        if self.eps < 0:
            raise ValueError(f"eps={eps!r} must be >= 0")

    @property
    def params(self):
        return np.array([self.c_attr, self.l_attr, self.c_rep, self.l_rep, self.eps])


class RegularisedCoulombKernel(Kernel):
    """:math:`W = s\\,\\Phi_d(\\sqrt{|x|^2+\\epsilon^2})`: the Coulomb potential of dimension
    ``d`` (``-r``, ``-log r``, ``1/r``) smoothed at scale :math:`\\epsilon > 0`; repulsive for
    ``strength > 0``."""

    kind = K_COULOMB

    def __init__(self, strength: float = 1.0, eps: float = 0.1):
        self.strength = _finite("strength", strength)
        self.eps = _finite("eps", eps, positive=True)

    @property
    def params(self):
        return np.array([self.strength, self.eps, 0.0, 0.0, 0.0])


@njit(cache=True)
def radial_factor(kind, p, r2, d):
    """:math:`g(r^2)` with :math:`\\nabla W(x) = g(|x|^2)\\,x`."""
    if kind == K_QUADRATIC:
        return p[0]
    if kind == K_GAUSSIAN:
        return -p[0] / (p[1] * p[1]) * math.exp(-0.5 * r2 / (p[1] * p[1]))
    if kind == K_MORSE:
        re2 = r2 + p[4] * p[4]
        if re2 <= 0.0:
            return 0.0
        r = math.sqrt(re2)
        dW = -p[2] / p[3] * math.exp(-r / p[3]) + p[0] / p[1] * math.exp(-r / p[1])
        return dW / r
    # regularised Coulomb
    re2 = r2 + p[1] * p[1]
    if d == 1:
        return -p[0] / math.sqrt(re2)
    if d == 2:
        return -p[0] / re2
    return -p[0] / (re2 * math.sqrt(re2))


def _radial_factor_np(kind, p, r2, d):
    r2 = np.asarray(r2, dtype=float)
    if kind == K_QUADRATIC:
        return np.full_like(r2, p[0])
    if kind == K_GAUSSIAN:
        return -p[0] / p[1] ** 2 * np.exp(-0.5 * r2 / p[1] ** 2)
    if kind == K_MORSE:
        r = np.sqrt(r2 + p[4] ** 2)
        dW = -p[2] / p[3] * np.exp(-r / p[3]) + p[0] / p[1] * np.exp(-r / p[1])
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(r > 0, dW / np.where(r > 0, r, 1.0), 0.0)
    re2 = r2 + p[1] ** 2
    if d == 1:
        return -p[0] / np.sqrt(re2)
    if d == 2:
        return -p[0] / re2
    return -p[0] / re2**1.5


def _radial_value(kind, p, r2, d):
    r2 = np.asarray(r2, dtype=float)
    if kind == K_QUADRATIC:
        return 0.5 * p[0] * r2
    if kind == K_GAUSSIAN:
        return p[0] * np.exp(-0.5 * r2 / p[1] ** 2)
    if kind == K_MORSE:
        r = np.sqrt(r2 + p[4] ** 2)
        return p[2] * np.exp(-r / p[3]) - p[0] * np.exp(-r / p[1])
    r = np.sqrt(r2 + p[1] ** 2)
    if d == 1:
        return -p[0] * r
    if d == 2:
        return -p[0] * np.log(r)
    return p[0] / r


# ---------------------------------------------------------------------------------------------
# direct summation
# ---------------------------------------------------------------------------------------------
@njit(cache=True, parallel=True)
def _direct_kernel(X, alive, Y, yalive, kind, p, periodic, period, scale, out):
    """``out[i] += -scale * sum_j grad W(X_i - Y_j)`` over live ``j`` (minimal image)."""
    N, d = X.shape
    M = Y.shape[0]
    for i in prange(N):
        if alive[i] == 0:
            continue
        a0 = 0.0
        a1 = 0.0
        a2 = 0.0
        x0 = X[i, 0]
        x1 = X[i, 1] if d > 1 else 0.0
        x2 = X[i, 2] if d > 2 else 0.0
        for j in range(M):
            if yalive[j] == 0:
                continue
            d0 = x0 - Y[j, 0]
            if periodic[0]:
                d0 -= period[0] * math.floor(d0 / period[0] + 0.5)
            r2 = d0 * d0
            d1 = 0.0
            d2 = 0.0
            if d > 1:
                d1 = x1 - Y[j, 1]
                if periodic[1]:
                    d1 -= period[1] * math.floor(d1 / period[1] + 0.5)
                r2 += d1 * d1
            if d > 2:
                d2 = x2 - Y[j, 2]
                if periodic[2]:
                    d2 -= period[2] * math.floor(d2 / period[2] + 0.5)
                r2 += d2 * d2
            g = radial_factor(kind, p, r2, d)
            a0 += g * d0
            a1 += g * d1
            a2 += g * d2
        out[i, 0] -= scale * a0
        if d > 1:
            out[i, 1] -= scale * a1
        if d > 2:
            out[i, 2] -= scale * a2


# ---------------------------------------------------------------------------------------------
# interactions
# ---------------------------------------------------------------------------------------------
class Interaction:
    """Base class. ``affine`` interactions add to the affine drift; others fill an array."""

    affine = False

    def check_dim(self, d: int):
        pass


class QuadraticInteraction(Interaction):
    """:math:`W = \\tfrac k2|x|^2`: drift :math:`-k(m X_i - \\bar S)`, :math:`\\bar S = \\frac1N
    \\sum_j X_j` -- through the first moment, :math:`O(N)`."""

    affine = True

    def __init__(self, k: float = 1.0):
        self.k = _finite("k", k)

    def affine_terms(self, d: int):
        """``(dA, B)``: the drift gains ``dA * mass @ x + B @ S/N``."""
        return -self.k * np.eye(d), self.k * np.eye(d)

    def __repr__(self):
        return f"QuadraticInteraction(k={self.k})"


class MeanFieldAffine(Interaction):
    """Drift :math:`B\\,\\textstyle\\int y\\,\\mu^N(dy) = B \\sum_j X_j / N` (a constant matrix
    ``B``; a scalar means :math:`bI`)."""

    affine = True

    def __init__(self, B):
        self.B = np.asarray(B, dtype=float)
        if not np.all(np.isfinite(self.B)) or self.B.ndim > 2:
            raise ValueError(f"B={B!r} must be a finite scalar or matrix")

    def affine_terms(self, d: int):
        B = self.B * np.eye(d) if self.B.ndim == 0 else self.B
        if B.shape != (d, d):
            raise ValueError(f"B has shape {B.shape}; expected ({d}, {d})")
        return np.zeros((d, d)), B

    def __repr__(self):
        return f"MeanFieldAffine(B={self.B.tolist()})"


PAIRWISE_METHODS = ("direct", "pm")


class PairwiseInteraction(Interaction):
    """:math:`-\\frac1N\\sum_j\\nabla W(X_i - X_j)` for a :class:`Kernel` ``W``.

    Parameters
    ----------
    kernel
        A :class:`Kernel`.
    method
        ``"direct"`` (:math:`O(N^2)`, the reference) or ``"pm"`` (particle--mesh).
    grid
        For ``"pm"``: the mesh (a :class:`~mfg_solvers.grid.Grid`); its periodic axes are
        treated as periodic, the others as free space. Particles must lie in its box. If
        ``None``, ``shape`` nodes per axis are placed on the particles' bounding box (padded by
        one cell) at every evaluation.
    shape
        Nodes per axis for the automatic mesh (default 128).
    period
        For ``"direct"``: the period of each axis (``None`` or ``inf`` for non-periodic axes),
        giving the minimal-image sum. Set automatically by the integrators from a periodic box.
    """

    def __init__(self, kernel: Kernel, method: str = "pm", grid: Grid | None = None,
                 shape=128, period=None):
        if not isinstance(kernel, Kernel):
            raise TypeError(f"kernel={kernel!r} must be a mfg_solvers.particles Kernel")
        if method not in PAIRWISE_METHODS:
            raise ValueError(f"method={method!r} is not known; allowed: {list(PAIRWISE_METHODS)}")
        if grid is not None and not isinstance(grid, Grid):
            raise TypeError(f"grid={grid!r} must be a mfg_solvers.Grid or None")
        self.kernel = kernel
        self.method = method
        self.grid = grid
        self.shape = shape
        self.period = period
        self.origin = None
        self._kernel_cache: dict = {}

    def check_dim(self, d):
        if self.grid is not None and self.grid.dim != d:
            raise ValueError(f"grid has dimension {self.grid.dim}; the particles have {d}")

    def with_box(self, box):
        """A copy whose direct sum and mesh follow the periodic axes of a :class:`Box`."""
        from .boundaries import PERIODIC

        period = [np.inf] * box.dim
        origin = [0.0] * box.dim
        for k in range(box.dim):
            if box.codes[k] == PERIODIC:
                period[k] = box.hi[k] - box.lo[k]
                origin[k] = box.lo[k]
        out = PairwiseInteraction(self.kernel, self.method, self.grid, self.shape,
                                  self.period if self.period is not None else period)
        out.origin = origin
        # same kernel: the sampled-kernel FFTs (keyed by the mesh and the kernel's parameters)
        # stay valid, so the copy shares the cache
        out._kernel_cache = self._kernel_cache
        return out

    def __repr__(self):
        return f"PairwiseInteraction({self.kernel!r}, method={self.method!r})"

    # -- evaluation -------------------------------------------------------------------------
    def add_drift(self, X, alive, out, n_total, comm=None):
        """``out += -(1/n_total) sum_j grad W(X_i - X_j)`` (all ranks' particles with ``comm``)."""
        if self.method == "direct":
            self._direct(X, alive, out, n_total, comm)
        else:
            self._pm(X, alive, out, n_total, comm)

    def _periods(self, d):
        per = self.period
        if per is None:
            per = [np.inf] * d
        per = np.asarray(per, dtype=float).reshape(-1)
        if per.size != d:
            raise ValueError(f"period has {per.size} entries; expected {d}")
        flags = np.isfinite(per).astype(np.int64)
        return flags, np.where(np.isfinite(per), per, 1.0)

    def _direct(self, X, alive, out, n_total, comm):
        d = X.shape[1]
        Y, yal = X, alive
        if comm is not None and comm.Get_size() > 1:
            from .mpi import allgather_rows

            Y = allgather_rows(comm, X)
            yal = allgather_rows(comm, alive)
        flags, per = self._periods(d)
        _direct_kernel(X, alive, Y, yal, self.kernel.kind, self.kernel.params, flags, per,
                       1.0 / n_total, out)

    def mesh_for(self, X, alive, comm=None) -> Grid:
        """The mesh used for particles ``X``: the fixed grid, or ``shape`` nodes per axis on the
        period of a periodic axis and on the (padded) bounding box of the others."""
        if self.grid is not None:
            return self.grid
        X = _check_positions(X, finite=False)
        al = _alive_array(alive, X.shape[0])
        lo, hi, _ = live_bounds(X, al)
        return self._auto_mesh(lo, hi, X.shape[1], comm)

    def _auto_mesh(self, lo, hi, d, comm=None) -> Grid:
        """The automatic mesh from the local bounds ``lo``, ``hi`` of the live particles."""
        flags, per = self._periods(d)
        origin = np.zeros(d) if self.origin is None else np.asarray(self.origin, dtype=float)
        if comm is not None and comm.Get_size() > 1:
            from mpi4py import MPI

            lo = np.array(lo, dtype=float)
            hi = np.array(hi, dtype=float)
            comm.Allreduce(MPI.IN_PLACE, lo, op=MPI.MIN)
            comm.Allreduce(MPI.IN_PLACE, hi, op=MPI.MAX)
        if not np.all(np.isfinite(lo)):  # no live particle anywhere
            lo, hi = np.zeros(d), np.ones(d)
        shape = _shape_tuple(self.shape, d)
        bounds, names = [], []
        for k in range(d):
            if flags[k]:
                bounds.append((origin[k], origin[k] + per[k]))
                names.append("periodic")
            else:
                width = max(hi[k] - lo[k], 1e-12 * max(1.0, abs(lo[k])))
                h = width / (shape[k] - 3)
                bounds.append((lo[k] - h, hi[k] + h))
                names.append("neumann")
        return Grid(bounds, shape, names)

    def _grad_kernel_fft(self, grid: Grid):
        """rFFT of the sampled kernel gradient on the (padded) convolution grid, per component."""
        key = (grid.shape, grid.bounds, grid.boundary, self.kernel.kind,
               self.kernel.params.tobytes())
        if key in self._kernel_cache:
            return self._kernel_cache[key]
        ext, disp = [], []
        for k in range(grid.dim):
            n, h = grid.shape[k], grid.spacing[k]
            if grid.periodic[k]:
                P = n
                j = np.arange(P)
                dk = np.where(j <= P // 2, j, j - P).astype(float) * h
            else:
                P = 2 * n
                j = np.arange(P)
                dk = np.where(j < n, j, j - P).astype(float) * h
                dk[n] = 0.0  # unused wrap slot
            ext.append(P)
            disp.append(dk)
        D = np.meshgrid(*disp, indexing="ij")
        G = [np.array(g) for g in self.kernel.gradient(*D)]
        for k in range(grid.dim):
            if grid.periodic[k] and ext[k] % 2 == 0:
                # half a period along axis k: both images are as near; the component along k is
                # odd in the displacement and averages to zero, the others are even and stay
                idx = [slice(None)] * grid.dim
                idx[k] = ext[k] // 2
                G[k][tuple(idx)] = 0.0
        ffts = [np.fft.rfftn(g) for g in G]
        self._kernel_cache.clear()  # one mesh at a time (the cache may be shared by copies)
        self._kernel_cache[key] = (tuple(ext), ffts)
        return tuple(ext), ffts

    def mesh_field(self, masses: np.ndarray, grid: Grid) -> np.ndarray:
        """Node values of :math:`-\\sum_b \\nabla W(x_a - x_b)\\,q_b` (shape ``(*shape, d)``).

        The circular convolution on the extended grid, transformed axis by axis: the forward
        transforms skip the zero padding of the masses, the inverse ones drop the padded part
        of each axis as soon as it is transformed (the result equals the full transform's).
        """
        ext, ffts = self._grad_kernel_fft(grid)
        d = grid.dim
        # threads pay off on large meshes only; the values do not depend on them
        workers = numba.get_num_threads() if math.prod(ext) >= _FFT_THREADED_SIZE else 1
        q = scipy.fft.rfft(np.asarray(masses, dtype=float), n=ext[-1], axis=-1, workers=workers)
        for k in range(d - 2, -1, -1):
            q = scipy.fft.fft(q, n=ext[k], axis=k, overwrite_x=True, workers=workers)
        out = np.empty(grid.shape + (d,))
        for c in range(d):
            p = q * ffts[c]
            for k in range(d - 1):
                p = scipy.fft.ifft(p, axis=k, overwrite_x=True, workers=workers)
                p = p[(slice(None),) * k + (slice(0, grid.shape[k]),)]
            f = scipy.fft.irfft(p, n=ext[-1], axis=-1, workers=workers)
            np.negative(f[..., : grid.shape[-1]], out=out[..., c])
        return out

    def _pm(self, X, alive, out, n_total, comm, fresh=False):
        """Particle--mesh drift added to ``out``. ``fresh=True`` (:func:`interaction_drift`):
        ``out`` is uninitialised and overwritten, and non-finite positions are reported before
        particles outside the mesh."""
        X = _check_positions(X, finite=False)
        al = _alive_array(alive, X.shape[0])
        d = X.shape[1]
        # one pass over the particles: bounds of the live ones and the non-finite count
        lo, hi, n_bad = live_bounds(X, al)
        if n_bad and fresh:
            raise ValueError(f"X contains {n_bad} particle(s) with NaN or infinite coordinates")
        grid = self.grid if self.grid is not None else self._auto_mesh(lo, hi, d, comm)
        if grid.dim != d:
            raise ValueError(f"X has shape {X.shape}; the grid/box has dimension {grid.dim}")
        for k in range(d):
            if not grid.periodic[k]:
                a, b = grid.bounds[k]
                if lo[k] < a or hi[k] > b:
                    raise ValueError(
                        f"particles leave the particle-mesh box along axis {k} "
                        f"([{a}, {b}]); enlarge the grid or use grid=None"
                    )
        if n_bad:
            raise ValueError(f"X contains {n_bad} particle(s) with NaN or infinite coordinates")
        masses, _ = _deposit_checked(X, grid, 1, np.empty(0), al, comm)
        F = self.mesh_field(masses.reshape(grid.shape) / n_total, grid)
        glo, gh, shape, periodic = grid_geometry(grid)
        Ff = np.ascontiguousarray(F.reshape(grid.size, d))
        with threads_for(X.shape[0]):
            _gather_kernel(X, al, glo, gh, shape, periodic, Ff, Ff, 0.0, 1.0, out, GATHER_BLOCK,
                           assign=fresh)


def _shape_tuple(shape, d):
    s = (int(shape),) * d if np.isscalar(shape) else tuple(int(v) for v in shape)
    if len(s) != d or min(s) < 4:
        raise ValueError(f"shape={shape!r} must give >= 4 nodes on each of the {d} axes")
    return s


def interaction_drift(X, interaction: PairwiseInteraction, alive=None) -> np.ndarray:
    """The interaction drift ``(N, d)`` of the cloud ``X`` (one evaluation, no time stepping)."""
    if not isinstance(interaction, PairwiseInteraction):
        raise TypeError(f"interaction={interaction!r} must be a PairwiseInteraction")
    pm = interaction.method == "pm"
    # the particle-mesh evaluation checks finiteness in its pass over the particles
    X = _check_positions(X, finite=not pm)
    try:
        interaction.check_dim(X.shape[1])
        al = _alive_array(alive, X.shape[0])
    except ValueError:
        _check_positions(X)  # non-finite positions are reported first
        raise
    n = X.shape[0]
    work = n * float(n) / 16.0 if not pm else float(n)
    with threads_for(work):
        if pm:
            out = np.empty_like(X)
            interaction._pm(X, al, out, float(n), None, fresh=True)
        else:
            out = np.zeros_like(X)
            interaction.add_drift(X, al, out, float(n))
    return out
