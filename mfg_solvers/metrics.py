"""Distances between particle clouds, grid densities and Gaussians.

=====================================  ===========================================================
function                               what it computes
=====================================  ===========================================================
:func:`wasserstein_1d`                 exact :math:`W_p` between weighted 1-D samples (quantile
                                       coupling, :math:`O(n\\log n)`)
:func:`wasserstein1_to_density`        exact :math:`W_1 = \\int|F_\\text{particles} - F_m|`
                                       between a 1-D sample and a grid density (circle
                                       distance on a periodic grid)
:func:`wasserstein1_densities_1d`      exact :math:`W_1` between two densities on one 1-D grid
:func:`sliced_wasserstein2`            Monte-Carlo sliced :math:`W_2` over random directions
:func:`sinkhorn`                       entropic OT cost :math:`\\langle P^\\star, C\\rangle` with
                                       :math:`C_{ij}=|x_i-y_j|^2` (POT, log domain), optionally the
                                       debiased Sinkhorn divergence
:func:`gaussian_w2`                    closed-form :math:`W_2` between Gaussians
:func:`kl_divergence`                  :math:`\\mathrm{KL}(p\\|q) = h^d\\sum_i p_i\\log(p_i/q_i)` of
                                       grid densities
:func:`chamfer_distance`, :func:`emd`  point-cloud distances (mean squared Chamfer; exact
                                       assignment EMD, unsquared mean)
=====================================  ===========================================================

Grid densities follow the package convention: node values :math:`m_i` of a density that is
constant on the node cells :math:`[x_i - h/2, x_i + h/2]` with :math:`h^d\\sum_i m_i = 1`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .grid import Grid


# ---------------------------------------------------------------------------------------------
# input checks
# ---------------------------------------------------------------------------------------------
def _samples_1d(name, x):
    a = np.asarray(x, dtype=float)
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"{name} has shape {a.shape}; expected a non-empty 1-D sample")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return a


def _weights(name, w, n):
    if w is None:
        return np.full(n, 1.0 / n)
    w = np.asarray(w, dtype=float)
    if w.shape != (n,):
        raise ValueError(f"{name} has shape {w.shape}; expected ({n},)")
    if not np.all(np.isfinite(w)) or np.any(w < 0) or not w.sum() > 0:
        raise ValueError(f"{name} must be finite, >= 0 and not all zero")
    return w / w.sum()


def _cloud(name, X, d=None):
    a = np.asarray(X, dtype=float)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2 or a.shape[0] == 0:
        raise ValueError(f"{name} has shape {a.shape}; expected (n, d) with n >= 1")
    if d is not None and a.shape[1] != d:
        raise ValueError(f"{name} has dimension {a.shape[1]}; expected {d}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return a


def _quantile_table(x, w):
    order = np.argsort(x, kind="stable")
    xs = x[order]
    F = np.cumsum(w[order])
    F /= F[-1]
    return xs, F


# ---------------------------------------------------------------------------------------------
# 1-D Wasserstein distances
# ---------------------------------------------------------------------------------------------
def wasserstein_1d(x, y, p=1, x_weights=None, y_weights=None) -> float:
    """Exact :math:`W_p` between two weighted 1-D samples (``p >= 1``):
    :math:`W_p^p = \\int_0^1|F_\\mu^{-1}(q) - F_\\nu^{-1}(q)|^p\\,dq`."""
    if not np.isfinite(p) or p < 1:
        raise ValueError(f"p={p!r} must be a number >= 1")
    x = _samples_1d("x", x)
    y = _samples_1d("y", y)
    xs, Fx = _quantile_table(x, _weights("x_weights", x_weights, x.size))
    ys, Fy = _quantile_table(y, _weights("y_weights", y_weights, y.size))
    q = np.unique(np.concatenate([[0.0], Fx, Fy]))
    q = q[q <= 1.0]
    dq = np.diff(q)
    mid = 0.5 * (q[1:] + q[:-1])
    qx = xs[np.minimum(np.searchsorted(Fx, mid, side="left"), xs.size - 1)]
    qy = ys[np.minimum(np.searchsorted(Fy, mid, side="left"), ys.size - 1)]
    return float(np.sum(dq * np.abs(qx - qy) ** p) ** (1.0 / p))


def _abs_linear_integral(ga, gb, length):
    """:math:`\\int|g|` for ``g`` linear from ``ga`` to ``gb`` over ``length`` (vectorised)."""
    same = ga * gb >= 0
    aa, ab = np.abs(ga), np.abs(gb)
    denom = np.where(same, 1.0, aa + ab)
    return np.where(same, 0.5 * (aa + ab) * length, 0.5 * (ga * ga + gb * gb) / denom * length)


def _circle_w1(s, D_left, D_right):
    """:math:`\\min_\\alpha\\int|D - \\alpha|` for ``D`` linear on each ``[s_k, s_{k+1}]``
    (values ``D_left[k]`` and ``D_right[k]`` at the ends)."""
    from scipy.optimize import minimize_scalar

    length = np.diff(s)

    def f(alpha):
        return float(np.sum(_abs_linear_integral(D_left - alpha, D_right - alpha, length)))

    lo = float(min(D_left.min(), D_right.min()))
    hi = float(max(D_left.max(), D_right.max()))
    if hi - lo < 1e-15:
        return f(lo)
    res = minimize_scalar(f, bounds=(lo, hi), method="bounded",
                          options={"xatol": 1e-13 * max(1.0, hi - lo)})
    return min(res.fun, f(lo), f(hi))


def _grid_cdf_1d(m, grid):
    if not isinstance(grid, Grid) or grid.dim != 1:
        raise ValueError(f"grid={grid!r} must be a 1-D mfg_solvers.Grid")
    m = np.asarray(m, dtype=float)
    if m.shape != grid.shape:
        raise ValueError(f"density has shape {m.shape}; the grid has shape {grid.shape}")
    if not np.all(np.isfinite(m)) or np.any(m < 0):
        raise ValueError("density must be finite and >= 0")
    h = grid.spacing[0]
    mass = h * m.sum()
    if not mass > 0:
        raise ValueError("density has zero mass")
    edges = np.concatenate([grid.axes[0] - 0.5 * h, [grid.axes[0][-1] + 0.5 * h]])
    G = np.concatenate([[0.0], np.cumsum(m) * h / mass])
    return edges, G


def wasserstein1_to_density(x, m, grid: Grid, weights=None) -> float:
    """Exact :math:`W_1` between a 1-D weighted sample and a grid density.

    The density is constant on the node cells (module docstring) and normalised to mass 1.
    On a periodic grid the samples are wrapped into the period and the distance is the one on the
    circle, :math:`\\min_\\alpha\\int_0^L|F - G - \\alpha|`.
    """
    x = _samples_1d("x", x)
    w = _weights("weights", weights, x.size)
    edges, G = _grid_cdf_1d(m, grid)
    periodic = grid.periodic[0]
    if periodic:  # wrap into the period [x_0 - h/2, x_0 - h/2 + L) spanned by the cells
        L = edges[-1] - edges[0]
        x = edges[0] + np.mod(x - edges[0], L)
    xs, F = _quantile_table(x, w)
    s = np.unique(np.concatenate([edges, xs]))
    if periodic:
        s = s[(s >= edges[0]) & (s <= edges[-1])]
    Gs = np.interp(s, edges, G)  # linear inside the cells, 0 / 1 outside
    idx = np.searchsorted(xs, s, side="right")  # F is right-continuous
    Fs = np.where(idx > 0, F[np.maximum(idx - 1, 0)], 0.0)
    # on [s_k, s_{k+1}) the empirical CDF is the constant Fs[k]
    ga = Gs[:-1] - Fs[:-1]
    gb = Gs[1:] - Fs[:-1]
    if periodic:
        return _circle_w1(s, ga, gb)
    return float(np.sum(_abs_linear_integral(ga, gb, np.diff(s))))


def wasserstein1_densities_1d(m1, m2, grid: Grid) -> float:
    """Exact :math:`W_1` between two densities on one 1-D grid (circle distance if periodic)."""
    edges, G1 = _grid_cdf_1d(m1, grid)
    _, G2 = _grid_cdf_1d(m2, grid)
    D = G1 - G2
    if grid.periodic[0]:
        return _circle_w1(edges, D[:-1], D[1:])
    return float(np.sum(_abs_linear_integral(D[:-1], D[1:], np.diff(edges))))


# ---------------------------------------------------------------------------------------------
# multi-dimensional
# ---------------------------------------------------------------------------------------------
def sliced_wasserstein2(X, Y, n_projections=128, seed=0, x_weights=None, y_weights=None) -> float:
    """Sliced :math:`W_2`:
    :math:`\\big(\\frac1L\\sum_{l=1}^L W_2^2(\\theta_l\\cdot X, \\theta_l\\cdot Y)\\big)^{1/2}`
    with ``n_projections`` directions uniform on the sphere (seeded; exact in 1-D)."""
    X = _cloud("X", X)
    Y = _cloud("Y", Y, X.shape[1])
    d = X.shape[1]
    if d == 1:
        return wasserstein_1d(X[:, 0], Y[:, 0], 2, x_weights, y_weights)
    if isinstance(n_projections, bool) or not isinstance(n_projections, int) or n_projections < 1:
        raise ValueError(f"n_projections={n_projections!r} must be a positive integer")
    rng = np.random.default_rng(seed)
    theta = rng.standard_normal((n_projections, d))
    theta /= np.linalg.norm(theta, axis=1, keepdims=True)
    px, py = X @ theta.T, Y @ theta.T
    w2 = [wasserstein_1d(px[:, k], py[:, k], 2, x_weights, y_weights) ** 2
          for k in range(n_projections)]
    return float(np.sqrt(np.mean(w2)))


@dataclass
class SinkhornResult:
    """Entropic OT between two clouds with the squared Euclidean cost.

    ``cost`` = :math:`\\langle P^\\star, C\\rangle`; ``divergence`` = debiased
    :math:`S_\\eta = \\mathrm{OT}_\\eta(\\mu,\\nu) - \\frac12\\mathrm{OT}_\\eta(\\mu,\\mu) -
    \\frac12\\mathrm{OT}_\\eta(\\nu,\\nu)` of the full entropic objectives (``None`` unless asked);
    ``reg`` = :math:`\\eta`; ``n_iter``; ``marginal_error`` (of the last check).
    """

    cost: float
    divergence: float | None
    reg: float
    n_iter: int
    marginal_error: float
    cost_name: str = "squared euclidean"


def _sinkhorn_plan(a, b, C, reg, max_iter, tol):
    import ot

    P, log = ot.sinkhorn(a, b, C, reg, method="sinkhorn_log", numItermax=max_iter,
                         stopThr=tol, log=True, warn=False)
    err = float(max(np.abs(P.sum(axis=1) - a).sum(), np.abs(P.sum(axis=0) - b).sum()))
    return P, int(log.get("niter", max_iter)), err


def _entropic_objective(P, C, a, b, reg):
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(P > 0, P / np.outer(a, b), 1.0)
        kl = float(np.sum(np.where(P > 0, P * np.log(ratio), 0.0)))
    return float(np.sum(P * C)) + reg * kl


def sinkhorn(X, Y, reg=0.05, max_iter=300, tol=1e-6, x_weights=None, y_weights=None,
             debiased=False) -> SinkhornResult:
    """Entropic OT by log-domain Sinkhorn (POT) with :math:`C_{ij} = |x_i - y_j|^2`.

    Runs at most ``max_iter`` iterations or until the marginal error is below ``tol``.
    """
    X = _cloud("X", X)
    Y = _cloud("Y", Y, X.shape[1])
    if not np.isfinite(reg) or reg <= 0:
        raise ValueError(f"reg={reg!r} must be a positive number")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"max_iter={max_iter!r} must be a positive integer")
    a = _weights("x_weights", x_weights, X.shape[0])
    b = _weights("y_weights", y_weights, Y.shape[0])

    def cost_matrix(U, V):
        return np.maximum(
            (U * U).sum(1)[:, None] + (V * V).sum(1)[None, :] - 2.0 * U @ V.T, 0.0
        )

    C = cost_matrix(X, Y)
    P, it, err = _sinkhorn_plan(a, b, C, reg, max_iter, tol)
    cost = float(np.sum(P * C))
    div = None
    if debiased:
        Cxx, Cyy = cost_matrix(X, X), cost_matrix(Y, Y)
        Pxx, _, _ = _sinkhorn_plan(a, a, Cxx, reg, max_iter, tol)
        Pyy, _, _ = _sinkhorn_plan(b, b, Cyy, reg, max_iter, tol)
        div = (_entropic_objective(P, C, a, b, reg)
               - 0.5 * _entropic_objective(Pxx, Cxx, a, a, reg)
               - 0.5 * _entropic_objective(Pyy, Cyy, b, b, reg))
    return SinkhornResult(cost=cost, divergence=div, reg=float(reg), n_iter=it,
                          marginal_error=err)


def _psd_sqrt(S):
    w, v = np.linalg.eigh(0.5 * (S + S.T))
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def gaussian_w2(m1, S1, m2, S2) -> float:
    """:math:`W_2\\big(\\mathcal N(m_1, S_1), \\mathcal N(m_2, S_2)\\big)` in closed form:
    :math:`|m_1 - m_2|^2
    + \\operatorname{tr}\\big(S_1 + S_2 - 2(S_2^{1/2}S_1S_2^{1/2})^{1/2}\\big)`.

    Scalars are read as 1-D means / variances."""
    m1 = np.atleast_1d(np.asarray(m1, dtype=float))
    m2 = np.atleast_1d(np.asarray(m2, dtype=float))
    d = m1.size
    if m2.shape != m1.shape or m1.ndim != 1:
        raise ValueError(f"means have shapes {m1.shape} and {m2.shape}; expected two (d,) vectors")
    mats = []
    for name, S in (("S1", S1), ("S2", S2)):
        S = np.atleast_2d(np.asarray(S, dtype=float))
        if S.shape != (d, d):
            raise ValueError(f"{name} has shape {S.shape}; expected ({d}, {d})")
        if not np.all(np.isfinite(S)) or not np.allclose(S, S.T, rtol=1e-10, atol=1e-14):
            raise ValueError(f"{name} must be a finite symmetric matrix")
        if np.linalg.eigvalsh(S).min() < -1e-12 * max(1.0, np.abs(S).max()):
            raise ValueError(f"{name} is not positive semi-definite")
        mats.append(S)
    S1, S2 = mats
    r2 = _psd_sqrt(S2)
    cross = _psd_sqrt(r2 @ S1 @ r2)
    val = float(np.sum((m1 - m2) ** 2) + np.trace(S1 + S2 - 2.0 * cross))
    return float(np.sqrt(max(val, 0.0)))


def kl_divergence(p, q, grid: Grid, normalise=True) -> float:
    """:math:`\\mathrm{KL}(p\\|q) = h^d\\sum_i p_i\\log(p_i/q_i)` for densities on ``grid``
    (e.g. a deposited particle density ``p`` against a grid solution ``q``).

    Terms with :math:`p_i = 0` vanish; :math:`q_i = 0 < p_i` gives ``inf``. With
    ``normalise=True`` both densities are first rescaled to :math:`h^d\\sum = 1`.
    """
    if not isinstance(grid, Grid):
        raise TypeError(f"grid={grid!r} must be a mfg_solvers.Grid")
    out = []
    for name, a in (("p", p), ("q", q)):
        a = np.asarray(a, dtype=float)
        if a.shape != grid.shape:
            raise ValueError(f"{name} has shape {a.shape}; the grid has shape {grid.shape}")
        if not np.all(np.isfinite(a)) or np.any(a < 0):
            raise ValueError(f"{name} must be finite and >= 0")
        mass = grid.integrate(a)
        if not mass > 0:
            raise ValueError(f"{name} has zero mass")
        out.append(a / mass if normalise else a)
    p, q = out
    pos = p > 0
    if np.any(q[pos] == 0):
        return float("inf")
    return float(grid.cell_volume * np.sum(p[pos] * np.log(p[pos] / q[pos])))


# ---------------------------------------------------------------------------------------------
# point clouds
# ---------------------------------------------------------------------------------------------
def chamfer_distance(X, Y) -> float:
    """Mean squared Chamfer distance
    :math:`\\frac1{|X|}\\sum_x\\min_y|x-y|^2 + \\frac1{|Y|}\\sum_y\\min_x|x-y|^2` (k-d trees)."""
    from scipy.spatial import cKDTree

    X = _cloud("X", X)
    Y = _cloud("Y", Y, X.shape[1])
    dx, _ = cKDTree(Y).query(X)
    dy, _ = cKDTree(X).query(Y)
    return float(np.mean(dx**2) + np.mean(dy**2))


def emd(X, Y) -> float:
    """Exact earth mover's distance between equal-size clouds,
    :math:`\\min_\\varphi\\frac1n\\sum_x|x - \\varphi(x)|` (unsquared; linear assignment,
    :math:`O(n^3)`, for up to a few thousand points)."""
    from scipy.optimize import linear_sum_assignment
    from scipy.spatial.distance import cdist

    X = _cloud("X", X)
    Y = _cloud("Y", Y, X.shape[1])
    if X.shape[0] != Y.shape[0]:
        raise ValueError(
            f"X and Y have {X.shape[0]} and {Y.shape[0]} points; EMD needs equal sizes"
        )
    C = cdist(X, Y)
    r, c = linear_sum_assignment(C)
    return float(C[r, c].mean())
