"""Stationary (ergodic) closed forms on a large square: ergodic LQ case and log-Gaussian case.

Both exact solutions live on R^2; the square is large (5 standard deviations of the Gaussian
density to the nearest wall), so the effect of the reflecting walls is of the order of
exp(-L^2 / (2 sigma^2)) and the discretisation error dominates on these meshes. The value
function has a thin boundary layer at the walls (the exact u has a nonzero normal derivative
there), so u is compared inside the disc |x| < 2.5 sigma, up to a constant.
"""

from __future__ import annotations

import numpy as np

from mfg_solvers import Domain, LocalCoupling, MeanCoupling, MFGProblem
from mfg_solvers.coupling import solve_newton

from .conftest import fitted_order


def _ufl():
    from mfg_solvers.fem._backend import ufl

    return ufl


def gaussian(s2):
    def m(x):
        ufl = _ufl()
        return ufl.exp(-(x[0] ** 2 + x[1] ** 2) / (2 * s2)) / (2 * np.pi * s2)

    return m


def inner_disc(radius):
    def weight(x):
        ufl = _ufl()
        return ufl.conditional(ufl.lt(ufl.dot(x, x), radius**2), 1.0, 0.0)

    return weight


def test_ergodic_lq_mean_coupling(quiet_mass_warning):
    """ergodic LQ case: lambda - nu Lap u + |Du|^2/2 = q/2 |x - kappa xbar|^2 in 2-D, kappa != 1:
    u = sqrt(q)/2 |x|^2, lambda = 2 nu sqrt(q), m = N(0, nu/sqrt(q) I), xbar = 0. The square is
    not symmetric about 0, so the mean coupling (bordered Newton system) does real work."""
    from mfg_solvers.fem import FEMDiscretisation, rectangle_mesh

    nu, q, kappa = 0.5, 1.0, 0.5
    s2 = nu / np.sqrt(q)
    s = np.sqrt(s2)
    lam_exact = 2 * nu * np.sqrt(q)
    bounds = [(-5 * s, 6 * s), (-5 * s, 5 * s)]
    problem = MFGProblem(
        Domain(bounds, "neumann"), nu, coupling=MeanCoupling(q, kappa),
        m0=lambda x, y: np.exp(-((x - 1.0) ** 2 + y**2) / 2), ergodic=True, name="LQ ergodic",
    )
    meshes = (12, 16, 20, 24)
    err_m = []
    for n in meshes:
        disc = FEMDiscretisation(problem, rectangle_mesh(bounds, (int(1.1 * n), n)), degree=2)
        sol = solve_newton(disc, tol=1e-10, progress=False)
        assert sol.converged and sol.iterations <= 10
        U, M, lam = disc.from_solution(sol)
        xbar = disc.xk @ M
        assert abs(lam - lam_exact) < 1e-4
        assert np.all(np.abs(xbar) < 5e-4)
        eu = disc.error_norms(U, lambda x: 0.5 * np.sqrt(q) * (x[0] ** 2 + x[1] ** 2),
                              mean_zero=True, weight=inner_disc(2.5 * s))
        assert eu["L2"] < 1e-3
        err_m.append(disc.error_norms(M, gaussian(s2))["L2"])
    assert err_m[-1] < 1e-3
    assert fitted_order(1.0 / np.asarray(meshes), err_m) > 2.5


def test_ergodic_gaussian_log_coupling(quiet_mass_warning):
    """log-Gaussian case: lambda - nu Lap u + |Du|^2/2 = c/2 |x|^2 + alpha log m in 2-D:
    u = a/2 |x|^2, a = (-alpha + sqrt(alpha^2 + 4 c nu^2)) / (2 nu), m = N(0, nu/a I),
    lambda = 2 (nu a + alpha/2 log(a / (2 pi nu)))."""
    from mfg_solvers.fem import FEMDiscretisation, rectangle_mesh

    nu, c, alpha = 0.5, 1.0, 0.5
    a = (-alpha + np.sqrt(alpha**2 + 4 * c * nu**2)) / (2 * nu)
    s2 = nu / a
    s = np.sqrt(s2)
    lam_exact = 2 * (nu * a + 0.5 * alpha * np.log(a / (2 * np.pi * nu)))
    L = 5 * s
    bounds = [(-L, L), (-L, L)]
    problem = MFGProblem(
        Domain(bounds, "neumann"), nu, coupling=LocalCoupling("log", alpha),
        potential=lambda x, y: 0.5 * c * (x**2 + y**2),
        m0=lambda x, y: np.exp(-(x**2 + y**2) / 2), ergodic=True, name="Gaussian log",
    )
    meshes = (16, 20, 24, 32)
    err_m, err_lam = [], []
    for n in meshes:
        # the decoupled start (U = HJB(m0)) keeps the first Newton steps away from m <= 0; the
        # log of the far tails of m_h needs a finer cell quadrature than the default 2k
        disc = FEMDiscretisation(problem, rectangle_mesh(bounds, n), degree=2,
                                 initial="decoupled", quadrature_degree=6)
        sol = solve_newton(disc, tol=1e-10, progress=False)
        assert sol.converged and sol.iterations <= 10
        U, M, lam = disc.from_solution(sol)
        err_lam.append(abs(lam - lam_exact))
        err_m.append(disc.error_norms(M, gaussian(s2))["L2"])
        eu = disc.error_norms(U, lambda x: 0.5 * a * (x[0] ** 2 + x[1] ** 2), mean_zero=True,
                              weight=inner_disc(2.5 * s))
        assert eu["L2"] < 2e-3
        # positivity: any undershoot is far below the peak density 1/(2 pi s2)
        assert sol.attrs["min_density"] > -1e-6
    assert max(err_lam) < 5e-5
    assert err_m[-1] < 2e-4
    assert fitted_order(1.0 / np.asarray(meshes), err_m) > 2.5
