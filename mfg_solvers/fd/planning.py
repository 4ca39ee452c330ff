"""The planning problem with quadratic Hamiltonian, solved through its Hopf–Cole / Schrödinger system.

Problem (both end densities prescribed, no terminal cost; viscosity :math:`\\nu = \\sigma^2/2`,
a base drift :math:`b(t, x)` and a time-dependent potential :math:`V(t, x)`):

.. math::

    -\\partial_t u - \\nu\\Delta u - b\\cdot\\nabla u + \\tfrac12|\\nabla u|^2 = V(t, x),\\qquad
    \\partial_t m - \\nu\\Delta m + \\operatorname{div}\\big(m\\,(b - \\nabla u)\\big) = 0,\\qquad
    m(0) = m_0,\\ m(T) = m_T .

With :math:`u = -2\\nu\\log\\varphi` and :math:`m = \\varphi\\,\\psi` it becomes two *linear*
equations coupled only through the end products (the Schrödinger system):

.. math::

    -\\partial_t\\varphi = \\nu\\Delta\\varphi + b\\cdot\\nabla\\varphi - \\frac{V}{2\\nu}\\varphi,
    \\qquad
    \\partial_t\\psi = \\nu\\Delta\\psi - \\operatorname{div}(b\\,\\psi) - \\frac{V}{2\\nu}\\psi,
    \\qquad \\varphi_0\\psi_0 = m_0,\\ \\varphi_T\\psi_T = m_T,

and the optimal drift is :math:`b - \\nabla u = b + 2\\nu\\nabla\\log\\varphi`.

Discretisation
--------------
Let :math:`L_h` be the upwind finite-difference generator of :math:`\\nu\\Delta + b\\cdot\\nabla`
(a Metzler matrix with zero row sums: second-order central Laplacian, first-order upwinded
drift; walls drop the differences that leave the box) and, for the step
:math:`t_n\\to t_{n+1}`, :math:`A_n = I - \\Delta t\\,(L_h - \\operatorname{diag}V(t_{n+1/2})/2\\nu)`.
Implicit Euler gives

.. math::

    \\varphi^n = A_n^{-1}\\varphi^{n+1},\\qquad \\psi^{n+1} = A_n^{-\\top}\\psi^n,

so that :math:`\\sum_i\\varphi^n_i\\psi^n_i` is the same at every :math:`n`: **the discrete mass of**
:math:`m^n = \\varphi^n\\psi^n` **is conserved exactly**, and :math:`m^n\\ge0` because :math:`A_n`
is an M-matrix. The scheme is first order in :math:`\\Delta t` and second order in :math:`h`
for :math:`b = 0` (first order in :math:`h` with a drift, from the upwinding).

The end conditions are met by the Fortet / iterative-proportional-fitting (Sinkhorn) iteration:
guess :math:`\\varphi^{N}`; sweep backward to :math:`\\varphi^0`; set
:math:`\\psi^0 = m_0/\\varphi^0`; sweep forward to :math:`\\psi^N`; set
:math:`\\varphi^N = m_T/\\psi^N`; repeat until :math:`\\|\\varphi^0\\psi^0 - m_0\\|_{L^1}` is below
``tol``. It contracts in Hilbert's projective metric. For a point-mass start
(:func:`dirac_density`) it converges after one sweep: the start then fixes :math:`\\psi`
up to a constant (this is the per-agent bridge of the MF-PID closed forms).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from ..errors import ConvergenceError
from ..grid import Grid, TimeGrid
from ..results import Solution

__all__ = ["dirac_density", "generator_matrix", "solve_mean_field_planning", "solve_planning"]


def dirac_density(grid: Grid, point) -> np.ndarray:
    """Discrete point mass :math:`e_i / h^d` at the node ``point`` (it must be a grid node)."""
    point = np.atleast_1d(np.asarray(point, dtype=float))
    if point.shape != (grid.dim,):
        raise ValueError(f"point={point.tolist()} must have {grid.dim} coordinates")
    idx = []
    for k, (ax, h) in enumerate(zip(grid.axes, grid.spacing, strict=True)):
        i = int(np.argmin(np.abs(ax - point[k])))
        if abs(ax[i] - point[k]) > 1e-9 * h:
            raise ValueError(
                f"point={point.tolist()}: coordinate {point[k]} is not a node of axis {k} "
                f"(nearest {ax[i]}); choose a grid that has the start as a node"
            )
        idx.append(i)
    m = np.zeros(grid.shape)
    m[tuple(idx)] = 1.0 / grid.cell_volume
    return m


def _axis_difference_ops(grid: Grid, k: int):
    """Sparse forward-difference neighbour shifts along axis ``k`` on the flattened grid.

    Returns ``(plus, minus)``: 0/1 matrices with ``(plus @ v)_i = v_{i+e_k}`` where that neighbour
    exists (periodic wrap or interior), 0 otherwise; likewise ``minus`` for ``i - e_k``.
    """
    idx = np.arange(grid.size).reshape(grid.shape)
    n = grid.shape[k]
    periodic = grid.periodic[k]
    rows_p, cols_p, rows_m, cols_m = [], [], [], []
    sl = [slice(None)] * grid.dim
    for i in range(n):
        sl[k] = i
        here = idx[tuple(sl)].ravel()
        j = i + 1
        if j < n or periodic:
            sl[k] = j % n
            rows_p.append(here)
            cols_p.append(idx[tuple(sl)].ravel())
        j = i - 1
        if j >= 0 or periodic:
            sl[k] = j % n
            rows_m.append(here)
            cols_m.append(idx[tuple(sl)].ravel())
    N = grid.size

    def mat(r, c):
        r = np.concatenate(r)
        c = np.concatenate(c)
        return sp.csr_matrix((np.ones(r.size), (r, c)), shape=(N, N))

    return mat(rows_p, cols_p), mat(rows_m, cols_m)


def generator_matrix(grid: Grid, viscosity: float, drift: np.ndarray | None = None) -> sp.csr_matrix:
    """Upwind generator :math:`L_h \\approx \\nu\\Delta + b\\cdot\\nabla` (zero row sums).

    ``drift`` has shape ``(dim, *grid.shape)`` (or None). Off-diagonal entries are
    :math:`\\nu/h^2 + b^\\pm/h \\ge 0`; at a reflecting wall the difference leaving the box is dropped.
    """
    N = grid.size
    L = sp.csr_matrix((N, N))
    for k, h in enumerate(grid.spacing):
        plus, minus = _axis_difference_ops(grid, k)
        w_plus = np.full(N, viscosity / h**2)
        w_minus = np.full(N, viscosity / h**2)
        if drift is not None:
            b = np.asarray(drift[k], dtype=float).ravel()
            w_plus = w_plus + np.maximum(b, 0.0) / h
            w_minus = w_minus + np.maximum(-b, 0.0) / h
        P = sp.diags(w_plus) @ plus
        Mn = sp.diags(w_minus) @ minus
        L = L + P + Mn
    L = L - sp.diags(np.asarray(L.sum(axis=1)).ravel())
    return L.tocsr()


def _gradient(field: np.ndarray, grid: Grid) -> np.ndarray:
    """Centred differences inside, one-sided at walls, wrap-around on periodic axes."""
    out = []
    for k, h in enumerate(grid.spacing):
        if grid.periodic[k]:
            g = (np.roll(field, -1, axis=k) - np.roll(field, 1, axis=k)) / (2 * h)
        else:
            g = np.gradient(field, h, axis=k, edge_order=1)
        out.append(g)
    return np.stack(out)


class _TridiagonalSolver:
    """Solves with ``B + diag(d)`` and its transpose, ``B`` tridiagonal (1-D walls), O(N)."""

    def __init__(self, banded: np.ndarray, banded_T: np.ndarray, diagonal: np.ndarray):
        self.ab = banded.copy()
        self.ab[1] += diagonal
        self.abT = banded_T.copy()
        self.abT[1] += diagonal

    @staticmethod
    def banded(A: sp.spmatrix) -> np.ndarray:
        A = sp.dia_matrix(A)
        ab = np.zeros((3, A.shape[0]))
        ab[0, 1:] = A.diagonal(1)
        ab[1] = A.diagonal(0)
        ab[2, :-1] = A.diagonal(-1)
        return ab

    def solve(self, rhs, trans="N"):
        ab = self.abT if trans == "T" else self.ab
        return sla.solve_banded((1, 1), ab, rhs, check_finite=False)


def _sample(values, grid: Grid, name: str) -> np.ndarray:
    if callable(values):
        arr = grid.evaluate(values, name)
    else:
        arr = np.asarray(values, dtype=float)
        if arr.shape != grid.shape:
            raise ValueError(f"{name} has shape {arr.shape}; the grid has shape {grid.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError(f"{name} must be finite and non-negative")
    mass = grid.integrate(arr)
    if not mass > 0:
        raise ValueError(f"{name} has zero mass on the grid")
    return np.ascontiguousarray(arr / mass)


def solve_planning(
    grid: Grid,
    nt: int,
    m0,
    mT,
    *,
    T: float = 1.0,
    viscosity: float = 0.5,
    potential: Callable | None = None,
    drift: Callable | None = None,
    tol: float = 1e-11,
    max_iter: int = 500,
    raise_on_failure: bool = True,
    name: str = "planning",
) -> Solution:
    """Solve the quadratic planning problem by the discrete Schrödinger system (module docstring).

    Parameters
    ----------
    grid
        Space grid (periodic or reflecting axes).
    nt
        Number of implicit Euler steps on :math:`[0, T]`.
    m0, mT
        End densities: arrays of ``grid.shape`` or callables of the coordinates (normalised to
        unit mass here). Use :func:`dirac_density` for a point-mass start.
    viscosity
        :math:`\\nu = \\sigma^2/2 > 0` (MF-PID's unit diffusion is ``0.5``).
    potential
        :math:`V(t, x)` as ``potential(t, x)`` / ``potential(t, x, y)`` / ..., evaluated at the
        mid-point :math:`t_{n+1/2}` of every step (so piecewise-constant protocols with breakpoints
        on the time grid are sampled inside their intervals). ``None`` means :math:`V = 0`.
    drift
        Base drift :math:`b(t, x)` as a callable returning ``dim`` components (e.g. OU:
        ``lambda t, x: (-kappa * x,)``), or ``None``.
    tol
        Stop when :math:`h^d\\sum|\\varphi^0\\psi^0 - m_0| <` ``tol`` (the terminal marginal is
        matched exactly after every sweep).

    Returns
    -------
    Solution
        ``u`` :math:`=-2\\nu\\log\\varphi`, ``m`` :math:`=\\varphi\\psi`, ``control`` the optimal
        drift :math:`b + 2\\nu\\nabla\\log\\varphi` (centred differences), and variables ``phi``,
        ``psi``; the residual history holds the :math:`L^1` start-marginal errors.
    """
    if not isinstance(grid, Grid):
        raise TypeError(f"grid={grid!r} must be a mfg_solvers.Grid")
    if not np.isfinite(viscosity) or viscosity <= 0:
        raise ValueError(f"viscosity={viscosity!r} must be a positive number")
    tgrid = TimeGrid(T, nt)
    dt = tgrid.dt
    t0 = time.perf_counter()
    m0v = _sample(m0, grid, "m0").ravel()
    mTv = _sample(mT, grid, "mT").ravel()
    coords = grid.coordinates()
    N = grid.size

    # Factorise A_n once per step (once overall when V and b do not depend on t).
    factors = []
    cache_key = None
    L, L_key = None, None
    eye = sp.identity(N, format="csc")
    tridiagonal = grid.dim == 1 and not grid.periodic[0]
    for n in range(nt):
        tm = tgrid.t[n] + 0.5 * dt
        V = np.zeros(N) if potential is None else np.broadcast_to(
            np.asarray(potential(tm, *coords), dtype=float), grid.shape
        ).ravel()
        b = None if drift is None else np.stack(
            [np.broadcast_to(np.asarray(c, dtype=float), grid.shape) for c in drift(tm, *coords)]
        )
        if b is not None and b.shape[0] != grid.dim:
            raise ValueError(f"drift returned {b.shape[0]} components; expected {grid.dim}")
        if not np.all(np.isfinite(V)) or (b is not None and not np.all(np.isfinite(b))):
            raise ValueError(f"potential or drift is not finite at t={tm}")
        if np.min(V) < 0 and dt * (-np.min(V)) / (2 * viscosity) >= 1:
            raise ValueError(
                f"potential is too negative (min {np.min(V):.3g}) for dt={dt:.3g}: A_n would not be "
                "an M-matrix; refine the time grid or shift V by a constant"
            )
        b_key = None if b is None else b.tobytes()
        key = (V.tobytes(), b_key)
        if key == cache_key:
            factors.append(factors[-1])
            continue
        if L is None or b_key != L_key:
            L, L_key = generator_matrix(grid, viscosity, b), b_key
            if tridiagonal:
                base = eye - dt * L
                bands = (_TridiagonalSolver.banded(base), _TridiagonalSolver.banded(base.T))
        if tridiagonal:
            factors.append(_TridiagonalSolver(*bands, dt * V / (2 * viscosity)))
        else:
            factors.append(spla.splu((eye - dt * L + sp.diags(dt * V / (2 * viscosity))).tocsc()))
        cache_key = key

    phi = np.ones((nt + 1, N))
    psi = np.zeros((nt + 1, N))
    history = []
    converged = False
    support = m0v > 0
    for sweep in range(max_iter + 1):
        for n in range(nt - 1, -1, -1):
            phi[n] = factors[n].solve(phi[n + 1])
        if np.any(phi[0][support] <= 0):
            raise FloatingPointError("backward factor underflowed to 0 on the support of m0")
        if sweep > 0:
            err = float(grid.cell_volume * np.abs(phi[0] * psi[0] - m0v).sum())
            history.append(err)
            if err < tol:
                converged = True
                break
            if sweep == max_iter:
                break
        psi[0] = np.where(support, m0v / np.where(support, phi[0], 1.0), 0.0)
        for n in range(nt):
            psi[n + 1] = factors[n].solve(psi[n], trans="T")
        positive = psi[nt] > 0
        if np.any(mTv[~positive] > 0):
            raise FloatingPointError("forward factor vanished where m_T > 0")
        phi[nt] = np.where(positive, mTv / np.where(positive, psi[nt], 1.0), 0.0)
        # fix the gauge (phi, psi) -> (phi / c, c psi)
        scale = np.max(phi[nt])
        phi[nt] /= scale
        psi *= scale
    if not np.all(np.isfinite(phi)) or not np.all(np.isfinite(psi)):
        raise FloatingPointError("non-finite Schrödinger factors: the potential may be too stiff")

    m = phi * psi
    with np.errstate(divide="ignore"):
        logphi = np.log(phi)
    u = -2 * viscosity * logphi
    control = np.empty((nt + 1, *grid.shape, grid.dim))
    for n in range(nt + 1):
        g = _gradient(logphi[n].reshape(grid.shape), grid)
        ctrl = 2 * viscosity * g
        if drift is not None:
            ctrl = ctrl + np.stack(
                [np.broadcast_to(np.asarray(c, dtype=float), grid.shape)
                 for c in drift(tgrid.t[n], *coords)]
            )
        control[n] = np.moveaxis(ctrl, 0, -1)
    shape = (nt + 1, *grid.shape)
    sol = Solution.from_arrays(
        u=u.reshape(shape),
        m=m.reshape(shape),
        axes=grid.axes,
        t=tgrid.t,
        control=control,
        residual_history=history,
        axis_names=grid.axis_names,
        attrs=dict(
            problem=name,
            scheme="Schrödinger system, implicit Euler, upwind drift",
            solver="fortet-ipf",
            iterations=len(history),
            converged=converged,
            time_total=time.perf_counter() - t0,
            viscosity=viscosity,
        ),
    )
    dims = ("t",) + grid.axis_names
    sol.dataset["phi"] = (dims, phi.reshape(shape))
    sol.dataset["psi"] = (dims, psi.reshape(shape))
    if not converged:
        msg = f"planning: start-marginal error {history[-1]:.3g} > tol={tol} after {max_iter} sweeps"
        if raise_on_failure:
            raise ConvergenceError(msg, solution=sol, history=history)
    return sol


def solve_mean_field_planning(
    grid: Grid,
    nt: int,
    m0,
    mT,
    stiffness: Callable[[float], float],
    *,
    T: float = 1.0,
    viscosity: float = 0.5,
    drift: Callable | None = None,
    guidance=None,
    relaxation: float = 0.5,
    tol: float = 1e-9,
    max_iter: int = 200,
    raise_on_failure: bool = True,
    name: str = "mean-field planning",
) -> Solution:
    """Planning with the quadratic mean-field interaction of MF-PID, solved on the grid.

    Each agent pays :math:`(\\beta_t/2)\\,|x - \\nu_t|^2` with the guidance :math:`\\nu_t` equal to the
    population mean :math:`\\mathbb E_{m_t}[x]` (the trace term of :math:`U\\star m` does not
    depend on :math:`x` and is dropped). For a given guidance the problem is the linear
    Schrödinger system of :func:`solve_planning`; the self-consistency is found by the damped
    fixed point :math:`\\nu \\leftarrow (1-\\theta)\\nu + \\theta\\,\\mathbb E_{m[\\nu]}[x]` on the
    step mid-points, stopped when :math:`\\max|\\Delta\\nu| <` ``tol``.

    ``stiffness(t)`` gives :math:`\\beta_t \\ge 0`; ``guidance`` is the starting guess, shape
    ``(nt, dim)`` at the step mid-points (default: the mean of ``m0`` everywhere). The Solution
    carries variables ``guidance`` (dims ``t_mid, component``) and ``mean`` (dims
    ``t, component``), and ``residual_history`` holds :math:`\\max|\\Delta\\nu|` per iteration.
    """
    if not 0 < relaxation <= 1:
        raise ValueError(f"relaxation={relaxation!r} must lie in (0, 1]")
    tgrid = TimeGrid(T, nt)
    t_mid = tgrid.t[:-1] + 0.5 * tgrid.dt
    beta = np.array([float(stiffness(t)) for t in t_mid])
    if not np.all(np.isfinite(beta)) or np.any(beta < 0):
        raise ValueError("stiffness(t) must be finite and >= 0 on [0, T]")
    coords = grid.coordinates()
    m0_arr = _sample(m0, grid, "m0")
    if guidance is None:
        start = np.array([grid.integrate(c * m0_arr) for c in coords])
        nu_path = np.tile(start, (nt, 1))
    else:
        nu_path = np.array(guidance, dtype=float).reshape(nt, grid.dim)
    step_of = {float(t): n for n, t in enumerate(t_mid)}

    def potential(t, *x):
        n = step_of[float(t)]
        return 0.5 * beta[n] * sum((xk - nu_path[n, k]) ** 2 for k, xk in enumerate(x))

    history = []
    converged = False
    sol = None
    for _ in range(max_iter):
        sol = solve_planning(grid, nt, m0_arr, mT, T=T, viscosity=viscosity,
                             potential=potential, drift=drift, name=name)
        means = np.stack([grid.integrate(sol.m * c) for c in coords], axis=-1)  # (nt+1, dim)
        target = 0.5 * (means[1:] + means[:-1])
        change = float(np.max(np.abs(target - nu_path)))
        history.append(change)
        if not np.isfinite(change):
            raise FloatingPointError("the guidance iteration produced a non-finite mean")
        nu_path = (1 - relaxation) * nu_path + relaxation * target
        if change < tol:
            converged = True
            break
    ds = sol.dataset
    ds["guidance"] = (("t_mid", "component"), nu_path)
    ds = ds.assign_coords(t_mid=t_mid)
    ds["mean"] = (("t", "component"), means)
    ds["residual_history"] = (("iteration",), np.asarray(history))
    ds.attrs.update(solver="guidance fixed point + fortet-ipf", iterations=len(history),
                    converged=int(converged), relaxation=relaxation)
    out = Solution(ds)
    if not converged and raise_on_failure:
        raise ConvergenceError(
            f"mean-field planning: guidance change {history[-1]:.3g} > tol={tol} after "
            f"{max_iter} iterations", solution=out, history=history)
    return out
