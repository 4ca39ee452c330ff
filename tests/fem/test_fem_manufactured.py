"""Convergence orders of the finite-element scheme on manufactured solutions.

P_k Lagrange elements: the theory (and CIP, which is consistent) gives O(h^{k+1}) in L2 and
O(h^k) in the H1 seminorm. The fitted slopes of log(error) against log(h) over four meshes are
asserted within 0.2 (L2) and 0.15 (H1) of the theoretical orders.

Ergodic case: u = cos(pi x) cos(pi y) / 2, m = 1 + cos(pi x) cos(2 pi y) / 2 on the unit square
(both satisfy the reflecting boundary conditions), quadratic Hamiltonian, f(m) = m, lambda = 0.7,
with the HJB and FP forcing computed symbolically in UFL.

Time-dependent case: u and m affine in t, for which implicit Euler is exact when the forcing of
HJB step n is evaluated with u at t^n and m at t^{n+1} (the coupling times of the scheme), so the
error is purely spatial; congestion Hamiltonian (the Jacobian blocks then include the
m-derivatives of H).
"""

from __future__ import annotations

import numpy as np
import pytest

from mfg_solvers import Congestion, Domain, LocalCoupling, MFGProblem
from mfg_solvers.coupling import solve_newton

from .conftest import fitted_order

PI = np.pi
NU = 0.3
LAMBDA = 0.7


def _ufl():
    from mfg_solvers.fem._backend import ufl

    return ufl


# -- ergodic ------------------------------------------------------------------------------------
def u_ergodic(x):
    ufl = _ufl()
    return 0.5 * ufl.cos(PI * x[0]) * ufl.cos(PI * x[1])


def m_ergodic(x):
    ufl = _ufl()
    return 1 + 0.5 * ufl.cos(PI * x[0]) * ufl.cos(2 * PI * x[1])


def forcing_ergodic(x, t_u, t_m):
    ufl = _ufl()
    u, m = u_ergodic(x), m_ergodic(x)
    gu = ufl.grad(u)
    S_u = LAMBDA - NU * ufl.div(gu) + 0.5 * ufl.dot(gu, gu) - m
    S_m = -NU * ufl.div(ufl.grad(m)) - ufl.div(m * gu)
    return S_u, S_m


def ergodic_problem():
    return MFGProblem(Domain([(0, 1), (0, 1)], "neumann"), NU,
                      coupling=LocalCoupling("linear", 1.0), ergodic=True,
                      name="manufactured ergodic")


@pytest.mark.parametrize("degree, meshes", [(1, (4, 8, 16, 32)), (2, (4, 8, 16, 32))])
def test_ergodic_orders(degree, meshes):
    from mfg_solvers.fem import FEMDiscretisation, rectangle_mesh

    problem = ergodic_problem()
    errors = {"uL2": [], "uH1": [], "mL2": [], "mH1": [], "lam": []}
    for n in meshes:
        disc = FEMDiscretisation(problem, rectangle_mesh([(0, 1), (0, 1)], n), degree=degree,
                                 forcing=forcing_ergodic)
        sol = solve_newton(disc, tol=1e-10, progress=False)
        assert sol.converged and sol.iterations <= 6
        U, M, lam = disc.from_solution(sol)
        eu = disc.error_norms(U, u_ergodic, mean_zero=True)
        em = disc.error_norms(M, m_ergodic)
        errors["uL2"].append(eu["L2"])
        errors["uH1"].append(eu["H1"])
        errors["mL2"].append(em["L2"])
        errors["mH1"].append(em["H1"])
        errors["lam"].append(abs(lam - LAMBDA))
        assert abs(disc.integrate(M) - 1.0) < 1e-12
        assert abs(disc.integrate(U)) < 1e-10
    h = 1.0 / np.asarray(meshes)
    for key in ("uL2", "mL2"):
        assert fitted_order(h, errors[key]) == pytest.approx(degree + 1, abs=0.2), (key, errors)
    for key in ("uH1", "mH1"):
        assert fitted_order(h, errors[key]) == pytest.approx(degree, abs=0.15), (key, errors)
    # the ergodic constant converges at least at the L2 rate
    assert fitted_order(h, errors["lam"]) > degree + 0.8
    assert errors["lam"][-1] < (2e-3 if degree == 1 else 2e-6)


# -- time-dependent -----------------------------------------------------------------------------
NU_T = 0.2
T = 1.0
C, ALPHA = 1.0, 0.5


def u_time(x, t):
    ufl = _ufl()
    return 0.5 * ufl.cos(PI * x[0]) * ufl.cos(PI * x[1]) + 0.3 * t * ufl.cos(2 * PI * x[0])


def m_time(x, t):
    ufl = _ufl()
    return (1 + 0.5 * ufl.cos(PI * x[0]) * ufl.cos(2 * PI * x[1])
            + 0.2 * t * ufl.cos(PI * x[0]) * ufl.cos(PI * x[1]))


def forcing_time(x, t_u, t_m):
    ufl = _ufl()
    u, m = u_time(x, t_u), m_time(x, t_m)
    du_dt = 0.3 * ufl.cos(2 * PI * x[0])
    dm_dt = 0.2 * ufl.cos(PI * x[0]) * ufl.cos(PI * x[1])
    gu = ufl.grad(u)
    weight = (C + m) ** (-ALPHA)
    S_u = -du_dt - NU_T * ufl.div(gu) + 0.5 * ufl.dot(gu, gu) * weight - m
    S_m = dm_dt - NU_T * ufl.div(ufl.grad(m)) - ufl.div(m * gu * weight)
    return S_u, S_m


