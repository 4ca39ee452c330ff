"""Drifts: feedback of a grid Solution (exact for quadratic u), time interpolation, and the
numba / callable / affine hooks giving the same dynamics."""

import numpy as np
import pytest
from numba import njit

from mfg_solvers.grid import Grid
from mfg_solvers.hamiltonians import PowerLaw
from mfg_solvers.particles import (
    AffineDrift,
    Box,
    CallableDrift,
    FeedbackDrift,
    GridDrift,
    NumbaDrift,
    gaussian_particles,
    grid_gradient,
    simulate,
    uniform_particles,
)
from mfg_solvers.results import Solution


def _solution(grid, u, t=None, m=None):
    m = np.ones_like(u) if m is None else m
    return Solution.from_arrays(u=u, m=m, axes=grid.axes, t=t)


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_feedback_of_half_x_squared_is_minus_x(dim):
    bounds = [(-2.0, 1.5), (-1.0, 3.0), (0.5, 2.0)][:dim]
    grid = Grid(bounds, (9, 7, 5)[:dim], "neumann")
    t = np.linspace(0.0, 1.0, 4)
    u1 = 0.5 * sum(c**2 for c in grid.coordinates())
    sol = _solution(grid, np.stack([u1] * t.size), t)
    fb = FeedbackDrift(sol, grid=grid)
    X = uniform_particles(500, bounds, seed=3)
    X[:3] = [b[0] for b in bounds]  # on the walls and corners too
    X[3:6] = [b[1] for b in bounds]
    for tt in (0.0, 0.37, 1.0):
        assert np.max(np.abs(fb(tt, X) + X)) < 1e-12


def test_feedback_is_linear_in_time_and_uses_the_hamiltonian():
    grid = Grid((-1.0, 1.0), 11, "neumann")
    t = np.linspace(0.0, 2.0, 5)
    a = 1.0 + 0.5 * t  # u = a(t) x^2 / 2: the feedback -a(t) x is linear in t between nodes
    u = a[:, None] * 0.5 * grid.axes[0][None, :] ** 2
    sol = _solution(grid, u, t)
    X = uniform_particles(200, [(-1.0, 1.0)], seed=1)
    fb = FeedbackDrift(sol, grid=grid)
    for tt in (0.1, 0.77, 1.9):
        assert np.max(np.abs(fb(tt, X) + (1.0 + 0.5 * tt) * X)) < 1e-12
    # power-law Hamiltonian: alpha = -|p|^{gamma-2} p with p = a x
    fbp = FeedbackDrift(sol, grid=grid, hamiltonian=PowerLaw(3.0))
    # between nodes the field -|p| p is interpolated, so compare on the nodes
    Xn = grid.axes[0][:, None]
    p = 1.5 * Xn
    assert np.max(np.abs(fbp(1.0, Xn) + np.abs(p) * p)) < 1e-12


def test_feedback_periodic_interpolation_second_order():
    # u = -cos(2 pi x) / (2 pi)^2 on the unit circle: feedback -u' = -sin(2 pi x) / (2 pi)
    X = uniform_particles(2000, [(0.0, 1.0)], seed=2)
    errs, hs = [], []
    for n in (16, 32, 64, 128):
        grid = Grid((0.0, 1.0), n, "periodic")
        u = -np.cos(2 * np.pi * grid.axes[0]) / (2 * np.pi) ** 2
        fb = FeedbackDrift(_solution(grid, u), boundary="periodic")
        exact = -np.sin(2 * np.pi * X) / (2 * np.pi)
        errs.append(np.max(np.abs(fb(0.0, X) - exact)))
        hs.append(grid.spacing[0])
    order = np.polyfit(np.log(hs), np.log(errs), 1)[0]
    assert abs(order - 2.0) < 0.15, (order, errs)


def test_grid_gradient_exact_for_quadratics():
    grid = Grid([(0.0, 1.0), (-1.0, 2.0)], (6, 8), ("neumann", "neumann"))
    x, y = grid.coordinates()
    u = 3 * x**2 - 2 * x * y + y**2 + x - 4
    g = grid_gradient(u, grid)
    assert np.max(np.abs(g[..., 0] - (6 * x - 2 * y + 1))) < 1e-12
    assert np.max(np.abs(g[..., 1] - (-2 * x + 2 * y))) < 1e-12


def test_feedback_needs_the_boundary():
    grid = Grid((-1.0, 1.0), 11, "neumann")
    sol = _solution(grid, 0.5 * grid.axes[0] ** 2)
    with pytest.raises(ValueError, match="boundary"):
        FeedbackDrift(sol)
    other = Grid((-1.0, 2.0), 11, "neumann")
    with pytest.raises(ValueError, match="does not match"):
        FeedbackDrift(sol, grid=other)
    with pytest.raises(TypeError, match="Hamiltonian"):
        FeedbackDrift(sol, grid=grid, hamiltonian="quadratic")
    # a time-dependent feedback cannot be used outside its time range
    sol_t = _solution(grid, np.stack([0.5 * grid.axes[0] ** 2] * 3), np.linspace(0, 1, 3))
    with pytest.raises(ValueError, match="only defined on"):
        simulate(np.zeros((10, 1)), T=2.0, n_steps=4, drift=FeedbackDrift(sol_t, grid=grid))


@njit(cache=True)
def _minus_x(t, x, out):
    for k in range(x.shape[0]):
        out[k] = -x[k]


def test_drift_hooks_give_the_same_trajectories():
    X0 = gaussian_particles(3000, [0.5, -0.5], 0.4, seed=4)
    kw = dict(T=1.0, n_steps=20, sigma=0.5, seed=9, box=Box([(-3, 3), (-3, 3)], "reflecting"))
    ref = simulate(X0, drift=AffineDrift(-1.0), **kw)
    numba_run = simulate(X0, drift=NumbaDrift(_minus_x), **kw)
    callable_run = simulate(X0, drift=CallableDrift(lambda t, X: -X), **kw)
    bare = simulate(X0, drift=[_minus_x], **kw)  # a bare numba function is accepted
    assert np.array_equal(ref.X, numba_run.X)
    assert np.array_equal(ref.X, callable_run.X)
    assert np.array_equal(ref.X, bare.X)
    # the grid feedback of u = |x|^2/2 drives the particles identically up to round-off
    grid = Grid([(-3, 3), (-3, 3)], (13, 13), "neumann")
    u = 0.5 * sum(c**2 for c in grid.coordinates())
    fb = FeedbackDrift(_solution(grid, np.stack([u, u]), np.array([0.0, 1.0])), grid=grid)
    fb_run = simulate(X0, drift=fb, **kw)
    assert np.max(np.abs(fb_run.X - ref.X)) < 1e-12


def test_grid_drift_validation():
    grid = Grid((0.0, 1.0), 5, "periodic")
    with pytest.raises(ValueError, match="expected"):
        GridDrift(grid, np.zeros((5,)))
    with pytest.raises(ValueError, match="increasing"):
        GridDrift(grid, np.zeros((2, 5, 1)), t=[1.0, 0.0])
    with pytest.raises(ValueError, match="NaN"):
        GridDrift(grid, np.full((5, 1), np.nan))
    with pytest.raises(TypeError, match="numba"):
        NumbaDrift(lambda t, x, out: None)
