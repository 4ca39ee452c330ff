"""The 1-D McKean--Vlasov Fokker--Planck solver (its own convergence), and propagation of chaos
of a nonlocal interaction against it."""

import math

import numpy as np
import pytest

from mfg_solvers.grid import Grid
from mfg_solvers.particles import (
    Box,
    GaussianKernel,
    PairwiseInteraction,
    QuadraticKernel,
    gaussian_particles,
    simulate,
)
from mfg_solvers.particles.mckean_vlasov import solve_mv_fokker_planck


def test_fokker_planck_second_order_against_gaussian_mckean_vlasov():
    # dX = (-a X - k (X - E X)) dt + s dW: the law stays Gaussian with
    # mean mu0 e^{-a t}, variance v0 e^{-2(a+k)t} + s^2 (1 - e^{-2(a+k)t}) / (2(a+k))
    a, k, s, T, mu0, v0 = 1.0, 1.0, 0.8, 0.5, 1.0, 0.3
    lam = a + k
    mu = mu0 * math.exp(-a * T)
    v = v0 * math.exp(-2 * lam * T) + s**2 / (2 * lam) * (1 - math.exp(-2 * lam * T))
    errs, hs = [], []
    for n in (41, 81, 161, 321):
        grid = Grid((-5.0, 5.0), n, "neumann")
        x = grid.axes[0]
        res = solve_mv_fokker_planck(grid, lambda x: np.exp(-((x - mu0) ** 2) / (2 * v0)), T, s,
                                     QuadraticKernel(k), lambda t, x: -a * x)
        exact = np.exp(-((x - mu) ** 2) / (2 * v)) / math.sqrt(2 * math.pi * v)
        errs.append(grid.integrate(np.abs(res.m[-1] - exact)))
        hs.append(grid.spacing[0])
        assert abs(grid.integrate(res.m[-1]) - 1.0) < 1e-12
        assert res.m.min() >= 0.0
    order = np.polyfit(np.log(hs), np.log(errs), 1)[0]
    assert abs(order - 2.0) < 0.15, (order, errs)
    assert errs[-1] < 2e-3


def test_fokker_planck_periodic_self_convergence_and_drift_field():
    kern = GaussianKernel(-1.0, 0.5)
    L = 2 * np.pi

    def m0(x):
        return 1.0 + 0.5 * np.cos(x) + 0.2 * np.sin(2 * x)

    sols = {}
    for n in (32, 64, 128, 256):
        grid = Grid((0.0, L), n, "periodic")
        sols[n] = (grid, solve_mv_fokker_planck(grid, m0, 0.5, 0.6, kern, n_out=5))
    # differences of successive refinements (common nodes) fall by 4 per halving of h
    diffs = [np.max(np.abs(sols[n][1].m[-1] - sols[2 * n][1].m[-1][::2])) for n in (32, 64, 128)]
    rates = np.log2(np.array(diffs[:-1]) / np.array(diffs[1:]))
    assert np.all(np.abs(rates - 2.0) < 0.15), (rates, diffs)
    # the recorded drift is b(t, x, mu_t) = -(W' * mu_t)(x) on the nodes
    grid, res = sols[256]
    x = grid.axes[0]
    h = grid.spacing[0]
    d = (x[:, None] - x[None, :] + L / 2) % L - L / 2
    gradW = kern.gradient(d)[0]
    gradW[np.isclose(np.abs(d), L / 2)] = 0.0  # half a period: odd, both images equally near
    assert np.max(np.abs(res.drift[3] + h * gradW @ res.m[3])) < 1e-10
    drift = res.drift_field()
    assert np.max(np.abs(drift(res.t[3], x[:, None])[:, 0] - res.drift[3])) < 1e-12


def test_propagation_of_chaos_rate_one_over_n():
    """N particles with the direct interaction sum, and N McKean--Vlasov copies driven by the
    grid solution's drift, with the same initial points and Brownian increments:
    E|X - Y|^2 ~ C/N (Sznitman's synchronous coupling); fitted slope -1.

    The error of a cloud is mostly common to its particles (the fluctuation of its empirical
    measure), so the average is taken over 128 independent clouds at every N.
    """
    L, s, T, n_steps = 2 * np.pi, 0.5, 1.0, 20
    kern = GaussianKernel(-1.0, 0.5)  # attractive
    grid = Grid((0.0, L), 128, "periodic")

    def m0(x):
        return sum(np.exp(-((x - np.pi + r * L) ** 2) / (2 * 0.64)) for r in range(-3, 4))

    fp = solve_mv_fokker_planck(grid, m0, T, s, kern, n_out=n_steps)
    mv_drift = fp.drift_field()
    box = Box((0.0, L), "periodic")
    sizes = [16, 32, 64, 128, 256]
    mse = []
    for N in sizes:
        acc = []
        for rep in range(128):
            seed = 1000 * N + rep
            X0 = np.mod(gaussian_particles(N, [np.pi], 0.64, seed=seed), L)
            kw = dict(T=T, n_steps=n_steps, sigma=s, box=box, seed=seed)
            X = simulate(X0, interaction=PairwiseInteraction(kern, "direct"), **kw).X
            Y = simulate(X0, drift=mv_drift, **kw).X
            D = X - Y
            D -= L * np.round(D / L)
            acc.append(np.mean(D**2))
        mse.append(np.mean(acc))
    slope = np.polyfit(np.log(sizes), np.log(mse), 1)[0]
    assert abs(slope + 1.0) < 0.15, (slope, mse)
    n_mse = np.array(sizes) * np.array(mse)  # the constant C of C/N
    assert n_mse.max() < 1.5 * n_mse.min(), n_mse


def test_fokker_planck_input_errors():
    grid = Grid((0.0, 1.0), 16, "periodic")
    with pytest.raises(ValueError, match="1-D"):
        solve_mv_fokker_planck(Grid([(0, 1), (0, 1)], (4, 4)), np.ones((4, 4)), 1.0, 1.0)
    with pytest.raises(ValueError, match="sigma"):
        solve_mv_fokker_planck(grid, np.ones(16), 1.0, 0.0)
    with pytest.raises(ValueError, match="m0"):
        solve_mv_fokker_planck(grid, -np.ones(16), 1.0, 1.0)
    with pytest.raises(TypeError, match="Kernel"):
        solve_mv_fokker_planck(grid, np.ones(16), 1.0, 1.0, kernel=lambda r: r)
