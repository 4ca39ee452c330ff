"""Finite-element MFG solvers on dolfinx meshes (P1/P2 Lagrange, CIP stabilisation, PETSc, MPI).

Importing this package is cheap: dolfinx, PETSc and gmsh are loaded when a name is first used
(``mfg_solvers.fem.FEMDiscretisation`` ...). Install the ``fem`` extra to use it.

Main names

* :class:`FEMDiscretisation` -- the discretisation driven by :mod:`mfg_solvers.coupling`;
* :func:`solve` -- build it and run a coupling solver (Newton by default);
* meshes: :class:`FEMMesh`, :func:`rectangle_mesh`, :func:`box_mesh`, :func:`interval_mesh`,
  :func:`mesh_for_domain`, :func:`room_mesh` (gmsh), :func:`boundary_patch`;
* output: :func:`export_vtx`, :func:`export_xdmf`; figures in :mod:`mfg_solvers.fem.plotting`;
* application: :func:`run_crowd_room` (crowd evacuation of a room, 2-D or a 3-D box).
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "FEMDiscretisation": "discretisation",
    "FEMMesh": "meshes",
    "boundary_patch": "meshes",
    "box_mesh": "meshes",
    "interval_mesh": "meshes",
    "mesh_for_domain": "meshes",
    "rectangle_mesh": "meshes",
    "room_mesh": "meshes",
    "solve": "solve",
    "export_vtx": "output",
    "export_xdmf": "output",
    "run_crowd_room": "crowd",
    "crowd_room_problem": "crowd",
    "DEFAULT_CROWD_ROOM": "crowd",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        module = importlib.import_module(f".{_EXPORTS[name]}", __name__)
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mfg_solvers.fem' has no attribute {name!r}")


def __dir__():
    return __all__
