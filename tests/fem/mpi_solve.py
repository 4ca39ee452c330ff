"""Solve two small finite-element MFG problems and save the gathered solutions (run by
``test_fem_mpi.py`` serially and under ``mpiexec -n 2``)."""

from __future__ import annotations

import sys
import warnings

import numpy as np

from mfg_solvers import Congestion, Domain, LocalCoupling, MeanCoupling, MFGProblem
from mfg_solvers.coupling import solve_newton
from mfg_solvers.model import MassNormalisationWarning


def solve_both():
    from mfg_solvers.fem import FEMDiscretisation, rectangle_mesh

    warnings.simplefilter("ignore", MassNormalisationWarning)
    # finite horizon with two exits, congestion, P1
    msh = rectangle_mesh([(0, 2), (0, 1)], (12, 6), exits={
        "door": {"face": "xmax", "interval": (0.25, 0.75)},
        "back": {"face": "xmin", "interval": (0.0, 0.25)},
    })
    problem = MFGProblem(
        Domain([(0, 2), (0, 1)], "neumann"), 0.1, hamiltonian=Congestion(1.0, 0.5),
        coupling=LocalCoupling("linear", 0.5), potential=lambda x, y: 1.0 + 0 * x,
        m0=lambda x, y: np.exp(-8 * ((x - 1.2) ** 2 + (y - 0.5) ** 2)), T=2.0,
        terminal_cost=lambda x, y: np.hypot(2 - x, np.clip(y, 0.25, 0.75) - y), name="door",
    )
    disc = FEMDiscretisation(problem, msh, 6, exits=("door", "back"), initial="decoupled")
    td = solve_newton(disc, tol=1e-11, progress=False, damping="backtracking")
    # ergodic LQ, mean coupling (scalar unknowns on the last rank), P2
    s = np.sqrt(0.5)
    bounds = [(-5 * s, 6 * s), (-5 * s, 5 * s)]
    lq = MFGProblem(Domain(bounds, "neumann"), 0.5, coupling=MeanCoupling(1.0, 0.5),
                    m0=lambda x, y: np.exp(-((x - 1.0) ** 2 + y**2) / 2), ergodic=True,
                    name="LQ ergodic")
    erg = solve_newton(FEMDiscretisation(lq, rectangle_mesh(bounds, (9, 8)), degree=2),
                       tol=1e-11, progress=False)
    return td, erg


def arrays(td, erg) -> dict:
    return {
        "td_u": td.u, "td_m": td.m, "td_x": td.dataset["x"].values,
        "td_y": td.dataset["y"].values, "td_mass": td.dataset["mass"].values,
        "td_flux": td.dataset["exit_flux"].values, "td_iterations": td.iterations,
        "erg_u": erg.u, "erg_m": erg.m, "erg_lam": erg.ergodic_constant,
        "mpi_size": td.attrs["mpi_size"],
    }


if __name__ == "__main__":
    from mpi4py import MPI

    out = arrays(*solve_both())
    if MPI.COMM_WORLD.rank == 0:
        np.savez(sys.argv[1], **out)
