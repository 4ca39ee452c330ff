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
def _cell(x, lo, h, n, periodic, clamp, ia, ib, wa, k):
    """Cell of coordinate ``x`` on axis ``k``: nodes ``ia[k], ib[k]``, weight ``wa[k]`` of ``ib``.

    Returns False when ``x`` is outside a non-periodic axis and ``clamp`` is False.
    """
    s = (x - lo) / h
    if periodic:
        s = s % n
        i0 = np.int64(math.floor(s))
        if i0 >= n:
            i0 = n - 1
        w = s - i0
        ia[k] = i0
        ib[k] = i0 + 1 if i0 + 1 < n else 0
        wa[k] = w
        return True
    if s < 0.0 or s > n - 1:
        if not clamp:
            return False
        s = 0.0 if s < 0.0 else float(n - 1)
    i0 = np.int64(math.floor(s))
    if i0 > n - 2:
        i0 = n - 2
    ia[k] = i0
    ib[k] = i0 + 1
    wa[k] = s - i0
    return True


@njit(cache=True, parallel=True)
def _deposit_kernel(X, weights, alive, lo, h, shape, periodic, order, chunk, partials, dropped):
    N, d = X.shape
    P, G = partials.shape
    nchunks = (N + chunk - 1) // chunk
    for p in prange(P):
        acc = partials[p]
        ia = np.zeros(3, dtype=np.int64)
        ib = np.zeros(3, dtype=np.int64)
        wa = np.zeros(3)
        lost = 0
        for c in range(p, nchunks, P):
            for i in range(c * chunk, min(N, (c + 1) * chunk)):
                if alive[i] == 0:
                    continue
                ok = True
                for k in range(d):
                    if not _cell(X[i, k], lo[k], h[k], shape[k], periodic[k], False, ia, ib, wa, k):
                        ok = False
                        break
                if not ok:
                    lost += 1
                    continue
                wi = weights[i] if weights.shape[0] > 0 else 1.0
                if order == 0:
                    flat = 0
                    for k in range(d):
                        idx = ib[k] if wa[k] >= 0.5 else ia[k]
                        flat = flat * shape[k] + idx
                    acc[flat] += wi
                else:
                    for corner in range(1 << d):
                        flat = 0
                        wt = wi
                        for k in range(d):
                            if (corner >> k) & 1:
                                flat = flat * shape[k] + ib[k]
                                wt *= wa[k]
                            else:
                                flat = flat * shape[k] + ia[k]
                                wt *= 1.0 - wa[k]
                        acc[flat] += wt
        dropped[p] = lost


@njit(cache=True, parallel=True)
def _gather_kernel(X, alive, lo, h, shape, periodic, F0, F1, wt, scale, out, block):
    """``out[i] += scale * ((1 - wt) F0 + wt F1)`` interpolated multilinearly at ``X[i]``.

    Coordinates outside a non-periodic axis are clamped (constant extrapolation).
    """
    N, d = X.shape
    m = F0.shape[1]
    nb = (N + block - 1) // block
    for b in prange(nb):
        ia = np.zeros(3, dtype=np.int64)
        ib = np.zeros(3, dtype=np.int64)
        wa = np.zeros(3)
        acc = np.zeros(m)
        for i in range(b * block, min(N, (b + 1) * block)):
            if alive[i] == 0:
                continue
            for k in range(d):
                _cell(X[i, k], lo[k], h[k], shape[k], periodic[k], True, ia, ib, wa, k)
            for c in range(m):
                acc[c] = 0.0
            for corner in range(1 << d):
                flat = 0
                w = 1.0
                for k in range(d):
                    if (corner >> k) & 1:
                        flat = flat * shape[k] + ib[k]
                        w *= wa[k]
                    else:
                        flat = flat * shape[k] + ia[k]
                        w *= 1.0 - wa[k]
                if w == 0.0:
                    continue
                if wt == 0.0:
                    for c in range(m):
                        acc[c] += w * F0[flat, c]
                else:
                    for c in range(m):
                        acc[c] += w * ((1.0 - wt) * F0[flat, c] + wt * F1[flat, c])
            for c in range(m):
                out[i, c] += scale * acc[c]


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
    out = np.zeros((X.shape[0], F.shape[1]))
    al = _alive_array(alive, X.shape[0])
    with threads_for(X.shape[0]):
        _gather_kernel(X, al, lo, h, shape, periodic, F, F, 0.0, 1.0, out, GATHER_BLOCK)
    return out[:, 0] if scalar else out


# ---------------------------------------------------------------------------------------------
# deposition
# ---------------------------------------------------------------------------------------------
def _check_positions(X, dim=None, name="X") -> np.ndarray:
    if not isinstance(X, np.ndarray):
        X = np.asarray(X, dtype=float)
    if X.ndim == 1 and dim == 1:
        X = X[:, None]
    if X.ndim != 2 or not 1 <= X.shape[1] <= 3:
        raise ValueError(f"{name} has shape {X.shape}; expected (n_particles, d) with 1 <= d <= 3")
    if dim is not None and X.shape[1] != dim:
        raise ValueError(f"{name} has shape {X.shape}; the grid/box has dimension {dim}")
    X = np.ascontiguousarray(X, dtype=np.float64)
    if not np.all(np.isfinite(X)):
        bad = int(np.count_nonzero(~np.all(np.isfinite(X), axis=1)))
        raise ValueError(f"{name} contains {bad} particle(s) with NaN or infinite coordinates")
    return X


def _alive_array(alive, n) -> np.ndarray:
    if alive is None:
        return np.ones(n, dtype=np.uint8)
    a = np.asarray(alive)
    if a.shape != (n,):
        raise ValueError(f"alive has shape {a.shape}; expected ({n},)")
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
    lo, h, shape, periodic = grid_geometry(grid)
    nchunks = max(1, -(-N // DEPOSIT_CHUNK))
    P = int(max(1, min(16, nchunks, _MAX_PRIVATE // grid.size)))
    partials = np.zeros((P, grid.size))
    dropped = np.zeros(P, dtype=np.int64)
    with threads_for(N):
        _deposit_kernel(X, w, al, lo, h, shape, periodic, _METHODS[method], DEPOSIT_CHUNK,
                        partials, dropped)
    masses = partials[0].copy()
    for p in range(1, P):
        masses += partials[p]
    n_dropped = int(dropped.sum())
    if comm is not None:
        from .mpi import allreduce_sum

        masses = allreduce_sum(comm, masses)
        n_dropped = int(allreduce_sum(comm, np.array([n_dropped], dtype=np.int64))[0])
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
    masses, _ = deposit_masses(X, grid, method, weights, alive, comm)
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
