"""Deposition (histogram, cloud in cell) and kernel density estimates."""

import math

import numba
import numpy as np
import pytest

from mfg_solvers.grid import Grid
from mfg_solvers.particles import (
    bandwidth,
    deposit,
    gaussian_particles,
    histogram,
    interpolate,
    kde,
    kde_at,
    uniform_particles,
)
from mfg_solvers.particles.density import deposit_masses, dual_cell_volumes


def test_cic_weights_of_single_particles():
    grid = Grid((0.0, 1.0), 5, "neumann")  # nodes 0, .25, .5, .75, 1
    masses, dropped = deposit_masses(np.array([[0.3], [1.0], [1.2]]), grid)
    assert dropped == 1
    assert np.allclose(masses, [0.0, 0.8, 0.2, 0.0, 1.0], atol=1e-14)
    per = Grid((0.0, 1.0), 4, "periodic")  # nodes 0, .25, .5, .75; 0.9 splits between .75 and 0
    masses, _ = deposit_masses(np.array([[0.9], [-0.1]]), per)
    assert np.allclose(masses, [0.6 + 0.6, 0.0, 0.0, 0.4 + 0.4], atol=1e-14)
    ngp, _ = deposit_masses(np.array([[0.3], [0.4]]), grid, method="ngp")
    assert np.allclose(ngp, [0, 1, 1, 0, 0])


def test_cic_is_exact_for_linear_densities():
    # weighted particles on a fine lattice sample rho(x, y) = 1 + x - y/2 on [0,1]^2; CIC node
    # values equal rho at the interior nodes and rho at the centroid of the half (quarter) cell,
    # h/3 inside, on the walls (to the lattice's quadrature error)
    n = 600
    c = (np.arange(n) + 0.5) / n
    x, y = np.meshgrid(c, c, indexing="ij")
    X = np.column_stack([x.ravel(), y.ravel()])
    rho = 1 + X[:, 0] - 0.5 * X[:, 1]
    grid = Grid([(0.0, 1.0), (0.0, 1.0)], (6, 5), "neumann")
    m = deposit(X, grid, weights=rho / n**2, normalise=False)
    gx, gy = grid.coordinates()
    shift = []
    for k, g in enumerate((gx, gy)):
        h = grid.spacing[k]
        shift.append(np.where(g == 0.0, h / 3, np.where(g == 1.0, -h / 3, 0.0)))
    assert np.max(np.abs(m - (1 + (gx + shift[0]) - 0.5 * (gy + shift[1])))) < 1e-5
    # the dual-cell masses add up to the particles' mass
    assert abs((m * dual_cell_volumes(grid)).sum() - rho.sum() / n**2) < 1e-12
    # normalised to the package convention h^d sum m = 1
    mn = deposit(X, grid, weights=rho)
    assert abs(grid.integrate(mn) - 1.0) < 1e-13


def test_histogram_and_cic_converge_to_the_density():
    X = gaussian_particles(400_000, [0.2], 0.3, seed=3)
    grid = Grid((-3.0, 3.0), 61, "neumann")
    exact = np.exp(-(grid.axes[0] - 0.2) ** 2 / 0.6) / math.sqrt(0.6 * math.pi)
    for m in (deposit(X, grid, normalise=False), histogram(X, grid, normalise=False)):
        # statistical error ~ sqrt(m / (N h)) ~ 4e-3 at the peak; NGP smoothing bias ~ h^2 m''/24
        assert np.max(np.abs(m - exact)) < 0.02
        assert abs(grid.integrate(m) - 1.0) < 0.02


def test_deposit_is_thread_independent():
    X = uniform_particles(300_000, [(0, 1), (0, 1)], seed=5)
    grid = Grid([(0, 1), (0, 1)], (50, 40), "periodic")
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        a = deposit(X, grid)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        b = deposit(X, grid)
    finally:
        numba.set_num_threads(old)
    assert np.array_equal(a, b)


