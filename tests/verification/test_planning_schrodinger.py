"""The Hopf–Cole planning solver against closed-form bridges.

References: the guided harmonic bridge from a Dirac start with constant stiffness and a Gaussian
target (Mehler-kernel coefficients and the Gaussian-mixture drift and marginal of
mfg_solvers.analytic.mfpid; docs/mfpid.md, section "Closed forms"; M. Chertkov, arXiv:2605.00007)
and the Gaussian Schrödinger bridge (H. Janati, B. Muzellec, G. Peyré, M. Cuturi, NeurIPS 2020,
arXiv:2006.02572; C. Bunne, Y.-P. Hsieh, M. Cuturi, A. Krause, arXiv:2202.05722).
"""

import numpy as np
import pytest

from mfg_solvers.errors import ConvergenceError
from mfg_solvers.fd.planning import dirac_density, solve_mean_field_planning, solve_planning
from mfg_solvers.grid import Grid

BETA, GUIDE, M_TAR, V_TAR = 4.0, 0.7, 1.2, 0.09
OMEGA = np.sqrt(BETA)


def _bridge_moments(t):
    """Mean and variance of the Dirac-start bridge marginal: B_t m + c_t and B_t^2 v + s_t^2."""
    w = OMEGA
    ap, am = w / np.tanh(w * t), w / np.tanh(w * (1 - t))
    bm = w / np.sinh(w * (1 - t))
    thp, thx = GUIDE * w * np.tanh(w * t / 2), GUIDE * w * np.tanh(w * (1 - t) / 2)
    B, c, s2 = bm / (ap + am), (thp + thx) / (ap + am), 1 / (ap + am)
    return B * M_TAR + c, B**2 * V_TAR + s2


def _bridge_drift(t, x):
    """u*(t, x) = -a^- x + theta_x + b^- y_hat (Gaussian-mixture drift, one component)."""
    w = OMEGA
    ap1, am = w / np.tanh(w), w / np.tanh(w * (1 - t))
    bm = w / np.sinh(w * (1 - t))
    thx, thp1 = GUIDE * (am - bm), GUIDE * w * np.tanh(w / 2)
    K = am - ap1
    mu = bm / K * x + (thx - thp1) / K
    y_hat = (M_TAR + K * V_TAR * mu) / (1 + K * V_TAR)
    return -am * x + thx + bm * y_hat


def _solve_harmonic(n):
    grid = Grid((-4.0, 4.0), n, "neumann")
    nt = (n - 1) // 2
    sol = solve_planning(
        grid, nt, dirac_density(grid, 0.0), lambda x: np.exp(-((x - M_TAR) ** 2) / (2 * V_TAR)),
        potential=lambda t, x: 0.5 * BETA * (x - GUIDE) ** 2,
    )
    return grid, nt, sol


def _fit_order(h, e):
    return np.polyfit(np.log(h), np.log(e), 1)[0]


def test_dirac_start_bridge_density_and_drift_converge_first_order():
    sizes = [81, 161, 321, 641]
    dens, drift, hs = [], [], []
    for n in sizes:
        grid, nt, sol = _solve_harmonic(n)
        assert sol.iterations == 1  # a point-mass start fixes the forward factor: one sweep
        np.testing.assert_allclose(sol.mass(), 1.0, atol=1e-12)
        assert sol.m.min() >= 0.0
        x = grid.axes[0]
        ed, eu = [], []
        for t in (0.25, 0.5, 0.75):
            k = round(t * nt)
            mean, var = _bridge_moments(t)
            exact = np.exp(-((x - mean) ** 2) / (2 * var)) / np.sqrt(2 * np.pi * var)
            ed.append(np.abs(sol.m[k] - exact).max())
            core = np.abs(x - mean) < 3 * np.sqrt(var)
            eu.append(np.abs(sol.control[k][:, 0] - _bridge_drift(t, x))[core].max())
        dens.append(max(ed))
        drift.append(max(eu))
        hs.append(grid.spacing[0])
    assert dens[-1] < 5e-3 and drift[-1] < 0.07
    assert _fit_order(hs, dens) > 0.9
    assert _fit_order(hs, drift) > 0.85


