"""Boxes with per-axis boundary behaviour for particles.

================  ====  ============================================================================
name              code  what happens to a particle that leaves :math:`[a_k, b_k]` during a step
================  ====  ============================================================================
``"free"``        0     nothing: the axis is the whole line :math:`\\mathbb R`
``"periodic"``    1     wrapped: :math:`x \\mapsto a + (x - a) \\bmod L`
``"reflecting"``  2     folded back (symmetric reflection, period :math:`2L`); alias ``"neumann"``
``"absorbing"``   3     killed (an exit): frozen on the wall, its exit time recorded
================  ====  ============================================================================

A :class:`Box` built from a :class:`~mfg_solvers.grid.Grid` (:meth:`Box.from_grid`) matches the
grid's boundary conditions: periodic axes stay periodic and Neumann (zero-flux) axes reflect.

Reflection by folding is the symmetrised Euler scheme of Bossy, Gobet and Talay (weak order 1 for
normally reflected diffusions). For absorbing walls an optional Brownian-bridge test (Gobet)
kills a particle whose start and end points are both inside with the probability
:math:`1 - \\prod_{\\text{walls}}\\big(1 - e^{-2\\,d_0 d_1/(s^2\\Delta t)}\\big)` that the
continuous path touched a wall in between (:math:`d_0, d_1` the distances of the two end points
to the wall, :math:`s^2` the diffusion variance of that axis); this restores weak order 1 for
exit problems (the plain scheme has order 1/2).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ..grid import Grid

FREE, PERIODIC, REFLECTING, ABSORBING = 0, 1, 2, 3
BOUNDARY_CODES = {
    "free": FREE,
    "none": FREE,
    "periodic": PERIODIC,
    "reflecting": REFLECTING,
    "neumann": REFLECTING,
    "absorbing": ABSORBING,
    "dirichlet": ABSORBING,
}
_CANONICAL = {FREE: "free", PERIODIC: "periodic", REFLECTING: "reflecting", ABSORBING: "absorbing"}


class Box:
    """A box :math:`\\prod_k [a_k, b_k]` with one boundary behaviour per axis.

    Parameters
    ----------
    bounds
        ``(a, b)`` in 1-D or one pair per axis; a ``"free"`` axis may use ``(-inf, inf)``.
    boundary
        One name for all axes or one per axis (see the module table).
    """

    def __init__(self, bounds, boundary="reflecting"):
        arr = np.asarray(bounds, dtype=float)
        if arr.ndim == 1 and arr.shape == (2,):
            arr = arr[None, :]
        if arr.ndim != 2 or arr.shape[1] != 2 or not 1 <= arr.shape[0] <= 3:
            raise ValueError(f"bounds={bounds!r} must be one (a, b) pair per axis, 1 to 3 axes")
        d = arr.shape[0]
        if isinstance(boundary, str):
            boundary = (boundary,) * d
        boundary = tuple(boundary)
        if len(boundary) != d:
            raise ValueError(f"boundary={boundary!r} needs one entry per axis ({d})")
        codes = []
        for name in boundary:
            key = str(name).lower()
            if key not in BOUNDARY_CODES:
                raise ValueError(
                    f"boundary={name!r} is not known; allowed: {sorted(BOUNDARY_CODES)}"
                )
            codes.append(BOUNDARY_CODES[key])
        for k, (a, b) in enumerate(arr):
            if codes[k] != FREE and not (np.isfinite(a) and np.isfinite(b) and a < b):
                raise ValueError(
                    f"bounds[{k}]=({a}, {b}) must be finite with a < b for a "
                    f"{_CANONICAL[codes[k]]!r} axis"
                )
            if codes[k] == FREE and not a < b:
                raise ValueError(f"bounds[{k}]=({a}, {b}) must satisfy a < b")
        self.bounds = tuple((float(a), float(b)) for a, b in arr)
        self.codes = np.array(codes, dtype=np.int64)
        self.lo = np.ascontiguousarray(arr[:, 0])
        self.hi = np.ascontiguousarray(arr[:, 1])

    @classmethod
    def free(cls, dim: int) -> Box:
        """The whole space :math:`\\mathbb R^d`."""
        return cls([(-np.inf, np.inf)] * int(dim), "free")

    @classmethod
    def from_grid(cls, grid: Grid, absorbing: bool = False) -> Box:
        """The grid's box and boundary conditions (Neumann axes reflect, or absorb if asked).

        For a periodic axis the box is ``[a, a + n h)``, the grid's period.
        """
        if not isinstance(grid, Grid):
            raise TypeError(f"grid={grid!r} must be a mfg_solvers.Grid")
        names = []
        for bc in grid.boundary:
            if bc == "periodic":
                names.append("periodic")
            else:
                names.append("absorbing" if absorbing else "reflecting")
        return cls(grid.bounds, names)

    @property
    def dim(self) -> int:
        return len(self.bounds)

    @property
    def boundary(self) -> tuple[str, ...]:
        return tuple(_CANONICAL[int(c)] for c in self.codes)

    @property
    def has_exits(self) -> bool:
        return bool(np.any(self.codes == ABSORBING))

    @property
    def is_free(self) -> bool:
        return bool(np.all(self.codes == FREE))

    def contains(self, X: np.ndarray) -> np.ndarray:
        """Boolean mask of the rows of ``X`` inside the closed box (free axes always inside)."""
        X = np.asarray(X, dtype=float)
        ok = np.ones(X.shape[0], dtype=bool)
        for k in range(self.dim):
            if self.codes[k] == PERIODIC:
                ok &= (X[:, k] >= self.lo[k]) & (X[:, k] < self.hi[k])
            elif self.codes[k] != FREE:
                ok &= (X[:, k] >= self.lo[k]) & (X[:, k] <= self.hi[k])
        return ok

    def __repr__(self):
        return f"Box(bounds={self.bounds}, boundary={self.boundary})"


@njit(cache=True)
def wrap(x, lo, hi):
    """Periodic image of ``x`` in ``[lo, hi)``."""
    L = hi - lo
    y = (x - lo) % L
    if y >= L:  # rounding of the modulo
        y -= L
    return lo + y


@njit(cache=True)
def fold(x, lo, hi):
    """Symmetric reflection of ``x`` into ``[lo, hi]`` (any number of wall bounces)."""
    if lo <= x <= hi:
        return x
    L = hi - lo
    y = (x - lo) % (2.0 * L)
    if y > L:
        y = 2.0 * L - y
    return lo + y


@njit(cache=True)
def bridge_survival(x0, x1, lo, hi, var_dt):
    """Probability that a Brownian bridge from ``x0`` to ``x1`` (both inside) stays inside.

    ``var_dt`` is :math:`s^2 \\Delta t`; the two walls are treated independently (exact for a
    half-line, accurate to :math:`O(e^{-L^2/(s^2\\Delta t)})` for an interval).
    """
    if var_dt <= 0.0:
        return 1.0
    p_lo = math.exp(-2.0 * (x0 - lo) * (x1 - lo) / var_dt)
    p_hi = math.exp(-2.0 * (hi - x0) * (hi - x1) / var_dt)
    return (1.0 - p_lo) * (1.0 - p_hi)
