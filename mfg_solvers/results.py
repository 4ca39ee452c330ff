"""The :class:`Solution` object: an ``xarray.Dataset`` with coordinates and provenance.

Variables
    ``u`` (value function) and ``m`` (density), on dims ``("t", "x"[, "y"[, "z"]])`` for a
    finite-horizon problem or ``("x", ...)`` for an ergodic one; optionally ``control``
    (the optimal feedback :math:`-\\partial_p H(\\nabla u)`, extra trailing dim ``component``);
    ``residual_history`` on dim ``iteration``; ``ergodic_constant`` (scalar :math:`\\lambda`).
Attributes
    ``problem``, ``scheme``, ``solver``, ``iterations``, ``converged`` and ``interrupted``
    (stored as 0/1 so that NetCDF can hold them), timings ``time_*`` in seconds, ``version``.

A Solution saves to NetCDF-4 (:meth:`Solution.save`) and reloads identically
(:meth:`Solution.load`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import xarray as xr

BOOL_ATTRS = ("converged", "interrupted")


def _version() -> str:
    from . import __version__

    return __version__


class Solution:
    """Result of a solve; wraps an ``xarray.Dataset`` (``.dataset``)."""

    def __init__(self, dataset: xr.Dataset):
        if not isinstance(dataset, xr.Dataset):
            raise TypeError(f"dataset={dataset!r} must be an xarray.Dataset")
        self.dataset = dataset

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def from_arrays(
        cls,
        *,
        u: np.ndarray,
        m: np.ndarray,
        axes: Sequence[np.ndarray],
        t: np.ndarray | None = None,
        control: np.ndarray | None = None,
        residual_history: Sequence[float] = (),
        ergodic_constant: float | None = None,
        attrs: Mapping | None = None,
        axis_names: Sequence[str] | None = None,
    ) -> Solution:
        """Build a Solution from arrays.

        ``u`` and ``m`` have shape ``(nt+1, *grid.shape)`` when ``t`` is given, else
        ``grid.shape``. ``attrs`` may hold ``converged``/``interrupted`` as bools.
        """
        dim = len(axes)
        names = tuple(axis_names) if axis_names is not None else ("x", "y", "z")[:dim]
        space = {n: np.asarray(a, dtype=float) for n, a in zip(names, axes, strict=True)}
        dims = (("t",) if t is not None else ()) + names
        coords = dict(space)
        if t is not None:
            coords["t"] = np.asarray(t, dtype=float)
        data = {
            "u": (dims, np.ascontiguousarray(u, dtype=float)),
            "m": (dims, np.ascontiguousarray(m, dtype=float)),
            "residual_history": (("iteration",), np.asarray(residual_history, dtype=float)),
        }
        if control is not None:
            data["control"] = (dims + ("component",), np.ascontiguousarray(control, dtype=float))
        if ergodic_constant is not None:
            data["ergodic_constant"] = ((), float(ergodic_constant))
        ds = xr.Dataset(data, coords=coords)
        ds["u"].attrs["long_name"] = "value function"
        ds["m"].attrs["long_name"] = "density"
        a = {"version": _version(), "converged": True, "interrupted": False}
        a.update(dict(attrs or {}))
        ds.attrs.update(_encode_attrs(a))
        return cls(ds)

    # -- access -----------------------------------------------------------------------------
    @property
    def u(self) -> np.ndarray:
        return self.dataset["u"].values

    @property
    def m(self) -> np.ndarray:
        return self.dataset["m"].values

    @property
    def t(self) -> np.ndarray | None:
        return self.dataset["t"].values if "t" in self.dataset.coords else None

    @property
    def axes(self) -> tuple[np.ndarray, ...]:
        return tuple(self.dataset[n].values for n in self.axis_names)

    @property
    def axis_names(self) -> tuple[str, ...]:
        return tuple(d for d in self.dataset["u"].dims if d != "t")

    @property
    def control(self) -> np.ndarray | None:
        return self.dataset["control"].values if "control" in self.dataset else None

    @property
    def residual_history(self) -> np.ndarray:
        return self.dataset["residual_history"].values

    @property
    def ergodic_constant(self) -> float | None:
        if "ergodic_constant" in self.dataset:
            return float(self.dataset["ergodic_constant"].values)
        return None

    @property
    def attrs(self) -> dict:
        return _decode_attrs(self.dataset.attrs)

    @property
    def converged(self) -> bool:
        return bool(self.dataset.attrs.get("converged", 1))

    @property
    def interrupted(self) -> bool:
        return bool(self.dataset.attrs.get("interrupted", 0))

    @property
    def iterations(self) -> int:
        return int(self.dataset.attrs.get("iterations", len(self.residual_history)))

    @property
    def cell_volume(self) -> float:
        vol = 1.0
        for a in self.axes:
            vol *= float(a[1] - a[0])
        return vol

    def mass(self) -> np.ndarray | float:
        """:math:`h^d \\sum_i m_i` (per time step for a time-dependent solution)."""
        dim = len(self.axes)
        m = self.m
        return m.sum(axis=tuple(range(m.ndim - dim, m.ndim))) * self.cell_volume

    def __getitem__(self, key):
        return self.dataset[key]

    def __repr__(self):
        shape = dict(self.dataset["u"].sizes)
        status = "converged" if self.converged else "NOT converged"
        if self.interrupted:
            status = "interrupted"
        return (
            f"<Solution {self.attrs.get('problem', '')!r} {shape} solver="
            f"{self.attrs.get('solver', '?')} iterations={self.iterations} {status}>"
        )

    # -- persistence ------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write NetCDF-4 (h5netcdf engine); reloads bit-identically with :meth:`load`."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # the in-memory attributes take the form they will have after a reload
        self.dataset.attrs = _encode_attrs(self.dataset.attrs)
        self.dataset.to_netcdf(path, engine="h5netcdf")
        return path

    @classmethod
    def load(cls, path: str | Path) -> Solution:
        """Read a Solution written by :meth:`save`."""
        with xr.open_dataset(Path(path), engine="h5netcdf") as ds:
            return cls(ds.load())

    def equals(self, other: Solution) -> bool:
        """Exact equality of data, coordinates and attributes."""
        return isinstance(other, Solution) and self.dataset.identical(other.dataset)


def _encode_attrs(attrs: Mapping) -> dict:
    out = {}
    for k, v in attrs.items():
        if v is None:
            continue
        if isinstance(v, bool | np.bool_):
            out[k] = int(v)
        elif isinstance(v, int | float | str | np.integer | np.floating):
            out[k] = v
        elif isinstance(v, list | tuple | np.ndarray):
            arr = np.asarray(v)
            if arr.dtype.kind not in "ifu":
                out[k] = str(list(v))
            elif arr.size == 1:  # NetCDF reads a length-1 attribute back as a scalar
                out[k] = arr.reshape(()).item()
            else:
                out[k] = arr.ravel()
        else:
            out[k] = str(v)
    return out


def _decode_attrs(attrs: Mapping) -> dict:
    out = dict(attrs)
    for k in BOOL_ATTRS:
        if k in out:
            out[k] = bool(out[k])
    return out
