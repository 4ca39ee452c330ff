"""Export of finite-element MFG states to ParaView formats (VTX / ADIOS2 and XDMF / HDF5).

Both writers are collective under MPI (every rank calls them with its own part of the state).

* :func:`export_vtx` writes ``u`` and ``m`` of every time level (one ``.bp`` folder) at the
  element's own degree;
* :func:`export_xdmf` writes the mesh and the time series to ``.xdmf`` + ``.h5``; XDMF stores
  functions at the mesh's geometry degree, so P2 fields are interpolated into P1 first.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._backend import dolfinx, fem


def _levels(disc, state):
    U, M = np.asarray(state[0]), np.asarray(state[1])
    if disc.ergodic:
        return [0.0], U[None, :], M[None, :]
    return list(disc.t), U, M


def export_vtx(disc, state, path) -> Path:
    """Write ``u`` and ``m`` (every time level) of ``state`` to the VTX folder ``path`` (.bp)."""
    path = Path(path)
    if path.suffix != ".bp":
        raise ValueError(f"path={str(path)!r} must end with '.bp' (an ADIOS2 folder)")
    if disc.comm.rank == 0:
        path.parent.mkdir(parents=True, exist_ok=True)
    disc.comm.barrier()
    times, U, M = _levels(disc, state)
    u = disc.function(U[0], "u")
    m = disc.function(M[0], "m")
    with dolfinx.io.VTXWriter(disc.comm, str(path), [u, m], engine="BP4") as writer:
        for k, t in enumerate(times):
            disc._set(u, U[k])
            disc._set(m, M[k])
            writer.write(float(t))
    return path


def export_xdmf(disc, state, path) -> Path:
    """Write the mesh and ``u``, ``m`` (every time level) to ``path`` (.xdmf, with its .h5)."""
    path = Path(path)
    if path.suffix != ".xdmf":
        raise ValueError(f"path={str(path)!r} must end with '.xdmf'")
    if disc.comm.rank == 0:
        path.parent.mkdir(parents=True, exist_ok=True)
    disc.comm.barrier()
    times, U, M = _levels(disc, state)
    msh = disc.mesh.mesh
    if disc.degree == 1:
        space = disc.V
    else:
        space = fem.functionspace(msh, ("Lagrange", 1))
    u_out = fem.Function(space, name="u")
    m_out = fem.Function(space, name="m")
    with dolfinx.io.XDMFFile(disc.comm, str(path), "w") as xdmf:
        xdmf.write_mesh(msh)
        for k, t in enumerate(times):
            for target, values in ((u_out, U[k]), (m_out, M[k])):
                if disc.degree == 1:
                    disc._set(target, values)
                else:
                    target.interpolate(disc.function(values))
                xdmf.write_function(target, float(t))
    return path
