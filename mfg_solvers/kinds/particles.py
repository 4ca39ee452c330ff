r"""Catalogue kind ``particles``: interacting particle systems (McKean--Vlasov SDEs).

An entry describes :math:`N` particles in :math:`d \le 3` dimensions,

.. math::

    dX^i_t = \Big[A X^i_t + c + B\,\bar X_t - \frac1N\sum_j \nabla W(X^i_t - X^j_t)\Big]dt
             + \sigma\,dW^i_t,\qquad \bar X_t = \frac1N\sum_j X^j_t,

integrated by :func:`mfg_solvers.particles.run_particles` (Euler--Maruyama: weak order 1,
strong order 1/2, 1 for additive noise; Milstein; or the exact transition of linear systems).
The ``[parameters]`` table is the engine's run description:

==================  ===========================================================================
``n_particles``     :math:`N` (required); ``T``, ``n_steps`` (required); ``seed`` (default 0)
``dim``             1, 2 or 3 (default: from ``initial.mean``, else 1)
``scheme``          ``"euler"`` (default), ``"milstein"``, ``"exact"``
``sigma`` / ``nu``  noise (number, diagonal list or :math:`d\times d` matrix) or viscosity
                    :math:`\nu = \sigma^2/2` (number)
``initial``         ``{kind = "gaussian", mean, cov}`` or ``{kind = "uniform", bounds}``
``drift``           ``{kind = "ou", theta, mu}`` (:math:`-\theta(x-\mu)`) or
                    ``{kind = "affine", A, c}``
``interaction``     moments: ``{kind = "quadratic", k}`` (:math:`W = \tfrac k2|x|^2`, i.e.
                    :math:`A\to A-kI`, :math:`B=kI`), ``{kind = "mean_affine", B}``; pairwise
                    kernels ``gaussian`` / ``morse`` / ``coulomb`` with ``method = "pm"``
                    (cloud-in-cell + FFT on a ``mesh``) or ``"direct"`` (:math:`O(N^2)`)
``box``             ``{bounds, boundary}``: ``free``, ``periodic``, ``reflecting``, ``absorbing``
``record_every``    record moments every so many steps
``density``         ``{shape, method = "cic" | "ngp"}``: deposit on the box's grid
==================  ===========================================================================

Under ``mpiexec -n P`` (``mfg-solvers run``), the particles are sharded over the ranks of
``MPI.COMM_WORLD``; moments are bit-identical to one rank and deposited densities agree to
round-off (:mod:`mfg_solvers.particles.mpi`). ``mpi4py`` is imported only when the MPI launcher's
environment (``PMI_SIZE``, ``OMPI_COMM_WORLD_SIZE``) announces more than one rank.

Summary
-------
The engine's summary (``mean``, ``cov`` as lists, ``mass``, ``particle_steps_per_s``,
``ranks``, ``density_mass``, ...) plus named scalars per axis (suffix ``_x``, ``_y``, ``_z``
when :math:`d > 1`, none in 1-D):

=====================  ========================================================================
``mean_T``, ``var_T``  empirical mean and variance (:math:`1/N`) at the final time
``*_exact``            closed form of the linear system (free space, Gaussian start, affine
                       drift, moment interaction, constant noise): the mean
                       :math:`m(T)` and the expected empirical variance
                       :math:`(1-\tfrac1N)\Sigma_A(T)` (:mod:`mfg_solvers.particles.exact`)
``*_scheme``           the same expectations for the scheme's iterates at this step (Euler:
                       :math:`e^{M\Delta t}\to I+M\Delta t`); ``*_scheme`` minus ``*_exact`` is
                       the weak error of the scheme
``*_se``               Monte-Carlo standard errors: :math:`\sqrt{\Sigma_{A+B}(T)/N}` for the
                       mean, :math:`\Sigma_A(T)\sqrt{2/N}` for the variance
``*_z``                ``(computed - scheme) / se``: standard normal up to :math:`O(N^{-1})`
``w2_to_meanfield``    :math:`W_2` between the Gaussian with the empirical moments and the
                       mean-field law :math:`\mathcal N(m(T), \Sigma_A(T))`
=====================  ========================================================================

Outputs
-------
``run`` returns a :class:`mfg_solvers.particles.run.ParticleResult` (the same on every MPI rank:
its statistics are reduced over the ranks) next to the summary. ``mfg-solvers run --out DIR``
(only rank 0 writes under MPI) gives:

=====================  ========================================================================
``solution.nc``        NetCDF-4 (h5netcdf): ``mean(t, axis)``, ``cov(t, axis, axis2)`` (empirical,
                       :math:`1/n`), ``mass(t)`` (live fraction) at the recording times and,
                       with a ``density`` table, ``density(x[, y[, z]])`` at :math:`T` on the
                       box's grid (not renormalised: its trapezoidal integral is ``density_mass``);
                       attributes ``problem``, ``kind``, ``n_particles``, ``dim``, ``seed``,
                       ``scheme``, ``ranks``, ``T``, ``n_steps``, ``dt``, ``steps_done``,
                       ``interrupted``, ``density_method``, ``density_boundary``. Read it back
                       with ``ParticleResult.load(path)`` or ``xarray.open_dataset(path)``.
``moments.png``        mean and variance per axis against time; for a linear entry also the
                       closed-form paths (:func:`closed_form_paths`) with bands of
                       :math:`\pm 2` Monte-Carlo standard errors
``density.png``        the deposited density (1-D: a line with the mean-field law
                       :math:`\mathcal N(m(T), \Sigma_A(T))` of a linear entry; 2-D: a colour
                       map; 3-D: the :math:`(x, y)` marginal), when a density was requested
``mass.png``           the live mass against time, when particles left an absorbing box
``summary.json``       the summary above; ``problem.json``: the document as run
=====================  ========================================================================
"""

