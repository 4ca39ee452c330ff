"""First-order convergence of the ACD scheme to the closed-form finite-horizon LQ MFG
(LQ check case): mean coupling, reflecting walls on [-4, 4], Godunov Hamiltonian, implicit
Euler, all-at-once Newton. The mean and variance of m(T) and u(0, .) up to a constant (on
|x - 1| < 1) are compared with mfg_solvers.analytic.lq_finite_horizon on >= 4 grids with
N_t proportional to N_x - 1, and the observed order is fitted in log-log."""

from __future__ import annotations

import numpy as np
import pytest

from mfg_solvers import Domain, Grid, MeanCoupling, MFGProblem, solve
from mfg_solvers.analytic import lq_finite_horizon

# LQ check case check case
Q, Q_T, KAPPA, KAPPA_T, SIGMA2, T, MEAN0, VAR0 = 2.0, 0.5, 0.6, 0.3, 0.36, 1.0, 1.0, 0.2
BOUNDS = (-4.0, 4.0)
EXACT = lq_finite_horizon(Q, Q_T, KAPPA, KAPPA_T, SIGMA2, T, MEAN0, VAR0)


def lq_problem() -> MFGProblem:
    def m0(x):
        return np.exp(-((x - MEAN0) ** 2) / (2 * VAR0)) / np.sqrt(2 * np.pi * VAR0)

    return MFGProblem(
        Domain(BOUNDS, "neumann"), nu=SIGMA2 / 2, coupling=MeanCoupling(Q, KAPPA),
        terminal_coupling=MeanCoupling(Q_T, KAPPA_T), T=T, m0=m0, name="LQ mean coupling",
    )


def lq_errors(nx: int, nt: int, method: str = "newton", tol: float = 1e-10) -> dict:
    grid = Grid(BOUNDS, nx, "neumann")
    sol = solve(lq_problem(), grid, nt, method=method, tol=tol, progress=False)
    assert sol.converged
    x = sol.axes[0]
    h = grid.spacing[0]
    mT = sol.m[-1]
    mass = h * mT.sum()
    mean = h * np.sum(x * mT)
    var = h * np.sum((x - mean) ** 2 * mT)
    near = np.abs(x - MEAN0) < 1.0
    diff = sol.u[0, near] - EXACT.value(0.0, x[near])
    return {
        "h": h,
        "mean": abs(mean - EXACT.mean_T),
        "var": abs(var - EXACT.var_T),
        # modulo the mean difference on the window (the reference's convention)
        "u0": np.abs(diff - diff.mean()).max(),
        "mass": abs(mass - 1.0),
        "min_m": float(sol.m.min()),
    }


def fitted_order(hs, errs) -> float:
    return float(np.polyfit(np.log(hs), np.log(errs), 1)[0])


def check_first_order(rows):
    hs = [r["h"] for r in rows]
    for key in ("mean", "var", "u0"):
        errs = [r[key] for r in rows]
        assert all(e2 < e1 for e1, e2 in zip(errs, errs[1:], strict=False)), (key, errs)
        order = fitted_order(hs, errs)
        assert order >= 0.9, (key, order, errs)
        assert order <= 1.3, (key, order, errs)  # first order, not a lucky cancellation
    for r in rows:
        assert r["mass"] < 1e-12
        assert r["min_m"] >= 0.0


# LQ check case table: N_x -> errors (mean, var, u0) at N_t = (N_x - 1) / 4
REFERENCE_TABLE = {
    101: (2.32e-2, 2.18e-2, 1.43e-2),
    201: (1.18e-2, 1.11e-2, 7.50e-3),
    401: (5.98e-3, 5.61e-3, 3.84e-3),
    801: (3.01e-3, 2.82e-3, 1.94e-3),
}


def test_lq_first_order_convergence_reference_table():
    """The grids of the reference's table: h = 0.08 .. 0.01, dt = T/25 .. T/200. The scheme is
    the same discrete scheme as the reference's (solved there by a damped fixed point), so the
    errors agree with its three-digit table to rounding."""
    rows = [lq_errors(nx, (nx - 1) // 4) for nx in REFERENCE_TABLE]
    check_first_order(rows)
    for r, (e_mean, e_var, e_u0) in zip(rows, REFERENCE_TABLE.values(), strict=True):
        assert r["mean"] == pytest.approx(e_mean, rel=0.01)
        assert r["var"] == pytest.approx(e_var, rel=0.01)
        assert r["u0"] == pytest.approx(e_u0, rel=0.01)


@pytest.mark.slow
def test_lq_first_order_convergence_fine():
    """N_x = 401 .. 3201 (h down to 0.0025). Newton stops at 1e-8: at h = 0.0025 the round-off
    floor of the residual (nu/h^2 * eps * |U|) is about 1e-10, far below the 4e-4 discretisation
    error."""
    rows = [lq_errors(nx, (nx - 1) // 4, tol=1e-8) for nx in (401, 801, 1601, 3201)]
    check_first_order(rows)
    assert rows[-1]["mean"] < 1e-3 and rows[-1]["var"] < 1e-3 and rows[-1]["u0"] < 1e-3


def _discrete_solution(nx, nt, method, **options):
    grid = Grid(BOUNDS, nx, "neumann")
    return solve(lq_problem(), grid, nt, method=method, progress=False, **options)


def test_policy_iteration_reaches_the_newton_solution():
    """Mean coupling is nonlocal and the terminal cost depends on m(T): a path of the solvers
    the periodic benchmark does not exercise. Policy iteration and Newton must give the same
    discrete solution."""
    ref = _discrete_solution(101, 25, "newton", tol=1e-11)
    pi = _discrete_solution(101, 25, "policy_iteration", tol=1e-11)
    assert np.abs(pi.u - ref.u).max() < 1e-9
    assert np.abs(pi.m - ref.m).max() < 1e-9


def test_damped_fixed_point_reaches_the_newton_solution():
    """Damped fixed point (theta = 0.5 on the mean path) converges in 48-49
    iterations to 1e-10 on this case, independent of the mesh."""
    ref = _discrete_solution(101, 25, "newton", tol=1e-11)
    fp = _discrete_solution(101, 25, "fixed_point", relaxation=0.5, tol=1e-10, max_iter=120)
    assert fp.iterations <= 60
    assert np.abs(fp.u - ref.u).max() < 1e-8
    assert np.abs(fp.m - ref.m).max() < 1e-8