def test_brownian_bridge_limit():
    """beta = 0: x_t = t y + sqrt(t (1 - t)) xi (Föllmer bridge)."""
    grid = Grid((-3.0, 4.0), 561, "neumann")
    sol = solve_planning(grid, 280, dirac_density(grid, 0.0),
                         lambda x: np.exp(-((x - 1.0) ** 2) / (2 * 0.25)))
    x = grid.axes[0]
    k = 140  # t = 0.5
    mean, var = 0.5, 0.25 * 0.25 + 0.25
    assert grid.integrate(x * sol.m[k]) == pytest.approx(mean, abs=3e-3)
    assert grid.integrate((x - mean) ** 2 * sol.m[k]) == pytest.approx(var, abs=3e-3)


def test_gaussian_schrodinger_bridge_by_ipf():
    """Two Gaussian marginals, V = 0: the Fortet/IPF iteration reproduces the closed-form
    Gaussian Schrödinger bridge (Janati et al. 2020; Bunne et al. 2022)."""
    eps = 1.0  # reference dX = sqrt(eps) dW, i.e. viscosity eps / 2
    a, A, b, B = -1.0, 0.3, 1.5, 0.5
    C = 0.5 * (np.sqrt(4 * A * B + eps**2) - eps)
    grid = Grid((-6.0, 7.0), 521, "neumann")
    sol = solve_planning(
        grid, 200, lambda x: np.exp(-((x - a) ** 2) / (2 * A)),
        lambda x: np.exp(-((x - b) ** 2) / (2 * B)), viscosity=eps / 2, tol=1e-10,
    )
    assert sol.converged and 2 < sol.iterations < 200
    x = grid.axes[0]
    for t in (0.25, 0.5, 0.75):
        k = round(t * 200)
        mean = (1 - t) * a + t * b
        var = (1 - t) ** 2 * A + t**2 * B + t * (1 - t) * (2 * C + eps)
        assert grid.integrate(x * sol.m[k]) == pytest.approx(mean, abs=1e-2)
        assert grid.integrate((x - mean) ** 2 * sol.m[k]) == pytest.approx(var, abs=1e-2)
    # both marginals are matched: m_T exactly, m_0 to the IPF tolerance
    m0 = np.exp(-((x - a) ** 2) / (2 * A))
    mT = np.exp(-((x - b) ** 2) / (2 * B))
    assert grid.integrate(np.abs(sol.m[-1] - mT / grid.integrate(mT))) < 1e-13
    assert grid.integrate(np.abs(sol.m[0] - m0 / grid.integrate(m0))) < 1e-10
    assert sol.residual_history[-1] < 1e-10


def test_two_dimensional_separable_bridge_matches_one_dimensional():
    """Separable 2-D problem: m2(t, x, y) -> m1(t, x) m1(t, y).

    Implicit Euler in 2-D is not the product of 1-D implicit steps (they differ by O(dt^2) per
    step), so the gap is O(dt): it must halve when the grids are refined.
    """
    target = lambda x: np.exp(-((x - M_TAR) ** 2) / (2 * V_TAR))  # noqa: E731
    V = lambda t, x: 0.5 * BETA * (x - GUIDE) ** 2  # noqa: E731
    gaps = []
    for n in (41, 81):
        nt = (n - 1) // 2
        g1 = Grid((-4.0, 4.0), n, "neumann")
        g2 = Grid([(-4.0, 4.0), (-4.0, 4.0)], (n, n), "neumann")
        s1 = solve_planning(g1, nt, dirac_density(g1, 0.0), target, potential=V)
        s2 = solve_planning(
            g2, nt, dirac_density(g2, (0.0, 0.0)), lambda x, y: target(x) * target(y),
            potential=lambda t, x, y: V(t, x) + V(t, y),
        )
        np.testing.assert_allclose(s2.mass(), 1.0, atol=1e-12)
        k = nt // 2
        gaps.append(np.abs(s2.m[k] - np.outer(s1.m[k], s1.m[k])).max())
    assert gaps[1] < 0.6 * gaps[0]
    assert gaps[1] < 0.05


