"""Distances: exact 1-D Wasserstein, sliced W2, Sinkhorn (POT), Gaussian W2, KL on grids."""

import math

import numpy as np
import ot
import pytest
from scipy import stats

from mfg_solvers.grid import Grid
from mfg_solvers.metrics import (
    chamfer_distance,
    emd,
    gaussian_w2,
    kl_divergence,
    sinkhorn,
    sliced_wasserstein2,
    wasserstein1_densities_1d,
    wasserstein1_to_density,
    wasserstein_1d,
)

RNG = np.random.default_rng(0)


def test_wasserstein_1d_against_scipy_and_closed_forms():
    x, y = RNG.standard_normal(700), 0.5 + 2 * RNG.standard_normal(500)
    wx, wy = RNG.random(700), RNG.random(500)
    assert abs(wasserstein_1d(x, y) - stats.wasserstein_distance(x, y)) < 1e-12
    assert abs(wasserstein_1d(x, y, 1, wx, wy) - stats.wasserstein_distance(x, y, wx, wy)) < 1e-12
    assert abs(wasserstein_1d([0.0], [3.0], p=2) - 3.0) < 1e-15
    # a shift moves every quantile: W_p = shift for all p
    assert abs(wasserstein_1d(x, x + 0.7, p=2) - 0.7) < 1e-12
    assert abs(wasserstein_1d(x, x + 0.7, p=3) - 0.7) < 1e-12
    # W2 between equal-size samples is the sorted matching
    a, b = RNG.random(300), RNG.random(300)
    assert abs(wasserstein_1d(a, b, 2) - math.sqrt(np.mean((np.sort(a) - np.sort(b)) ** 2))) < 1e-12
    with pytest.raises(ValueError, match="p="):
        wasserstein_1d(a, b, 0.5)


def _brute_w1(x, m, grid, n=2_000_001):
    h = grid.spacing[0]
    lo, hi = min(x.min(), grid.axes[0][0] - h / 2), max(x.max(), grid.axes[0][-1] + h / 2)
    s = np.linspace(lo - 0.1, hi + 0.1, n)
    edges = np.concatenate([grid.axes[0] - h / 2, [grid.axes[0][-1] + h / 2]])
    G = np.interp(s, edges, np.concatenate([[0], np.cumsum(m) * h / (h * m.sum())]))
    F = np.searchsorted(np.sort(x), s, side="right") / x.size
    return np.sum(np.abs(F - G)) * (s[1] - s[0])


def test_w1_between_samples_and_grid_density():
    grid = Grid((-3.0, 3.0), 31, "neumann")
    m = np.exp(-grid.axes[0] ** 2)
    x = RNG.standard_normal(400) * 0.8
    w = wasserstein1_to_density(x, m, grid)
    assert abs(w - _brute_w1(x, m, grid)) < 2e-5
    # a point mass at a node against the density of its cell: h/4
    one = np.zeros(31)
    one[10] = 1.0
    assert abs(wasserstein1_to_density([grid.axes[0][10]], one, grid) - grid.spacing[0] / 4) < 1e-14


def test_w1_on_the_circle():
    grid = Grid((0.0, 1.0), 40, "periodic")
    m = 1.0 + 0.8 * np.cos(2 * np.pi * grid.axes[0])
    x = RNG.random(500)
    w = wasserstein1_to_density(x, m, grid)
    # rotating both by a whole number of cells leaves the circle distance unchanged
    k = 7
    w_rot = wasserstein1_to_density(np.mod(x + k / 40, 1.0), np.roll(m, k), grid)
    assert abs(w - w_rot) < 1e-10
    # and the circle distance is below the interval one
    assert w <= wasserstein1_to_density(x, m, Grid((0.0, 39 / 40), 40, "neumann")) + 1e-12
    # identical densities: zero; a density against its shifted copy by half a period of a cosine
    assert wasserstein1_densities_1d(m, m, grid) < 1e-14
    half = np.roll(m, 20)
    # W1 on the circle between 1 + a cos and its half-period shift is 2a/pi^2 * ... : check with
    # the brute-force minimum over the constant
    G1, G2 = np.cumsum(m) / m.sum(), np.cumsum(half) / half.sum()
    D = G1 - G2
    alphas = np.linspace(D.min(), D.max(), 20001)
    brute = min(np.mean(np.abs(D - a)) for a in alphas[::50])
    assert abs(wasserstein1_densities_1d(m, half, grid) - brute) < 2e-3


