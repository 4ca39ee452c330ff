"""Finite N against the mean field: particles under the feedback of a grid Solution reproduce
its density, with a W1 error ~ N^(-1/2) (fitted exponent) down to the discretisation floor."""

import math
import warnings

import numpy as np
from scipy.integrate import solve_ivp
from scipy.stats import norm

from mfg_solvers.grid import Grid
from mfg_solvers.metrics import wasserstein1_to_density
from mfg_solvers.particles import FeedbackDrift, gaussian_particles, simulate
from mfg_solvers.results import Solution

# LQ MFG of the numerics reference (section 10.1) with kappa = kappa_T = 0: u = P(t) x^2 / 2,
# feedback -P(t) x, Gaussian density with mean' = -P mean, var' = -2 P var + sigma^2.
Q, QT, T, SIG2, X0, V0 = 2.0, 0.5, 1.0, 0.36, 1.0, 0.2


def riccati(t):
    sq = math.sqrt(Q)
    th = np.tanh(sq * (T - t))
    return sq * (QT + sq * th) / (sq + QT * th)


def lq_solution(grid, nt):
    t = np.linspace(0.0, T, nt + 1)
    ode = solve_ivp(lambda s, y: [-riccati(s) * y[0], -2 * riccati(s) * y[1] + SIG2], (0, T),
                    [X0, V0], t_eval=t, rtol=1e-12, atol=1e-14)
    mean, var = ode.y
    x = grid.axes[0]
    u = 0.5 * riccati(t)[:, None] * x[None, :] ** 2
    m = np.exp(-((x[None, :] - mean[:, None]) ** 2) / (2 * var[:, None]))
    m /= grid.integrate(m)[:, None]
    return Solution.from_arrays(u=u, m=m, axes=grid.axes, t=t), mean, var


def test_riccati_closed_form_matches_the_reference_values():
    # check values of the reference (q=2, q_T=0.5, T=1): P(T) = q_T and P solves P' = P^2 - q
    assert abs(riccati(T) - QT) < 1e-14
    t = np.linspace(0, T, 11)
    eps = 1e-6
    dP = (riccati(t + eps) - riccati(t - eps)) / (2 * eps)
    assert np.max(np.abs(dP - (riccati(t) ** 2 - Q))) < 1e-7


def test_particles_reproduce_the_grid_density_with_w1_rate_one_half():
    grid = Grid((-3.0, 5.0), 201, "neumann")
    sol, mean, var = lq_solution(grid, 200)
    drift = FeedbackDrift(sol, grid=grid)
    sizes = [100, 400, 1600, 6400]
    w1 = []
    for N in sizes:
        vals = []
        for rep in range(8):
            start = gaussian_particles(N, [X0], V0, seed=1000 * rep + N)
            run = simulate(start, T=T, n_steps=200, sigma=math.sqrt(SIG2), drift=drift, box=grid,
                           seed=rep)
            vals.append(wasserstein1_to_density(run.X[:, 0], sol.m[-1], grid))
        w1.append(np.mean(vals))
    slope = np.polyfit(np.log(sizes), np.log(w1), 1)[0]
    assert abs(slope + 0.5) < 0.15, (slope, w1)
    # the size is that of i.i.d. sampling: E W1 ~ sqrt(2/(pi N)) int sqrt(F(1-F)) dx for large N
    z = np.linspace(-10, 10, 20001)
    F = norm.cdf(z)
    c = math.sqrt(2 / math.pi) * np.sum(np.sqrt(F * (1 - F))) * (z[1] - z[0])  # ~1.36
    ratio = np.array(w1) * np.sqrt(sizes) / (c * math.sqrt(var[-1]))
    assert np.all(np.abs(ratio - 1.0) < 0.25), ratio



def test_particles_under_the_fd_solution_feedback():
    """The same LQ game solved by the finite-difference solver: particles driven by its feedback
    approach its density m(T) like N^(-1/2) until the floor set by the scheme's own (first-order)
    error; against the exact Gaussian they end below that floor."""
    from mfg_solvers import Domain, MassNormalisationWarning, MeanCoupling, MFGProblem, solve
    from mfg_solvers.metrics import wasserstein1_densities_1d

    domain = Domain((-3.0, 5.0), "neumann")
    problem = MFGProblem(domain, SIG2 / 2, coupling=MeanCoupling(Q, 0.0), T=T,
                         m0=lambda x: np.exp(-((x - X0) ** 2) / (2 * V0)),
                         terminal_cost=lambda x: 0.5 * QT * x**2)
    grid = domain.grid(161)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MassNormalisationWarning)
        fd = solve(problem, grid, 80)
    assert fd.converged
    exact_sol, mean, var = lq_solution(grid, 80)
    exact_mT = exact_sol.m[-1]
    fd_error = wasserstein1_densities_1d(fd.m[-1], exact_mT, grid)
    drift = FeedbackDrift(fd, grid=grid)

    def w1(N, reps, target):
        vals = []
        for rep in range(reps):
            start = gaussian_particles(N, [X0], V0, seed=1000 * rep + N)
            run = simulate(start, T=T, n_steps=80, sigma=math.sqrt(SIG2), drift=drift, box=grid,
                           seed=rep)
            vals.append(wasserstein1_to_density(run.X[:, 0], target, grid))
        return float(np.mean(vals))

    sizes = [8, 32, 128, 512]
    errs = [w1(N, 16, fd.m[-1]) for N in sizes]
    slope = np.polyfit(np.log(sizes), np.log(errs), 1)[0]
    assert -0.65 < slope < -0.35, (slope, errs)
    floor = w1(25_600, 2, fd.m[-1])
    assert 0.5 * fd_error < floor < 2.0 * fd_error, (floor, fd_error)
    # the particles see the continuous dynamics of the FD feedback: closer to the truth than the
    # FD density itself
    assert w1(25_600, 2, exact_mT) < 0.75 * fd_error
