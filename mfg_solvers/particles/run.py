"""A particle run described by a plain dict (the ``particles`` kind of the problem catalogue).

:func:`run_particles` takes the ``[particles]`` table of a problem file (or the whole file as a
dict, in which case its ``particles`` table is used) and returns a JSON-ready summary.

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

import numpy as np

from ..grid import Grid
from .boundaries import Box
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


def run_particles(spec: dict, comm=None) -> dict:
    """Run the particle system described by ``spec`` (module docstring); return the summary.

    With an mpi4py ``comm`` the particles are sharded over its ranks (same results as one rank).
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
        m = run.deposit(grid, method=dens.get("method", "cic"), normalise=False, comm=comm)
        out["density_mass"] = float(grid.integrate(m))
        out["density_max"] = float(m.max())
    out["time_total_s"] = float(time.perf_counter() - t_start)
    return out
