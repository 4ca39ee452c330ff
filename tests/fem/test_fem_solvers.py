"""The coupling solvers drive the finite-element discretisation through the common interface:
Newton, damped fixed point and policy iteration reach the same discrete solution."""

from __future__ import annotations

import numpy as np
import pytest

from mfg_solvers import Congestion, Domain, LocalCoupling, MeanCoupling, MFGProblem
from mfg_solvers.coupling import solve_fixed_point, solve_newton, solve_policy_iteration

PI = np.pi


def mild_problem():
    return MFGProblem(
        Domain([(0, 1), (0, 1)], "neumann"), 0.1, hamiltonian=Congestion(1.0, 0.5),
        coupling=LocalCoupling("linear", 0.2),
        potential=lambda x, y: -np.cos(2 * PI * x) * np.cos(PI * y),
        m0=lambda x, y: 1 + 0.5 * np.cos(PI * x), T=0.5,
        terminal_cost=lambda x, y: 0.5 * (x - 0.8) ** 2, name="mild",
    )


def test_time_dependent_solvers_agree():
    from mfg_solvers.fem import FEMDiscretisation, rectangle_mesh

    disc = FEMDiscretisation(mild_problem(), rectangle_mesh([(0, 1), (0, 1)], 6), 3)
    newton = solve_newton(disc, tol=1e-11, progress=False)
    assert newton.converged and newton.iterations <= 6
    assert newton.attrs["scheme"].startswith("Lagrange P1")
    picard = solve_fixed_point(disc, tol=1e-10, relaxation=0.7, max_iter=100, progress=False)
    policy = solve_policy_iteration(disc, tol=1e-10, max_iter=60, progress=False)
    for other in (picard, policy):
        assert other.converged
        assert np.abs(other.u - newton.u).max() < 1e-8
        assert np.abs(other.m - newton.m).max() < 1e-8
    print("iterations: newton", newton.iterations, "fixed point", picard.iterations,
          "policy", policy.iterations)


def test_ergodic_solvers_agree(quiet_mass_warning):
    """Ergodic LQ problem (mean coupling, P2): Newton on the bordered system, damped fixed point
    and policy iteration give the same (U, M, lambda)."""
    from mfg_solvers.fem import FEMDiscretisation, rectangle_mesh

    nu, q, kappa = 0.5, 1.0, 0.5
    s = np.sqrt(nu / np.sqrt(q))
    bounds = [(-5 * s, 6 * s), (-5 * s, 5 * s)]
    problem = MFGProblem(Domain(bounds, "neumann"), nu, coupling=MeanCoupling(q, kappa),
                         m0=lambda x, y: np.exp(-((x - 1.0) ** 2 + y**2) / 2), ergodic=True,
                         name="LQ ergodic")
    disc = FEMDiscretisation(problem, rectangle_mesh(bounds, (9, 8)), degree=2)
    newton = solve_newton(disc, tol=1e-11, progress=False)
    picard = solve_fixed_point(disc, tol=1e-11, relaxation=1.0, max_iter=80, progress=False)
    policy = solve_policy_iteration(disc, tol=1e-11, max_iter=80, progress=False)
    for other in (picard, policy):
        assert other.converged
        assert np.abs(other.u - newton.u).max() < 1e-8
        assert np.abs(other.m - newton.m).max() < 1e-9
        assert other.ergodic_constant == pytest.approx(newton.ergodic_constant, abs=1e-9)


def test_newton_with_viscosity_continuation():
    """Continuation in nu (coupling.solve_newton, via with_viscosity) reaches the same
    solution as the direct solve."""
    from mfg_solvers.fem import FEMDiscretisation, rectangle_mesh

    disc = FEMDiscretisation(mild_problem(), rectangle_mesh([(0, 1), (0, 1)], 6), 3)
    direct = solve_newton(disc, tol=1e-11, progress=False)
    cont = solve_newton(disc, tol=1e-11, continuation_nu=[0.4, 0.2], progress=False)
    assert cont.converged
    assert np.abs(cont.u - direct.u).max() < 1e-9
    other = disc.with_viscosity(0.4)
    assert other.problem.nu == 0.4 and disc.problem.nu == 0.1
    assert other.mesh is disc.mesh


def test_fem_solve_entry_point(quiet_mass_warning):
    from mfg_solvers.fem import rectangle_mesh, solve

    sol = solve(mild_problem(), rectangle_mesh([(0, 1), (0, 1)], 6), 3, degree=2, tol=1e-10,
                progress=False)
    assert sol.converged and sol.attrs["degree"] == 2
    assert sol.dataset.sizes["node"] == 13 * 13
    with pytest.raises(TypeError, match="not accepted"):
        solve(mild_problem(), rectangle_mesh([(0, 1), (0, 1)], 4), 3, relaxation=0.5)
    with pytest.raises(ValueError, match="method="):
        solve(mild_problem(), rectangle_mesh([(0, 1), (0, 1)], 4), 3, method="magic")
