"""LQG benchmark of MF-PID (mfg_solvers.analytic.mfpid_lqg): the printed anchors of the LQG
benchmark (docs/mfpid.md), scipy solve_ivp at rtol 1e-12 (Riccati, variance, mean two-point
problems by shooting, energies), the matrix form against the scalar one and against a
non-commuting ODE reference, and a particle simulation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from mfg_solvers.analytic.mfpid_lqg import GUIDANCES, LQGBenchmark, LQGBenchmark1D
from mfg_solvers.particles.mfpid_agents import simulate_lqg_agents

KAPPA, Q, M_TAR, SIGMA_TAR = 0.6, 12.0, 2.0, 0.5


@pytest.fixture(scope="module")
def bench():
    return LQGBenchmark1D(KAPPA, Q, M_TAR, SIGMA_TAR)


def test_reference_anchors(bench):
    assert bench.delta == pytest.approx(3.515679166249389, rel=1e-14)
    assert bench.delta == pytest.approx(np.sqrt(12.36), rel=1e-15)
    assert bench.rho == pytest.approx(-0.7605769821241912, rel=1e-13)
    assert bench.riccati(1.0) == pytest.approx(-0.1218984887267145, rel=1e-12)
    assert bench.riccati(0.0) == pytest.approx(2.910956247502835, rel=1e-12)
    np.testing.assert_allclose(bench.variance([0.25, 0.5, 1.0]),
                               [0.1180783544682, 0.1410174070789, 0.25], rtol=1e-12)
    assert bench.variance(0.0) == 0.0
    # s_0 of the independent-agent baselines (adaptive-ODE values of the reference)
    assert bench.offset(0.0, "ia_zero") == pytest.approx(-0.4184207, abs=1e-6)
    assert bench.offset(0.0, "ia_target") == pytest.approx(-6.8508249, abs=1e-6)
    # the values printed by the author come from explicit Euler on N = 4001 points: replicated
    assert bench.offset_euler("ia_zero", 4001) == pytest.approx(-0.41890862759595593, rel=1e-12)
    assert bench.offset_euler("ia_target", 4001) == pytest.approx(-6.8506129151430875,
                                                                  rel=1e-12)
    # and converge to the adaptive values at first order
    errs = [abs(bench.offset_euler("ia_zero", n) - bench.offset(0.0, "ia_zero"))
            for n in (501, 1001, 2001, 4001)]
    order = -np.polyfit(np.log([500, 1000, 2000, 4000]), np.log(errs), 1)[0]
    assert order == pytest.approx(1.0, abs=0.05)


def _riccati_variance_ode(S1, t_eval):
    """S backward from S(1), then Sigma forward from 0 with S from a dense backward solution."""
    back = solve_ivp(lambda t, S: S**2 + 2 * KAPPA * S - Q, (1.0, 0.0), [S1], method="DOP853",
                     rtol=1e-12, atol=1e-14, dense_output=True)
    fwd = solve_ivp(lambda t, y: [-2 * (KAPPA + back.sol(t)[0]) * y[0] + 1.0], (0.0, 1.0), [0.0],
                    method="DOP853", rtol=1e-12, atol=1e-14, t_eval=t_eval)
    return back.sol(t_eval)[0], fwd.y[0]


def test_riccati_and_variance_against_solve_ivp(bench):
    t = np.linspace(0.0, 1.0, 11)
    S, Sig = _riccati_variance_ode(bench.riccati(1.0), t)
    np.testing.assert_allclose(bench.riccati(t), S, rtol=1e-10)
    np.testing.assert_allclose(bench.variance(t), Sig, rtol=1e-9, atol=1e-13)
    assert Sig[-1] == pytest.approx(SIGMA_TAR**2, rel=1e-10)


def _shoot(bench, centre, t_eval):
    """(m, s, energy) by solve_ivp: s' = q nu + (kappa + S) s, m' = -(kappa + S) m - s,
    Sigma' = -2 (kappa + S) Sigma + 1, E' = S^2 Sigma + (S m + s)^2, shooting on s_0 so that
    m(1) = m_tar (m(1) is affine in s_0). centre=None is the mean field (nu = m)."""

    def rhs(t, y):
        s, m, sig, _ = y
        S = bench.riccati(t)
        nu = m if centre is None else centre
        return [Q * nu + (KAPPA + S) * s, -(KAPPA + S) * m - s, -2 * (KAPPA + S) * sig + 1,
                S**2 * sig + (S * m + s) ** 2]

    def run(s0):
        return solve_ivp(rhs, (0.0, 1.0), [s0, 0.0, 0.0, 0.0], method="DOP853", rtol=1e-12,
                         atol=1e-13, t_eval=t_eval)

    y0, y1 = run(0.0).y, run(1.0).y
    s0 = (M_TAR - y0[1, -1]) / (y1[1, -1] - y0[1, -1])
    y = run(s0).y
    return s0, y[1], y[0], y[3]


@pytest.mark.parametrize("guidance", GUIDANCES)
def test_means_offsets_and_energies_against_shooting(bench, guidance):
    centre = {"mf": None, "ia_zero": 0.0, "ia_target": M_TAR}[guidance]
    t = np.linspace(0.0, 1.0, 9)
    s0, m, s, E = _shoot(bench, centre, t)
    assert bench.offset(0.0, guidance) == pytest.approx(s0, rel=1e-9)
    np.testing.assert_allclose(bench.mean(t, guidance), m, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(bench.offset(t, guidance), s, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(bench.energy(t, guidance), E, rtol=1e-9, atol=1e-12)
    P = bench.power(t, guidance)
    ub = bench.mean_control(t, guidance)
    np.testing.assert_allclose(ub, -(bench.riccati(t) * m + s), rtol=1e-9, atol=1e-10)
    assert np.all(P >= ub**2)


def test_mean_field_mean_is_sinh_profile_and_line_without_relaxation(bench):
    t = np.linspace(0, 1, 7)
    np.testing.assert_allclose(bench.mean(t, "mf"), M_TAR * np.sinh(KAPPA * t) / np.sinh(KAPPA),
                               rtol=1e-14, atol=1e-15)
    flat = LQGBenchmark1D(0.0, Q, M_TAR, SIGMA_TAR)
    np.testing.assert_allclose(flat.mean(t, "mf"), M_TAR * t, rtol=1e-14)
    # with f = 0 the mean-field mean control is constant and the energy bound is tight in mean
    np.testing.assert_allclose(flat.mean_control(t, "mf"), M_TAR, rtol=1e-13)
    assert flat.energy(1.0, "mf") > M_TAR**2
    for g in ("ia_zero", "ia_target"):
        assert flat.energy(1.0, g) > flat.energy(1.0, "mf")
        assert bench.energy(1.0, g) > bench.energy(1.0, "mf")


def test_matrix_form_reduces_to_scalar(bench):
    t = np.array([0.0, 0.2, 0.5, 0.9, 1.0])
    M1 = LQGBenchmark([[-KAPPA]], [[Q]], [[SIGMA_TAR**2]], [M_TAR])
    np.testing.assert_allclose(M1.riccati(t).ravel(), bench.riccati(t), rtol=1e-12)
    np.testing.assert_allclose(M1.variance(t).ravel(), bench.variance(t), rtol=1e-11, atol=1e-15)
    for g in GUIDANCES:
        np.testing.assert_allclose(M1.mean(t, g).ravel(), bench.mean(t, g), rtol=1e-11,
                                   atol=1e-13)
        assert M1.energy(1.0, g) == pytest.approx(bench.energy(1.0, g), rel=1e-11)
    # commuting d = 3 case: independent copies of the scalar problem, each with its own rho
    kap, q, sig, mt = np.array([0.6, 1.0, 0.2]), np.array([12.0, 1.0, 4.0]), \
        np.array([0.5, 0.6, 0.3]), np.array([2.0, 1.0, -0.5])
    M3 = LQGBenchmark(np.diag(-kap), np.diag(q), np.diag(sig**2), mt)
    E = 0.0
    for j in range(3):
        b = LQGBenchmark1D(kap[j], q[j], mt[j], sig[j])
        np.testing.assert_allclose(M3.riccati(t)[:, j, j], b.riccati(t), rtol=1e-11)
        np.testing.assert_allclose(M3.variance(t)[:, j, j], b.variance(t), rtol=1e-10,
                                   atol=1e-15)
        np.testing.assert_allclose(M3.mean(t, "ia_target")[:, j], b.mean(t, "ia_target"),
                                   rtol=1e-10, atol=1e-13)
        E += b.energy(1.0, "ia_zero")
    assert M3.energy(1.0, "ia_zero") == pytest.approx(E, rel=1e-10)


def test_matrix_form_non_commuting_against_solve_ivp():
    A = np.array([[-0.5, 0.3], [0.1, -0.2]])
    Qm = np.array([[3.0, 0.8], [0.8, 1.5]])
    St = np.array([[0.2, 0.05], [0.05, 0.1]])
    mt, m0 = np.array([1.5, -0.5]), np.array([0.2, 0.3])
    M = LQGBenchmark(A, Qm, St, mt, m0)
    t = np.linspace(0.0, 1.0, 6)
    S0 = M.riccati(0.0)

    def rhs(tt, y):
        S = y[:4].reshape(2, 2)
        Sig = y[4:].reshape(2, 2)
        dS = S @ S - A.T @ S - S @ A - Qm
        F = A - S
        dSig = F @ Sig + Sig @ F.T + np.eye(2)
        return np.concatenate([dS.ravel(), dSig.ravel()])

    sol = solve_ivp(rhs, (0, 1), np.concatenate([S0.ravel(), np.zeros(4)]), method="DOP853",
                    rtol=1e-12, atol=1e-13, t_eval=t)
    S_ode = sol.y[:4].T.reshape(-1, 2, 2)
    Sig_ode = sol.y[4:].T.reshape(-1, 2, 2)
    np.testing.assert_allclose(M.riccati(t), S_ode, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(M.variance(t), Sig_ode, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(Sig_ode[-1], St, rtol=1e-8)
    # mean two-point problems: integrate S' (as above), m' = (A - S) m - s and
    # s' = (S - A^T) s + Q nu forward from the closed-form s_0; m(1) must hit m_tar
    for g in GUIDANCES:
        nu_c = {"ia_zero": np.zeros(2), "ia_target": mt}.get(g)

        def rhs_m(tt, y, nu_c=nu_c):
            S, Sig = y[:4].reshape(2, 2), y[4:8].reshape(2, 2)
            m, s = y[8:10], y[10:12]
            nu = m if nu_c is None else nu_c
            F = A - S
            power = np.trace(S @ Sig @ S) + np.sum((S @ m + s) ** 2)
            return np.concatenate([(S @ S - A.T @ S - S @ A - Qm).ravel(),
                                   (F @ Sig + Sig @ F.T + np.eye(2)).ravel(), F @ m - s,
                                   (S - A.T) @ s + Qm @ nu, [power]])

        s0 = M.offset(0.0, g)
        sol = solve_ivp(rhs_m, (0, 1), np.concatenate([S0.ravel(), np.zeros(4), m0, s0, [0.0]]),
                        method="DOP853", rtol=1e-12, atol=1e-13, t_eval=t)
        np.testing.assert_allclose(M.mean(t, g), sol.y[8:10].T, rtol=1e-8, atol=1e-9)
        np.testing.assert_allclose(sol.y[8:10, -1], mt, atol=1e-8)
        np.testing.assert_allclose(M.energy(t, g), sol.y[12], rtol=1e-8, atol=1e-10)


def test_particle_simulation_matches_closed_forms(bench):
    res = simulate_lqg_agents(bench, n_agents=20000, n_steps=500, seed=0)
    t = res["t"]
    for g in GUIDANCES:
        r = res[g]
        # energy: Monte Carlo error plus the O(dt) Euler-Maruyama bias (0.5 % here)
        E = bench.energy(1.0, g)
        assert abs(r["energy"] - E) < 4 * r["energy_se"] + 5e-3 * E
        se_mean = np.sqrt(bench.variance(t) / 20000)
        assert np.all(np.abs(r["mean"][:, 0] - bench.mean(t, g)) < 4 * se_mean + 0.01)
    var = res["mf"]["var"][:, 0]
    np.testing.assert_allclose(var[[125, 250, 500]], bench.variance(t[[125, 250, 500]]),
                               rtol=0.05)


def test_validation():
    with pytest.raises(ValueError, match="sigma_tar"):
        LQGBenchmark1D(0.6, 12.0, 2.0, 0.0)
    with pytest.raises(ValueError, match="guidance"):
        LQGBenchmark1D().mean(0.5, "nash")
    with pytest.raises(ValueError, match="t contains"):
        LQGBenchmark1D().riccati(1.5)
    with pytest.raises(ValueError, match="positive definite"):
        LQGBenchmark(-np.eye(2), np.eye(2), np.diag([1.0, 0.0]), [0.0, 0.0])