def test_interpolate_is_exact_for_bilinear_fields():
    grid = Grid([(0.0, 2.0), (-1.0, 1.0)], (7, 9), "neumann")
    gx, gy = grid.coordinates()
    field = 2 + 3 * gx - gy + 0.5 * gx * gy
    X = uniform_particles(100, grid.bounds, seed=1)
    f = interpolate(X, grid, field)
    assert np.max(np.abs(f - (2 + 3 * X[:, 0] - X[:, 1] + 0.5 * X[:, 0] * X[:, 1]))) < 1e-12


def test_bandwidth_rules():
    X = gaussian_particles(100_000, [0.0], 4.0, seed=2)
    b = bandwidth(X)[0]
    assert abs(b / (1.0592 * 2.0 * 1e5 ** -0.2) - 1) < 0.02
    b2 = bandwidth(np.column_stack([X[:, 0], 0.5 * X[:, 0] + 1]), "scott")
    assert abs(b2[1] / b2[0] - 0.5) < 1e-12
    with pytest.raises(ValueError, match="rule"):
        bandwidth(X, "plugin")


def test_binned_kde_is_second_order_close_to_the_exact_kde():
    X = gaussian_particles(2000, [0.5], 0.0025, seed=4)  # kernels do not reach the seam
    assert 0.25 < X.min() and X.max() < 0.75
    errs, hs = [], []
    for n in (32, 64, 128, 256):
        grid = Grid((0.0, 1.0), n, "periodic")
        binned = kde(X, grid, bandwidth=0.05, normalise=False)
        exact = kde_at(X, grid.axes[0][:, None], bandwidth=0.05)
        errs.append(np.max(np.abs(binned - exact)))
        hs.append(grid.spacing[0])
    order = np.polyfit(np.log(hs), np.log(errs), 1)[0]
    assert abs(order - 2.0) < 0.2, (order, errs)


def test_kde_reflection_at_walls():
    X = uniform_particles(200_000, [(0.0, 1.0)], seed=8)
    grid = Grid((0.0, 1.0), 101, "neumann")
    refl = kde(X, grid, bandwidth=0.05, normalise=False)
    plain = kde(X, grid, bandwidth=0.05, reflect=False, normalise=False)
    assert np.max(np.abs(refl - 1.0)) < 0.03
    assert abs(plain[0] - 0.5) < 0.03 and abs(plain[50] - 1.0) < 0.03


def test_kde_converges_to_the_density_at_the_expected_rate():
    # Silverman's bandwidth: L2 error ~ N^{-2/5} for a Gaussian
    grid = Grid((-5.0, 5.0), 401, "neumann")
    exact = np.exp(-0.5 * grid.axes[0] ** 2) / math.sqrt(2 * math.pi)
    ns = [1000, 4000, 16000, 64000]
    errs = []
    for n in ns:
        e = []
        for seed in range(4):
            X = gaussian_particles(n, [0.0], 1.0, seed=seed)
            e.append(math.sqrt(grid.integrate((kde(X, grid) - exact) ** 2)))
        errs.append(np.mean(e))
    slope = np.polyfit(np.log(ns), np.log(errs), 1)[0]
    assert -0.55 < slope < -0.3, (slope, errs)


def test_density_errors():
    grid = Grid((0.0, 1.0), 5, "neumann")
    with pytest.raises(ValueError, match="NaN"):
        deposit(np.array([[0.5], [np.nan]]), grid)
    with pytest.raises(ValueError, match="dimension"):
        deposit(np.zeros((3, 2)), grid)
    with pytest.raises(ValueError, match="method"):
        deposit(np.zeros((3, 1)), grid, method="tsc")
    with pytest.raises(ValueError, match="no particle mass"):
        deposit(np.full((3, 1), 5.0), grid)
    with pytest.raises(ValueError, match="weights"):
        deposit(np.zeros((3, 1)), grid, weights=[1.0, -1.0, 1.0])
    with pytest.raises(ValueError, match="bandwidth"):
        kde(np.zeros((3, 1)) + [[0.1], [0.2], [0.3]], grid, bandwidth=-1.0)