from __future__ import annotations

import math
import os
import time

import numpy as np

from ..catalogue import (
    REQUIRED,
    CatalogueError,
    Check,
    Param,
    ProblemKind,
    ProblemSpec,
    choice,
    integer,
    real,
    register_kind,
    validate_table,
)

__all__ = [
    "mpi_world",
    "closed_form_moments",
    "closed_form_paths",
    "plot_moments",
    "plot_density",
    "plot_mass",
    "AXES",
]

#: Suffixes of the per-axis summary keys (none in 1-D).
AXES = ("x", "y", "z")

#: Environment variables through which MPI launchers announce the number of ranks.
MPI_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS")


def _launcher_size() -> int:
    for name in MPI_SIZE_VARIABLES:
        value = os.environ.get(name)
        if value:
            try:
                return int(value)
            except ValueError:
                continue
    return 1


def mpi_world():
    """``MPI.COMM_WORLD`` when the process was started by an MPI launcher with more than one
    rank, else ``None`` (mpi4py is not imported in that case)."""
    if _launcher_size() <= 1:
        return None
    try:
        from mpi4py import MPI
    except ImportError:  # launched by mpiexec without mpi4py: every rank runs alone
        return None
    comm = MPI.COMM_WORLD
    return comm if comm.Get_size() > 1 else None


# =============================================================================================
# validation of [parameters]
# =============================================================================================
def _is_number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _numeric(ctx, key, value, *, max_rank=2, nonneg=False):
    """A finite number, a list of numbers, or (``max_rank == 2``) a list of equal-length lists."""
    allowed = "a finite number" + (" >= 0" if nonneg else "")
    if max_rank >= 1:
        allowed += ", a list of those"
    if max_rank >= 2:
        allowed += " or a square matrix (list of lists)"

    def ok(v):
        return _is_number(v) and (not nonneg or v >= 0)

    if ok(value):
        return float(value)
    if max_rank >= 1 and isinstance(value, list) and value:
        if all(ok(v) for v in value) and 1 <= len(value) <= 3:
            return [float(v) for v in value]
        if (
            max_rank >= 2
            and 1 <= len(value) <= 3
            and all(isinstance(r, list) and len(r) == len(value) for r in value)
            and all(_is_number(v) for r in value for v in r)
        ):
            return [[float(v) for v in r] for r in value]
    raise ctx.bad_value(key, value, allowed)


