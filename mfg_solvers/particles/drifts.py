"""Drifts and diffusions for the particle integrators.

A particle follows :math:`dX_t = b(t, X_t)\\,dt + \\sigma\\,dW_t` (plus interactions, see
:mod:`.interactions`). The drift :math:`b` is a sum of

* :class:`AffineDrift` -- :math:`A(t)\\,x + c(t)` (constant or callables of :math:`t`); folded
  into the stepping kernel, and integrated exactly by ``scheme="exact"`` when constant;
* :class:`NumbaDrift` -- a numba-compiled user function ``f(t, x, out)`` writing
  :math:`b(t, x)` for one particle (``x``, ``out`` of length :math:`d`), called in parallel;
* :class:`CallableDrift` -- any vectorised callable ``f(t, X) -> (N, d)`` (the hook for the
  closed-form drifts of :mod:`mfg_solvers.analytic`);
* :class:`GridDrift` -- a vector field sampled on a :class:`~mfg_solvers.grid.Grid`, multilinear in
  space and linear in time;
* :class:`FeedbackDrift` -- the optimal feedback :math:`\\alpha^* = -\\partial_pH(\\nabla u, m)`
  of a grid :class:`~mfg_solvers.results.Solution`: :math:`\\nabla u` by second-order differences
  on the nodes (central inside, periodic wrap, second-order one-sided on Neumann walls, so exact for
  quadratic :math:`u`), then a :class:`GridDrift`.

Diffusion: a scalar :math:`\\sigma` (isotropic), a vector (diagonal) or a :math:`d\\times d` matrix
(:math:`\\sigma\\,dW` with :math:`d` independent Brownian motions), or a :class:`StateDiffusion`
with :math:`\\sigma_k(t, x)` per axis (diagonal noise) and, for the Milstein scheme, its derivative
:math:`\\partial_{x_k}\\sigma_k`. Milstein is of strong order 1 when :math:`\\sigma_k` depends on
:math:`x_k` only (commutative noise), which the class requires of the user. The MFG viscosity
:math:`\\nu` corresponds to :math:`\\sigma = \\sqrt{2\\nu}`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numba import njit, prange
from numba.core.registry import CPUDispatcher

from ..grid import Grid
from ..hamiltonians import Hamiltonian, Quadratic
from .density import GATHER_BLOCK, _gather_kernel, grid_geometry


class Drift:
    """Base class of drifts."""

    #: True for drifts folded into the affine part of the stepping kernel.
    affine = False

    def check_dim(self, d: int):
        pass

    def check_times(self, t0: float, t1: float):
        pass


# ---------------------------------------------------------------------------------------------
# affine
# ---------------------------------------------------------------------------------------------
def _as_matrix(name, value, d):
    a = np.asarray(value, dtype=float)
    if a.ndim == 0:
        a = float(a) * np.eye(d)
    elif a.ndim == 1:
        if a.size != d:
            raise ValueError(f"{name} has {a.size} entries; a diagonal needs {d}")
        a = np.diag(a)
    if a.shape != (d, d):
        raise ValueError(f"{name} has shape {a.shape}; expected ({d}, {d})")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} is not finite")
    return np.ascontiguousarray(a)


def _as_vector(name, value, d):
    v = np.asarray(value, dtype=float)
    if v.ndim == 0:
        v = np.full(d, float(v))
    if v.shape != (d,):
        raise ValueError(f"{name} has shape {v.shape}; expected ({d},)")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name} is not finite")
    return np.ascontiguousarray(v)


class AffineDrift(Drift):
    """:math:`b(t, x) = A(t)\\,x + c(t)`.

    ``A``: scalar (:math:`aI`), vector (diagonal), :math:`d\\times d` matrix, or a callable of
    ``t`` returning one of these; ``c``: scalar, vector or callable. The OU process
    :math:`dX = -\\theta(X - \\mu)\\,dt + \\sigma\\,dW` is ``AffineDrift(-theta, theta * mu)``.
    """

    affine = True

    def __init__(self, A=0.0, c=0.0):
        self.A = A
        self.c = c
        self._d = None

    @property
    def is_constant(self) -> bool:
        return not callable(self.A) and not callable(self.c)

    def check_dim(self, d):
        self._d = d
        self.coefficients(0.0) if self.is_constant else None

    def coefficients(self, t: float):
        """``(A, c)`` at time ``t`` as float arrays ``(d, d)``, ``(d,)``."""
        d = self._d
        A = self.A(t) if callable(self.A) else self.A
        c = self.c(t) if callable(self.c) else self.c
        return _as_matrix("A", A, d), _as_vector("c", c, d)

    def __repr__(self):
        return f"AffineDrift(A={self.A!r}, c={self.c!r})"


# ---------------------------------------------------------------------------------------------
# drifts evaluated into an array
# ---------------------------------------------------------------------------------------------
class ArrayDrift(Drift):
    """Drifts evaluated for all particles into an ``(N, d)`` array at each step."""

    def add_to(self, t: float, X: np.ndarray, alive: np.ndarray, out: np.ndarray):
        """``out += b(t, X)`` on the live particles."""
        raise NotImplementedError


class CallableDrift(ArrayDrift):
    """``func(t, X) -> (N, d)``, vectorised over particles (NumPy or anything returning an array).

    This is the hook for closed-form drifts (e.g. from :mod:`mfg_solvers.analytic`).
    """

    def __init__(self, func: Callable):
        if not callable(func):
            raise TypeError(f"func={func!r} must be callable as func(t, X) -> (N, d) array")
        self.func = func

    def add_to(self, t, X, alive, out):
        b = np.asarray(self.func(t, X), dtype=float)
        if b.shape != X.shape:
            raise ValueError(
                f"drift {self.func!r} returned shape {b.shape} at t={t}; expected {X.shape}"
            )
        out += b

    def __repr__(self):
        return f"CallableDrift({self.func!r})"


#: Particle count from which user numba functions are evaluated in parallel (below it the
#: serial loop is used: it compiles about three times faster, which matters for small runs).
PARALLEL_MIN = 1 << 16


def _eval_numba_drift(func, t, X, alive, out):
    """``out[i] += func(t, X[i])`` for live particles."""
    if X.shape[0] >= PARALLEL_MIN:
        return _eval_numba_drift_parallel(func, t, X, alive, out)
    return _eval_numba_drift_serial(func, t, X, alive, out)


# The two loops below are not cached: they are specialised on the user's function object, which
# numba cannot key across processes (a cached entry would be written at every run, never reused).
@njit(parallel=True)
def _eval_numba_drift_parallel(func, t, X, alive, out):  # pragma: no cover - compiled per func
    N, d = X.shape
    nb = (N + 1023) // 1024
    for b in prange(nb):
        tmp = np.zeros(d)
        for i in range(b * 1024, min(N, (b + 1) * 1024)):
            if alive[i] == 0:
                continue
            for k in range(d):
                tmp[k] = 0.0
            func(t, X[i], tmp)
            for k in range(d):
                out[i, k] += tmp[k]


@njit
def _eval_numba_drift_serial(func, t, X, alive, out):  # pragma: no cover - compiled per func
    N, d = X.shape
    tmp = np.zeros(d)
    for i in range(N):
        if alive[i] == 0:
            continue
        for k in range(d):
            tmp[k] = 0.0
        func(t, X[i], tmp)
        for k in range(d):
            out[i, k] += tmp[k]


class NumbaDrift(ArrayDrift):
    """A numba-compiled per-particle drift ``func(t, x, out)``: write :math:`b(t, x)` into ``out``.

    ``func`` must be an ``@njit`` function; it is called for every particle in parallel (it must
    not keep state between calls).
    """

    def __init__(self, func):
        if not isinstance(func, CPUDispatcher):
            raise TypeError(
                f"func={func!r} must be a numba @njit function func(t, x, out); wrap plain Python "
                "callables in CallableDrift"
            )
        self.func = func

    def add_to(self, t, X, alive, out):
        _eval_numba_drift(self.func, float(t), X, alive, out)

    def __repr__(self):
        return f"NumbaDrift({getattr(self.func, '__name__', self.func)!r})"


def _time_bracket(times: np.ndarray, t: float):
    """``(n0, n1, w)`` with ``t ~ (1-w) times[n0] + w times[n1]``; ``times`` increasing."""
    if times.size == 1:
        return 0, 0, 0.0
    n1 = int(np.searchsorted(times, t, side="right"))
    n1 = min(max(n1, 1), times.size - 1)
    n0 = n1 - 1
    w = (t - times[n0]) / (times[n1] - times[n0])
    return n0, n1, float(min(max(w, 0.0), 1.0))


class GridDrift(ArrayDrift):
    """A vector field on a grid, multilinear in space, linear in time.

    Parameters
    ----------
    grid
        The :class:`~mfg_solvers.grid.Grid` of the nodes (its periodic axes wrap; on the others
        the field is extended by its boundary value).
    field
        ``(*grid.shape, d)`` (stationary) or ``(nt+1, *grid.shape, d)`` with ``t``.
    t
        Increasing node times (``None`` for a stationary field). Particles may only be stepped
        inside ``[t[0], t[-1]]``.
    """

    def __init__(self, grid: Grid, field, t=None):
        if not isinstance(grid, Grid):
            raise TypeError(f"grid={grid!r} must be a mfg_solvers.Grid")
        field = np.asarray(field, dtype=float)
        d = grid.dim
        if t is None:
            if field.shape != grid.shape + (d,):
                raise ValueError(f"field has shape {field.shape}; expected {grid.shape + (d,)}")
            field = field[None]
            times = np.zeros(1)
        else:
            times = np.asarray(t, dtype=float).reshape(-1)
            if field.shape != (times.size,) + grid.shape + (d,):
                raise ValueError(
                    f"field has shape {field.shape}; expected {(times.size,) + grid.shape + (d,)}"
                )
            if times.size > 1 and not np.all(np.diff(times) > 0):
                raise ValueError("t must be strictly increasing")
        if not np.all(np.isfinite(field)):
            raise ValueError("field contains NaN or infinite values")
        self.grid = grid
        self.times = times
        self.stationary = t is None
        self.field = np.ascontiguousarray(field.reshape(times.size, grid.size, d))
        self._geom = grid_geometry(grid)

    def check_dim(self, d):
        if d != self.grid.dim:
            raise ValueError(f"the drift's grid has dimension {self.grid.dim}; particles have {d}")

    def check_times(self, t0, t1):
        if self.stationary:
            return
        a, b = self.times[0], self.times[-1]
        tol = 1e-9 * max(1.0, abs(b - a))
        if t0 < a - tol or t1 > b + tol:
            raise ValueError(
                f"the particles are stepped over [{t0}, {t1}] but the drift field is only "
                f"defined on [{a}, {b}]"
            )

    def add_to(self, t, X, alive, out):
        n0, n1, w = _time_bracket(self.times, t)
        lo, h, shape, periodic = self._geom
        _gather_kernel(X, alive, lo, h, shape, periodic, self.field[n0], self.field[n1], w, 1.0,
                       out, GATHER_BLOCK)

    def __call__(self, t, X) -> np.ndarray:
        """The drift at ``(t, X)`` as an ``(N, d)`` array."""
        X = np.ascontiguousarray(np.asarray(X, dtype=float))
        out = np.zeros_like(X)
        self.add_to(float(t), X, np.ones(X.shape[0], dtype=np.uint8), out)
        return out


def grid_gradient(u: np.ndarray, grid: Grid) -> np.ndarray:
    """:math:`\\nabla u` on the nodes, shape ``u.shape + (d,)`` (leading axes are batch axes).

    Central differences inside and across periodic wraps; on Neumann walls the second-order
    one-sided formulas :math:`(\\mp 3u_0 \\pm 4u_1 \\mp u_2)/(2h)`. Exact for quadratics.
    """
    u = np.asarray(u, dtype=float)
    d = grid.dim
    lead = u.ndim - d
    if lead < 0 or u.shape[lead:] != grid.shape:
        raise ValueError(f"u has shape {u.shape}; its trailing axes must be {grid.shape}")
    comps = []
    for k in range(d):
        ax = lead + k
        h = grid.spacing[k]
        if grid.periodic[k]:
            g = (np.roll(u, -1, axis=ax) - np.roll(u, 1, axis=ax)) / (2.0 * h)
        else:
            g = np.gradient(u, h, axis=ax, edge_order=2)
        comps.append(g)
    return np.stack(comps, axis=-1)


def _grid_of_solution(solution, grid, boundary):
    axes = solution.axes
    if grid is not None:
        if not isinstance(grid, Grid):
            raise TypeError(f"grid={grid!r} must be a mfg_solvers.Grid")
        if len(axes) != grid.dim or any(
            a.shape != g.shape or not np.allclose(a, g, rtol=0, atol=1e-12 * max(1.0, abs(g).max()))
            for a, g in zip(axes, grid.axes, strict=True)
        ):
            raise ValueError("grid does not match the solution's axes")
        return grid
    if boundary is None:
        boundary = solution.attrs.get("boundary")
    if boundary is None:
        raise ValueError(
            "the Solution does not record its boundary conditions: pass grid=<the Grid it was "
            "solved on> or boundary='periodic'/'neumann'"
        )
    if isinstance(boundary, str) and boundary.startswith("["):  # stored as a list string
        boundary = [b.strip(" '\"") for b in boundary.strip("[]").split(",")]
    bnames = (boundary,) * len(axes) if isinstance(boundary, str) else tuple(boundary)
    if len(bnames) != len(axes):
        raise ValueError(f"boundary={boundary!r} needs one entry per axis ({len(axes)})")
    bounds = []
    for a, b in zip(axes, bnames, strict=True):
        h = float(a[1] - a[0])
        bounds.append((float(a[0]), float(a[0] + h * a.size)) if str(b) == "periodic"
                      else (float(a[0]), float(a[-1])))
    return Grid(bounds, tuple(a.size for a in axes), bnames)


def feedback_field(solution, grid: Grid, hamiltonian: Hamiltonian) -> np.ndarray:
    """:math:`-\\partial_pH(\\nabla u, m)` on the nodes, shape ``u.shape + (d,)``."""
    u = solution.u
    m = solution.m
    p = grid_gradient(u, grid)
    return np.ascontiguousarray(hamiltonian.control(p, m), dtype=float)


class FeedbackDrift(GridDrift):
    """The optimal feedback :math:`-\\partial_pH(\\nabla u(t, x), m(t, x))` of a grid Solution.

    Parameters
    ----------
    solution
        A :class:`~mfg_solvers.results.Solution` (time-dependent: ``u`` of shape
        ``(nt+1, *shape)`` with ``t``; or ergodic: ``u`` of shape ``shape``).
    grid
        The :class:`~mfg_solvers.grid.Grid` it was computed on (checked against its axes). If
        omitted, ``boundary`` (or the Solution's ``boundary`` attribute) rebuilds it.
    hamiltonian
        The Hamiltonian (default :class:`~mfg_solvers.hamiltonians.Quadratic`, feedback
        :math:`-\\nabla u`).
    use_stored_control
        Use the Solution's ``control`` variable instead of differentiating ``u``.

    Interpolation is multilinear in space and linear in time; the gradient is second order on the
    nodes, so the feedback of a quadratic ``u`` is reproduced exactly in space.
    """

    def __init__(self, solution, grid: Grid | None = None, hamiltonian: Hamiltonian | None = None,
                 boundary=None, use_stored_control: bool = False):
        hamiltonian = Quadratic() if hamiltonian is None else hamiltonian
        if not isinstance(hamiltonian, Hamiltonian):
            raise TypeError(f"hamiltonian={hamiltonian!r} must be a mfg_solvers Hamiltonian")
        grid = _grid_of_solution(solution, grid, boundary)
        if use_stored_control:
            field = solution.control
            if field is None:
                raise ValueError("use_stored_control=True but the Solution has no control")
        else:
            field = feedback_field(solution, grid, hamiltonian)
        self.hamiltonian = hamiltonian
        super().__init__(grid, field, solution.t)

    def __repr__(self):
        return f"FeedbackDrift({self.grid!r}, {self.hamiltonian!r})"


def as_drift_list(drift) -> list[Drift]:
    """Normalise the ``drift`` argument of the integrators to a list of :class:`Drift`."""
    if drift is None:
        return []
    items = list(drift) if isinstance(drift, list | tuple) else [drift]
    out = []
    for item in items:
        if isinstance(item, Drift):
            out.append(item)
        elif isinstance(item, CPUDispatcher):
            out.append(NumbaDrift(item))
        elif callable(item):
            out.append(CallableDrift(item))
        else:
            raise TypeError(
                f"drift={item!r} must be a Drift (AffineDrift, NumbaDrift, CallableDrift, "
                "GridDrift, FeedbackDrift), a numba function f(t, x, out) or a callable f(t, X)"
            )
    return out


# ---------------------------------------------------------------------------------------------
# diffusion
# ---------------------------------------------------------------------------------------------
class StateDiffusion:
    """State-dependent diagonal diffusion :math:`\\sigma_k(t, x)` (axis ``k`` driven by
    :math:`W^k` alone).

    ``sigma`` and ``dsigma`` (:math:`\\partial\\sigma_k/\\partial x_k`, needed by Milstein) are
    either numba functions ``f(t, x, out)`` per particle or vectorised callables
    ``f(t, X) -> (N, d)``. Milstein's strong order 1 needs :math:`\\sigma_k` to depend on
    :math:`x_k` only.
    """

    def __init__(self, sigma, dsigma=None):
        for name, f in (("sigma", sigma), ("dsigma", dsigma)):
            if f is not None and not callable(f):
                raise TypeError(f"{name}={f!r} must be a numba function or a callable")
        self.sigma = sigma
        self.dsigma = dsigma

    @staticmethod
    def _eval(f, t, X, alive, name):
        if isinstance(f, CPUDispatcher):
            out = np.zeros_like(X)
            _eval_numba_drift(f, float(t), X, alive, out)
        else:
            out = np.asarray(f(t, X), dtype=float)
            if out.shape != X.shape:
                raise ValueError(f"{name} returned shape {out.shape}; expected {X.shape}")
            out = np.ascontiguousarray(out)
        return out

    def evaluate(self, t, X, alive, milstein: bool):
        S = self._eval(self.sigma, t, X, alive, "sigma")
        if milstein:
            if self.dsigma is None:
                raise ValueError("the Milstein scheme needs dsigma (the derivative of sigma)")
            dS = self._eval(self.dsigma, t, X, alive, "dsigma")
        else:
            dS = np.zeros((0, X.shape[1]))
        return S, dS

    def __repr__(self):
        return f"StateDiffusion({self.sigma!r}, {self.dsigma!r})"


def noise_matrix(sigma, d: int) -> np.ndarray:
    """The constant noise matrix ``L`` (``dX = ... + L dW``) from a scalar, vector or matrix."""
    if isinstance(sigma, bool) or sigma is None:
        raise TypeError(f"sigma={sigma!r} must be a number, a vector, a matrix or StateDiffusion")
    try:
        a = np.asarray(sigma, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(
            f"sigma={sigma!r} must be a number, a vector, a matrix or StateDiffusion"
        ) from None
    if not np.all(np.isfinite(a)):
        raise ValueError(f"sigma={sigma!r} must be finite")
    if a.ndim == 0:
        if a < 0:
            raise ValueError(f"sigma={sigma!r} must be >= 0")
        return float(a) * np.eye(d)
    if a.ndim == 1:
        if a.size != d:
            raise ValueError(f"sigma has {a.size} entries; a diagonal needs {d}")
        if np.any(a < 0):
            raise ValueError(f"sigma={sigma!r} must have entries >= 0")
        return np.diag(a)
    if a.shape != (d, d):
        raise ValueError(f"sigma has shape {a.shape}; expected a scalar, ({d},) or ({d}, {d})")
    return np.ascontiguousarray(a)
