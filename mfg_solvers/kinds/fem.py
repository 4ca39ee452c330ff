r"""Catalogue kind ``fem-crowd``: crowd evacuation of a room by finite elements (dolfinx).

The entry describes the room, the crowd and the costs; the solve is
:func:`mfg_solvers.fem.crowd.run_crowd_room` (P1/P2 Lagrange with continuous interior penalty,
implicit Euler, Newton on the coupled space-time system, GMRES with time sweeps, serial or MPI).

Equations (finite horizon :math:`T`, room :math:`\Omega` with obstacles removed)

.. math::

    -\partial_t u - \nu\Delta u + \frac{|\nabla u|^2}{2 (c + m)^{\alpha}} = V + s\,m,
    \qquad u(T, x) = \kappa_T\, d(x, \text{exits}),

    \partial_t m - \nu\Delta m
        - \operatorname{div}\Big(m\,\frac{\nabla u}{(c + m)^{\alpha}}\Big) = 0,
    \qquad m(0) = m_0 \propto e^{-|x - x_0|^2 / (2 w^2)},

walls and obstacles reflecting (:math:`\partial_n u = 0`, zero normal flux of :math:`m`), exits
absorbing (:math:`u = u_{\rm exit}`, :math:`m = 0`). Order: :math:`O(h^{k+1})` in
:math:`L^2` for :math:`P_k` on smooth data, first order in :math:`\Delta t`; the room's corners,
door edges and the terminal penalty (Lipschitz only) lower what a summary quantity shows, so the
references of ``problems/crowd_room.toml`` use tolerances measured on a refinement sequence.

TOML layout (``kind = "fem-crowd"``)::

    [parameters]            dim (2: gmsh room, 3: box), nu, T, nt, degree, aversion (s),
                            running_cost (V), terminal_penalty (kappa_T), exit_cost (u_exit)
    [parameters.room]       width, height, h, obstacles = [{type = "rectangle", x, y} |
                            {type = "disc", center, radius}], exits = [{name, wall, interval}]
    [parameters.box]        bounds, n, exits = [{name, face, intervals}]          (dim = 3)
    [parameters.crowd]      center, width
    [parameters.congestion] c, alpha
    [solver]                tol, max_iter, damping, continuation_nu

Summary (``summary.json``)

==============================  ===============================================================
``exited_mass``                 mass that left through the exits by :math:`T`
``mass_inside_T``               :math:`\int_\Omega m_h(T)`
``conservation_error``          :math:`\max_n |\int m_h(t_n) + \sum_{k\le n}\Delta t\,F_k - 1|`,
                                :math:`F_k` the discrete outflow through all exits (mass inside
                                plus mass out through the doors equals one)
``mass_balance_error``          the same per step: :math:`\max_n |\int m^{n} - \int m^{n+1} -
                                \Delta t F_{n+1}|`
``evacuated_fraction``          ``exited_mass`` over the initial mass
``time_to_half``                time at which half of the crowd has left (linear interpolation)
``share_<exit>``, ``peak_outflow``  share of each exit in the outflow, largest total outflow rate
``min_density``, ``max_density``  extreme nodal densities (the CIP scheme is not monotone: a
                                small undershoot is reported, not clipped); ``undershoot`` =
                                ``max(0, -min_density) / max_density``
``newton_iterations``, ...      ``converged``, ``final_residual``, ``num_dofs``, ``num_cells``,
                                ``nt``, ``dim``, ``mpi_size``
``time_*``                      ``time_total`` (whole run), ``time_solve``, ``time_assembly``,
                                ``time_linear_solve`` (seconds)
==============================  ===============================================================

MPI: under ``mpiexec -n N`` every rank calls :func:`run_fem_crowd` (the mesh is distributed,
the Newton systems are solved in parallel); the returned Solution is gathered on every rank in
a partition-independent node order and the summary is broadcast from rank 0, so that every
rank returns the same values. Writing is serial: :meth:`CrowdRoomSolution.save` (NetCDF plus an
XDMF/HDF5 time series of the gathered P1 triangulation) and the figures need only the gathered
Solution, so rank 0 alone can write them.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

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
from ..results import Solution

__all__ = ["CrowdRoomSolution", "run_fem_crowd", "engine_spec", "write_xdmf", "KIND"]

_WALLS = ("xmin", "xmax", "ymin", "ymax")
_FACES = ("xmin", "xmax", "ymin", "ymax", "zmin", "zmax")


# =============================================================================================
# validation
# =============================================================================================
def _numbers(n: int, what: str) -> Check:
    allowed = f"a list of {n} finite numbers ({what})"

    def func(ctx, key, value):
        if (
            not isinstance(value, list)
            or len(value) != n
            or not all(
                isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                for v in value
            )
        ):
            raise ctx.bad_value(key, value, allowed)
        return [float(v) for v in value]

    return Check(func, allowed)


def _interval() -> Check:
    inner = _numbers(2, "lo < hi")

    def func(ctx, key, value):
        lo, hi = inner(ctx, key, value)
        if not lo < hi:
            raise ctx.bad_value(key, value, inner.allowed)
        return [lo, hi]

    return Check(func, inner.allowed)


def _name() -> Check:
    allowed = "an identifier (letters, digits, _), not 'walls' or 'room'"

    def func(ctx, key, value):
        if (
            not isinstance(value, str)
            or not value.isidentifier()
            or value in ("walls", "room")
        ):
            raise ctx.bad_value(key, value, allowed)
        return value

    return Check(func, allowed)


_OBSTACLE_PARAMS = {
    "rectangle": (
        Param("type", choice("rectangle"), REQUIRED),
        Param("x", _interval(), REQUIRED, "x-range"),
        Param("y", _interval(), REQUIRED, "y-range"),
    ),
    "disc": (
        Param("type", choice("disc"), REQUIRED),
        Param("center", _numbers(2, "cx, cy"), REQUIRED),
        Param("radius", real(gt=0), REQUIRED),
    ),
}
_EXIT_PARAMS = (
    Param("name", _name(), REQUIRED),
    Param("wall", choice(*_WALLS), REQUIRED),
    Param("interval", _interval(), REQUIRED, "position along the wall"),
)
_BOX_EXIT_PARAMS = (
    Param("name", _name(), REQUIRED),
    Param("face", choice(*_FACES), REQUIRED),
    Param("intervals", Check(lambda ctx, k, v: v, "two [lo, hi] pairs"), None,
          "one [lo, hi] per remaining axis (default: the whole face)"),
)


def _table_list(ctx, key, value, validate_item, allowed, *, empty: bool = True):
    if not isinstance(value, list) or (not empty and not value):
        raise ctx.bad_value(key, value, allowed)
    return [validate_item(f"{key}[{k}]", item) for k, item in enumerate(value)]


def _obstacles(ctx, key, value):
    allowed = 'a list of {type = "rectangle", x, y} or {type = "disc", center, radius} tables'

    def item(k, o):
        if not isinstance(o, dict) or o.get("type") not in _OBSTACLE_PARAMS:
            raise ctx.bad_value(k, o, allowed)
        return validate_table(ctx, k, o, _OBSTACLE_PARAMS[o["type"]], what=allowed)

    return _table_list(ctx, key, value, item, allowed)


def _exits(ctx, key, value):
    allowed = "a non-empty list of {name, wall, interval} tables"

    def item(k, e):
        return validate_table(ctx, k, e, _EXIT_PARAMS, what=allowed)

    return _table_list(ctx, key, value, item, allowed, empty=False)


def _box_exits(ctx, key, value):
    allowed = "a non-empty list of {name, face, intervals} tables"
    pair = _interval()

    def item(k, e):
        out = validate_table(ctx, k, e, _BOX_EXIT_PARAMS, what=allowed)
        iv = out["intervals"]
        if iv is not None:
            if not isinstance(iv, list) or len(iv) != 2:
                raise ctx.bad_value(f"{k}.intervals", iv, "two [lo, hi] pairs")
            out["intervals"] = [pair(ctx, f"{k}.intervals", p) for p in iv]
        else:
            del out["intervals"]
        return out

    return _table_list(ctx, key, value, item, allowed, empty=False)


_ROOM_PARAMS = (
    Param("width", real(gt=0), 10.0),
    Param("height", real(gt=0), 6.0),
    Param("h", real(gt=0), 0.5, "gmsh target mesh size"),
    Param("obstacles", Check(_obstacles, "a list of obstacle tables"), []),
    Param("exits", Check(_exits, "a non-empty list of exit tables"), REQUIRED),
)
_BOX_PARAMS = (
    Param("bounds", Check(lambda ctx, k, v: _bounds3(ctx, k, v), "three [lo, hi] pairs"),
          [[0.0, 4.0], [0.0, 3.0], [0.0, 2.0]]),
    Param("n", Check(lambda ctx, k, v: _counts3(ctx, k, v), "three integers >= 1"), [8, 6, 4]),
    Param("exits", Check(_box_exits, "a non-empty list of exit tables"), REQUIRED),
)
_CROWD_PARAMS = (
    Param("center", Check(lambda ctx, k, v: _point(ctx, k, v), "a point"), REQUIRED),
    Param("width", real(gt=0), 1.0, "standard deviation of the Gaussian blob"),
)
_CONGESTION_PARAMS = (
    Param("c", real(gt=0), 1.0, "H = |p|^2 / (2 (c + m)^alpha)"),
    Param("alpha", real(ge=0), 0.5),
)
_PARAMS = (
    Param("dim", integer(ge=2), 2, "2: gmsh room, 3: structured box"),
    Param("room", Check(lambda ctx, k, v: _table(ctx, k, v), "a table"), None),
    Param("box", Check(lambda ctx, k, v: _table(ctx, k, v), "a table"), None),
    Param("crowd", Check(lambda ctx, k, v: _table(ctx, k, v), "a table"), REQUIRED),
    Param("congestion", Check(lambda ctx, k, v: _table(ctx, k, v), "a table"), {}),
    Param("nu", real(gt=0), 0.1, "viscosity"),
    Param("T", real(gt=0), 8.0, "horizon"),
    Param("nt", integer(ge=1), 16, "implicit Euler steps"),
    Param("degree", Check(lambda ctx, k, v: _degree(ctx, k, v), "1, 2"), 1, "Lagrange degree"),
    Param("aversion", real(), 0.5, "crowd aversion s in f = s m"),
    Param("running_cost", real(), 1.0, "V: cost per unit time in the room"),
    Param("terminal_penalty", real(ge=0), 2.0, "kappa_T: u(T) = kappa_T dist(x, exits)"),
    Param("exit_cost", real(), 0.0, "u on the exits"),
)
_SOLVER_PARAMS = (
    Param("tol", real(gt=0), 1e-8, "Newton tolerance (max norm of the scaled residual)"),
    Param("max_iter", integer(ge=1), 40),
    Param("damping", choice("none", "fixed", "backtracking"), "backtracking"),
    Param("continuation_nu", Check(lambda ctx, k, v: _viscosities(ctx, k, v),
                                   "a list of viscosities > 0"), []),
)


def _table(ctx, key, value):
    if not isinstance(value, dict):
        raise ctx.bad_value(key, value, "a table (key = value pairs)")
    return value


def _point(ctx, key, value):
    return _numbers(ctx.dim, "one coordinate per axis of the room")(ctx, key, value)


def _bounds3(ctx, key, value):
    if not isinstance(value, list) or len(value) != 3:
        raise ctx.bad_value(key, value, "three [lo, hi] pairs")
    return [_interval()(ctx, key, v) for v in value]


def _counts3(ctx, key, value):
    if not isinstance(value, list) or len(value) != 3:
        raise ctx.bad_value(key, value, "three integers >= 1")
    return [integer(ge=1)(ctx, key, v) for v in value]


def _viscosities(ctx, key, value):
    if not isinstance(value, list):
        raise ctx.bad_value(key, value, "a list of viscosities > 0 (large to small)")
    return [real(gt=0)(ctx, key, v) for v in value]


def _degree(ctx, key, value):
    if isinstance(value, bool) or value not in (1, 2):
        raise ctx.bad_value(key, value, "1, 2")
    return int(value)


def _check_room(ctx, room):
    w, h = room["width"], room["height"]
    if room["h"] > 0.5 * min(w, h):
        raise ctx.bad_value("parameters.room.h", room["h"], f"a mesh size <= {0.5 * min(w, h):g}")
    lengths = {"xmin": h, "xmax": h, "ymin": w, "ymax": w}
    names = set()
    for k, e in enumerate(room["exits"]):
        key = f"parameters.room.exits[{k}]"
        if e["interval"][1] > lengths[e["wall"]] or e["interval"][0] < 0:
            raise ctx.bad_value(f"{key}.interval", e["interval"],
                                f"0 <= lo < hi <= {lengths[e['wall']]:g} (wall {e['wall']})")
        if e["name"] in names:
            raise ctx.bad_value(f"{key}.name", e["name"], "a name not used by another exit")
        names.add(e["name"])
    for k, o in enumerate(room["obstacles"]):
        if o["type"] == "rectangle":
            ok = 0 < o["x"][0] and o["x"][1] < w and 0 < o["y"][0] and o["y"][1] < h
        else:
            (cx, cy), r = o["center"], o["radius"]
            ok = 0 < cx - r and cx + r < w and 0 < cy - r and cy + r < h
        if not ok:
            raise ctx.bad_value(f"parameters.room.obstacles[{k}]", o,
                                f"an obstacle strictly inside the {w:g} x {h:g} room")


def _validate(ctx, raw: dict) -> dict:
    table = raw["parameters"]
    if not isinstance(table, dict):
        raise ctx.bad_value("parameters", table, "a table")
    dim = table.get("dim", 2)
    if dim not in (2, 3) or isinstance(dim, bool):
        raise ctx.bad_value("parameters.dim", dim, "2 (gmsh room), 3 (box)")
    p = validate_table(ctx, "parameters", table, _PARAMS, what="parameters of kind 'fem-crowd'")
    geometry = "room" if dim == 2 else "box"
    other = "box" if dim == 2 else "room"
    if p[other] is not None:
        raise ctx.error(f"parameters.{other}", f"not used with dim = {dim}",
                        f"parameters.{geometry}")
    if p[geometry] is None:
        raise ctx.missing_key(f"parameters.{geometry}", "a table")
    schema_g = _ROOM_PARAMS if dim == 2 else _BOX_PARAMS
    p[geometry] = validate_table(ctx, f"parameters.{geometry}", p[geometry], schema_g)
    if dim == 2:
        _check_room(ctx, p["room"])
    old_dim, ctx.dim = ctx.dim, dim
    try:
        p["crowd"] = validate_table(ctx, "parameters.crowd", p["crowd"], _CROWD_PARAMS)
    finally:
        ctx.dim = old_dim
    p["congestion"] = validate_table(ctx, "parameters.congestion", p["congestion"],
                                     _CONGESTION_PARAMS)
    solver = raw.get("solver", {})
    solver = validate_table(ctx, "solver", {} if solver is None else solver, _SOLVER_PARAMS)
    return {"parameters": p, "solver": solver}


# =============================================================================================
# running
# =============================================================================================
def engine_spec(spec: ProblemSpec) -> dict:
    """The dictionary of :func:`mfg_solvers.fem.crowd.run_crowd_room` for a validated entry
    (no output folder: the catalogue writes the outputs)."""
    p, s = spec.parameters, spec.solver
    out = {
        "name": spec.name,
        "dim": p["dim"],
        "crowd": dict(p["crowd"]),
        "nu": p["nu"],
        "T": p["T"],
        "nt": p["nt"],
        "degree": p["degree"],
        "congestion": dict(p["congestion"]),
        "aversion": p["aversion"],
        "running_cost": p["running_cost"],
        "terminal_penalty": p["terminal_penalty"],
        "exit_cost": p["exit_cost"],
        "solver": {
            "tol": s["tol"],
            "max_iter": s["max_iter"],
            "damping": s["damping"],
            "continuation_nu": list(s["continuation_nu"]),
        },
        "output": {"dir": None},
    }
    if p["dim"] == 2:
        out["room"] = {k: p["room"][k] for k in ("width", "height", "h", "obstacles", "exits")}
    else:
        out["box"] = dict(p["box"])
    return out


class CrowdRoomSolution(Solution):
    """The FEM :class:`~mfg_solvers.results.Solution` of an evacuation; :meth:`save` also
    writes the XDMF time series next to the NetCDF file."""

    def save(self, path) -> Path:
        """Write ``path`` (NetCDF) and ``<path stem>.xdmf`` / ``.h5`` (see :func:`write_xdmf`).

        Serial: the gathered solution holds every node, so one process writes everything."""
        path = super().save(path)
        write_xdmf(self, Path(path).with_suffix(".xdmf"))
        return path


def write_xdmf(solution, path) -> Path:
    """Write ``u`` and ``m`` of every time level of a gathered FEM Solution as XDMF 3.

    The mesh is the Solution's linear simplicial triangulation of the nodes (variables ``x``,
    ``y`` [, ``z``] and ``cells``); heavy data go to ``<path stem>.h5`` (datasets ``geometry``,
    ``topology``, ``u/<k>``, ``m/<k>``). The file holds the grid ``mesh`` (read by
    :meth:`dolfinx.io.XDMFFile.read_mesh`) and the temporal collection ``states`` of ``u`` and
    ``m`` (ParaView, Xdmf3 reader). Serial; returns ``path``.
    """
    import h5py

    path = Path(path)
    if path.suffix != ".xdmf":
        raise ValueError(f"path={str(path)!r} must end with '.xdmf'")
    ds = solution.dataset
    names = [c for c in ("x", "y", "z") if c in ds]
    if len(names) < 2 or "cells" not in ds:
        raise ValueError("solution has no mesh (variables x, y and cells): not a FEM Solution")
    geometry = np.stack([ds[c].values for c in names], axis=1).astype(np.float64)
    cells = ds["cells"].values.astype(np.int64)
    t = solution.t
    u = np.atleast_2d(ds["u"].values)
    m = np.atleast_2d(ds["m"].values)
    times = [0.0] if t is None else [float(v) for v in t]
    h5 = path.with_suffix(".h5")
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(h5, "w") as f:
        f["geometry"] = geometry
        f["topology"] = cells
        for k in range(len(times)):
            f[f"u/{k}"] = u[k]
            f[f"m/{k}"] = m[k]
    n, d = geometry.shape
    nc, corners = cells.shape
    topo = {3: "Triangle", 4: "Tetrahedron"}[corners]
    geo = {2: "XY", 3: "XYZ"}[d]
    ref = h5.name

    def item(dims, dtype, where):
        kind = 'NumberType="Int" Precision="8"' if dtype == "int" else \
            'NumberType="Float" Precision="8"'
        return (f'<DataItem Dimensions="{dims}" {kind} Format="HDF">'
                f"{ref}:/{where}</DataItem>")

    mesh_items = (
        f'<Topology TopologyType="{topo}" NumberOfElements="{nc}">'
        f'{item(f"{nc} {corners}", "int", "topology")}</Topology>'
        f'<Geometry GeometryType="{geo}">{item(f"{n} {d}", "float", "geometry")}</Geometry>'
    )
    grids = []
    for k, tk in enumerate(times):
        fields = "".join(
            f'<Attribute Name="{name}" AttributeType="Scalar" Center="Node">'
            f'{item(n, "float", f"{name}/{k}")}</Attribute>'
            for name in ("u", "m")
        )
        grids.append(
            f'<Grid Name="state" GridType="Uniform"><Time Value="{tk!r}"/>'
            f"{mesh_items}{fields}</Grid>"
        )
    body = "\n".join(grids)
    path.write_text(
        '<?xml version="1.0"?>\n<Xdmf Version="3.0">\n<Domain>\n'
        f'<Grid Name="mesh" GridType="Uniform">{mesh_items}</Grid>\n'
        '<Grid Name="states" GridType="Collection" CollectionType="Temporal">\n'
        f"{body}\n</Grid>\n</Domain>\n</Xdmf>\n",
        encoding="utf-8",
    )
    return path


def _summary(solution, engine_summary: dict) -> dict:
    ds = solution.dataset
    t = solution.t
    mass = ds["mass"].values
    flux = ds["exit_flux"].values.sum(axis=1)
    out_through_exits = np.concatenate([[0.0], np.cumsum(np.diff(t) * flux[1:])])
    m = ds["m"].values
    s = dict(engine_summary)
    total = s.pop("time_total", None)
    s["exited_mass"] = float(out_through_exits[-1])
    s["mass_inside_T"] = float(mass[-1])
    s["conservation_error"] = float(np.abs(mass + out_through_exits - 1.0).max())
    s["max_density"] = float(m.max())
    s["undershoot"] = float(max(0.0, -s["min_density"]) / s["max_density"])
    s["mpi_size"] = int(solution.attrs.get("mpi_size", 1))
    attrs = solution.attrs
    for src, dst in (("time_total", "time_solve"), ("time_assembly", "time_assembly"),
                     ("time_linear_solve", "time_linear_solve")):
        if src in attrs:
            s[dst] = float(attrs[src])
    if total is not None:
        s["time_total"] = float(total)
    return s


def run_fem_crowd(spec: ProblemSpec, *, progress: bool = False):
    """Solve a ``fem-crowd`` entry; return ``(CrowdRoomSolution, summary)``.

    Collective under MPI (call it on every rank of ``MPI.COMM_WORLD``): every rank returns the
    gathered Solution and the same summary (broadcast from rank 0)."""
    from ..fem.crowd import run_crowd_room

    t0 = time.perf_counter()
    try:
        solution, engine_summary = run_crowd_room(engine_spec(spec))
    except (ValueError, TypeError) as exc:
        raise CatalogueError(f"{spec.label}: parameters: {' '.join(str(exc).split())}") from exc
    summary = {"problem": spec.name, "kind": spec.kind}
    summary.update(_summary(solution, engine_summary))
    summary["time_total"] = time.perf_counter() - t0
    from ..fem._backend import MPI

    comm = MPI.COMM_WORLD
    if comm.size > 1:
        summary = comm.bcast(summary, root=0)
    return CrowdRoomSolution(solution.dataset), summary


def _build(spec: ProblemSpec):
    """``(problem, mesh, exits, engine_spec)`` without solving (collective under MPI)."""
    from ..fem.crowd import crowd_room_problem

    try:
        return crowd_room_problem(engine_spec(spec))
    except (ValueError, TypeError) as exc:
        raise CatalogueError(f"{spec.label}: parameters: {' '.join(str(exc).split())}") from exc


def _figures(spec: ProblemSpec, solution, summary) -> dict:
    """``density_snapshots`` (tripcolor of m at 4 times), ``exit_flux`` (outflow per exit and
    exited mass), ``value`` (u at t = 0)."""
    from ..fem.plotting import plot_density_snapshots, plot_exit_flux, plot_field

    t = solution.t
    times = t[np.linspace(0, len(t) - 1, 4).round().astype(int)]
    return {
        "density_snapshots": plot_density_snapshots(solution, times),
        "exit_flux": plot_exit_flux(solution),
        "value": plot_field(solution, "u", t=float(t[0])),
    }


KIND = register_kind(
    ProblemKind(
        name="fem-crowd",
        validate=_validate,
        run=run_fem_crowd,
        build=_build,
        figures=_figures,
        description="crowd evacuation of a room (congestion, obstacles, exits) by dolfinx FEM",
    )
)