def _scalar_or_vector(ctx, key, value):
    return _numeric(ctx, key, value, max_rank=1)


def _matrix(ctx, key, value):
    return _numeric(ctx, key, value, max_rank=2)


def _noise(ctx, key, value):
    return _numeric(ctx, key, value, max_rank=2, nonneg=not isinstance(value, list)
                    or not value or not isinstance(value[0], list))


def _bounds(ctx, key, value):
    allowed = "[a, b] or one [a, b] pair per axis (1 to 3 axes) with a < b"
    pairs = value if (isinstance(value, list) and value and isinstance(value[0], list)) else [value]
    if not isinstance(value, list) or not 1 <= len(pairs) <= 3:
        raise ctx.bad_value(key, value, allowed)
    out = []
    for pair in pairs:
        if (
            not isinstance(pair, list)
            or len(pair) != 2
            or not all(_is_number(v) for v in pair)
            or not pair[0] < pair[1]
        ):
            raise ctx.bad_value(key, value, allowed)
        out.append([float(pair[0]), float(pair[1])])
    return out


def _shape(ctx, key, value):
    allowed = "an integer >= 2 or one integer >= 2 per axis"
    if isinstance(value, int) and not isinstance(value, bool) and value >= 2:
        return value
    if (
        isinstance(value, list)
        and 1 <= len(value) <= 3
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 2 for v in value)
    ):
        return list(value)
    raise ctx.bad_value(key, value, allowed)


def _dim(ctx, key, value):
    if isinstance(value, bool) or value not in (1, 2, 3):
        raise ctx.bad_value(key, value, "1, 2 or 3")
    return int(value)


_BOUNDARIES = ("free", "periodic", "reflecting", "absorbing")


def _boundary(ctx, key, value):
    allowed = f"one of {', '.join(_BOUNDARIES)}, or a list with one per axis"
    items = value if isinstance(value, list) else [value]
    if not items or len(items) > 3 or not all(v in _BOUNDARIES for v in items):
        raise ctx.bad_value(key, value, allowed)
    return value


_VEC = Check(_scalar_or_vector, "a finite number or a list of numbers (one per axis)")
_MAT = Check(_matrix, "a number, a list of numbers (diagonal) or a square matrix")
_NOISE = Check(_noise, "a number >= 0, a list of numbers >= 0 (diagonal) or a square matrix")
_BOUNDS = Check(_bounds, "[a, b] or one [a, b] pair per axis")

_KERNEL_METHOD = (
    Param("method", choice("pm", "direct"), None, "pm: cloud-in-cell + FFT; direct: O(N^2)"),
    Param("mesh", Check(_shape, "an integer >= 2 or one per axis"), None, "pm mesh nodes"),
)

#: Sub-table schemas keyed by ``(table, kind)``.
_SUBTABLES: dict[str, dict[str, tuple[Param, ...]]] = {
    "initial": {
        "gaussian": (Param("mean", _VEC, None), Param("cov", _MAT, None)),
        "uniform": (Param("bounds", _BOUNDS, REQUIRED),),
    },
    "drift": {
        "ou": (Param("theta", real(), None), Param("mu", _VEC, None)),
        "affine": (Param("A", _MAT, None), Param("c", _VEC, None)),
    },
    "interaction": {
        "quadratic": (Param("k", real(), None),),
        "mean_affine": (Param("B", _MAT, REQUIRED),),
        "gaussian": (Param("strength", real(), None), Param("width", real(gt=0), None))
        + _KERNEL_METHOD,
        "morse": (
            Param("c_attr", real(), None),
            Param("l_attr", real(gt=0), None),
            Param("c_rep", real(), None),
            Param("l_rep", real(gt=0), None),
            Param("eps", real(ge=0), None),
        )
        + _KERNEL_METHOD,
        "coulomb": (Param("strength", real(), None), Param("eps", real(gt=0), None))
        + _KERNEL_METHOD,
    },
}

