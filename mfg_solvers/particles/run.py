"""A particle run described by a plain dict (the ``particles`` kind of the problem catalogue).

:func:`run_particles` takes the ``[particles]`` table of a problem file (or the whole file as a
dict, in which case its ``particles`` table is used) and returns a JSON-ready summary.
:func:`run_particles_result` runs the same and also returns a :class:`ParticleResult`: the
recording times, the moments :math:`\\bar X_t` (``(nt, d)``) and covariances (``(nt, d, d)``), the
live mass and, with a ``density`` table, the deposited density on its grid; it saves to one
NetCDF file (:meth:`ParticleResult.save`, read back by :meth:`ParticleResult.load`).

Keys (all lengths/matrices may be given as scalars, meaning a multiple of the identity):

===================  ==========================================================================
key                  meaning
===================  ==========================================================================
``n_particles``      number of particles (required)
``dim``              dimension 1..3 (default: from the initial mean, else 1)
``T``, ``n_steps``   horizon and number of steps (required)
``seed``             seed of the random streams (default 0)
``scheme``           ``"euler"`` (default), ``"milstein"``, ``"exact"``
``sigma`` / ``nu``   noise :math:`\\sigma` (scalar, diagonal or matrix) or viscosity
                     :math:`\\nu = \\sigma^2/2` (scalar); default 0
``initial``          ``{kind = "gaussian", mean, cov}`` or ``{kind = "uniform", bounds}``
``drift``            ``{kind = "affine", A, c}``, ``{kind = "ou", theta, mu}`` or absent
``interaction``      ``{kind = "quadratic", k}``, ``{kind = "mean_affine", B}``, or a pairwise
                     kernel ``{kind = "gaussian", strength, width}``, ``{kind = "morse", c_attr,
                     l_attr, c_rep, l_rep, eps}``, ``{kind = "coulomb", strength, eps}``, with
                     ``method = "pm" | "direct"`` and ``mesh = <nodes per axis>``
``box``              ``{bounds, boundary}`` (``boundary``: ``free``, ``periodic``, ``reflecting``,
                     ``absorbing``; one or one per axis); default free space
``record_every``     record moments every so many steps
``density``          ``{shape = [...], method = "cic"}``: deposit on the box's grid; the summary
                     gets the density's grid mass and maximum
===================  ==========================================================================

Summary keys: those of :meth:`ParticleRun.summary` (``mean``, ``cov``, ``mass``,
``particle_steps_per_s``, ...) plus ``ranks``, ``time_total_s``; for a linear system in free space
with a Gaussian start (affine drift, moment interactions, constant noise) also the closed form:
``mean_exact``, ``cov_exact`` (expected empirical covariance at this :math:`N`),
``mean_error``, ``cov_error`` (max abs) and ``w2_to_meanfield`` (:math:`W_2` between the Gaussian
with the empirical moments and the mean-field law).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..grid import Grid
from .boundaries import Box
from .density import dual_cell_volumes
from .drifts import AffineDrift
from .integrators import simulate
from .interactions import (
    GaussianKernel,
    MeanFieldAffine,
    MorseKernel,
    PairwiseInteraction,
    QuadraticInteraction,
    RegularisedCoulombKernel,
)
from .mpi import shard_range
from .rng import gaussian_particles, uniform_particles

_TOP_KEYS = {
    "n_particles", "dim", "T", "n_steps", "seed", "scheme", "sigma", "nu", "initial", "drift",
    "interaction", "box", "record_every", "density",
}
_META_KEYS = {"name", "kind", "description", "source", "reference", "references", "title",
              "tags", "solver", "output", "ci"}


def _check_keys(where, table, allowed):
    if not isinstance(table, dict):
        raise ValueError(f"{where} must be a table (dict), got {table!r}")
    unknown = set(table) - set(allowed)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}")


def _get(table, key, where, default=None, required=False):
    if key not in table:
        if required:
            raise ValueError(f"{where}: the key {key!r} is required")
        return default
    return table[key]


def _build_initial(spec, n_local, d, seed, offset):
    init = spec.get("initial", {"kind": "gaussian", "mean": [0.0] * d, "cov": 1.0})
    kind = init.get("kind", "gaussian") if isinstance(init, dict) else None
    if kind == "gaussian":
        _check_keys("initial", init, {"kind", "mean", "cov"})
        mean = np.broadcast_to(np.asarray(init.get("mean", 0.0), dtype=float), (d,))
        return gaussian_particles(n_local, mean, init.get("cov", 1.0), seed, offset), (
            mean, init.get("cov", 1.0))
    if kind == "uniform":
        _check_keys("initial", init, {"kind", "bounds"})
        return uniform_particles(n_local, _get(init, "bounds", "initial", required=True), seed,
                                 offset), None
    raise ValueError(f"initial.kind={kind!r} is not known; allowed: ['gaussian', 'uniform']")


def _build_drift(spec, d):
    dr = spec.get("drift")
    if dr is None:
        return None, (np.zeros((d, d)), np.zeros(d))
    kind = dr.get("kind") if isinstance(dr, dict) else None
    if kind == "affine":
        _check_keys("drift", dr, {"kind", "A", "c"})
        drift = AffineDrift(dr.get("A", 0.0), dr.get("c", 0.0))
    elif kind == "ou":
        _check_keys("drift", dr, {"kind", "theta", "mu"})
        theta = float(dr.get("theta", 1.0))
        mu = np.broadcast_to(np.asarray(dr.get("mu", 0.0), dtype=float), (d,))
        drift = AffineDrift(-theta, theta * mu)
    else:
        raise ValueError(f"drift.kind={kind!r} is not known; allowed: ['affine', 'ou']")
    drift.check_dim(d)
    return drift, drift.coefficients(0.0)


_KERNELS = {
    "gaussian": (GaussianKernel, {"strength", "width"}),
    "morse": (MorseKernel, {"c_attr", "l_attr", "c_rep", "l_rep", "eps"}),
    "coulomb": (RegularisedCoulombKernel, {"strength", "eps"}),
}


def _build_interaction(spec, d):
    it = spec.get("interaction")
    if it is None:
        return None
    kind = it.get("kind") if isinstance(it, dict) else None
    if kind == "quadratic":
        _check_keys("interaction", it, {"kind", "k"})
        return QuadraticInteraction(it.get("k", 1.0))
    if kind == "mean_affine":
        _check_keys("interaction", it, {"kind", "B"})
        return MeanFieldAffine(_get(it, "B", "interaction", required=True))
    if kind in _KERNELS:
        cls, params = _KERNELS[kind]
        _check_keys("interaction", it, params | {"kind", "method", "mesh"})
        kernel = cls(**{k: it[k] for k in params if k in it})
        return PairwiseInteraction(kernel, method=it.get("method", "pm"),
                                   shape=it.get("mesh", 128))
    raise ValueError(
        f"interaction.kind={kind!r} is not known; allowed: "
        f"{sorted(['quadratic', 'mean_affine', *_KERNELS])}"
    )


#: Names of the space axes (NetCDF dimensions of the density, values of the ``axis`` coordinate).
AXIS_NAMES = ("x", "y", "z")


def _attr_value(value):
    """A NetCDF attribute read back as a plain Python scalar."""
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(()).item()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    return value


@dataclass
class ParticleResult:
    """What a particle run produced: moments over time and the deposited density.

    Statistics are global (reduced over the MPI ranks), so the object is the same on every rank.
    :meth:`save` writes one NetCDF-4 file (engine h5netcdf) with the variables ``mean(t, axis)``,
    ``cov(t, axis, axis2)``, ``mass(t)`` and ``density(x[, y[, z]])`` with its coordinates;
    :meth:`load` (or ``xarray.open_dataset(path)``) reads it back.

    Attributes
    ----------
    t : (nt,) array
        Recording times (steps ``0, record_every, ...`` and the last step).
    mean : (nt, d) array
        Empirical mean :math:`\\bar X_t` of the live particles.
    cov : (nt, d, d) array
        Empirical covariance (:math:`1/n` normalisation) of the live particles.
    mass : (nt,) array
        Live fraction of the particles (1 unless the box absorbs).
    density : array of shape ``grid.shape`` or None
        Deposited density at the final time on the nodes of the ``density`` grid, not
        renormalised: the sub-probability density of the live particles in the box, whose
        integral with the dual-cell volumes (the trapezoidal rule on non-periodic axes) is the
        summary's ``density_mass``, the live fraction inside the box.
    density_axes : tuple of 1-D arrays or None
        Node coordinates of the density grid, one array per axis.
    attrs : dict
        JSON-able scalars: ``n_particles``, ``dim``, ``seed``, ``scheme``, ``ranks``, ``T``,
        ``n_steps``, ``dt``, ``steps_done``, ``interrupted`` (0/1) and, with a density,
        ``density_method`` and ``density_boundary`` (comma-separated, one per axis).
    """

    t: np.ndarray
    mean: np.ndarray
    cov: np.ndarray
    mass: np.ndarray
    density: np.ndarray | None = None
    density_axes: tuple | None = None
    attrs: dict = field(default_factory=dict)

    def __post_init__(self):
        self.t = np.asarray(self.t, dtype=float).reshape(-1)
        nt = self.t.size
        self.mean = np.asarray(self.mean, dtype=float)
        if self.mean.ndim != 2 or self.mean.shape[0] != nt or not 1 <= self.mean.shape[1] <= 3:
            raise ValueError(f"mean has shape {self.mean.shape}; expected (nt, d) = ({nt}, 1..3)")
        d = self.mean.shape[1]
        self.cov = np.asarray(self.cov, dtype=float)
        if self.cov.shape != (nt, d, d):
            raise ValueError(f"cov has shape {self.cov.shape}; expected {(nt, d, d)}")
        self.mass = np.asarray(self.mass, dtype=float).reshape(-1)
        if self.mass.shape != (nt,):
            raise ValueError(f"mass has shape {self.mass.shape}; expected {(nt,)}")
        if (self.density is None) != (self.density_axes is None):
            raise ValueError("density and density_axes must be given together")
        if self.density is not None:
            self.density = np.asarray(self.density, dtype=float)
            self.density_axes = tuple(np.asarray(a, dtype=float).reshape(-1)
                                      for a in self.density_axes)
            shape = tuple(a.size for a in self.density_axes)
            if len(shape) != d or self.density.shape != shape:
                raise ValueError(f"density has shape {self.density.shape}; expected the grid "
                                 f"shape {shape} with one axis per dimension ({d})")
        self.attrs = dict(self.attrs)

    @property
    def dim(self) -> int:
        return int(self.mean.shape[1])

    @property
    def axis_names(self) -> tuple[str, ...]:
        return AXIS_NAMES[: self.dim]

    @property
    def var(self) -> np.ndarray:
        """Per-axis variances, ``(nt, d)`` (the diagonals of :attr:`cov`)."""
        return np.diagonal(self.cov, axis1=1, axis2=2).copy()

    # -- NetCDF -----------------------------------------------------------------------------
    def to_dataset(self):
        """The result as an :class:`xarray.Dataset`."""
        import xarray as xr

        names = list(self.axis_names)
        data = {
            "mean": (("t", "axis"), self.mean),
            "cov": (("t", "axis", "axis2"), self.cov),
            "mass": (("t",), self.mass),
        }
        coords = {"t": self.t, "axis": names, "axis2": names}
        if self.density is not None:
            data["density"] = (tuple(names), self.density)
            coords.update({n: a for n, a in zip(names, self.density_axes, strict=True)})
        ds = xr.Dataset(data, coords=coords)
        ds["mean"].attrs["long_name"] = "empirical mean of the live particles"
        ds["cov"].attrs["long_name"] = "empirical covariance (1/n) of the live particles"
        ds["mass"].attrs["long_name"] = "live fraction of the particles"
        if self.density is not None:
            ds["density"].attrs["long_name"] = "deposited density at the final time"
        ds.attrs.update(_netcdf_attrs(self.attrs))
        return ds

    @classmethod
    def from_dataset(cls, ds) -> ParticleResult:
        """Inverse of :meth:`to_dataset`."""
        density = axes = None
        if "density" in ds:
            density = ds["density"].values
            axes = tuple(ds[n].values for n in ds["density"].dims)
        return cls(
            t=ds["t"].values, mean=ds["mean"].values, cov=ds["cov"].values,
            mass=ds["mass"].values, density=density, density_axes=axes,
            attrs={k: _attr_value(v) for k, v in ds.attrs.items()},
        )

    def save(self, path) -> Path:
        """Write the result as NetCDF-4 (engine h5netcdf); return the path."""
        path = Path(path)
        self.to_dataset().to_netcdf(path, engine="h5netcdf")
        return path

    @classmethod
    def load(cls, path) -> ParticleResult:
        """Read a file written by :meth:`save`."""
        import xarray as xr

        with xr.open_dataset(Path(path), engine="h5netcdf") as ds:
            return cls.from_dataset(ds.load())


def _netcdf_attrs(values: dict) -> dict:
    """The JSON-able scalars of ``values`` (bools as 0/1; other values are left out)."""
    out = {}
    for k, v in values.items():
        if isinstance(v, bool | np.bool_):
            out[k] = int(v)
        elif isinstance(v, np.generic):
            v = v.item()
            if not isinstance(v, float) or np.isfinite(v):
                out[k] = v
        elif isinstance(v, int | str) or (isinstance(v, float) and np.isfinite(v)):
            out[k] = v
    return out


def run_particles(spec: dict, comm=None) -> dict:
    """Run the particle system described by ``spec`` (module docstring); return the summary.

    With an mpi4py ``comm`` the particles are sharded over its ranks (same results as one rank).
    :func:`run_particles_result` runs the same and also returns the recorded moments and density.
    """
    return run_particles_result(spec, comm=comm)[1]


def run_particles_result(spec: dict, comm=None) -> tuple[ParticleResult, dict]:
    """Run the particle system described by ``spec``; return ``(result, summary)``.

    ``result`` is the :class:`ParticleResult` (moments at the recording times and, when the
    ``density`` table is given, the deposited density), the same on every rank of ``comm``;
    ``summary`` is what :func:`run_particles` returns.
    """
    if not isinstance(spec, dict):
        raise TypeError(f"spec={spec!r} must be a dict")
    if "particles" in spec:
        _check_keys("problem", spec, _META_KEYS | {"particles"})
        spec = spec["particles"]
    _check_keys("particles", spec, _TOP_KEYS)
    t_start = time.perf_counter()
    n = _get(spec, "n_particles", "particles", required=True)
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 2:
        raise ValueError(f"n_particles={n!r} must be an integer >= 2")
    init = spec.get("initial", {})
    d = spec.get("dim")
    if d is None:
        mean = init.get("mean") if isinstance(init, dict) else None
        d = int(np.size(mean)) if mean is not None else 1
    if isinstance(d, bool) or not isinstance(d, int | np.integer) or not 1 <= d <= 3:
        raise ValueError(f"dim={d!r} must be 1, 2 or 3")
    seed = spec.get("seed", 0)
    if "sigma" in spec and "nu" in spec:
        raise ValueError("give either sigma or nu, not both")
    if "nu" in spec:
        nu = float(spec["nu"])
        if not np.isfinite(nu) or nu < 0:
            raise ValueError(f"nu={spec['nu']!r} must be a finite number >= 0")
        sigma = np.sqrt(2.0 * nu)
    else:
        sigma = spec.get("sigma", 0.0)
    size = comm.Get_size() if comm is not None else 1
    rank = comm.Get_rank() if comm is not None else 0
    start, stop = shard_range(int(n), size, rank)
    X0, gauss0 = _build_initial(spec, stop - start, d, seed, start)
    drift, (A, c) = _build_drift(spec, d)
    interaction = _build_interaction(spec, d)
    box = None
    if "box" in spec:
        _check_keys("box", spec["box"], {"bounds", "boundary"})
        box = Box(_get(spec["box"], "bounds", "box", required=True),
                  spec["box"].get("boundary", "reflecting"))
    run = simulate(
        X0, T=_get(spec, "T", "particles", required=True),
        n_steps=_get(spec, "n_steps", "particles", required=True), sigma=sigma, drift=drift,
        interaction=interaction, scheme=spec.get("scheme", "euler"), box=box, seed=seed,
        record_every=spec.get("record_every"), comm=comm, progress=False,
    )
    out = run.summary()
    out["ranks"] = int(size)
    out["seed"] = int(seed)
    attrs = {
        "n_particles": int(n), "dim": int(d), "seed": int(seed), "scheme": str(run.scheme),
        "ranks": int(size), "T": float(spec["T"]), "n_steps": int(run.n_steps),
        "dt": float(run.dt), "steps_done": int(run.steps_done),
        "interrupted": int(bool(run.interrupted)),
    }
    density = density_axes = None
    # closed form for linear systems
    linear = (box is None or box.is_free) and gauss0 is not None and not np.ndim(sigma) > 2 and (
        interaction is None or isinstance(interaction, QuadraticInteraction | MeanFieldAffine))
    if linear:
        from ..metrics import gaussian_w2
        from .drifts import noise_matrix
        from .exact import linear_mv_moments

        Ai, B = A.copy(), np.zeros((d, d))
        if interaction is not None:
            dA, Bi = interaction.affine_terms(d)
            Ai, B = Ai + dA, Bi
        ref = linear_mv_moments(run.t_final, gauss0[0], gauss0[1], Ai, B, c,
                                noise_matrix(sigma, d), N=int(n))
        emp_mean, emp_cov = run.mean[-1], run.cov[-1]
        out["mean_exact"] = ref["mean"].tolist()
        out["cov_exact"] = ref["cov_empirical"].tolist()
        out["mean_error"] = float(np.max(np.abs(emp_mean - ref["mean"])))
        out["cov_error"] = float(np.max(np.abs(emp_cov - ref["cov_empirical"])))
        out["w2_to_meanfield"] = gaussian_w2(emp_mean, emp_cov, ref["mean"], ref["cov_meanfield"])
    if "density" in spec:
        dens = spec["density"]
        _check_keys("density", dens, {"shape", "method"})
        if box is None or not np.all(np.isfinite(box.lo)):
            raise ValueError("density needs a bounded box")
        names = ["periodic" if b == "periodic" else "neumann" for b in box.boundary]
        grid = Grid(box.bounds, dens.get("shape", 64) if d == 1 else tuple(
            np.broadcast_to(np.asarray(dens.get("shape", 64)), (d,)).tolist()), names)
        method = dens.get("method", "cic")
        m = run.deposit(grid, method=method, normalise=False, comm=comm)
        # dual-cell volumes (half cells at the ends of non-periodic axes): the deposited mass
        out["density_mass"] = float(np.sum(m * dual_cell_volumes(grid)))
        out["density_max"] = float(m.max())
        density, density_axes = m, grid.axes
        attrs["density_method"] = str(method)
        attrs["density_boundary"] = ",".join(box.boundary)
    out["time_total_s"] = float(time.perf_counter() - t_start)
    result = ParticleResult(run.t.copy(), run.mean.copy(), run.cov.copy(), run.mass.copy(),
                            density, density_axes, attrs)
    return result, out
