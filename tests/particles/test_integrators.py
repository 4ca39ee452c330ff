"""Integrators against closed forms: OU moments, weak order of Euler--Maruyama on a linear
McKean--Vlasov model, strong order of Milstein, and the three kinds of boundary."""

import math

import numpy as np
import pytest
from numba import njit

from mfg_solvers.particles import (
    AffineDrift,
    Box,
    QuadraticInteraction,
    StateDiffusion,
    gaussian_particles,
    simulate,
    standard_normals,
)
from mfg_solvers.particles.exact import interval_survival, linear_mv_moments


def fit_order(h, err):
    return float(np.polyfit(np.log(h), np.log(err), 1)[0])


# -- Ornstein--Uhlenbeck ------------------------------------------------------------------------
A2 = np.array([[-1.0, 0.5], [-0.3, -0.8]])
C2 = np.array([0.2, -0.1])
L2 = np.array([[0.6, 0.0], [0.3, 0.4]])
M0 = np.array([1.0, -0.5])
S0 = np.array([[0.3, 0.05], [0.05, 0.2]])


def _moment_bounds(ref, n, X):
    """Five standard errors on the sample mean and covariance of n iid rows."""
    var = np.diag(ref["cov_particle"])
    se_mean = 5 * np.sqrt(var / n)
    se_cov = 5 * np.sqrt((var[:, None] * var[None, :] + ref["cov_particle"] ** 2) / n)
    return se_mean, se_cov


def test_exact_ou_step_is_exact_for_any_dt():
    n = 100_000
    X0 = gaussian_particles(n, M0, S0, seed=1)
    for n_steps in (1, 3):
        run = simulate(X0, T=2.0, n_steps=n_steps, sigma=L2, drift=AffineDrift(A2, C2),
                       scheme="exact", seed=5)
        ref = linear_mv_moments(2.0, M0, S0, A2, 0.0, C2, L2)
        se_mean, se_cov = _moment_bounds(ref, n, run.X)
        assert np.all(np.abs(run.mean[-1] - ref["mean"]) < se_mean)
        assert np.all(np.abs(run.cov[-1] - ref["cov_particle"]) < se_cov)


def test_euler_ou_moments_match_the_euler_recursion():
    # Euler--Maruyama with a coarse step has a visible bias; its moments follow the discrete
    # recursion exactly, which the sample must reproduce within its standard error.
    n = 100_000
    X0 = gaussian_particles(n, M0, S0, seed=2)
    run = simulate(X0, T=2.0, n_steps=8, sigma=L2, drift=AffineDrift(A2, C2), seed=6)
    ref = linear_mv_moments(2.0, M0, S0, A2, 0.0, C2, L2, scheme="euler", n_steps=8)
    exact = linear_mv_moments(2.0, M0, S0, A2, 0.0, C2, L2)
    se_mean, se_cov = _moment_bounds(ref, n, run.X)
    assert np.all(np.abs(run.mean[-1] - ref["mean"]) < se_mean)
    assert np.all(np.abs(run.cov[-1] - ref["cov_particle"]) < se_cov)
    # and the bias is real: the exact covariance is further than the noise
    assert np.max(np.abs(ref["cov_particle"] - exact["cov_particle"])) > 3 * np.max(se_cov)