_BOX_PARAMS = (
    Param("bounds", _BOUNDS, REQUIRED),
    Param("boundary", Check(_boundary, "free | periodic | reflecting | absorbing"), None),
)
_DENSITY_PARAMS = (
    Param("shape", Check(_shape, "an integer >= 2 or one per axis"), None, "grid nodes"),
    Param("method", choice("cic", "ngp"), None, "cloud-in-cell or nearest grid point"),
)


def _kind_table(table_name: str):
    kinds = _SUBTABLES[table_name]

    def func(ctx, key, value):
        allowed = '{kind = "...", ...} with kind one of ' + ", ".join(kinds)
        if not isinstance(value, dict):
            raise ctx.bad_value(key, value, allowed)
        if "kind" not in value:
            raise ctx.missing_key(f"{key}.kind", ", ".join(kinds))
        name = value["kind"]
        if name not in kinds:
            raise ctx.bad_value(f"{key}.kind", name, ", ".join(kinds))
        rest = {k: v for k, v in value.items() if k != "kind"}
        out = validate_table(ctx, key, rest, kinds[name], what=f"{table_name} '{name}'")
        return {"kind": name, **{k: v for k, v in out.items() if v is not None}}

    return Check(func, f'a table {{kind = "..."}} ({", ".join(kinds)})')


def _plain_table(params, what):
    def func(ctx, key, value):
        out = validate_table(ctx, key, value, params, what=what)
        return {k: v for k, v in out.items() if v is not None}

    return Check(func, what)


_PARAMS = (
    Param("n_particles", integer(ge=2), REQUIRED, "number of particles N"),
    Param("T", real(gt=0), REQUIRED, "horizon"),
    Param("n_steps", integer(ge=1), REQUIRED, "time steps"),
    Param("dim", Check(_dim, "1, 2 or 3"), None, "dimension"),
    Param("seed", integer(ge=0), None, "seed of the random streams"),
    Param("scheme", choice("euler", "milstein", "exact"), None, "time-stepping scheme"),
    Param("sigma", _NOISE, None, "noise"),
    Param("nu", real(ge=0), None, "viscosity nu = sigma^2 / 2"),
    Param("initial", _kind_table("initial"), None, "initial law"),
    Param("drift", _kind_table("drift"), None, "external drift"),
    Param("interaction", _kind_table("interaction"), None, "interaction"),
    Param("box", _plain_table(_BOX_PARAMS, "bounds, boundary"), None, "the box"),
    Param("record_every", integer(ge=1), None, "record moments every so many steps"),
    Param("density", _plain_table(_DENSITY_PARAMS, "shape, method"), None, "deposited density"),
)


def _validate(ctx, raw: dict) -> dict:
    params = validate_table(
        ctx, "parameters", raw["parameters"], _PARAMS, what="parameters of kind 'particles'"
    )
    params = {k: v for k, v in params.items() if v is not None}
    if "sigma" in params and "nu" in params:
        raise ctx.error("parameters.nu", "give either sigma or nu, not both", "one of them")
    if "density" in params and "box" not in params:
        raise ctx.missing_key("parameters.box", "a bounded box {bounds = [a, b]} for the density")
    solver = raw.get("solver", {})
    validate_table(ctx, "solver", {} if solver is None else solver, (), what="no keys")
    return {"parameters": params, "solver": {}}