def test_w1_between_densities_shift():
    grid = Grid((0.0, 10.0), 101, "neumann")
    m = np.exp(-((grid.axes[0] - 4.0) ** 2))
    m2 = np.roll(m, 5)
    assert abs(wasserstein1_densities_1d(m, m2, grid) - 5 * grid.spacing[0]) < 1e-10


def test_sliced_w2():
    X = RNG.standard_normal((2000, 2))
    v = np.array([0.6, -0.8])
    # a translation projects to 1-D shifts: SW2^2 = mean over directions of (theta . v)^2
    sw = sliced_wasserstein2(X, X + v, n_projections=1000, seed=1)
    assert abs(sw - np.linalg.norm(v) / math.sqrt(2)) < 0.03
    assert sliced_wasserstein2(X, X, n_projections=16) < 1e-14
    assert sliced_wasserstein2(X, X + v, seed=3) == sliced_wasserstein2(X, X + v, seed=3)
    x1 = RNG.standard_normal((50, 1))
    assert abs(sliced_wasserstein2(x1, x1 + 2.0) - 2.0) < 1e-12


def test_sinkhorn_against_exact_ot():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((60, 2))
    Y = rng.standard_normal((50, 2)) + [1.0, 0.0]
    C = ot.dist(X, Y)
    exact = ot.emd2(np.full(60, 1 / 60), np.full(50, 1 / 50), C)
    coarse = sinkhorn(X, Y)  # the recommended eta = 0.05, 300 iterations, tol 1e-6
    fine = sinkhorn(X, Y, reg=0.02, max_iter=5000, tol=1e-9)
    # the entropic plan is feasible, so its cost is above the exact one, and tends to it
    assert exact <= fine.cost < coarse.cost < exact * 1.05
    assert fine.cost < exact * 1.01
    assert fine.marginal_error < 1e-6 and fine.reg == 0.02 and coarse.n_iter <= 300
    d = sinkhorn(X, Y, debiased=True)
    same = sinkhorn(X, X, debiased=True)
    assert d.divergence > 0.5 and abs(same.divergence) < 1e-10
    with pytest.raises(ValueError, match="reg"):
        sinkhorn(X, Y, reg=0.0)


def test_gaussian_w2():
    assert abs(gaussian_w2(0.0, 1.0, 2.0, 4.0) - math.sqrt(4 + 1)) < 1e-14
    for _ in range(5):
        A, B = RNG.standard_normal((3, 3)), RNG.standard_normal((3, 3))
        S1, S2 = A @ A.T + 0.1 * np.eye(3), B @ B.T + 0.1 * np.eye(3)
        m1, m2 = RNG.standard_normal(3), RNG.standard_normal(3)
        ref = float(ot.gaussian.bures_wasserstein_distance(m1, m2, S1, S2))
        assert abs(gaussian_w2(m1, S1, m2, S2) - ref) < 1e-9
    with pytest.raises(ValueError, match="positive semi-definite"):
        gaussian_w2([0, 0], np.diag([1.0, -1.0]), [0, 0], np.eye(2))


def test_kl_on_grids():
    grid = Grid((-8.0, 8.0), 1601, "neumann")
    x = grid.axes[0]
    m1, s1, m2, s2 = 0.3, 0.8, -0.2, 1.3
    p = np.exp(-((x - m1) ** 2) / (2 * s1**2))
    q = np.exp(-((x - m2) ** 2) / (2 * s2**2))
    exact = math.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5
    assert abs(kl_divergence(p, q, grid) - exact) < 1e-6
    assert abs(kl_divergence(p, p, grid)) < 1e-14
    q0 = q.copy()
    q0[800] = 0.0
    assert kl_divergence(p, q0, grid) == math.inf
    with pytest.raises(ValueError, match="shape"):
        kl_divergence(p[:-1], q, grid)
    with pytest.raises(ValueError, match=">= 0"):
        kl_divergence(-p, q, grid)


def test_point_cloud_distances():
    X = RNG.random((200, 3))
    v = np.array([0.0, 0.0, 0.01])
    assert chamfer_distance(X, X) == 0.0 and emd(X, X) == 0.0
    assert abs(emd(X, X + v) - 0.01) < 1e-12  # the translation is an optimal matching
    assert chamfer_distance(X, X + v) <= 2 * 0.01**2 + 1e-15
    with pytest.raises(ValueError, match="equal sizes"):
        emd(X, X[:10])