# -- weak order 1 on the linear McKean--Vlasov (LQ) model ---------------------------------------
def test_euler_weak_order_one_on_linear_mckean_vlasov():
    """dX = (-a X - k (X - mean) + c) dt + s dW, N = 1e5: weak errors of the mean and of the
    empirical variance at T.

    The Euler iterates are coupled to the exact N-particle transition driven by the same normals,
    so the difference of the two sample statistics estimates the weak error with a standard error
    O(dt / sqrt(N)); the exact transition is itself checked against the closed form.
    """
    a, k, c, s, T = 1.0, 1.5, 0.5, 0.7, 1.0
    m0, S0_ = 1.0, 0.05
    n = 100_000
    X0 = gaussian_particles(n, [m0], S0_, seed=3)
    kw = dict(T=T, sigma=s, drift=AffineDrift(-a, c), interaction=QuadraticInteraction(k),
              seed=17)
    A, B = -a - k, k
    exact = linear_mv_moments(T, [m0], S0_, A, B, c, s, N=n)
    steps = [8, 16, 32, 64, 128]
    err_mean, err_var, pred_mean, pred_var = [], [], [], []
    for ns in steps:
        em = simulate(X0, n_steps=ns, scheme="euler", **kw)
        ex = simulate(X0, n_steps=ns, scheme="exact", **kw)
        err_mean.append(em.mean[-1][0] - ex.mean[-1][0])
        err_var.append(em.cov[-1][0, 0] - ex.cov[-1][0, 0])
        ref = linear_mv_moments(T, [m0], S0_, A, B, c, s, N=n, scheme="euler", n_steps=ns)
        pred_mean.append(ref["mean"][0] - exact["mean"][0])
        pred_var.append(ref["cov_empirical"][0, 0] - exact["cov_empirical"][0, 0])
        # the exact transition reproduces the closed form (empirical mean ~ N(m, cov_mean))
        assert abs(ex.mean[-1][0] - exact["mean"][0]) < 5 * math.sqrt(exact["cov_mean"][0, 0])
        v = exact["cov_empirical"][0, 0]
        assert abs(ex.cov[-1][0, 0] - v) < 5 * v * math.sqrt(2.0 / n)
    h = T / np.array(steps)
    for err, pred in ((err_mean, pred_mean), (err_var, pred_var)):
        err, pred = np.array(err), np.array(pred)
        assert np.all(np.abs(err - pred) < 0.05 * np.abs(pred)), (err, pred)
        order = fit_order(h, np.abs(err))
        assert abs(order - 1.0) < 0.1, (order, err)


# -- Milstein: strong order 1 for geometric Brownian motion -------------------------------------
MU, SG = 0.1, 0.8


@njit(cache=True)
def _gbm_sigma(t, x, out):
    out[0] = SG * x[0]


@njit(cache=True)
def _gbm_dsigma(t, x, out):
    out[0] = SG


def _strong_errors(scheme, diffusion, steps, n=20_000, T=1.0, seed=8):
    errs = []
    for ns in steps:
        dt = T / ns
        X0 = np.ones((n, 1))
        run = simulate(X0, T=T, n_steps=ns, sigma=diffusion, drift=AffineDrift(MU),
                       scheme=scheme, seed=seed)
        W = np.zeros(n)
        for step in range(ns):
            W += math.sqrt(dt) * standard_normals(seed, n, 1, step)[:, 0]
        exact = np.exp((MU - 0.5 * SG**2) * T + SG * W)
        errs.append(np.mean(np.abs(run.X[:, 0] - exact)))
    return np.array(errs)


def test_milstein_strong_order_one_and_euler_one_half():
    steps = [8, 16, 32, 64, 128]
    h = 1.0 / np.array(steps)
    e_mil = _strong_errors("milstein", StateDiffusion(_gbm_sigma, _gbm_dsigma), steps)
    e_em = _strong_errors(
        "euler", StateDiffusion(lambda t, X: SG * X, lambda t, X: np.full_like(X, SG)), steps
    )
    p_mil = fit_order(h, e_mil)
    p_em = fit_order(h, e_em)
    assert abs(p_mil - 1.0) < 0.15, (p_mil, e_mil)
    assert abs(p_em - 0.5) < 0.15, (p_em, e_em)
    assert e_mil[-1] < 0.2 * e_em[-1]


# -- boundaries -----------------------------------------------------------------------------
def test_periodic_wrap_against_heat_kernel():
    # E cos(2 pi X_T) for Brownian motion on the unit circle from x0: cos(2 pi x0) e^{-2 pi^2 s^2 T}
    n, s, T, x0 = 100_000, 0.3, 1.0, 0.3
    run = simulate(np.full((n, 1), x0), T=T, n_steps=20, sigma=s, box=Box((0.0, 1.0), "periodic"),
                   seed=4)
    assert run.X.min() >= 0.0 and run.X.max() < 1.0
    est = np.mean(np.cos(2 * np.pi * run.X[:, 0]))
    exact = math.cos(2 * math.pi * x0) * math.exp(-2 * math.pi**2 * s**2 * T)
    assert abs(est - exact) < 5 / math.sqrt(2 * n)


def test_reflecting_wall_against_neumann_eigenfunction():
    # reflected Brownian motion on [0, 1]: E cos(pi X_T) = cos(pi x0) e^{-pi^2 s^2 T / 2}
    n, s, T, x0 = 100_000, 0.5, 0.5, 0.15
    run = simulate(np.full((n, 1), x0), T=T, n_steps=100, sigma=s,
                   box=Box((0.0, 1.0), "reflecting"), seed=5)
    assert run.X.min() >= 0.0 and run.X.max() <= 1.0
    est = np.mean(np.cos(np.pi * run.X[:, 0]))
    exact = math.cos(math.pi * x0) * math.exp(-(math.pi * s) ** 2 * T / 2)
    assert abs(est - exact) < 5 / math.sqrt(2 * n) + 2e-3
    assert np.all(run.alive) and run.mass[-1] == 1.0


