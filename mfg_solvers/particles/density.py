"""Densities from particles: histogram and cloud-in-cell deposition on a grid, and kernel density
estimates; plus the grid-to-particle interpolation that shares the same weights.

Deposition onto a :class:`~mfg_solvers.grid.Grid`
--------------------------------------------------
A particle of mass :math:`w_p` (default :math:`1/N`) is spread over the nodes by

* ``"ngp"`` (histogram, nearest grid point): all of :math:`w_p` to the nearest node;
* ``"cic"`` (cloud in cell): multilinear weights :math:`\\prod_k (1 - |x_k - x_{i,k}|/h_k)` to the
  :math:`2^d` nodes of its cell.

The node masses are divided by the volume of the node's dual cell (:math:`h^d`, halved on each
Neumann wall the node lies on) to give a density. For a linear density CIC is unbiased at the
interior nodes; on a wall node it gives the density at the centroid of its half cell,
:math:`h/3` inside the wall (an :math:`O(h)` bias, like the first-order FD density there).
With ``normalise=True`` (default) the result is rescaled
to the package convention :math:`h^d\\sum_i m_i = 1` (``Grid.integrate``); the vertex-centred FD
scheme uses the same convention, so the deposited density can be compared with an FD density node
by node. Particles outside the box of a Neumann axis are dropped (their number is reported by
:func:`deposit_masses`); periodic axes wrap.

Parallel deposition is deterministic: particles are cut into fixed chunks of
:data:`DEPOSIT_CHUNK`, and the chunks are accumulated into a fixed number of private grids (a
function of ``N`` and the grid size only) that are summed in a fixed order -- the result does not
depend on the number of threads.

Kernel density estimate
-----------------------
:math:`\\hat m(x) = \\sum_p w_p \\prod_k \\varphi_{b_k}(x_k - X_{p,k})` with a Gaussian
:math:`\\varphi_b` and per-axis bandwidths from the normal-reference rule

* ``"silverman"``: :math:`b_k = \\big(\\tfrac{4}{d+2}\\big)^{1/(d+4)} N^{-1/(d+4)}\\,\\hat s_k`
  (in 1-D :math:`1.06\\,\\hat s\\,N^{-1/5}`), optimal in mean integrated squared error for
  Gaussian data;
* ``"scott"``: :math:`b_k = N^{-1/(d+4)}\\,\\hat s_k`;

with :math:`\\hat s_k = \\min(\\text{sd}_k, \\text{IQR}_k / 1.349)` (robust spread). On a grid the
estimate is *binned*: CIC masses are convolved with the sampled Gaussian by FFT, axis by axis, in
:math:`O(N + G\\log G)`; this differs from the exact estimate (:func:`kde_at`) by
:math:`O(h^2)`. On Neumann axes the data are mirrored about the walls (reflection estimator),
on periodic axes the kernel is wrapped.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ..grid import Grid
from ._threads import threads_for

#: Particles per deposition chunk.
DEPOSIT_CHUNK = 1 << 15
#: Upper bound on the number of private grids times the grid size (memory of deposition).
_MAX_PRIVATE = 1 << 24


# ---------------------------------------------------------------------------------------------
# grid geometry
# ---------------------------------------------------------------------------------------------
def grid_geometry(grid: Grid):
    """``(lo, h, shape, periodic)`` arrays describing ``grid`` to the numba kernels."""
    if not isinstance(grid, Grid):
        raise TypeError(f"grid={grid!r} must be a mfg_solvers.Grid")
    lo = np.array([a for a, _ in grid.bounds], dtype=float)
    h = np.array(grid.spacing, dtype=float)
    shape = np.array(grid.shape, dtype=np.int64)
    periodic = np.array(grid.periodic, dtype=np.int64)
    return lo, h, shape, periodic


@njit(cache=True)
def _axis_cell(x, lo, h, n, periodic, clamp):
    """Cell of coordinate ``x`` on one axis: ``(inside, i0, i1, w)`` with lower node ``i0``,
    upper node ``i1`` and the weight ``w`` of ``i1`` (``1 - w`` goes to ``i0``).

    ``inside`` is False when ``x`` is outside a non-periodic axis and ``clamp`` is False; with
    ``clamp`` such a coordinate is moved to the nearest end node (constant extrapolation).
    Periodic axes wrap (node ``n - 1`` neighbours node 0).
    """
    s = (x - lo) / h
    if periodic:
        if not (s > 0.0 and s < n):  # s % n is s itself inside the period (exactly)
            s = s % n
        i0 = np.int64(math.floor(s))
        if i0 >= n:
            i0 = n - 1
        i1 = i0 + 1 if i0 + 1 < n else np.int64(0)
        return True, i0, i1, s - i0
    if s < 0.0 or s > n - 1:
        if not clamp:
            return False, np.int64(0), np.int64(0), 0.0
        s = 0.0 if s < 0.0 else float(n - 1)
    i0 = np.int64(math.floor(s))
    if i0 > n - 2:
        i0 = n - 2
    return True, i0, i0 + 1, s - i0


# Deposition kernels, one per dimension. Particles are taken in chunks of ``chunk``; chunk ``c``
# goes to private grid ``c % P`` (``P = partials.shape[0]``), in increasing particle order, so the
# partial grids, and their sum in :func:`_sum_partials`, do not depend on the thread count.
# ``order`` 0: nearest node; 1: multilinear (CIC) weights. A particle's weight on a corner of its
# cell is ``w_p * f_0 * f_1 * f_2`` (multiplied in this order) with ``f_k`` the weight of the
# corner's node on axis ``k``. ``dropped[p]``: live particles outside a non-periodic axis.
@njit(cache=True, parallel=True)
def _deposit1_kernel(X, weights, alive, lo, h, shape, periodic, order, chunk, partials, dropped):
    N = X.shape[0]
    P = partials.shape[0]
    nchunks = (N + chunk - 1) // chunk
    has_w = weights.shape[0] > 0
    l0, h0, n0, p0 = lo[0], h[0], shape[0], periodic[0] != 0
    for p in prange(P):
        acc = partials[p]
        lost = 0
        for c in range(p, nchunks, P):
            for i in range(c * chunk, min(N, (c + 1) * chunk)):
                if alive[i] == 0:
                    continue
                ok, a0, b0, w0 = _axis_cell(X[i, 0], l0, h0, n0, p0, False)
                if not ok:
                    lost += 1
                    continue
                wi = weights[i] if has_w else 1.0
                if order == 0:
                    acc[b0 if w0 >= 0.5 else a0] += wi
                else:
                    acc[a0] += wi * (1.0 - w0)
                    acc[b0] += wi * w0
        dropped[p] = lost


@njit(cache=True, parallel=True)
def _deposit2_kernel(X, weights, alive, lo, h, shape, periodic, order, chunk, partials, dropped):
    N = X.shape[0]
    P = partials.shape[0]
    nchunks = (N + chunk - 1) // chunk
    has_w = weights.shape[0] > 0
    l0, h0, n0, p0 = lo[0], h[0], shape[0], periodic[0] != 0
    l1, h1, n1, p1 = lo[1], h[1], shape[1], periodic[1] != 0
    for p in prange(P):
        acc = partials[p]
        lost = 0
        for c in range(p, nchunks, P):
            for i in range(c * chunk, min(N, (c + 1) * chunk)):
                if alive[i] == 0:
                    continue
                ok, a0, b0, w0 = _axis_cell(X[i, 0], l0, h0, n0, p0, False)
                if not ok:
                    lost += 1
                    continue
                ok, a1, b1, w1 = _axis_cell(X[i, 1], l1, h1, n1, p1, False)
                if not ok:
                    lost += 1
                    continue
                wi = weights[i] if has_w else 1.0
                if order == 0:
                    acc[(b0 if w0 >= 0.5 else a0) * n1 + (b1 if w1 >= 0.5 else a1)] += wi
                else:
                    v0 = 1.0 - w0
                    v1 = 1.0 - w1
                    ra = a0 * n1
                    rb = b0 * n1
                    acc[ra + a1] += wi * v0 * v1
                    acc[rb + a1] += wi * w0 * v1
                    acc[ra + b1] += wi * v0 * w1
                    acc[rb + b1] += wi * w0 * w1
        dropped[p] = lost


@njit(cache=True, parallel=True)
def _deposit3_kernel(X, weights, alive, lo, h, shape, periodic, order, chunk, partials, dropped):
    N = X.shape[0]
    P = partials.shape[0]
    nchunks = (N + chunk - 1) // chunk
    has_w = weights.shape[0] > 0
    l0, h0, n0, p0 = lo[0], h[0], shape[0], periodic[0] != 0
    l1, h1, n1, p1 = lo[1], h[1], shape[1], periodic[1] != 0
    l2, h2, n2, p2 = lo[2], h[2], shape[2], periodic[2] != 0
    for p in prange(P):
        acc = partials[p]
        lost = 0
        for c in range(p, nchunks, P):
            for i in range(c * chunk, min(N, (c + 1) * chunk)):
                if alive[i] == 0:
                    continue
                ok, a0, b0, w0 = _axis_cell(X[i, 0], l0, h0, n0, p0, False)
                if not ok:
                    lost += 1
                    continue
                ok, a1, b1, w1 = _axis_cell(X[i, 1], l1, h1, n1, p1, False)
                if not ok:
                    lost += 1
                    continue
                ok, a2, b2, w2 = _axis_cell(X[i, 2], l2, h2, n2, p2, False)
                if not ok:
                    lost += 1
                    continue
                wi = weights[i] if has_w else 1.0
                if order == 0:
                    j0 = b0 if w0 >= 0.5 else a0
                    j1 = b1 if w1 >= 0.5 else a1
                    acc[(j0 * n1 + j1) * n2 + (b2 if w2 >= 0.5 else a2)] += wi
                else:
                    v0 = 1.0 - w0
                    v1 = 1.0 - w1
                    v2 = 1.0 - w2
                    raa = (a0 * n1 + a1) * n2
                    rba = (b0 * n1 + a1) * n2
                    rab = (a0 * n1 + b1) * n2
                    rbb = (b0 * n1 + b1) * n2
                    acc[raa + a2] += wi * v0 * v1 * v2
                    acc[rba + a2] += wi * w0 * v1 * v2
                    acc[rab + a2] += wi * v0 * w1 * v2
                    acc[rbb + a2] += wi * w0 * w1 * v2
                    acc[raa + b2] += wi * v0 * v1 * w2
                    acc[rba + b2] += wi * w0 * v1 * w2
                    acc[rab + b2] += wi * v0 * w1 * w2
                    acc[rbb + b2] += wi * w0 * w1 * w2
        dropped[p] = lost


_DEPOSIT_KERNELS = {1: _deposit1_kernel, 2: _deposit2_kernel, 3: _deposit3_kernel}


@njit(cache=True, parallel=True)
def _sum_partials(partials, out):
    """``out = partials[0] + partials[1] + ...``, added in this order at every node."""
    P, G = partials.shape
    nb = (G + 4095) // 4096
    for b in prange(nb):
        for g in range(b * 4096, min(G, (b + 1) * 4096)):
            s = partials[0, g]
            for p in range(1, P):
                s += partials[p, g]
            out[g] = s


@njit(cache=True)
def _node_value(F0, F1, f, c, wt, u, blend):
    """``F0[f, c]``, or ``u F0[f, c] + wt F1[f, c]`` (``u = 1 - wt``) when ``blend``."""
    if blend:
        return u * F0[f, c] + wt * F1[f, c]
    return F0[f, c]


# Gathering kernels, one per dimension: ``out[i, c] += scale * sum_corners w F[corner, c]`` with
# ``F = (1 - wt) F0 + wt F1`` and multilinear weights ``w = f_0 f_1 f_2`` (corners in the order of
# their bits, axis 0 fastest; corners of weight zero skipped). Non-periodic axes are clamped.
# With ``assign`` the sum is added to 0 instead of ``out[i, c]`` and dead particles get 0.
# Fields with one component per axis (``m = d``: drifts, interaction forces) take an unrolled
# path with all components accumulated at once; other ``m`` loop over the components. Both add
# the same terms in the same order.
@njit(cache=True, parallel=True)
def _gather1_kernel(X, alive, lo, h, shape, periodic, F0, F1, wt, scale, out, block, assign):
    N = X.shape[0]
    m = F0.shape[1]
    nb = (N + block - 1) // block
    blend = wt != 0.0
    u = 1.0 - wt
    l0, h0, n0, p0 = lo[0], h[0], shape[0], periodic[0] != 0
    for b in prange(nb):
        for i in range(b * block, min(N, (b + 1) * block)):
            if alive[i] == 0:
                if assign:
                    for c in range(m):
                        out[i, c] = 0.0
                continue
            _, a0, b0, w0 = _axis_cell(X[i, 0], l0, h0, n0, p0, True)
            v0 = 1.0 - w0
            for c in range(m):
                acc = 0.0
                if v0 != 0.0:
                    acc += v0 * _node_value(F0, F1, a0, c, wt, u, blend)
                if w0 != 0.0:
                    acc += w0 * _node_value(F0, F1, b0, c, wt, u, blend)
                out[i, c] = (0.0 if assign else out[i, c]) + scale * acc


@njit(cache=True, parallel=True)
def _gather2_kernel(X, alive, lo, h, shape, periodic, F0, F1, wt, scale, out, block, assign):
    N = X.shape[0]
    m = F0.shape[1]
    nb = (N + block - 1) // block
    blend = wt != 0.0
    u = 1.0 - wt
    l0, h0, n0, p0 = lo[0], h[0], shape[0], periodic[0] != 0
    l1, h1, n1, p1 = lo[1], h[1], shape[1], periodic[1] != 0
    for b in prange(nb):
        for i in range(b * block, min(N, (b + 1) * block)):
            if alive[i] == 0:
                if assign:
                    for c in range(m):
                        out[i, c] = 0.0
                continue
            _, a0, b0, w0 = _axis_cell(X[i, 0], l0, h0, n0, p0, True)
            _, a1, b1, w1 = _axis_cell(X[i, 1], l1, h1, n1, p1, True)
            v0 = 1.0 - w0
            v1 = 1.0 - w1
            caa, cba, cab, cbb = v0 * v1, w0 * v1, v0 * w1, w0 * w1
            faa, fba = a0 * n1 + a1, b0 * n1 + a1
            fab, fbb = a0 * n1 + b1, b0 * n1 + b1
            if m == 2:
                s0 = 0.0
                s1 = 0.0
                if caa != 0.0:
                    s0 += caa * _node_value(F0, F1, faa, 0, wt, u, blend)
                    s1 += caa * _node_value(F0, F1, faa, 1, wt, u, blend)
                if cba != 0.0:
                    s0 += cba * _node_value(F0, F1, fba, 0, wt, u, blend)
                    s1 += cba * _node_value(F0, F1, fba, 1, wt, u, blend)
                if cab != 0.0:
                    s0 += cab * _node_value(F0, F1, fab, 0, wt, u, blend)
                    s1 += cab * _node_value(F0, F1, fab, 1, wt, u, blend)
                if cbb != 0.0:
                    s0 += cbb * _node_value(F0, F1, fbb, 0, wt, u, blend)
                    s1 += cbb * _node_value(F0, F1, fbb, 1, wt, u, blend)
                out[i, 0] = (0.0 if assign else out[i, 0]) + scale * s0
                out[i, 1] = (0.0 if assign else out[i, 1]) + scale * s1
                continue
            for c in range(m):
                acc = 0.0
                if caa != 0.0:
                    acc += caa * _node_value(F0, F1, faa, c, wt, u, blend)
                if cba != 0.0:
                    acc += cba * _node_value(F0, F1, fba, c, wt, u, blend)
                if cab != 0.0:
                    acc += cab * _node_value(F0, F1, fab, c, wt, u, blend)
                if cbb != 0.0:
                    acc += cbb * _node_value(F0, F1, fbb, c, wt, u, blend)
                out[i, c] = (0.0 if assign else out[i, c]) + scale * acc


@njit(cache=True, parallel=True)
def _gather3_kernel(X, alive, lo, h, shape, periodic, F0, F1, wt, scale, out, block, assign):
    N = X.shape[0]
    m = F0.shape[1]
    nb = (N + block - 1) // block
    blend = wt != 0.0
    u = 1.0 - wt
    l0, h0, n0, p0 = lo[0], h[0], shape[0], periodic[0] != 0
    l1, h1, n1, p1 = lo[1], h[1], shape[1], periodic[1] != 0
    l2, h2, n2, p2 = lo[2], h[2], shape[2], periodic[2] != 0
    for b in prange(nb):
        for i in range(b * block, min(N, (b + 1) * block)):
            if alive[i] == 0:
                if assign:
                    for c in range(m):
                        out[i, c] = 0.0
                continue
            _, a0, b0, w0 = _axis_cell(X[i, 0], l0, h0, n0, p0, True)
            _, a1, b1, w1 = _axis_cell(X[i, 1], l1, h1, n1, p1, True)
            _, a2, b2, w2 = _axis_cell(X[i, 2], l2, h2, n2, p2, True)
            v0 = 1.0 - w0
            v1 = 1.0 - w1
            v2 = 1.0 - w2
            caa, cba, cab, cbb = v0 * v1, w0 * v1, v0 * w1, w0 * w1
            raa, rba = (a0 * n1 + a1) * n2, (b0 * n1 + a1) * n2
            rab, rbb = (a0 * n1 + b1) * n2, (b0 * n1 + b1) * n2
            # the eight corners: weight k* and flat node f*, axis-2 bit last
            k0, k1, k2, k3 = caa * v2, cba * v2, cab * v2, cbb * v2
            k4, k5, k6, k7 = caa * w2, cba * w2, cab * w2, cbb * w2
            f0, f1, f2, f3 = raa + a2, rba + a2, rab + a2, rbb + a2
            f4, f5, f6, f7 = raa + b2, rba + b2, rab + b2, rbb + b2
            if m == 3:
                s0 = 0.0
                s1 = 0.0
                s2 = 0.0
                if k0 != 0.0:
                    s0 += k0 * _node_value(F0, F1, f0, 0, wt, u, blend)
                    s1 += k0 * _node_value(F0, F1, f0, 1, wt, u, blend)
                    s2 += k0 * _node_value(F0, F1, f0, 2, wt, u, blend)
                if k1 != 0.0:
                    s0 += k1 * _node_value(F0, F1, f1, 0, wt, u, blend)
                    s1 += k1 * _node_value(F0, F1, f1, 1, wt, u, blend)
                    s2 += k1 * _node_value(F0, F1, f1, 2, wt, u, blend)
                if k2 != 0.0:
                    s0 += k2 * _node_value(F0, F1, f2, 0, wt, u, blend)
                    s1 += k2 * _node_value(F0, F1, f2, 1, wt, u, blend)
                    s2 += k2 * _node_value(F0, F1, f2, 2, wt, u, blend)
                if k3 != 0.0:
                    s0 += k3 * _node_value(F0, F1, f3, 0, wt, u, blend)
                    s1 += k3 * _node_value(F0, F1, f3, 1, wt, u, blend)
                    s2 += k3 * _node_value(F0, F1, f3, 2, wt, u, blend)
                if k4 != 0.0:
                    s0 += k4 * _node_value(F0, F1, f4, 0, wt, u, blend)
                    s1 += k4 * _node_value(F0, F1, f4, 1, wt, u, blend)
                    s2 += k4 * _node_value(F0, F1, f4, 2, wt, u, blend)
                if k5 != 0.0:
                    s0 += k5 * _node_value(F0, F1, f5, 0, wt, u, blend)
                    s1 += k5 * _node_value(F0, F1, f5, 1, wt, u, blend)
                    s2 += k5 * _node_value(F0, F1, f5, 2, wt, u, blend)
                if k6 != 0.0:
                    s0 += k6 * _node_value(F0, F1, f6, 0, wt, u, blend)
                    s1 += k6 * _node_value(F0, F1, f6, 1, wt, u, blend)
                    s2 += k6 * _node_value(F0, F1, f6, 2, wt, u, blend)
                if k7 != 0.0:
                    s0 += k7 * _node_value(F0, F1, f7, 0, wt, u, blend)
                    s1 += k7 * _node_value(F0, F1, f7, 1, wt, u, blend)
                    s2 += k7 * _node_value(F0, F1, f7, 2, wt, u, blend)
                out[i, 0] = (0.0 if assign else out[i, 0]) + scale * s0
                out[i, 1] = (0.0 if assign else out[i, 1]) + scale * s1
                out[i, 2] = (0.0 if assign else out[i, 2]) + scale * s2
                continue
            for c in range(m):
                acc = 0.0
                if k0 != 0.0:
                    acc += k0 * _node_value(F0, F1, f0, c, wt, u, blend)
                if k1 != 0.0:
                    acc += k1 * _node_value(F0, F1, f1, c, wt, u, blend)
                if k2 != 0.0:
                    acc += k2 * _node_value(F0, F1, f2, c, wt, u, blend)
                if k3 != 0.0:
                    acc += k3 * _node_value(F0, F1, f3, c, wt, u, blend)
                if k4 != 0.0:
                    acc += k4 * _node_value(F0, F1, f4, c, wt, u, blend)
                if k5 != 0.0:
                    acc += k5 * _node_value(F0, F1, f5, c, wt, u, blend)
                if k6 != 0.0:
                    acc += k6 * _node_value(F0, F1, f6, c, wt, u, blend)
                if k7 != 0.0:
                    acc += k7 * _node_value(F0, F1, f7, c, wt, u, blend)
                out[i, c] = (0.0 if assign else out[i, c]) + scale * acc


_GATHER_KERNELS = {1: _gather1_kernel, 2: _gather2_kernel, 3: _gather3_kernel}


def _gather_kernel(X, alive, lo, h, shape, periodic, F0, F1, wt, scale, out, block,
                   assign=False):
    """``out[i] += scale * ((1 - wt) F0 + wt F1)`` interpolated multilinearly at ``X[i]``.

    ``F0``, ``F1``: node fields of shape ``(G, m)`` (flat node index, C order); non-periodic axes
    are clamped (constant extrapolation); dead particles are skipped. ``assign=True`` writes
    ``0 + ...`` instead (0 for dead particles): the same values as adding to a zero array, into
    an uninitialised one. Dispatches to the kernel of ``X.shape[1]``.
    """
    _GATHER_KERNELS[X.shape[1]](X, alive, lo, h, shape, periodic, F0, F1, float(wt),
                                float(scale), out, block, bool(assign))


@njit(cache=True, parallel=True)
def _bounds_kernel(X, alive, block, lo, hi, nan, nonfinite):
    """Per block ``b`` of particles: min ``lo[b]`` and max ``hi[b]`` per axis of the non-NaN
    coordinates of live particles, ``nan[b, k] = 1`` if a live one is NaN on axis ``k``, and
    ``nonfinite[b]``: particles (live or not) with a NaN or infinite coordinate."""
    N, d = X.shape
    nb = lo.shape[0]
    for b in prange(nb):
        mn0 = mn1 = mn2 = np.inf
        mx0 = mx1 = mx2 = -np.inf
        bad = 0
        start, stop = b * block, min(N, (b + 1) * block)
        for i in range(start, stop):
            x0 = float(X[i, 0])
            x1 = float(X[i, 1]) if d > 1 else 0.0
            x2 = float(X[i, 2]) if d > 2 else 0.0
            # x - x is 0 for a finite x, NaN for NaN or an infinity
            if (x0 - x0) + (x1 - x1) + (x2 - x2) != 0.0:
                bad += 1
            if alive[i] != 0:
                if x0 < mn0:
                    mn0 = x0
                if x0 > mx0:
                    mx0 = x0
                if x1 < mn1:
                    mn1 = x1
                if x1 > mx1:
                    mx1 = x1
                if x2 < mn2:
                    mn2 = x2
                if x2 > mx2:
                    mx2 = x2
        nonfinite[b] = bad
        lo[b, 0], hi[b, 0] = mn0, mx0
        if d > 1:
            lo[b, 1], hi[b, 1] = mn1, mx1
        if d > 2:
            lo[b, 2], hi[b, 2] = mn2, mx2
        for k in range(d):
            nan[b, k] = 0
        if bad > 0:  # NaN coordinates of live particles
            for i in range(start, stop):
                if alive[i] != 0:
                    for k in range(d):
                        if X[i, k] != X[i, k]:
                            nan[b, k] = 1


#: Particles per block of :func:`live_bounds`.
BOUNDS_BLOCK = 1 << 14


def live_bounds(X, alive):
    """``(lo, hi, n_nonfinite)`` of a checked ``(N, d)`` float64 array in one parallel pass.

    ``lo``/``hi``: per-axis min/max of the live particles' coordinates, as NumPy's ``min`` and
    ``max`` of the live rows give them (NaN on an axis with a NaN coordinate, ``+inf``/``-inf``
    without live particles); ``n_nonfinite``: particles, live or not, with a NaN or infinite
    coordinate. ``alive``: ``(N,)`` uint8 (0 = dead).
    """
    N, d = X.shape
    nb = max(1, -(-N // BOUNDS_BLOCK))
    lo = np.empty((nb, d))
    hi = np.empty((nb, d))
    nan = np.zeros((nb, d), dtype=np.uint8)
    bad = np.zeros(nb, dtype=np.int64)
    with threads_for(N):
        _bounds_kernel(X, alive, BOUNDS_BLOCK, lo, hi, nan, bad)
    lo = lo.min(axis=0)
    hi = hi.max(axis=0)
    isnan = nan.any(axis=0)
    lo[isnan] = np.nan
    hi[isnan] = np.nan
    return lo, hi, int(bad.sum())


GATHER_BLOCK = 1024


def interpolate(X, grid: Grid, field, alive=None) -> np.ndarray:
    """Multilinear interpolation of a node field at the particles.

    ``field`` has shape ``grid.shape`` (scalar) or ``(*grid.shape, m)``; the result has shape
    ``(N,)`` or ``(N, m)``. Exact for fields that are multilinear in each cell; second order for
    smooth fields. Non-periodic axes extrapolate by the boundary value.
    """
    X = _check_positions(X, grid.dim)
    field = np.asarray(field, dtype=float)
    scalar = field.shape == grid.shape
    if not scalar and field.shape[:-1] != grid.shape:
        raise ValueError(
            f"field has shape {field.shape}; expected {grid.shape} or {grid.shape} + (m,)"
        )
    F = np.ascontiguousarray(field.reshape(grid.size, -1))
    lo, h, shape, periodic = grid_geometry(grid)
    out = np.empty((X.shape[0], F.shape[1]))
    al = _alive_array(alive, X.shape[0])
    with threads_for(X.shape[0]):
        _gather_kernel(X, al, lo, h, shape, periodic, F, F, 0.0, 1.0, out, GATHER_BLOCK,
                       assign=True)
    return out[:, 0] if scalar else out


# ---------------------------------------------------------------------------------------------
# deposition
# ---------------------------------------------------------------------------------------------
def _check_positions(X, dim=None, name="X", finite=True) -> np.ndarray:
    """``X`` as a C-contiguous float64 ``(N, d)`` array, ``1 <= d <= 3`` (``d = dim`` if given);
    ``finite=False`` leaves the NaN/infinity check to the caller."""
    if not isinstance(X, np.ndarray):
        X = np.asarray(X, dtype=float)
    if X.ndim == 1 and dim == 1:
        X = X[:, None]
    if X.ndim != 2 or not 1 <= X.shape[1] <= 3:
        raise ValueError(f"{name} has shape {X.shape}; expected (n_particles, d) with 1 <= d <= 3")
    if dim is not None and X.shape[1] != dim:
        raise ValueError(f"{name} has shape {X.shape}; the grid/box has dimension {dim}")
    X = np.ascontiguousarray(X, dtype=np.float64)
    if finite and not np.all(np.isfinite(X)):
        bad = int(np.count_nonzero(~np.all(np.isfinite(X), axis=1)))
        raise ValueError(f"{name} contains {bad} particle(s) with NaN or infinite coordinates")
    return X


def _alive_array(alive, n) -> np.ndarray:
    if alive is None:
        return np.ones(n, dtype=np.uint8)
    a = np.asarray(alive)
    if a.shape != (n,):
        raise ValueError(f"alive has shape {a.shape}; expected ({n},)")
    if a.dtype == np.uint8 and a.flags.c_contiguous:
        return a
    return np.ascontiguousarray(a.astype(np.uint8))


def _check_weights(weights, n) -> np.ndarray:
    if weights is None:
        return np.empty(0)
    w = np.ascontiguousarray(np.asarray(weights, dtype=float))
    if w.shape != (n,):
        raise ValueError(f"weights has shape {w.shape}; expected ({n},)")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("weights must be finite and >= 0")
    return w


def dual_cell_volumes(grid: Grid) -> np.ndarray:
    """Volume of each node's dual cell: :math:`h^d`, halved per Neumann wall the node lies on."""
    vol = np.ones(grid.shape)
    for k, (n, h, per) in enumerate(zip(grid.shape, grid.spacing, grid.periodic, strict=True)):
        w = np.full(n, h)
        if not per:
            w[0] = w[-1] = 0.5 * h
        shape = [1] * grid.dim
        shape[k] = n
        vol = vol * w.reshape(shape)
    return vol


