"""Tensor-product space grids, boundary conditions and time grids.

A :class:`Domain` is the continuous box :math:`\\prod_k [a_k, b_k]` with one boundary condition per
axis; a :class:`Grid` is a uniform discretisation of it; a :class:`TimeGrid` is
:math:`t_n = n\\,\\Delta t`, :math:`n = 0, \\dots, N_T`, :math:`\\Delta t = T / N_T`.

Node placement
--------------
* ``"periodic"`` axis of length :math:`L` with :math:`n` nodes: :math:`x_i = a + i h`,
  :math:`h = L / n`, :math:`i = 0, \\dots, n-1` (the node :math:`b` is identified with :math:`a`).
* ``"neumann"`` (reflecting, zero flux) axis: vertex-centred, both walls are nodes,
  :math:`x_i = a + i h`, :math:`h = L / (n-1)`.

Densities are normalised in the continuum sense: :math:`h^d \\sum_i m_i = 1`, which the
finite-difference schemes conserve exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Allowed boundary names, with their aliases.
BOUNDARY_ALIASES = {
    "periodic": "periodic",
    "neumann": "neumann",
    "reflecting": "neumann",
}
AXIS_NAMES = ("x", "y", "z")


def _normalise_boundary(boundary, dim: int) -> tuple[str, ...]:
    if isinstance(boundary, str):
        boundary = (boundary,) * dim
    boundary = tuple(boundary)
    if len(boundary) != dim:
        raise ValueError(
            f"boundary={boundary!r} has {len(boundary)} entries; expected one per axis ({dim})"
        )
    out = []
    for b in boundary:
        key = str(b).lower()
        if key not in BOUNDARY_ALIASES:
            raise ValueError(
                f"boundary={b!r} is not a known boundary condition; allowed: "
                f"{sorted(BOUNDARY_ALIASES)}"
            )
        out.append(BOUNDARY_ALIASES[key])
    return tuple(out)


def _normalise_bounds(bounds) -> tuple[tuple[float, float], ...]:
    arr = np.asarray(bounds, dtype=float)
    if arr.ndim == 1 and arr.shape == (2,):
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != 2 or not 1 <= arr.shape[0] <= 3:
        raise ValueError(
            f"bounds={bounds!r} must be one (a, b) pair per axis, for 1 to 3 axes"
        )
    if not np.all(np.isfinite(arr)) or np.any(arr[:, 1] <= arr[:, 0]):
        raise ValueError(f"bounds={bounds!r}: each pair (a, b) must be finite with a < b")
    return tuple((float(a), float(b)) for a, b in arr)


@dataclass(frozen=True)
class Domain:
    """A box :math:`\\prod_k [a_k, b_k]` (1 to 3 axes) with a boundary condition per axis.

    Parameters
    ----------
    bounds
        ``(a, b)`` for 1-D, or a sequence of such pairs.
    boundary
        ``"periodic"`` or ``"neumann"`` (alias ``"reflecting"``), one string for every axis or
        one per axis.
    """

    bounds: tuple[tuple[float, float], ...]
    boundary: tuple[str, ...]

    def __init__(self, bounds, boundary="periodic"):
        b = _normalise_bounds(bounds)
        object.__setattr__(self, "bounds", b)
        object.__setattr__(self, "boundary", _normalise_boundary(boundary, len(b)))

    @property
    def dim(self) -> int:
        return len(self.bounds)

    @property
    def lengths(self) -> tuple[float, ...]:
        return tuple(b - a for a, b in self.bounds)

    @property
    def volume(self) -> float:
        return float(np.prod(self.lengths))

    @property
    def axis_names(self) -> tuple[str, ...]:
        return AXIS_NAMES[: self.dim]

    def grid(self, shape) -> Grid:
        """The uniform :class:`Grid` of this domain with ``shape`` nodes."""
        return Grid(self.bounds, shape, self.boundary)


class Grid:
    """Uniform tensor-product grid on a :class:`Domain`.

    Parameters
    ----------
    bounds
        ``(a, b)`` or one pair per axis.
    shape
        Number of nodes per axis (an int in 1-D).
    boundary
        Boundary condition(s), see :class:`Domain`.

    Attributes
    ----------
    axes : tuple of 1-D arrays
        Node coordinates per axis.
    spacing : tuple of float
        :math:`h_k` per axis.
    cell_volume : float
        :math:`\\prod_k h_k`; a density ``m`` has mass ``m.sum() * cell_volume``.
    """

    def __init__(self, bounds, shape, boundary="periodic"):
        self.domain = Domain(bounds, boundary)
        dim = self.domain.dim
        shape = (shape,) if np.isscalar(shape) else tuple(shape)
        if len(shape) != dim:
            raise ValueError(f"shape={shape!r} must have one entry per axis ({dim})")
        for n in shape:
            if int(n) != n or n < 3:
                raise ValueError(f"shape={shape!r}: every axis needs an integer >= 3 nodes")
        self.shape = tuple(int(n) for n in shape)
        axes, spacing = [], []
        for (a, b), n, bc in zip(self.domain.bounds, self.shape, self.domain.boundary, strict=True):
            if bc == "periodic":
                h = (b - a) / n
                axes.append(a + h * np.arange(n))
            else:
                h = (b - a) / (n - 1)
                axes.append(a + h * np.arange(n))
            spacing.append(h)
        self.axes = tuple(axes)
        self.spacing = tuple(float(h) for h in spacing)

    # -- basic properties -------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return self.domain.dim

    @property
    def bounds(self):
        return self.domain.bounds

    @property
    def boundary(self) -> tuple[str, ...]:
        return self.domain.boundary

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def cell_volume(self) -> float:
        return float(np.prod(self.spacing))

    @property
    def axis_names(self) -> tuple[str, ...]:
        return self.domain.axis_names

    @property
    def periodic(self) -> tuple[bool, ...]:
        return tuple(bc == "periodic" for bc in self.boundary)

    def coordinates(self) -> tuple[np.ndarray, ...]:
        """Node coordinates as ``dim`` arrays of shape ``self.shape`` (``indexing='ij'``)."""
        return tuple(np.meshgrid(*self.axes, indexing="ij"))

    def points(self) -> np.ndarray:
        """Node coordinates as an array of shape ``(size, dim)`` in C order."""
        return np.stack([c.ravel() for c in self.coordinates()], axis=-1)

    def integrate(self, field: np.ndarray) -> np.ndarray | float:
        """:math:`h^d \\sum_i F_i` over the trailing ``dim`` axes of ``field``."""
        field = np.asarray(field, dtype=float)
        axes = tuple(range(field.ndim - self.dim, field.ndim))
        return field.sum(axis=axes) * self.cell_volume

    def evaluate(self, func, name: str = "function") -> np.ndarray:
        """Evaluate ``func(x)`` / ``func(x, y)`` / ``func(x, y, z)`` on the nodes.

        Scalars are broadcast; the result is a float64 C-ordered array of ``self.shape``.
        """
        out = np.asarray(func(*self.coordinates()), dtype=float)
        out = np.ascontiguousarray(np.broadcast_to(out, self.shape), dtype=float)
        if not np.all(np.isfinite(out)):
            raise ValueError(f"{name} is not finite on the grid")
        return out

    def __eq__(self, other):
        return (
            isinstance(other, Grid)
            and self.shape == other.shape
            and self.domain == other.domain
        )

    def __hash__(self):
        return hash((self.shape, self.domain))

    def __repr__(self):
        return f"Grid(bounds={self.bounds}, shape={self.shape}, boundary={self.boundary})"


class TimeGrid:
    """:math:`t_n = n T / N_T`, :math:`n = 0, \\dots, N_T`."""

    def __init__(self, T: float, nt: int):
        if not np.isfinite(T) or T <= 0:
            raise ValueError(f"T={T!r} must be a positive finite number")
        if int(nt) != nt or nt < 1:
            raise ValueError(f"nt={nt!r} must be a positive integer")
        self.T = float(T)
        self.nt = int(nt)
        self.dt = self.T / self.nt
        self.t = np.linspace(0.0, self.T, self.nt + 1)

    def __repr__(self):
        return f"TimeGrid(T={self.T}, nt={self.nt})"

