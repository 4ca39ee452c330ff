"""Crowd evacuation of a room: a finite-horizon MFG with congestion, obstacles and exits.

Model (2-D room meshed by gmsh, or a 3-D box from dolfinx). Pedestrians with density
:math:`m` control their velocity :math:`a` at the cost :math:`\\tfrac12 (c + m)^\\alpha|a|^2`
(moving is harder in a crowd), pay ``running_cost`` :math:`V` per unit time spent in the room and
a crowd-aversion cost :math:`s\\,m`, and at the horizon :math:`T` a penalty proportional to their
distance to the nearest exit:

.. math::

    -\\partial_t u - \\nu\\Delta u + \\frac{|\\nabla u|^2}{2 (c + m)^{\\alpha}} = V + s\\,m,
    \\qquad u(T, x) = \\kappa_T\\, d(x, \\text{exits}),

    \\partial_t m - \\nu\\Delta m
    - \\operatorname{div}\\Big(m\\,\\frac{\\nabla u}{(c+m)^\\alpha}\\Big)
    = 0, \\qquad m(0) = m_0 .

Walls and obstacles reflect (:math:`\\partial_n u = 0`, zero normal flux of :math:`m`); at the
exits :math:`u = u_{exit}` and :math:`m = 0` (pedestrians leave). The terminal penalty vanishes
on the exits, so the data are compatible there. The initial crowd is a Gaussian blob (outside the
obstacles, restricted to the room).

:func:`run_crowd_room` takes a plain dictionary (TOML-friendly; defaults in
:data:`DEFAULT_CROWD_ROOM`, partial dictionaries are merged into them) and returns the
:class:`~mfg_solvers.results.Solution` and a summary of named scalars (evacuated fraction, time
to evacuate half the crowd, share of each exit, peak outflow, mass-balance error, smallest
density, Newton iterations, timings). With ``output.dir`` set it also writes the Solution
(NetCDF), figures (density snapshots, exit-flux curve) and a VTX time series.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np

#: Default specification (2-D room); ``dim = 3`` uses the ``box`` entry instead of ``room``.
DEFAULT_CROWD_ROOM = {
    "name": "crowd_room",
    "dim": 2,
    "room": {
        "width": 10.0,
        "height": 6.0,
        "h": 0.5,
        "obstacles": [
            {"type": "rectangle", "x": [4.0, 5.0], "y": [2.0, 4.0]},
            {"type": "disc", "center": [7.5, 4.6], "radius": 0.6},
        ],
        "exits": [
            {"name": "west", "wall": "xmin", "interval": [2.5, 3.5]},
            {"name": "east", "wall": "xmax", "interval": [0.5, 1.5]},
        ],
    },
    "box": {
        "bounds": [[0.0, 4.0], [0.0, 3.0], [0.0, 2.0]],
        "n": [8, 6, 4],
        "exits": [{"name": "door", "face": "xmin", "intervals": [[1.0, 2.0], [0.0, 1.5]]}],
    },
    "crowd": {"center": [6.5, 3.0], "width": 1.0},
    "nu": 0.1,
    "T": 8.0,
    "nt": 16,
    "degree": 1,
    "congestion": {"c": 1.0, "alpha": 0.5},
    "aversion": 0.5,
    "running_cost": 1.0,
    "terminal_penalty": 2.0,
    "exit_cost": 0.0,
    "solver": {"tol": 1e-8, "max_iter": 40, "damping": "backtracking", "continuation_nu": []},
    "output": {"dir": None, "figures": True, "vtx": True, "snapshots": 4},
}


def _merge(base: dict, update: Mapping, path: str = "") -> dict:
    out = copy.deepcopy(base)
    for key, value in update.items():
        where = f"{path}{key}"
        if key not in base:
            raise ValueError(f"spec key {where!r} is not known; allowed: {sorted(base)}")
        if isinstance(base[key], dict) and isinstance(value, Mapping):
            out[key] = _merge(base[key], value, where + ".")
        else:
            out[key] = copy.deepcopy(value)
    return out


def _exit_boxes(spec):
    """Axis-aligned boxes (lo, hi) of the exits (a door is a degenerate box)."""
    if spec["dim"] == 2:
        room = spec["room"]
        W, H = float(room["width"]), float(room["height"])
        out = []
        for e in room["exits"]:
            lo, hi = (float(v) for v in e["interval"])
            wall = e["wall"]
            if wall in ("xmin", "xmax"):
                x = 0.0 if wall == "xmin" else W
                out.append((np.array([x, lo]), np.array([x, hi])))
            else:
                y = 0.0 if wall == "ymin" else H
                out.append((np.array([lo, y]), np.array([hi, y])))
        return out
    from .meshes import FACES

    b = np.asarray(spec["box"]["bounds"], dtype=float)
    out = []
    for e in spec["box"]["exits"]:
        axis, side = FACES[e["face"]]
        others = [k for k in range(3) if k != axis]
        lo, hi = b[:, 0].copy(), b[:, 1].copy()
        lo[axis] = hi[axis] = b[axis, side]
        ivals = e.get("intervals")
        if ivals is not None:
            for k, (a, c) in zip(others, ivals, strict=True):
                lo[k], hi[k] = float(a), float(c)
        out.append((lo, hi))
    return out


def _distance_to_exits(boxes):
    def dist(*coords):
        x = np.stack(np.broadcast_arrays(*coords), axis=-1)
        d = np.full(x.shape[:-1], np.inf)
        for lo, hi in boxes:
            d = np.minimum(d, np.linalg.norm(x - np.clip(x, lo, hi), axis=-1))
        return d

    return dist


def crowd_room_problem(spec: Mapping | None = None):
    """``(problem, mesh, exits, spec)`` of the evacuation described by ``spec``."""
    from ..grid import Domain
    from ..hamiltonians import Congestion
    from ..model import LocalCoupling, MFGProblem
    from .meshes import box_mesh, room_mesh

    spec = _merge(DEFAULT_CROWD_ROOM, spec or {})
    dim = spec["dim"]
    if dim not in (2, 3):
        raise ValueError(f"dim={dim!r} must be 2 (gmsh room) or 3 (box)")
    if dim == 2:
        room = spec["room"]
        mesh = room_mesh(room["width"], room["height"], obstacles=room["obstacles"],
                         exits=room["exits"], h=room["h"])
        exits = tuple(str(e.get("name", f"exit_{k + 1}")) for k, e in enumerate(room["exits"]))
        bounds = [(0.0, float(room["width"])), (0.0, float(room["height"]))]
    else:
        box = spec["box"]
        exits_spec = {e["name"]: {k: v for k, v in e.items() if k != "name"}
                      for e in box["exits"]}
        mesh = box_mesh(box["bounds"], box["n"], exits=exits_spec)
        exits = tuple(exits_spec)
        bounds = [tuple(float(v) for v in ab) for ab in box["bounds"]]
    center = np.asarray(spec["crowd"]["center"], dtype=float)
    if center.shape != (dim,):
        raise ValueError(f"crowd.center={spec['crowd']['center']!r} must have {dim} entries")
    width = float(spec["crowd"]["width"])
    if not np.isfinite(width) or width <= 0:
        raise ValueError(f"crowd.width={width!r} must be a positive number")

    def m0(*coords):
        r2 = sum((c - c0) ** 2 for c, c0 in zip(coords, center, strict=True))
        return np.exp(-0.5 * r2 / width**2)

    V = float(spec["running_cost"])
    penalty = float(spec["terminal_penalty"])
    dist = _distance_to_exits(_exit_boxes(spec))
    cong = spec["congestion"]
    problem = MFGProblem(
        Domain(bounds, "neumann"), float(spec["nu"]),
        hamiltonian=Congestion(float(cong["c"]), float(cong["alpha"])),
        coupling=LocalCoupling("linear", float(spec["aversion"])),
        potential=lambda *x: V + 0.0 * x[0],
        m0=m0, T=float(spec["T"]),
        terminal_cost=lambda *x: penalty * dist(*x),
        name=str(spec["name"]),
    )
    return problem, mesh, exits, spec


def run_crowd_room(spec: Mapping | None = None):
    """Solve the crowd evacuation described by ``spec``; return ``(solution, summary)``.

    ``spec`` is merged into :data:`DEFAULT_CROWD_ROOM` (unknown keys raise ValueError). The
    solve: finite-element discretisation (P1 by default, CIP), starting state from one decoupled
    HJB / FP sweep, Newton on the coupled space-time system (``solver`` options, passed to
    :func:`mfg_solvers.coupling.solve_newton`).
    """
    import warnings

    from ..coupling import solve_newton
    from ..model import MassNormalisationWarning
    from .discretisation import FEMDiscretisation

    t0 = time.perf_counter()
    problem, mesh, exits, spec = crowd_room_problem(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MassNormalisationWarning)  # m0 is normalised on purpose
        disc = FEMDiscretisation(problem, mesh, int(spec["nt"]), degree=int(spec["degree"]),
                                 exits=exits, exit_cost=float(spec["exit_cost"]),
                                 initial="decoupled")
    solver = dict(spec["solver"])
    if not solver.get("continuation_nu"):
        solver.pop("continuation_nu", None)
    solution = solve_newton(disc, progress=False, **solver)
    summary = crowd_summary(solution, disc)
    summary["time_total"] = time.perf_counter() - t0
    out = spec["output"]
    if out.get("dir"):
        write_crowd_output(solution, disc, summary, out)
    return solution, summary


def crowd_summary(solution, disc) -> dict:
    """Named scalar outputs of an evacuation solution."""
    ds = solution.dataset
    t = solution.t
    mass = ds["mass"].values
    exited = ds["exited_mass"].values
    flux = ds["exit_flux"].values
    dt = float(t[1] - t[0])
    balance = np.abs(mass[:-1] - mass[1:] - dt * flux[1:].sum(axis=1)).max()
    half = np.nan
    k = np.flatnonzero(exited >= 0.5 * mass[0])
    if len(k):
        i = int(k[0])
        if i == 0:
            half = float(t[0])
        else:
            a, b = exited[i - 1], exited[i]
            half = float(t[i - 1] + (0.5 * mass[0] - a) / (b - a) * (t[i] - t[i - 1]))
    total_out = dt * flux[1:].sum(axis=0)
    summary = {
        "evacuated_fraction": float(exited[-1] / mass[0]),
        "time_to_half": half,
        "peak_outflow": float(flux.sum(axis=1).max()),
        "mass_balance_error": float(balance),
        "min_density": float(solution.attrs["min_density"]),
        "newton_iterations": int(solution.iterations),
        "converged": bool(solution.converged),
        "final_residual": float(solution.residual_history[-1]),
        "num_dofs": int(solution.attrs["num_dofs"]),
        "num_cells": int(solution.attrs["num_cells"]),
        "nt": int(disc.nt),
        "dim": int(disc.mesh.dim),
    }
    for k, name in enumerate(ds["exit"].values):
        summary[f"share_{name}"] = float(total_out[k] / max(exited[-1], 1e-300))
    return summary


def write_crowd_output(solution, disc, summary, out: Mapping) -> None:
    """Solution (NetCDF), summary (JSON), figures (PNG) and VTX under ``out['dir']``."""
    folder = Path(out["dir"])
    rank = disc.comm.rank
    if rank == 0:
        folder.mkdir(parents=True, exist_ok=True)
    disc.comm.barrier()
    if out.get("vtx", True):
        from .output import export_vtx

        export_vtx(disc, disc.from_solution(solution), folder / "crowd_room.bp")
    if rank != 0:
        return
    solution.save(folder / "solution.nc")
    with open(folder / "summary.json", "w") as fh:
        json.dump(summary, fh, indent=2, sort_keys=True)
    if out.get("figures", True):
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        from .plotting import plot_density_snapshots, plot_exit_flux

        t = solution.t
        n = int(out.get("snapshots", 4))
        times = t[np.linspace(0, len(t) - 1, n).round().astype(int)]
        fig = plot_density_snapshots(solution, times)
        fig.savefig(folder / "density_snapshots.png", dpi=120, bbox_inches="tight")
        plt.close(fig)
        fig = plot_exit_flux(solution)
        fig.savefig(folder / "exit_flux.png", dpi=120, bbox_inches="tight")
        plt.close(fig)