_METHODS = {"ngp": 0, "histogram": 0, "cic": 1}


def _deposit_checked(X, grid: Grid, order, w, al, comm=None):
    """:func:`deposit_masses` of checked arrays (``_check_positions``, ``_check_weights``,
    ``_alive_array``): flat node masses and the number of dropped particles."""
    N = X.shape[0]
    lo, h, shape, periodic = grid_geometry(grid)
    nchunks = max(1, -(-N // DEPOSIT_CHUNK))
    P = int(max(1, min(16, nchunks, _MAX_PRIVATE // grid.size)))
    partials = np.zeros((P, grid.size))
    dropped = np.zeros(P, dtype=np.int64)
    masses = np.empty(grid.size)
    with threads_for(N):
        _DEPOSIT_KERNELS[grid.dim](X, w, al, lo, h, shape, periodic, order, DEPOSIT_CHUNK,
                                   partials, dropped)
    with threads_for(P * grid.size):
        _sum_partials(partials, masses)
    n_dropped = int(dropped.sum())
    if comm is not None:
        from .mpi import allreduce_sum

        masses = allreduce_sum(comm, masses)
        n_dropped = int(allreduce_sum(comm, np.array([n_dropped], dtype=np.int64))[0])
    return masses, n_dropped


def deposit_masses(X, grid: Grid, method="cic", weights=None, alive=None, comm=None):
    """Node masses (not divided by volumes) and the number of dropped particles.

    ``weights`` default to 1 per particle. With an MPI ``comm`` the masses and counts are summed
    over ranks. Returns ``(masses, n_dropped)`` with ``masses`` of shape ``grid.shape``.
    """
    if method not in _METHODS:
        raise ValueError(f"method={method!r} is not known; allowed: {sorted(_METHODS)}")
    X = _check_positions(X, grid.dim)
    N = X.shape[0]
    w = _check_weights(weights, N)
    al = _alive_array(alive, N)
    masses, n_dropped = _deposit_checked(X, grid, _METHODS[method], w, al, comm)
    return masses.reshape(grid.shape), n_dropped


def deposit(X, grid: Grid, method="cic", weights=None, alive=None, normalise=True,
            n_total=None, comm=None) -> np.ndarray:
    """Density of the particles on the nodes of ``grid`` (``"cic"`` or ``"ngp"``/``"histogram"``).

    Without ``weights`` every particle carries :math:`1/N_{tot}` (``n_total`` defaults to the
    number of particles, summed over ranks with ``comm``); dead particles (``alive`` False) and
    particles outside the box carry nothing. ``normalise=True`` rescales the result to
    :math:`h^d \\sum m = 1`; otherwise it is the sub-probability density of the particles in the
    box. Raises ValueError when no mass lands on the grid and ``normalise`` is asked for.
    """
    X = _check_positions(X, grid.dim)
    if method not in _METHODS:
        raise ValueError(f"method={method!r} is not known; allowed: {sorted(_METHODS)}")
    w = _check_weights(weights, X.shape[0])
    al = _alive_array(alive, X.shape[0])
    masses, _ = _deposit_checked(X, grid, _METHODS[method], w, al, comm)
    masses = masses.reshape(grid.shape)
    if weights is None:
        if n_total is None:
            n_total = X.shape[0]
            if comm is not None:
                from .mpi import allreduce_sum

                n_total = int(allreduce_sum(comm, np.array([n_total], dtype=np.int64))[0])
        masses = masses / max(int(n_total), 1)
    m = masses / dual_cell_volumes(grid)
    if normalise:
        mass = grid.integrate(m)
        if not mass > 0:
            raise ValueError("no particle mass lies on the grid: cannot normalise the density")
        m = m / mass
    return m


def histogram(X, grid: Grid, **kwargs) -> np.ndarray:
    """Nearest-grid-point histogram density (``deposit(..., method="ngp")``)."""
    return deposit(X, grid, method="ngp", **kwargs)


# ---------------------------------------------------------------------------------------------
# kernel density estimation
# ---------------------------------------------------------------------------------------------
BANDWIDTH_RULES = ("silverman", "scott")


def bandwidth(X, rule="silverman", weights=None) -> np.ndarray:
    """Per-axis Gaussian bandwidths by the normal-reference rule (module docstring)."""
    X = _check_positions(X)
    n, d = X.shape
    if n < 2:
        raise ValueError(f"X has {n} particle(s); a bandwidth rule needs at least 2")
    if weights is not None:
        w = _check_weights(weights, n)
        w = w / w.sum()
        mean = w @ X
        sd = np.sqrt(np.maximum(w @ (X - mean) ** 2, 0.0))
        n_eff = 1.0 / np.sum(w * w)
        spread = sd
    else:
        sd = X.std(axis=0, ddof=1)
        q75, q25 = np.percentile(X, [75, 25], axis=0)
        iqr = (q75 - q25) / 1.349
        spread = np.where(iqr > 0, np.minimum(sd, iqr), sd)
        n_eff = float(n)
    if rule == "silverman":
        factor = (4.0 / (d + 2.0)) ** (1.0 / (d + 4.0)) * n_eff ** (-1.0 / (d + 4.0))
    elif rule == "scott":
        factor = n_eff ** (-1.0 / (d + 4.0))
    else:
        raise ValueError(f"rule={rule!r} is not known; allowed: {list(BANDWIDTH_RULES)}")
    bw = factor * spread
    if not np.all(bw > 0):
        raise ValueError("the particles have zero spread along an axis: give a bandwidth")
    return bw


def _resolve_bandwidth(X, bw, d, weights=None):
    if isinstance(bw, str):
        return bandwidth(X, bw, weights)
    b = np.asarray(bw, dtype=float)
    if b.ndim == 0:
        b = np.full(d, float(b))
    if b.shape != (d,) or not np.all(np.isfinite(b)) or np.any(b <= 0):
        raise ValueError(
            f"bandwidth={bw!r} must be a rule name {list(BANDWIDTH_RULES)}, a positive number "
            f"or {d} positive numbers"
        )
    return b


@njit(cache=True, parallel=True)
def _kde_points_kernel(X, w, Y, bw, out):
    n, d = X.shape
    M = Y.shape[0]
    norm = 1.0
    for k in range(d):
        norm *= 1.0 / (math.sqrt(2.0 * math.pi) * bw[k])
    for a in prange(M):
        s = 0.0
        for p in range(n):
            q = 0.0
            for k in range(d):
                z = (Y[a, k] - X[p, k]) / bw[k]
                q += z * z
            s += w[p] * math.exp(-0.5 * q)
        out[a] = s * norm


def kde_at(X, points, bandwidth="silverman", weights=None) -> np.ndarray:
    """Exact Gaussian KDE evaluated at ``points`` (``(M, d)``), :math:`O(NM)`, parallel."""
    X = _check_positions(X)
    d = X.shape[1]
    Y = _check_positions(points, d, name="points")
    bw = _resolve_bandwidth(X, bandwidth, d, weights)
    w = _check_weights(weights, X.shape[0])
    w = np.full(X.shape[0], 1.0 / X.shape[0]) if w.size == 0 else w / w.sum()
    out = np.empty(Y.shape[0])
    with threads_for(X.shape[0] * float(Y.shape[0]) / 16.0):
        _kde_points_kernel(X, w, Y, bw, out)
    return out


def _gaussian_axis_convolve(a, axis, h, b, mode):
    """Convolve ``a`` along ``axis`` with :math:`\\varphi_b` sampled at multiples of ``h``.

    ``mode``: ``"periodic"`` (circular, kernel wrapped), ``"reflect"`` (data mirrored about the
    end nodes, then circular) or ``"zero"`` (zero padding).
    """
    n = a.shape[axis]
    a = np.moveaxis(a, axis, -1)
    if mode == "reflect":
        # even extension about both end nodes (period 2n-2); an end node's mass is that of a
        # half cell, whose mirror image is the other half: it counts twice
        ends = a.copy()
        ends[..., 0] *= 2.0
        ends[..., -1] *= 2.0
        ext = np.concatenate([ends, a[..., -2:0:-1]], axis=-1)
    elif mode == "zero":
        pad = int(min(n, math.ceil(8.0 * b / h) + 1))
        ext = np.concatenate([a, np.zeros(a.shape[:-1] + (pad,))], axis=-1)
    else:
        ext = a
    P = ext.shape[-1]
    j = np.arange(P)
    jj = np.minimum(j, P - j).astype(float)
    images = int(math.ceil(8.0 * b / (P * h))) + 1
    kern = np.zeros(P)
    for r in range(-images, images + 1):
        kern += np.exp(-0.5 * ((j + r * P) * h / b) ** 2)
    if mode == "zero":  # no wrapped images across the padding
        kern = np.exp(-0.5 * (jj * h / b) ** 2)
    kern /= math.sqrt(2.0 * math.pi) * b
    out = np.fft.irfft(np.fft.rfft(ext, axis=-1) * np.fft.rfft(kern), n=P, axis=-1)[..., :n]
    return np.moveaxis(out, -1, axis)


def kde(X, grid: Grid, bandwidth="silverman", weights=None, alive=None, reflect=True,
        normalise=True) -> np.ndarray:
    """Binned Gaussian KDE on the nodes of ``grid`` (module docstring for the rules).

    ``reflect=True`` mirrors the data about Neumann walls (reflection estimator, no boundary
    bias of order one). ``normalise=True`` rescales to :math:`h^d\\sum m = 1`.
    """
    X = _check_positions(X, grid.dim)
    bw = _resolve_bandwidth(X, bandwidth, grid.dim, weights)
    masses, _ = deposit_masses(X, grid, "cic", weights, alive)
    total = masses.sum()
    if not total > 0:
        raise ValueError("no particle mass lies on the grid")
    m = masses / total
    for k in range(grid.dim):
        if grid.periodic[k]:
            mode = "periodic"
        else:
            mode = "reflect" if reflect else "zero"
        m = _gaussian_axis_convolve(m, k, grid.spacing[k], bw[k], mode)
    m = np.maximum(m, 0.0)  # FFT round-off
    if normalise:
        m = m / grid.integrate(m)
    return np.ascontiguousarray(m)