def test_bad_input():
    grid = Grid((-1.0, 1.0), 21, "neumann")
    with pytest.raises(ValueError, match="not a node"):
        dirac_density(grid, 0.033)
    with pytest.raises(ValueError, match="viscosity"):
        solve_planning(grid, 10, lambda x: 1 + 0 * x, lambda x: 1 + 0 * x, viscosity=0.0)
    with pytest.raises(ValueError, match="mT"):
        solve_planning(grid, 10, lambda x: 1 + 0 * x, -np.ones(21))
    with pytest.raises(ValueError, match="m0 has shape"):
        solve_planning(grid, 10, np.ones(5), lambda x: 1 + 0 * x)
    with pytest.raises(ConvergenceError) as info:
        solve_planning(grid, 10, lambda x: np.exp(-x**2), lambda x: np.exp(-(x - 0.5) ** 2),
                       viscosity=0.01, max_iter=2, tol=1e-14)
    assert info.value.solution is not None and not info.value.solution.converged


def _geometric_stiffness(t):
    """MF-PID demand-response protocol: beta_i = 12 * 0.65**i on 8 equal intervals."""
    return 12.0 * 0.65 ** min(int(t * 8), 7)


def test_mean_field_guidance_on_the_grid_is_the_straight_line():
    """Linear-guidance theorem of MF-PID: the self-consistent mean path is a straight line.

    On the grid the deviation is a discretisation error: it must fall at first order.
    """
    target = lambda x: (0.6 * np.exp(-(x**2) / 0.08) / 0.2  # noqa: E731
                        + 0.4 * np.exp(-((x - 1.5) ** 2) / 0.18) / 0.3)
    devs = []
    for n in (81, 161):
        grid = Grid((-3.0, 5.0), n, "neumann")
        nt = (n - 1) // 2
        sol = solve_mean_field_planning(grid, nt, dirac_density(grid, 2.0), target,
                                        _geometric_stiffness, relaxation=1.0, tol=1e-10)
        assert sol.converged
        mean = sol.dataset["mean"].values[:, 0]
        line = 2.0 + (0.6 - 2.0) * sol.t
        np.testing.assert_allclose(mean[[0, -1]], [2.0, 0.6], atol=1e-12)
        devs.append(np.abs(mean - line).max())
    assert devs[1] < 0.55 * devs[0] and devs[1] < 0.01


def test_lqg_on_the_grid_matches_closed_form():
    """LQG benchmark of MF-PID: OU agents, Dirac start, Gaussian target, MF guidance."""
    kappa, q, m_tar, s_tar = 0.6, 12.0, 2.0, 0.5
    D = np.sqrt(kappa**2 + q)
    e = np.exp(-2 * D)
    rho = (2 * D * s_tar**2 + e - 1) / (2 * D * s_tar**2 * e + e - 1)

    def variance(t):
        return (1 - rho * np.exp(2 * D * (t - 1))) * (1 - np.exp(-2 * D * t)) / (2 * D * (1 - rho * e))

    errors = []
    for n in (81, 161):
        grid = Grid((-3.0, 5.0), n, "neumann")
        nt = (n - 1) // 2
        sol = solve_mean_field_planning(
            grid, nt, dirac_density(grid, 0.0), lambda x: np.exp(-((x - m_tar) ** 2) / (2 * s_tar**2)),
            lambda t: q, drift=lambda t, x: (-kappa * x,), relaxation=1.0, tol=1e-10,
        )
        x = grid.axes[0]
        err = 0.0
        for t in (0.25, 0.5, 0.75):
            k = round(t * nt)
            mu = grid.integrate(x * sol.m[k])
            var = grid.integrate((x - mu) ** 2 * sol.m[k])
            err = max(err, abs(mu - m_tar * np.sinh(kappa * t) / np.sinh(kappa)),
                      abs(var - variance(t)))
        errors.append(err)
    assert errors[1] < 0.6 * errors[0] and errors[1] < 0.02