# =============================================================================================
# closed form of the linear system
# =============================================================================================
def closed_form_moments(params: dict, t: float | None = None) -> dict | None:
    """Closed-form moments at time ``t`` (default ``T``) of a linear entry, or ``None``.

    Linear: Gaussian start, affine/OU drift (or none), moment interaction (or none), constant
    noise, free space. Returns a dict of ``(d,)`` / ``(d, d)`` arrays: ``mean``,
    ``cov_empirical`` (:math:`(1-1/N)\\Sigma_A`), ``cov_meanfield`` (:math:`\\Sigma_A`),
    ``cov_mean`` (:math:`\\Sigma_{A+B}/N`) and the same for the scheme's iterates
    (``*_scheme``; equal to the exact ones for ``scheme = "exact"``).
    """
    from ..particles.drifts import AffineDrift, noise_matrix
    from ..particles.exact import linear_mv_moments
    from ..particles.interactions import MeanFieldAffine, QuadraticInteraction

    init = params.get("initial", {"kind": "gaussian"})
    if init.get("kind") != "gaussian":
        return None
    box = params.get("box")
    if box is not None:
        b = box.get("boundary", "reflecting")
        if any(x != "free" for x in (b if isinstance(b, list) else [b])):
            return None
    d = params.get("dim")
    if d is None:
        d = int(np.size(init["mean"])) if "mean" in init else 1
    mean0 = np.broadcast_to(np.asarray(init.get("mean", 0.0), dtype=float), (d,))
    cov0 = init.get("cov", 1.0)
    dr = params.get("drift")
    if dr is None:
        A, c = np.zeros((d, d)), np.zeros(d)
    else:
        if dr["kind"] == "ou":
            theta = float(dr.get("theta", 1.0))
            mu = np.broadcast_to(np.asarray(dr.get("mu", 0.0), dtype=float), (d,))
            drift = AffineDrift(-theta, theta * mu)
        else:
            drift = AffineDrift(dr.get("A", 0.0), dr.get("c", 0.0))
        drift.check_dim(d)
        A, c = drift.coefficients(0.0)
    it = params.get("interaction")
    B = np.zeros((d, d))
    if it is not None:
        if it["kind"] == "quadratic":
            dA, B = QuadraticInteraction(it.get("k", 1.0)).affine_terms(d)
        elif it["kind"] == "mean_affine":
            dA, B = MeanFieldAffine(it["B"]).affine_terms(d)
        else:
            return None
        A = A + dA
    if "nu" in params:
        sigma = math.sqrt(2.0 * params["nu"])
    else:
        sigma = params.get("sigma", 0.0)
    L = noise_matrix(sigma, d)
    t = params["T"] if t is None else t
    N = params["n_particles"]
    exact = linear_mv_moments(t, mean0, cov0, A, B, c, L, N=N)
    scheme = params.get("scheme", "euler")
    if scheme == "exact":
        it_ = exact
    else:  # Milstein with constant noise is Euler--Maruyama
        it_ = linear_mv_moments(t, mean0, cov0, A, B, c, L, N=N, scheme="euler",
                                n_steps=params["n_steps"])
    out = {k: np.asarray(v) for k, v in exact.items()}
    out.update({f"{k}_scheme": np.asarray(v) for k, v in it_.items()})
    return out


def _axis_suffix(k: int, d: int) -> str:
    return "" if d == 1 else f"_{AXES[k]}"


def _scalar_summary(params: dict, summary: dict) -> dict:
    """Per-axis scalars (``mean_T``, ``var_T``, closed forms, standard errors, z-scores)."""
    out: dict = {}
    mean = np.atleast_1d(np.asarray(summary["mean"], dtype=float))
    cov = np.atleast_2d(np.asarray(summary["cov"], dtype=float))
    d = mean.size
    N = params["n_particles"]
    ref = closed_form_moments(params, t=summary.get("t_final", params["T"]))
    for k in range(d):
        s = _axis_suffix(k, d)
        out[f"mean_T{s}"] = float(mean[k])
        out[f"var_T{s}"] = float(cov[k, k])
    if ref is None or summary.get("mass", 1.0) != 1.0:
        return out
    for k in range(d):
        s = _axis_suffix(k, d)
        se_mean = math.sqrt(max(float(ref["cov_mean_scheme"][k, k]), 0.0))
        var_mf = float(ref["cov_meanfield_scheme"][k, k])
        se_var = var_mf * math.sqrt(2.0 / N)
        out[f"mean_T{s}_exact"] = float(ref["mean"][k])
        out[f"var_T{s}_exact"] = float(ref["cov_empirical"][k, k])
        out[f"mean_T{s}_scheme"] = float(ref["mean_scheme"][k])
        out[f"var_T{s}_scheme"] = float(ref["cov_empirical_scheme"][k, k])
        out[f"mean_T{s}_se"] = se_mean
        out[f"var_T{s}_se"] = se_var
        out[f"mean_T{s}_error"] = abs(out[f"mean_T{s}"] - out[f"mean_T{s}_exact"])
        out[f"var_T{s}_error"] = abs(out[f"var_T{s}"] - out[f"var_T{s}_exact"])
        out[f"mean_T{s}_z"] = (
            (out[f"mean_T{s}"] - out[f"mean_T{s}_scheme"]) / se_mean if se_mean > 0 else 0.0
        )
        out[f"var_T{s}_z"] = (
            (out[f"var_T{s}"] - out[f"var_T{s}_scheme"]) / se_var if se_var > 0 else 0.0
        )
    return out


