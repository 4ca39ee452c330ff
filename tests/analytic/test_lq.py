"""Closed-form LQ MFG references (mfg_solvers.analytic.lq) against check values, ODE solutions
(scipy solve_ivp at rtol 1e-12), ODE/PDE residuals and the identities they rest on."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy.integrate import solve_ivp
from scipy.linalg import eigh_tridiagonal

from mfg_solvers.analytic import (
    ergodic_log_gaussian,
    ergodic_lq,
    harmonic_ground_state,
    lq_finite_horizon,
)

# LQ check case check case
CHECK = dict(q=2.0, q_T=0.5, kappa=0.6, kappa_T=0.3, sigma2=0.36, T=1.0, mean0=1.0, var0=0.2)

# a 2-D case whose Q and Q_T do not commute
Q2 = np.array([[2.0, 0.7], [0.7, 1.1]])
QT2 = np.array([[0.4, -0.3], [-0.3, 0.9]])
CASE2D = dict(
    q=Q2, q_T=QT2, kappa=0.4, kappa_T=0.8, sigma2=0.5, T=1.3,
    mean0=np.array([1.0, -0.5]), var0=np.array([[0.3, 0.05], [0.05, 0.2]]),
)


# ---------------------------------------------------------------------------------------------
# independent ODE reference: shooting on the terminal mean, everything by solve_ivp
# ---------------------------------------------------------------------------------------------
def ode_reference(q, q_T, kappa, kappa_T, sigma2, T, mean0, var0, t_eval):
    """(P, xbar, s, r, Sigma) at t_eval by integrating the ODEs of LQ check case with DOP853."""
    Q = np.atleast_2d(np.asarray(q, float))
    d = Q.shape[0]
    Q = Q * np.eye(d) if Q.size == 1 else Q
    QT = np.asarray(q_T, float) * np.eye(d) if np.ndim(q_T) == 0 else np.asarray(q_T, float)
    x0 = np.full(d, mean0, float) if np.ndim(mean0) == 0 else np.asarray(mean0, float)
    S0 = np.asarray(var0, float) * np.eye(d) if np.ndim(var0) == 0 else np.asarray(var0, float)
    opts = dict(method="DOP853", rtol=1e-12, atol=1e-14)

    def backward_rhs(t, y):
        P = y[: d * d].reshape(d, d)
        x = y[d * d : d * d + d]
        s = y[d * d + d : d * d + 2 * d]
        dP = P @ P - Q
        dx = -(P @ x + s)
        ds = P @ s + kappa * Q @ x
        dr = 0.5 * s @ s - 0.5 * sigma2 * np.trace(P) - 0.5 * kappa**2 * x @ Q @ x
        return np.concatenate([dP.ravel(), dx, ds, [dr]])

    def terminal_state(xT):
        return np.concatenate(
            [QT.ravel(), xT, -kappa_T * QT @ xT, [0.5 * kappa_T**2 * xT @ QT @ xT]]
        )

    def x_at_zero(xT):
        sol = solve_ivp(backward_rhs, (T, 0.0), terminal_state(xT), **opts)
        return sol.y[d * d : d * d + d, -1]

    # x(0) is linear in x(T): find x(T) from d unit shots
    M = np.column_stack([x_at_zero(e) for e in np.eye(d)])
    xT = np.linalg.solve(M, x0)
    t_desc = np.sort(np.asarray(t_eval, float))[::-1]
    sol = solve_ivp(backward_rhs, (T, 0.0), terminal_state(xT), t_eval=t_desc, **opts)
    order = np.argsort(sol.t)
    Y = sol.y[:, order]
    P = Y[: d * d].T.reshape(-1, d, d)
    x = Y[d * d : d * d + d].T
    s = Y[d * d + d : d * d + 2 * d].T
    r = Y[-1]
    P0 = solve_ivp(backward_rhs, (T, 0.0), terminal_state(xT), **opts).y[: d * d, -1]

    def forward_rhs(t, y):
        P = y[: d * d].reshape(d, d)
        S = y[d * d :].reshape(d, d)
        return np.concatenate([(P @ P - Q).ravel(), (-P @ S - S @ P + sigma2 * np.eye(d)).ravel()])

    fw = solve_ivp(forward_rhs, (0.0, T), np.concatenate([P0, S0.ravel()]),
                   t_eval=np.sort(t_eval), **opts)
    Sigma = fw.y[d * d :].T.reshape(-1, d, d)
    return P, x, s, r, Sigma


# ---------------------------------------------------------------------------------------------
# finite horizon
# ---------------------------------------------------------------------------------------------
def test_check_values_of_the_reference():
    sol = lq_finite_horizon(**CHECK)
    assert sol.dim == 1
    assert abs(sol.mean_T - 0.5476579284) < 1e-9
    assert abs(float(sol.costate(0.0)) - (-0.5640364041)) < 1e-9
    assert abs(sol.var_T - 0.1965042738) < 1e-9
    # Var(T) has the cancellation-free closed form Var0/phi(T)^2 + sigma^2 S(T)/phi(T)
    w = np.sqrt(CHECK["q"])
    phi = np.cosh(w) + CHECK["q_T"] * np.sinh(w) / w
    assert abs(sol.var_T - (0.2 / phi**2 + 0.36 * np.sinh(w) / w / phi)) < 1e-14


def test_riccati_1d_tanh_formula():
    sol = lq_finite_horizon(**CHECK)
    t = np.linspace(0.0, 1.0, 41)
    q, qT, tau = 2.0, 0.5, 1.0 - t
    rq = np.sqrt(q)
    exact = rq * (qT + rq * np.tanh(rq * tau)) / (rq + qT * np.tanh(rq * tau))
    np.testing.assert_allclose(sol.riccati(t), exact, rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("case", [CHECK, CASE2D], ids=["1d-check", "2d-noncommuting"])
def test_closed_form_against_solve_ivp(case):
    sol = lq_finite_horizon(**case)
    t = np.linspace(0.0, case["T"], 14)
    P, x, s, r, Sigma = ode_reference(**case, t_eval=t)
    d = sol.dim
    shape_v = (-1,) if d == 1 else (-1, d)
    shape_m = (-1,) if d == 1 else (-1, d, d)
    np.testing.assert_allclose(sol.riccati(t), P.reshape(shape_m), rtol=0, atol=1e-11)
    np.testing.assert_allclose(sol.mean(t), x.reshape(shape_v), rtol=0, atol=1e-11)
    np.testing.assert_allclose(sol.costate(t), s.reshape(shape_v), rtol=0, atol=1e-11)
    np.testing.assert_allclose(sol.offset(t), r, rtol=0, atol=1e-11)
    np.testing.assert_allclose(sol.cov(t), Sigma.reshape(shape_m), rtol=0, atol=1e-11)


def _ddt(f, t, h=1e-3):
    """Fourth-order central difference."""
    return (-f(t + 2 * h) + 8 * f(t + h) - 8 * f(t - h) + f(t - 2 * h)) / (12 * h)


def test_ode_residuals_2d():
    c = CASE2D
    sol = lq_finite_horizon(**c)
    Q, QT, kap, kT = c["q"], c["q_T"], c["kappa"], c["kappa_T"]
    t = np.linspace(0.05, c["T"] - 0.05, 9)
    P, x, s, Sig = sol.riccati(t), sol.mean(t), sol.costate(t), sol.cov(t)
    # Riccati, mean, costate, offset, covariance equations
    np.testing.assert_allclose(_ddt(sol.riccati, t), P @ P - Q, atol=2e-10)
    np.testing.assert_allclose(_ddt(sol.mean, t), -(np.einsum("nij,nj->ni", P, x) + s), atol=2e-10)
    np.testing.assert_allclose(_ddt(sol.mean, t), sol.mean_velocity(t), atol=2e-10)
    np.testing.assert_allclose(
        _ddt(sol.costate, t), np.einsum("nij,nj->ni", P, s) + kap * x @ Q.T, atol=2e-10
    )
    dr = (
        0.5 * np.sum(s * s, -1)
        - 0.5 * c["sigma2"] * np.trace(P, axis1=1, axis2=2)
        - 0.5 * kap**2 * np.einsum("ni,ij,nj->n", x, Q, x)
    )
    np.testing.assert_allclose(_ddt(sol.offset, t), dr, atol=2e-10)
    dSig = -P @ Sig - Sig @ np.swapaxes(P, 1, 2) + c["sigma2"] * np.eye(2)
    np.testing.assert_allclose(_ddt(sol.cov, t), dSig, atol=2e-10)
    # end conditions
    xT = sol.mean_T
    np.testing.assert_allclose(sol.riccati(c["T"]), QT, atol=1e-13)
    np.testing.assert_allclose(sol.costate(c["T"]), -kT * QT @ xT, atol=1e-13)
    np.testing.assert_allclose(sol.offset(c["T"]), 0.5 * kT**2 * xT @ QT @ xT, atol=1e-13)
    np.testing.assert_allclose(sol.mean(0.0), c["mean0"], atol=1e-13)
    np.testing.assert_allclose(sol.cov(0.0), c["var0"], atol=1e-13)
    # P stays symmetric positive definite, Sigma symmetric positive definite
    assert np.all(np.linalg.eigvalsh(P) > 0) and np.all(np.linalg.eigvalsh(Sig) > 0)


def test_hjb_and_fp_pde_residuals_1d():
    """u(t,x) solves the HJB and the Gaussian m(t,x) the FP equation (finite differences)."""
    c = CHECK
    sol = lq_finite_horizon(**c)
    nu = c["sigma2"] / 2
    x = np.linspace(-1.0, 3.0, 21)
    h = 1e-3
    for t in (0.2, 0.5, 0.8):
        xbar = float(sol.mean(t))
        u = lambda y, tt=t: sol.value(tt, y)  # noqa: E731
        ut = (-sol.value(t + 2 * h, x) + 8 * sol.value(t + h, x) - 8 * sol.value(t - h, x)
              + sol.value(t - 2 * h, x)) / (12 * h)
        ux = sol.gradient(t, x)
        uxx = (u(x + h) - 2 * u(x) + u(x - h)) / h**2
        f = 0.5 * c["q"] * (x - c["kappa"] * xbar) ** 2
        hjb = -ut - nu * uxx + 0.5 * ux**2 - f
        assert np.abs(hjb).max() < 1e-7
        m = sol.density(t, x)
        mt = (-sol.density(t + 2 * h, x) + 8 * sol.density(t + h, x) - 8 * sol.density(t - h, x)
              + sol.density(t - 2 * h, x)) / (12 * h)
        v = float(sol.cov(t))
        mx = -m * (x - xbar) / v
        mxx = m * ((x - xbar) ** 2 / v**2 - 1 / v)
        div = mx * ux + m * float(sol.riccati(t))  # (m u_x)_x with u_xx = P
        fp = mt - nu * mxx - div
        assert np.abs(fp).max() < 1e-9
        m = lambda y, tt=t: sol.density(tt, y)  # noqa: E731
        # the density's first moment is the mean of the closed form
        y = np.linspace(-8, 10, 20001)
        mass = np.trapezoid(m(y), y)
        assert abs(mass - 1) < 1e-12
        assert abs(np.trapezoid(y * m(y), y) - xbar) < 1e-12


def test_full_mean_coupling_keeps_the_mean():
    """kappa = kappa_T = 1: the mean is constant and s = -P xbar0 (LQ check case)."""
    sol = lq_finite_horizon(1.5, 0.7, 1.0, 1.0, 0.4, 2.0, 0.8, 0.3)
    t = np.linspace(0, 2, 11)
    np.testing.assert_allclose(sol.mean(t), 0.8, atol=1e-14)
    np.testing.assert_allclose(sol.costate(t), -sol.riccati(t) * 0.8, atol=1e-14)


def test_no_running_cost_limit():
    """q = 0: P = q_T / (1 + q_T (T - t)) and the formulas stay finite (no division by 0)."""
    sol = lq_finite_horizon(0.0, 2.0, 0.5, 0.0, 0.3, 1.0, 0.4, 0.1)
    t = np.linspace(0, 1, 11)
    np.testing.assert_allclose(sol.riccati(t), 2.0 / (1 + 2.0 * (1 - t)), rtol=1e-14)
    P, x, s, r, Sigma = ode_reference(0.0, 2.0, 0.5, 0.0, 0.3, 1.0, 0.4, 0.1, t)
    np.testing.assert_allclose(sol.mean(t), x[:, 0], atol=1e-12)
    np.testing.assert_allclose(sol.offset(t), r, atol=1e-12)
    np.testing.assert_allclose(sol.cov(t), Sigma[:, 0, 0], atol=1e-12)


def test_long_horizon_is_stable():
    """sqrt(q) T = 50: no overflow or cancellation; in mid-horizon P = sqrt(q) and the
    covariance is the stationary sigma^2 / (2 sqrt(q)) to round-off."""
    sol = lq_finite_horizon(100.0, 3.0, 0.5, 0.2, 0.8, 5.0, 1.0, 0.5)
    assert abs(float(sol.riccati(2.5)) - 10.0) < 1e-12
    assert abs(float(sol.cov(2.5)) - 0.8 / 20) < 1e-14
    w = 10.0
    phi = np.cosh(w * 5) + 3.0 * np.sinh(w * 5) / w
    assert abs(sol.var_T - (0.5 / phi**2 + 0.8 * np.sinh(w * 5) / w / phi)) < 1e-15
    assert np.all(np.isfinite(sol.offset(np.linspace(0, 5, 11))))


def test_resonant_mean_problem_raises():
    """kappa > 1, kappa_T = 1: xbar'' = -(kappa - 1) q xbar, xbar'(T) = 0 is resonant when
    sqrt((kappa - 1) q) T = pi/2."""
    with pytest.raises(ValueError, match="resonant"):
        lq_finite_horizon(1.0, 1.0, 1.0 + np.pi**2 / 4, 1.0, 0.2, 1.0, 1.0, 0.1)
    # slightly off resonance it is solvable, and matches the ODE reference
    sol = lq_finite_horizon(1.0, 1.0, 2.0, 1.0, 0.2, 1.0, 1.0, 0.1)
    t = np.linspace(0, 1, 5)
    P, x, s, r, Sigma = ode_reference(1.0, 1.0, 2.0, 1.0, 0.2, 1.0, 1.0, 0.1, t)
    np.testing.assert_allclose(sol.mean(t), x[:, 0], atol=1e-11)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(q=-1.0), "q="),
        (dict(q_T=np.array([[1.0, 2.0], [0.0, 1.0]])), "q_T"),
        (dict(T=0.0), "T="),
        (dict(T=np.nan), "T="),
        (dict(sigma2=-0.1), "sigma2="),
        (dict(var0=np.array([[1.0, 2.0], [2.0, 1.0]])), "var0"),
        (dict(mean0=np.ones(3), dim=2), "mean0"),
        (dict(q=2.0, T=400.0), "overflow"),
    ],
)
def test_bad_input_raises(kwargs, match):
    args = dict(CHECK)
    args.update(kwargs)
    if "q_T" in kwargs or "var0" in kwargs:
        args.update(dim=2)
    with pytest.raises(ValueError, match=match):
        lq_finite_horizon(**args)


def test_bad_times_and_types_raise():
    sol = lq_finite_horizon(**CHECK)
    with pytest.raises(ValueError, match=r"\[0, T\]"):
        sol.mean(1.5)
    with pytest.raises(ValueError, match="single time"):
        sol.value([0.0, 0.5], 0.0)
    with pytest.raises(TypeError, match="kappa="):
        lq_finite_horizon(**{**CHECK, "kappa": "a"})
    sol2 = lq_finite_horizon(**CASE2D)
    with pytest.raises(ValueError, match="trailing axis"):
        sol2.value(0.0, np.zeros((4, 3)))


# ---------------------------------------------------------------------------------------------
# stationary solutions
# ---------------------------------------------------------------------------------------------
def _hessian_trace_fd(f, X, h=1e-4):
    d = X.shape[-1]
    out = np.zeros(X.shape[:-1])
    for k in range(d):
        e = np.zeros(d)
        e[k] = h
        out += (f(X + e) - 2 * f(X) + f(X - e)) / h**2
    return out


def _grad_fd(f, X, h=1e-5):
    d = X.shape[-1]
    cols = []
    for k in range(d):
        e = np.zeros(d)
        e[k] = h
        cols.append((f(X + e) - f(X - e)) / (2 * h))
    return np.stack(cols, -1)


@pytest.mark.parametrize("kappa, mean", [(0.4, None), (1.0, [0.7, -0.2])])
def test_ergodic_lq_residuals_2d(kappa, mean):
    Q = np.array([[1.5, 0.4], [0.4, 0.8]])
    sig2 = 0.6
    sol = ergodic_lq(Q, kappa, sig2, mean=mean)
    xbar = np.zeros(2) if mean is None else np.asarray(mean)
    np.testing.assert_allclose(sol.mean, kappa * xbar, atol=1e-15)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 2))
    grad = sol.gradient(X)
    np.testing.assert_allclose(grad, _grad_fd(sol.value, X), atol=1e-8)
    z = X - kappa * xbar
    hjb = (sol.lam - 0.5 * sig2 * np.trace(sol.hessian) + 0.5 * np.sum(grad**2, -1)
           - 0.5 * np.einsum("ni,ij,nj->n", z, Q, z))
    assert np.abs(hjb).max() < 1e-13
    # zero flux: m grad u + (sigma^2/2) grad m = 0, so FP holds
    m = sol.density(X)
    flux = m[:, None] * grad + 0.5 * sig2 * _grad_fd(sol.density, X)
    assert np.abs(flux).max() < 1e-9
    # sqrt(Q)^2 = Q and lam = sigma^2/2 tr sqrt(Q)
    np.testing.assert_allclose(sol.hessian @ sol.hessian, Q, atol=1e-14)
    assert abs(sol.lam - 0.5 * sig2 * np.trace(sol.hessian)) < 1e-15


def test_ergodic_lq_scalar_and_dimension():
    sol = ergodic_lq(2.0, 0.5, 0.36)
    assert abs(sol.lam - 0.36 * np.sqrt(2.0) / 2) < 1e-15
    assert abs(sol.variance - 0.36 / (2 * np.sqrt(2.0))) < 1e-15
    sol3 = ergodic_lq(2.0, 0.5, 0.36, dim=3)
    assert abs(sol3.lam - 3 * 0.36 * np.sqrt(2.0) / 2) < 1e-15
    with pytest.raises(ValueError, match="kappa"):
        ergodic_lq(2.0, 0.5, 0.36, mean=0.3)
    with pytest.raises(ValueError, match="positive definite"):
        ergodic_lq(0.0, 0.5, 0.36)


@pytest.mark.parametrize("alpha", [0.5, -0.3, 0.0])
def test_log_gaussian_residuals(alpha):
    c, nu = 2.0, 0.3
    sol = ergodic_log_gaussian(c, alpha, nu)
    a = sol.hessian[0, 0]
    assert abs(nu * a * a + alpha * a - c * nu) < 1e-14  # the quadratic for a
    assert abs(sol.variance - nu / a) < 1e-15
    x = np.linspace(-2, 2, 41)
    m = sol.density(x)
    ux = sol.gradient(x)
    uxx = (sol.value(x + 1e-4) - 2 * sol.value(x) + sol.value(x - 1e-4)) / 1e-8
    hjb = sol.lam - nu * uxx + 0.5 * ux**2 - 0.5 * c * x**2 - alpha * np.log(m)
    assert np.abs(hjb).max() < 1e-6
    flux = m * ux + nu * (sol.density(x + 1e-5) - sol.density(x - 1e-5)) / 2e-5
    assert np.abs(flux).max() < 1e-9
    # d dimensions: lam multiplies by d, the covariance is isotropic
    sol2 = ergodic_log_gaussian(c, alpha, nu, dim=2)
    assert abs(sol2.lam - 2 * sol.lam) < 1e-14
    X = np.stack([x, 0.5 * x], -1)
    lap = _hessian_trace_fd(sol2.value, X)
    g2 = sol2.gradient(X)
    hjb2 = (
        sol2.lam - nu * lap + 0.5 * np.sum(g2**2, -1) - 0.5 * c * np.sum(X**2, -1)
        - alpha * np.log(sol2.density(X))
    )
    assert np.abs(hjb2).max() < 1e-6


def test_log_gaussian_invalid():
    with pytest.raises(ValueError, match="a = "):
        ergodic_log_gaussian(0.0, 0.5, 0.3)
    with pytest.raises(ValueError, match="nu="):
        ergodic_log_gaussian(1.0, 0.5, 0.0)


def test_harmonic_ground_state_consistency_and_eigenproblem():
    sig2, k = 0.5, 3.0
    gs = harmonic_ground_state(k, sig2)
    # the reference's check numbers
    assert abs(gs.lam - 0.4330127) < 1e-7 and abs(gs.variance - 0.1443376) < 1e-7
    # = ergodic LQ with q = k, kappa = 0, and = log coupling with alpha = 0, nu = sigma^2/2
    lq = ergodic_lq(k, 0.0, sig2)
    lg = ergodic_log_gaussian(k, 0.0, sig2 / 2)
    for other in (lq, lg):
        assert abs(other.lam - gs.lam) < 1e-15
        np.testing.assert_allclose(other.cov, gs.cov, rtol=1e-15)
    # Hopf-Cole: u = -sigma^2 log sqrt(m) up to a constant
    x = np.linspace(-1, 1, 11)
    hc = -sig2 * np.log(np.sqrt(gs.density(x)))
    np.testing.assert_allclose(hc - hc[5], gs.value(x) - gs.value(x)[5], atol=1e-13)
    # ground state of -sigma^4/2 phi'' + k/2 x^2 phi by second-order FD: converges at order 2
    errs, hs, lams = [], [], []
    for n in (401, 801, 1601, 3201):
        y, h = np.linspace(-5, 5, n, retstep=True)
        diag = sig2**2 / h**2 + 0.5 * k * y**2
        off = np.full(n - 1, -0.5 * sig2**2 / h**2)
        lam0, vec = eigh_tridiagonal(diag, off, select="i", select_range=(0, 0))
        errs.append(abs(lam0[0] - gs.lam))
        hs.append(h)
        lams.append(lam0[0])
        phi2 = vec[:, 0] ** 2 / (np.sum(vec[:, 0] ** 2) * h)
        var = np.sum(y * y * phi2) * h
    order = np.polyfit(np.log(hs), np.log(errs), 1)[0]
    assert abs(order - 2) < 0.1
    assert errs[-1] < 1e-6
    # halving h: Richardson extrapolation removes the h^2 term
    assert abs((4 * lams[-1] - lams[-2]) / 3 - gs.lam) < 1e-10
    assert abs(var - gs.variance) < 1e-6


def test_ground_state_in_three_dimensions():
    gs = harmonic_ground_state(2.0, 0.4, dim=3)
    assert abs(gs.lam - 3 * 0.4 * np.sqrt(2) / 2) < 1e-15
    np.testing.assert_allclose(gs.cov, 0.4 / (2 * np.sqrt(2)) * np.eye(3), rtol=1e-15)
    X = np.random.default_rng(1).normal(size=(20, 3))
    lap = _hessian_trace_fd(gs.value, X)
    g = gs.gradient(X)
    hjb = gs.lam - 0.2 * lap + 0.5 * np.sum(g**2, -1) - np.sum(X**2, -1)
    assert np.abs(hjb).max() < 1e-6


def test_analytic_package_imports_lazily():
    code = (
        "import sys, mfg_solvers.analytic as a; "
        "assert 'mfg_solvers.analytic.lq' not in sys.modules; "
        "a.ergodic_lq; assert 'mfg_solvers.analytic.lq' in sys.modules; print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"


def test_strong_mean_attraction_oscillates_without_warnings():
    """kappa >> 1: A = (1 - kappa) q < 0, the mean oscillates (cos/sin branch); no overflow
    warnings from the unused hyperbolic branch, and agreement with the ODE reference."""
    import warnings

    args = (4.0, 0.5, 30.0, 2.0, 0.3, 2.0, 1.0, 0.2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sol = lq_finite_horizon(*args)
        t = np.linspace(0, 2.0, 9)
        mean, s, r = sol.mean(t), sol.costate(t), sol.offset(t)
    P, x, s_ref, r_ref, Sigma = ode_reference(*args, t)
    scale = np.abs(x).max()
    np.testing.assert_allclose(mean, x[:, 0], atol=1e-10 * scale)
    np.testing.assert_allclose(s, s_ref[:, 0], atol=1e-9 * np.abs(s_ref).max())
    np.testing.assert_allclose(r, r_ref, atol=1e-9 * np.abs(r_ref).max())
    assert np.sign(np.diff(np.sign(mean))).any()  # it does change sign
