"""Import of the dolfinx stack, in the order the binary wheel requires.

``dolfinx_solver`` (the PyPI wheel ``dolfinx-solver-real``) must be imported before dolfinx and
petsc4py: it loads ``mpi4py.MPI`` first. ``h5py`` (used by :meth:`Solution.save`) is imported
before both: gmsh and ADIOS2 bring another HDF5 library, and ``h5py`` must bind its own first.
Every module of :mod:`mfg_solvers.fem` imports the stack from here, so nothing else in the
package touches dolfinx.
"""

from __future__ import annotations

try:  # h5py first: it must bind its own HDF5 library before gmsh / ADIOS2 load another one
    import h5py  # noqa: F401
except ImportError:  # pragma: no cover - h5py is a dependency of the package
    pass

try:
    import dolfinx_solver  # noqa: F401  (orders MPI ahead of the compiled bindings)
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        "mfg_solvers.fem needs dolfinx: install the 'fem' extra "
        "(pip install 'mfg_solvers[fem]', which brings dolfinx-solver-real and gmsh)"
    ) from exc

import basix  # noqa: E402
import dolfinx  # noqa: E402
import dolfinx.fem.petsc  # noqa: E402
import ufl  # noqa: E402
from dolfinx import fem, la, mesh  # noqa: E402
from mpi4py import MPI  # noqa: E402
from petsc4py import PETSc  # noqa: E402

__all__ = ["MPI", "PETSc", "basix", "dolfinx", "fem", "la", "mesh", "ufl"]