# =============================================================================================
# run
# =============================================================================================
def _run(spec: ProblemSpec, *, progress: bool = False, comm=None):
    """Run the entry; return ``(ParticleResult, summary)`` (the same on every rank)."""
    from ..particles.run import run_particles_result

    params = spec.parameters
    if comm is None:
        comm = mpi_world()
    t0 = time.perf_counter()
    try:
        result, raw = run_particles_result(dict(params), comm=comm)
    except (ValueError, TypeError) as exc:
        raise CatalogueError(f"{spec.label}: parameters: {' '.join(str(exc).split())}") from None
    summary = {"problem": spec.name, "kind": spec.kind}
    summary.update(raw)
    summary.update(_scalar_summary(params, raw))
    summary["time_total"] = time.perf_counter() - t0
    result.attrs = {"problem": spec.name, "kind": spec.kind, **result.attrs}
    return result, summary


# =============================================================================================
# figures
# =============================================================================================
#: Points of the fine time grid on which the closed-form curves are drawn.
_CURVE_POINTS = 101


def closed_form_paths(params: dict, t) -> dict | None:
    """Closed-form moment paths of a linear entry at the times ``t``, or ``None``.

    Returns ``(nt, d)`` arrays: ``mean`` (:math:`m(t)`), ``var`` (the expected empirical
    variance :math:`(1-\\tfrac1N)\\Sigma_A(t)_{kk}`), ``mean_se``
    (:math:`\\sqrt{\\Sigma_{A+B}(t)_{kk}/N}`) and ``var_se``
    (:math:`\\Sigma_A(t)_{kk}\\sqrt{2/N}`), the Monte-Carlo standard errors of the empirical
    moments; the exact flow, whatever the scheme (:func:`closed_form_moments` per time).
    """
    exact_params = {**params, "scheme": "exact"}
    t = np.atleast_1d(np.asarray(t, dtype=float))
    rows = [closed_form_moments(exact_params, t=float(s)) for s in t]
    if not rows or rows[0] is None:
        return None
    N = params["n_particles"]

    def diag(key):
        return np.array([np.diag(r[key]) for r in rows])

    return {
        "mean": np.array([r["mean"] for r in rows]),
        "var": diag("cov_empirical"),
        "mean_se": np.sqrt(np.maximum(diag("cov_mean"), 0.0)),
        "var_se": diag("cov_meanfield") * math.sqrt(2.0 / N),
    }


def _new_figure(nrows: int = 1, ncols: int = 1, figsize=(6.4, 4.0)):
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.subplots(nrows, ncols, squeeze=False)


def _axis_label(k: int, d: int) -> str:
    return "" if d == 1 else f" ({AXES[k]})"


