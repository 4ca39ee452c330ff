"""The MFG problem statement, independent of any discretisation.

Finite horizon :math:`T` (``ergodic=False``):

.. math::

    -\\partial_t u - \\nu \\Delta u + H(\\nabla u, m) &= V(x) + f(x, m(t)),
        \\qquad u(T, x) = g(x) + G(x, m(T)),\\\\
    \\partial_t m - \\nu \\Delta m - \\operatorname{div}\\big(m\\, \\partial_p H(\\nabla u, m)\\big) &= 0,
        \\qquad m(0) = m_0 .

Ergodic (``ergodic=True``, unknown constant :math:`\\lambda`):

.. math::

    \\lambda - \\nu \\Delta u + H(\\nabla u, m) = V + f(x, m),\\qquad
    -\\nu \\Delta m - \\operatorname{div}(m\\,\\partial_p H) = 0,\\qquad
    \\int m = 1,\\ \\int u = 0 .

:math:`\\nu = \\sigma^2/2 \\ge 0` is the viscosity. Couplings :math:`f`:

* :class:`LocalCoupling` -- :math:`f(m) = s\\,m`, :math:`s \\log m`, or :math:`s\\,m^\\alpha`;
* :class:`NonlocalCoupling` -- :math:`f(x, m) = s\\,(K * m)(x) = s \\int K(x - y)\\,m(y)\\,dy`;
* :class:`MeanCoupling` -- :math:`f(x, m) = \\tfrac{q}{2} |x - \\kappa \\bar x|^2`,
  :math:`\\bar x = \\int y\\,m(y)\\,dy` (the linear-quadratic MFG).

All couplings share one small interface used by the discretisations: ``value(m, grid)``
(``m`` of shape ``grid.shape`` or ``(nt, *grid.shape)``), ``is_local``, and either
``derivative(m)`` (local, pointwise :math:`f'(m)`) or ``jacobian(m, grid)`` (nonlocal, dense
matrix :math:`\\partial f_i / \\partial m_j` on the flattened grid).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

from .grid import Domain, Grid
from .hamiltonians import Hamiltonian, Quadratic

#: Mass error (trapezoidal rule) above which a sampled m0 is renormalised with a warning.
MASS_WARNING_TOLERANCE = 1e-3


class MassNormalisationWarning(UserWarning):
    """m0 did not have unit mass on the grid and was rescaled."""


# ---------------------------------------------------------------------------------------------
# Couplings
# ---------------------------------------------------------------------------------------------
class Coupling:
    """Base class of running/terminal couplings :math:`f(x, m)`."""

    is_local: bool = True

    def value(self, m: np.ndarray, grid: Grid) -> np.ndarray:
        raise NotImplementedError

    def derivative(self, m: np.ndarray) -> np.ndarray:  # local couplings only
        raise NotImplementedError(f"{type(self).__name__} is not local: use jacobian()")

    def jacobian(self, m: np.ndarray, grid: Grid) -> np.ndarray:
        """Dense :math:`\\partial f_i / \\partial m_j` on the flattened grid (size × size)."""
        d = np.asarray(self.derivative(m), dtype=float).ravel()
        return np.diag(d)


class LocalCoupling(Coupling):
    """Local coupling :math:`f(m)`.

    ``kind="linear"``: :math:`f = s\\,m`; ``"log"``: :math:`f = s \\log m`;
    ``"power"``: :math:`f = s\\,m^{\\alpha}` (``exponent`` :math:`\\alpha > 0`).
    """

    KINDS = ("linear", "log", "power")
    is_local = True

    def __init__(self, kind: str = "linear", strength: float = 1.0, exponent: float | None = None):
        if kind not in self.KINDS:
            raise ValueError(f"coupling kind={kind!r} is not known; allowed: {list(self.KINDS)}")
        if not np.isfinite(strength):
            raise ValueError(f"strength={strength!r} must be finite")
        if kind == "power":
            if exponent is None or not np.isfinite(exponent) or exponent <= 0:
                raise ValueError(f"exponent={exponent!r} must be a finite number > 0 for 'power'")
        elif exponent is not None:
            raise ValueError(f"exponent={exponent!r} is only allowed with kind='power'")
        self.kind = kind
        self.strength = float(strength)
        self.exponent = None if exponent is None else float(exponent)

    def value(self, m, grid=None):
        m = np.asarray(m, dtype=float)
        if self.kind == "linear":
            return self.strength * m
        if self.kind == "log":
            return self.strength * np.log(m)
        return self.strength * m**self.exponent

    def derivative(self, m):
        m = np.asarray(m, dtype=float)
        if self.kind == "linear":
            return np.full_like(m, self.strength)
        if self.kind == "log":
            return self.strength / m
        return self.strength * self.exponent * m ** (self.exponent - 1.0)

    def __repr__(self):
        extra = "" if self.exponent is None else f", exponent={self.exponent}"
        return f"LocalCoupling({self.kind!r}, strength={self.strength}{extra})"


def _displacements(grid: Grid) -> list[np.ndarray]:
    """Pairwise displacement x_i - y_j per axis on the flattened grid (minimal image if periodic)."""
    pts = grid.points()
    out = []
    for k in range(grid.dim):
        d = pts[:, k][:, None] - pts[:, k][None, :]
        if grid.periodic[k]:
            L = grid.domain.lengths[k]
            d = d - L * np.round(d / L)
        out.append(d)
    return out


class NonlocalCoupling(Coupling):
    """Convolution coupling :math:`f(x, m) = s \\int K(x - y)\\, m(y)\\, dy`.

    ``kernel`` takes the displacement components (``kernel(dx)``, ``kernel(dx, dy)``, ...;
    minimal image on periodic axes) and returns :math:`K`. The discrete form is
    :math:`f_i = s\\,h^d \\sum_j K(x_i - x_j) m_j`, a dense matrix built once per grid.
    """

    is_local = False

    def __init__(self, kernel: Callable, strength: float = 1.0):
        if not callable(kernel):
            raise TypeError(f"kernel={kernel!r} must be callable")
        self.kernel = kernel
        self.strength = float(strength)
        self._cache: dict = {}

    def matrix(self, grid: Grid) -> np.ndarray:
        key = (grid.shape, grid.domain)
        if key not in self._cache:
            K = np.asarray(self.kernel(*_displacements(grid)), dtype=float)
            if not np.all(np.isfinite(K)):
                raise ValueError("kernel is not finite on the grid")
            self._cache = {key: self.strength * grid.cell_volume * K}
        return self._cache[key]

    def value(self, m, grid):
        m = np.asarray(m, dtype=float)
        lead = m.shape[: m.ndim - grid.dim]
        flat = m.reshape(lead + (grid.size,))
        return (flat @ self.matrix(grid).T).reshape(m.shape)

    def jacobian(self, m, grid):
        return self.matrix(grid)

    def __repr__(self):
        return f"NonlocalCoupling(kernel={self.kernel!r}, strength={self.strength})"


class MeanCoupling(Coupling):
    """Mean-field LQ coupling :math:`f(x, m) = \\tfrac{q}{2}|x - \\kappa \\bar x|^2`,
    :math:`\\bar x = \\int y\\, m(y)\\, dy`.

    Its Jacobian is :math:`\\partial f_i/\\partial m_j = -q\\kappa (x_i - \\kappa\\bar x)\\cdot x_j h^d`
    (rank ``dim``).
    """

    is_local = False

    def __init__(self, q: float = 1.0, kappa: float = 0.0):
        if not np.isfinite(q) or q < 0:
            raise ValueError(f"q={q!r} must be a finite number >= 0")
        if not np.isfinite(kappa):
            raise ValueError(f"kappa={kappa!r} must be finite")
        self.q = float(q)
        self.kappa = float(kappa)

    def mean(self, m, grid):
        m = np.asarray(m, dtype=float)
        coords = grid.coordinates()
        return np.stack([grid.integrate(m * c) for c in coords], axis=-1)

    def value(self, m, grid):
        m = np.asarray(m, dtype=float)
        xbar = self.mean(m, grid)  # (..., d)
        out = np.zeros(m.shape)
        for k, c in enumerate(grid.coordinates()):
            xb = np.asarray(xbar[..., k])
            xb = xb.reshape(xb.shape + (1,) * grid.dim)
            out = out + (c - self.kappa * xb) ** 2
        return 0.5 * self.q * out

    def jacobian(self, m, grid):
        m = np.asarray(m, dtype=float)
        xbar = self.mean(m, grid)
        pts = grid.points()
        J = np.zeros((grid.size, grid.size))
        for k in range(grid.dim):
            J -= np.outer(self.q * self.kappa * (pts[:, k] - self.kappa * xbar[k]), pts[:, k])
        return J * grid.cell_volume

    def __repr__(self):
        return f"MeanCoupling(q={self.q}, kappa={self.kappa})"


# ---------------------------------------------------------------------------------------------
# The problem
# ---------------------------------------------------------------------------------------------
def _check_number(name, value, *, positive=False, nonneg=False):
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}={value!r} must be a real number") from None
    if not np.isfinite(v):
        raise ValueError(f"{name}={value!r} must be finite")
    if positive and v <= 0:
        raise ValueError(f"{name}={value!r} must be > 0")
    if nonneg and v < 0:
        raise ValueError(f"{name}={value!r} must be >= 0")
    return v


class MFGProblem:
    """A mean-field game: pure data and callables, no grid, no solver.

    Parameters
    ----------
    domain
        :class:`~mfg_solvers.grid.Domain` (bounds and boundary condition per axis).
    nu
        Viscosity :math:`\\nu = \\sigma^2 / 2 \\ge 0`.
    hamiltonian
        A :class:`~mfg_solvers.hamiltonians.Hamiltonian` (default :class:`Quadratic`).
    coupling
        Running coupling :math:`f(x, m)` (a :class:`Coupling`) or ``None`` for :math:`f = 0`.
    potential
        :math:`V(x)`: callable of the coordinates (``V(x)``, ``V(x, y)``, ``V(x, y, z)``) or None.
    m0
        Initial density (finite horizon) or initial guess (ergodic): a callable of the
        coordinates, or an array of the grid's shape. Must be finite and non-negative; it is
        normalised to unit mass on the grid (with a :class:`MassNormalisationWarning` when its
        mass is off by more than ``MASS_WARNING_TOLERANCE``).
    T
        Horizon (> 0) for a finite-horizon game; must be ``None`` when ``ergodic=True``.
    terminal_cost
        :math:`g(x)`: callable of the coordinates, or ``None`` for 0.
    terminal_coupling
        :math:`G(x, m_T)`: a :class:`Coupling`, or ``None``.
    ergodic
        Solve the stationary (ergodic) system for :math:`(u, m, \\lambda)`.
    name
        A label carried into the Solution.
    """

    def __init__(
        self,
        domain: Domain,
        nu: float,
        *,
        hamiltonian: Hamiltonian | None = None,
        coupling: Coupling | None = None,
        potential: Callable | None = None,
        m0=None,
        T: float | None = None,
        terminal_cost: Callable | None = None,
        terminal_coupling: Coupling | None = None,
        ergodic: bool = False,
        name: str = "",
    ):
        if not isinstance(domain, Domain):
            raise TypeError(f"domain={domain!r} must be a mfg_solvers.Domain")
        self.domain = domain
        self.nu = _check_number("nu", nu, nonneg=True)
        self.hamiltonian = Quadratic() if hamiltonian is None else hamiltonian
        if not isinstance(self.hamiltonian, Hamiltonian):
            raise TypeError(f"hamiltonian={hamiltonian!r} must be a mfg_solvers Hamiltonian")
        for label, c in (("coupling", coupling), ("terminal_coupling", terminal_coupling)):
            if c is not None and not isinstance(c, Coupling):
                raise TypeError(f"{label}={c!r} must be a Coupling (LocalCoupling, ...) or None")
        self.coupling = coupling
        self.terminal_coupling = terminal_coupling
        for label, fn in (("potential", potential), ("terminal_cost", terminal_cost)):
            if fn is not None and not callable(fn):
                raise TypeError(f"{label}={fn!r} must be a callable of the coordinates or None")
        self.potential = potential
        self.terminal_cost = terminal_cost
        self.ergodic = bool(ergodic)
        if self.ergodic:
            if T is not None:
                raise ValueError(f"T={T!r} must be None for an ergodic problem")
            if terminal_cost is not None or terminal_coupling is not None:
                raise ValueError("an ergodic problem has no terminal_cost / terminal_coupling")
            self.T = None
        else:
            if T is None:
                raise ValueError("T=None: a finite-horizon problem needs a horizon T > 0")
            self.T = _check_number("T", T, positive=True)
        if m0 is None:
            if not self.ergodic:
                raise ValueError("m0=None: a finite-horizon problem needs an initial density")
            m0 = _UniformDensity(domain.volume)
        if not callable(m0):
            arr = np.asarray(m0, dtype=float)
            if arr.ndim != domain.dim:
                raise ValueError(
                    f"m0 has shape {arr.shape}; expected a {domain.dim}-D array of the grid's shape"
                )
            _check_density("m0", arr)
            m0 = arr
        self.m0 = m0
        self.name = str(name)

    @property
    def dim(self) -> int:
        return self.domain.dim

    # -- sampling on a grid ---------------------------------------------------------------
    def _check_grid(self, grid: Grid):
        if grid.domain != self.domain:
            raise ValueError(f"grid={grid!r} does not discretise the problem's domain {self.domain}")

    def initial_density(self, grid: Grid) -> np.ndarray:
        """m0 on ``grid``, float64, normalised so that ``grid.integrate(m0) == 1``."""
        self._check_grid(grid)
        if callable(self.m0):
            m = grid.evaluate(self.m0, "m0")
        else:
            m = np.ascontiguousarray(self.m0, dtype=float)
            if m.shape != grid.shape:
                raise ValueError(f"m0 has shape {m.shape}; the grid has shape {grid.shape}")
        _check_density("m0", m)
        mass = grid.integrate(m)
        if mass <= 0:
            raise ValueError("m0 has zero mass on the grid")
        continuum_mass = _trapezoid_mass(m, grid)
        if abs(continuum_mass - 1.0) > MASS_WARNING_TOLERANCE:
            warnings.warn(
                f"m0 has mass {continuum_mass:.6g} (trapezoidal rule); normalised to 1",
                MassNormalisationWarning,
                stacklevel=2,
            )
        return m / mass

    def potential_values(self, grid: Grid) -> np.ndarray:
        """:math:`V` on ``grid`` (zeros if no potential)."""
        self._check_grid(grid)
        if self.potential is None:
            return np.zeros(grid.shape)
        return grid.evaluate(self.potential, "potential")

    def terminal_values(self, grid: Grid, mT: np.ndarray | None = None) -> np.ndarray:
        """:math:`g(x) + G(x, m_T)` on ``grid`` (``mT`` needed iff there is a terminal coupling)."""
        self._check_grid(grid)
        g = np.zeros(grid.shape) if self.terminal_cost is None else grid.evaluate(
            self.terminal_cost, "terminal_cost"
        )
        if self.terminal_coupling is not None:
            if mT is None:
                raise ValueError("mT is required: the terminal cost depends on m(T)")
            g = g + self.terminal_coupling.value(mT, grid)
        return g

    def running_cost(self, m: np.ndarray, grid: Grid, V: np.ndarray | None = None) -> np.ndarray:
        """:math:`V(x) + f(x, m)` for ``m`` of shape ``grid.shape`` or ``(nt, *grid.shape)``."""
        V = self.potential_values(grid) if V is None else V
        if self.coupling is None:
            return np.broadcast_to(V, np.shape(m)).copy()
        return V + self.coupling.value(m, grid)

    def __repr__(self):
        kind = "ergodic" if self.ergodic else f"T={self.T}"
        return (
            f"MFGProblem({self.name!r}, {self.domain}, nu={self.nu}, {kind}, "
            f"H={self.hamiltonian}, f={self.coupling})"
        )


def _trapezoid_mass(m: np.ndarray, grid: Grid) -> float:
    """:math:`\\int m` by the trapezoidal rule (half weights on wall nodes).

    The schemes normalise with the node sum :math:`h^d\\sum_i m_i`, which on reflecting
    (vertex-centred) axes over-counts the walls by :math:`O(h)`; the warning about a density that
    does not have unit mass uses this continuum estimate instead, so a correct density never warns.
    """
    w = m.astype(float, copy=True)
    for k, periodic in enumerate(grid.periodic):
        if not periodic:
            idx = [slice(None)] * grid.dim
            for end in (0, -1):
                idx[k] = end
                w[tuple(idx)] *= 0.5
    return float(w.sum() * grid.cell_volume)


class _UniformDensity:
    """The uniform density :math:`1/|\\Omega|` (default ergodic initial guess)."""

    def __init__(self, volume: float):
        self.value = 1.0 / volume

    def __call__(self, *coords):
        return np.full_like(coords[0], self.value, dtype=float)

    def __repr__(self):
        return f"uniform({self.value:g})"


def _check_density(name, arr):
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values; a density must be finite")
    if np.any(arr < 0):
        raise ValueError(f"{name} has negative values (min {arr.min():.3g}); a density must be >= 0")
