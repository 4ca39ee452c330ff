"""FDDiscretisation, ergodic system: Newton, decoupled solves, policy solves, exact cases."""

import numpy as np
import pytest

from mfg_solvers import Domain, Grid, LocalCoupling, MFGProblem, PowerLaw
from mfg_solvers.fd import FDDiscretisation

SIGMA2, KAPPA, L = 0.5, 3.0, 3.0
LAM_EXACT = SIGMA2 * np.sqrt(KAPPA) / 2  # lambda = sigma^2 sqrt(k) / 2 (harmonic case)
VAR_EXACT = SIGMA2 / (2 * np.sqrt(KAPPA))


def harmonic(n, coupling=None, hamiltonian=None):
    dom = Domain((-L, L), "neumann")
    prob = MFGProblem(dom, nu=SIGMA2 / 2, potential=lambda x: 0.5 * KAPPA * x**2, ergodic=True,
                      coupling=coupling, hamiltonian=hamiltonian)
    return FDDiscretisation(prob, Grid((-L, L), n, "neumann"))


def newton(D, tol=1e-10, maxit=30):
    state = D.initial_guess()
    hist = [D.residual_norm(state)]
    while hist[-1] >= tol and len(hist) <= maxit:
        d = D.newton_direction(state)
        state = (state[0] + d[0], state[1] + d[1], state[2] + d[2])
        hist.append(D.residual_norm(state))
    return state, hist


def test_residual_at_exact_harmonic_solution_is_small_in_the_interior():
    """Interior residual of the exact (u, m, lambda) is O(h); walls excluded (u' != 0 there)."""
    errs, hs = [], []
    for n in (61, 121, 241, 481):
        D = harmonic(n)
        x = D.grid.axes[0]
        h = D.grid.spacing[0]
        u = np.sqrt(KAPPA) / 2 * x**2
        u -= u.mean()
        m = np.exp(-(x**2) / (2 * VAR_EXACT))
        m /= m.sum() * h
        RU, RM, Rc = D.residual((u, m, LAM_EXACT))
        inner = np.abs(x) < 2.0
        errs.append(max(np.abs(RU[inner]).max(), np.abs(RM[inner]).max()))
        hs.append(h)
        assert np.abs(Rc).max() < 1e-12
    order = np.polyfit(np.log(hs), np.log(errs), 1)[0]
    assert order > 0.9
    assert errs[-1] < 0.05


def test_newton_ergodic_harmonic_first_order_in_lambda():
    errs, hs = [], []
    for n in (41, 81, 161, 321):
        D = harmonic(n)
        (U, M, lam), hist = newton(D)
        assert hist[-1] < 1e-10 and len(hist) <= 15
        h = D.grid.spacing[0]
        assert abs(h * M.sum() - 1.0) < 1e-12 and abs(U.sum()) < 1e-9
        assert np.all(M >= 0.0)
        errs.append(abs(lam - LAM_EXACT))
        hs.append(h)
    order = np.polyfit(np.log(hs), np.log(errs), 1)[0]
    assert abs(order - 1.0) < 0.15


@pytest.mark.parametrize(
    "kw",
    [dict(), dict(coupling=LocalCoupling("log", 0.3)), dict(hamiltonian=PowerLaw(1.8))],
    ids=["quadratic", "log-coupling", "power1.8"],
)
def test_ergodic_decoupled_and_policy_solves_at_the_solution(kw):
    D = harmonic(61, **kw)
    (U, M, lam), hist = newton(D)
    assert hist[-1] < 1e-10
    Uh, lh = D.solve_hjb(M)
    np.testing.assert_allclose(Uh, U, rtol=0, atol=1e-9)
    assert lh == pytest.approx(lam, abs=1e-10)
    np.testing.assert_allclose(D.solve_fp(U), M, rtol=0, atol=1e-9)
    P = D.policy(U, M)
    Up, lp = D.solve_hjb_policy(P, M)
    np.testing.assert_allclose(Up, U, rtol=0, atol=1e-9)
    assert lp == pytest.approx(lam, abs=1e-10)
    np.testing.assert_allclose(D.solve_fp_policy(P), M, rtol=0, atol=1e-9)


def test_ergodic_policy_iteration_and_fixed_point_reach_the_newton_solution():
    D = harmonic(41, coupling=LocalCoupling("linear", 0.5))
    (U, M, lam), _ = newton(D)
    Up, Mp, lp = D.initial_guess()
    for _ in range(200):
        P = D.policy(Up, Mp)
        Mp = D.solve_fp_policy(P)
        Up, lp = D.solve_hjb_policy(P, Mp)
        if D.residual_norm((Up, Mp, lp)) < 1e-10:
            break
    assert D.residual_norm((Up, Mp, lp)) < 1e-10
    np.testing.assert_allclose(Up, U, atol=1e-8)
    assert lp == pytest.approx(lam, abs=1e-9)


def test_ergodic_jacobian_matches_finite_differences():
    D = harmonic(15, coupling=LocalCoupling("linear", 0.5), hamiltonian=PowerLaw(2.5))
    rng = np.random.default_rng(0)
    U = rng.standard_normal(15)
    M = rng.uniform(0.5, 1.5, 15)
    lam = 0.3
    d = D.newton_direction((U, M, lam))
    R0 = np.concatenate(D.residual((U, M, lam)))
    eps = 1e-7
    Rp = np.concatenate(D.residual((U + eps * d[0], M + eps * d[1], lam + eps * d[2])))
    Rm = np.concatenate(D.residual((U - eps * d[0], M - eps * d[1], lam - eps * d[2])))
    # J d = -R
    np.testing.assert_allclose((Rp - Rm) / (2 * eps), -R0, rtol=0, atol=1e-5 * np.abs(R0).max())


def test_ergodic_bad_input_and_solution():
    D = harmonic(21)
    with pytest.raises(ValueError, match="nt"):
        FDDiscretisation(D.problem, D.grid, 10)
    with pytest.raises(ValueError, match="tuple"):
        D.residual((np.zeros(21), np.zeros(21)))
    state, _ = newton(D)
    sol = D.to_solution(state, solver="newton")
    assert sol.u.shape == (21,) and sol.control.shape == (21, 1)
    assert sol.ergodic_constant == pytest.approx(state[2])
    assert D.nt is None and D.dt is None and D.t is None