def plot_moments(result, params: dict | None = None):
    """Mean and variance per axis against time; with ``params`` of a linear entry also the
    closed-form paths and bands of two Monte-Carlo standard errors around them."""
    d = result.dim
    t = result.t
    var = result.var
    ref = None
    if params is not None and float(np.min(result.mass)) == 1.0:
        t_fine = np.union1d(np.linspace(0.0, float(t[-1]), _CURVE_POINTS), t)
        ref = closed_form_paths(params, t_fine)
    fig, axes = _new_figure(2, 1, figsize=(6.4, 6.0))
    ax_m, ax_v = axes[0, 0], axes[1, 0]
    style = "o" if ref is not None else "o-"  # markers alone next to the closed-form curves
    for k in range(d):
        colour = f"C{k}"
        lab = _axis_label(k, d)
        ax_m.plot(t, result.mean[:, k], style, color=colour, ms=4, label=f"particles{lab}")
        ax_v.plot(t, var[:, k], style, color=colour, ms=4, label=f"particles{lab}")
        if ref is not None:
            for ax, key in ((ax_m, "mean"), (ax_v, "var")):
                centre, se = ref[key][:, k], ref[f"{key}_se"][:, k]
                ax.plot(t_fine, centre, "--", color="k" if d == 1 else colour, lw=1.2,
                        label=f"closed form{lab}")
                ax.fill_between(t_fine, centre - 2 * se, centre + 2 * se, color=colour,
                                alpha=0.2, lw=0, label=f"closed form ± 2 s.e.{lab}")
    ax_m.set_ylabel("mean")
    ax_v.set_ylabel("variance")
    ax_v.set_xlabel("t")
    n = result.attrs.get("n_particles")
    ax_m.set_title("moments of the particles" + (f" (N = {n})" if n is not None else ""))
    for ax in (ax_m, ax_v):
        ax.legend(fontsize=8)
    return fig


def _gaussian_density(x, mean: float, var: float) -> np.ndarray:
    return np.exp(-0.5 * (x - mean) ** 2 / var) / math.sqrt(2.0 * math.pi * var)


def plot_density(result, params: dict | None = None):
    """The deposited density at the final time: a line in 1-D (with the mean-field law
    :math:`\\mathcal N(m(T), \\Sigma_A(T))` of a linear entry), a colour map in 2-D, the
    :math:`(x, y)` marginal (:math:`h_z\\sum_k m_{ijk}`) in 3-D."""
    if result.density is None:
        raise ValueError("result has no density: give the entry a [parameters.density] table")
    d = result.dim
    m = result.density
    axes = result.density_axes
    T = float(result.t[-1])
    fig, ax = _new_figure()
    ax = ax[0, 0]
    method = result.attrs.get("density_method", "")
    if d == 1:
        x = axes[0]
        ax.plot(x, m, "-", color="C0", label=f"particles ({method})" if method else "particles")
        ref = None
        if params is not None:
            ref = closed_form_moments({**params, "scheme": "exact"}, t=T)
        if ref is not None and float(result.mass[-1]) == 1.0:
            var = float(ref["cov_meanfield"][0, 0])
            if var > 0:
                ax.plot(x, _gaussian_density(x, float(ref["mean"][0]), var), "k--", lw=1.2,
                        label="mean-field law (closed form)")
        ax.set_xlabel("x")
        ax.set_ylabel("density")
        ax.legend(fontsize=8)
    else:
        if d == 3:
            hz = float(axes[2][1] - axes[2][0])
            m = m.sum(axis=2) * hz
        mesh = ax.pcolormesh(axes[0], axes[1], m.T, shading="nearest", cmap="viridis")
        fig.colorbar(mesh, ax=ax, label="density" if d == 2 else "density, (x, y) marginal")
        ax.set_xlabel("x")
        ax.set_ylabel("y")
        ax.set_aspect("equal")
    ax.set_title(f"deposited density at t = {T:g}")
    return fig


def plot_mass(result):
    """The live fraction of the particles against time."""
    fig, ax = _new_figure()
    ax = ax[0, 0]
    ax.plot(result.t, result.mass, "o-", ms=4)
    ax.set_xlabel("t")
    ax.set_ylabel("live mass")
    ax.set_ylim(0.0, 1.05)
    return fig


def _figures(spec: ProblemSpec, result, summary) -> dict:
    """``moments`` (always), ``density`` (with a density table), ``mass`` (when particles left
    an absorbing box)."""
    figs = {"moments": plot_moments(result, spec.parameters)}
    if result.density is not None:
        figs["density"] = plot_density(result, spec.parameters)
    if float(np.min(result.mass)) < 1.0:
        figs["mass"] = plot_mass(result)
    return figs


register_kind(
    ProblemKind(
        name="particles",
        validate=_validate,
        run=_run,
        figures=_figures,
        description="interacting particle systems (McKean-Vlasov SDEs), sharded over MPI ranks",
    )
)