def test_absorbing_walls_with_and_without_bridge_test():
    n, s, T, x0, L = 200_000, 1.0, 0.1, 0.3, 1.0
    exact = interval_survival(x0, L, s, T)
    X0 = np.full((n, 1), x0)
    box = Box((0.0, L), "absorbing")
    bridged = simulate(X0, T=T, n_steps=10, sigma=s, box=box, seed=6, exit_bridge=True)
    plain = simulate(X0, T=T, n_steps=10, sigma=s, box=box, seed=6, exit_bridge=False)
    se = math.sqrt(exact * (1 - exact) / n)
    assert abs(bridged.mass[-1] - exact) < 5 * se
    assert plain.mass[-1] - exact > 10 * se  # the plain scheme misses excursions
    dead = ~bridged.alive
    assert np.all(np.isfinite(bridged.exit_time[dead]))
    assert np.all(np.isnan(bridged.exit_time[~dead]))
    assert np.all((bridged.X[:, 0] >= 0.0) & (bridged.X[:, 0] <= L))
    # the exit-time law: P(tau <= T/2) from the recorded exit times
    half = np.mean(bridged.exit_time[dead] <= T / 2 + 1e-12) * dead.mean()
    assert abs(half - (1 - interval_survival(x0, L, s, T / 2))) < 5 * se


@pytest.mark.slow
def test_exit_probability_weak_orders():
    n, s, T, x0, L = 1_000_000, 1.0, 0.1, 0.3, 1.0
    exact = interval_survival(x0, L, s, T)
    X0 = np.full((n, 1), x0)
    box = Box((0.0, L), "absorbing")
    steps = [4, 8, 16, 32]
    e_plain = [simulate(X0, T=T, n_steps=m, sigma=s, box=box, seed=7, exit_bridge=False).mass[-1]
               - exact for m in steps]
    p = fit_order(T / np.array(steps), np.abs(e_plain))
    assert abs(p - 0.5) < 0.15, (p, e_plain)


def test_callback_recording_and_interrupt():
    X0 = gaussian_particles(5000, [0.0], 1.0, seed=1)
    seen = []

    def cb(step, t, X, alive):
        seen.append((step, t))
        if step == 3:
            raise KeyboardInterrupt

    run = simulate(X0, T=1.0, n_steps=10, sigma=1.0, drift=AffineDrift(-1.0), seed=2,
                   callback=cb, record_every=2)
    assert run.interrupted and run.steps_done == 3
    assert [s for s, _ in seen] == [0, 1, 2, 3]
    assert np.allclose(run.t, [0.0, 0.2, 0.3])
    full = simulate(X0, T=1.0, n_steps=10, sigma=1.0, drift=AffineDrift(-1.0), seed=2,
                    record_every=5)
    assert np.allclose(full.t, [0.0, 0.5, 1.0]) and full.steps_done == 10
    assert full.particle_steps_per_second > 0


@pytest.mark.parametrize("d", [1, 2, 3])
def test_free_space_fast_path_matches_the_general_kernel(d):
    """Free space, constant noise, affine drift and a moment interaction take the branch-free
    Euler kernel; a box whose reflecting walls are never reached takes the general one. Both
    give the same positions and moments bit for bit."""

    rng = np.random.default_rng(d)
    A = -np.eye(d) + 0.2 * rng.standard_normal((d, d))
    X0 = gaussian_particles(5000, np.zeros(d), 0.2, seed=4)
    common = dict(T=0.5, n_steps=20, sigma=0.3 * np.eye(d) + 0.05, seed=9, progress=False,
                  drift=AffineDrift(A, 0.3 * np.ones(d)), interaction=QuadraticInteraction(1.5),
                  record_every=5)
    fast = simulate(X0, **common)
    walls = Box([(-1e3, 1e3)] * d, "reflecting")
    general = simulate(X0, box=walls, **common)
    assert np.abs(fast.X).max() < 10.0
    assert np.array_equal(fast.X, general.X)
    assert np.array_equal(fast.mean, general.mean) and np.array_equal(fast.cov, general.cov)