def time_problem():
    return MFGProblem(
        Domain([(0, 1), (0, 1)], "neumann"), NU_T, hamiltonian=Congestion(C, ALPHA),
        coupling=LocalCoupling("linear", 1.0),
        m0=lambda x, y: 1 + 0.5 * np.cos(PI * x) * np.cos(2 * PI * y), T=T,
        terminal_cost=lambda x, y: (0.5 * np.cos(PI * x) * np.cos(PI * y)
                                    + 0.3 * T * np.cos(2 * PI * x)),
        name="manufactured time-dependent",
    )


@pytest.mark.parametrize("degree, meshes", [(1, (4, 8, 16, 32)), (2, (3, 6, 12, 24))])
def test_time_dependent_orders(degree, meshes):
    from mfg_solvers.fem import FEMDiscretisation, rectangle_mesh

    nt = 2
    problem = time_problem()
    errors = {"uL2": [], "uH1": [], "mL2": [], "mH1": []}
    for n in meshes:
        disc = FEMDiscretisation(problem, rectangle_mesh([(0, 1), (0, 1)], n), nt,
                                 degree=degree, forcing=forcing_time)
        sol = solve_newton(disc, tol=1e-10, progress=False)
        assert sol.converged and sol.iterations <= 7
        U, M = disc.from_solution(sol)
        eu = disc.error_norms(U[0], lambda x: u_time(x, 0.0))
        em = disc.error_norms(M[nt], lambda x: m_time(x, T))
        for key, val in (("uL2", eu["L2"]), ("uH1", eu["H1"]), ("mL2", em["L2"]),
                         ("mH1", em["H1"])):
            errors[key].append(val)
    h = 1.0 / np.asarray(meshes)
    for key in ("uL2", "mL2"):
        assert fitted_order(h, errors[key]) == pytest.approx(degree + 1, abs=0.25), (key, errors)
    for key in ("uH1", "mH1"):
        assert fitted_order(h, errors[key]) == pytest.approx(degree, abs=0.15), (key, errors)


# -- order in time ------------------------------------------------------------------------------
def u_smooth(x, t):
    ufl = _ufl()
    return ufl.cos(PI * x[0]) * ufl.cos(PI * x[1]) * (0.5 + 0.3 * ufl.sin(2 * t))


def m_smooth(x, t):
    ufl = _ufl()
    return (1 + 0.5 * ufl.cos(PI * x[0]) * ufl.cos(2 * PI * x[1])
            + 0.2 * ufl.sin(3 * t) * ufl.cos(PI * x[0]) * ufl.cos(PI * x[1]))


def forcing_smooth(x, t_u, t_m):
    """The continuous forcing, with u taken at t^n and m at t^{n+1} (an O(dt) perturbation)."""
    ufl = _ufl()
    u, m = u_smooth(x, t_u), m_smooth(x, t_m)
    du_dt = ufl.cos(PI * x[0]) * ufl.cos(PI * x[1]) * 0.6 * ufl.cos(2 * t_u)
    dm_dt = 0.6 * ufl.cos(3 * t_m) * ufl.cos(PI * x[0]) * ufl.cos(PI * x[1])
    gu = ufl.grad(u)
    weight = (C + m) ** (-ALPHA)
    S_u = -du_dt - NU_T * ufl.div(gu) + 0.5 * ufl.dot(gu, gu) * weight - m
    S_m = dm_dt - NU_T * ufl.div(ufl.grad(m)) - ufl.div(m * gu * weight)
    return S_u, S_m


def test_first_order_in_time():
    """u, m smooth (not affine) in t: implicit Euler is first order in dt (P2 on a fine enough
    mesh that the spatial error is negligible)."""
    from mfg_solvers.fem import FEMDiscretisation, rectangle_mesh

    problem = MFGProblem(
        Domain([(0, 1), (0, 1)], "neumann"), NU_T, hamiltonian=Congestion(C, ALPHA),
        coupling=LocalCoupling("linear", 1.0),
        m0=lambda x, y: 1 + 0.5 * np.cos(PI * x) * np.cos(2 * PI * y), T=T,
        terminal_cost=lambda x, y: (np.cos(PI * x) * np.cos(PI * y)
                                    * (0.5 + 0.3 * np.sin(2 * T))),
        name="manufactured, smooth in time",
    )
    msh = rectangle_mesh([(0, 1), (0, 1)], 10)
    steps = (4, 8, 16, 32)
    eu, em = [], []
    for nt in steps:
        disc = FEMDiscretisation(problem, msh, nt, degree=2, forcing=forcing_smooth)
        sol = solve_newton(disc, tol=1e-10, progress=False)
        U, M = disc.from_solution(sol)
        eu.append(disc.error_norms(U[0], lambda x: u_smooth(x, 0.0))["L2"])
        em.append(disc.error_norms(M[nt], lambda x: m_smooth(x, T))["L2"])
    dt = T / np.asarray(steps)
    assert fitted_order(dt, eu) == pytest.approx(1.0, abs=0.15), eu
    assert fitted_order(dt, em) == pytest.approx(1.0, abs=0.15), em
