"""Finite elements (P1 on the FD nodes) against the finite-difference ACD solver on the unit
square with reflecting walls, for the same problem: the difference falls under refinement of
both (at the first order of the FD scheme; the P1 scheme is second order)."""

from __future__ import annotations

import numpy as np
import pytest

from mfg_solvers import Congestion, Domain, LocalCoupling, MFGProblem
from mfg_solvers.coupling import solve_newton

from .conftest import fitted_order

PI = np.pi


def problem():
    return MFGProblem(
        Domain([(0, 1), (0, 1)], "neumann"), 0.1, hamiltonian=Congestion(1.0, 0.5),
        coupling=LocalCoupling("linear", 1.0),
        potential=lambda x, y: -np.cos(2 * PI * x) * np.cos(PI * y),
        m0=lambda x, y: 1 + 0.5 * np.cos(PI * x) * np.cos(PI * y), T=0.5,
        terminal_cost=lambda x, y: 0.5 * (x - 0.8) ** 2, name="FD vs FEM",
    )


def test_fem_and_fd_agree_under_refinement(quiet_mass_warning):
    fd_module = pytest.importorskip("mfg_solvers.fd")
    from mfg_solvers.fem import FEMDiscretisation, rectangle_mesh

    nt = 8
    nodes = (5, 9, 17, 33)
    du, dm = [], []
    for n in nodes:
        p = problem()
        fd = solve_newton(fd_module.FDDiscretisation(p, p.domain.grid((n, n)), nt), tol=1e-10,
                          progress=False)
        fe = solve_newton(FEMDiscretisation(p, rectangle_mesh([(0, 1), (0, 1)], n - 1), nt),
                          tol=1e-10, progress=False)
        # the FEM nodes, sorted by (x, y), are the FD grid nodes in C order
        X, Y = np.meshgrid(*fd.axes, indexing="ij")
        assert np.allclose(fe.dataset["x"].values, X.ravel(), atol=1e-12)
        assert np.allclose(fe.dataset["y"].values, Y.ravel(), atol=1e-12)
        du.append(np.abs(fd.u.reshape(nt + 1, -1) - fe.u).max())
        print(n, du[-1], np.abs(fd.m.reshape(nt + 1, -1) - fe.m).max())
        dm.append(np.abs(fd.m.reshape(nt + 1, -1) - fe.m).max())
    h = 1.0 / (np.asarray(nodes) - 1)
    assert np.all(np.diff(du) < 0) and np.all(np.diff(dm) < 0)
    assert fitted_order(h, du) == pytest.approx(1.0, abs=0.15), du
    assert fitted_order(h, dm) == pytest.approx(1.0, abs=0.15), dm
    assert du[-1] < 0.06 and dm[-1] < 0.1
