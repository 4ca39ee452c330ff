"""MF-PID closed forms (mfg_solvers.analytic.mfpid): fixed regression anchors (E2 validation
protocol, start-conditioned drift, shift propagators at beta = 1), the exact identities, the drift
against an independent Mehler-kernel quadrature of
psi, the marginals and the linear-guidance theorem (deterministic, with a fitted M^-2 rate)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from mfg_solvers.analytic.mfpid import (
    MFPID,
    GaussianMixture,
    GreenCoefficients,
    MFPIDProtocol,
    constant_beta_coefficients,
    geometric_beta,
    linear_guidance,
    scenario_1d,
    scenario_d_sweep,
    start_conditioned_setting,
    time_quadrature,
    validation_protocol,
    validation_target,
)
from mfg_solvers.particles.mfpid_agents import fixed_point_guidance

# ---------------------------------------------------------------------------------------------
# regression anchors
# ---------------------------------------------------------------------------------------------
E2_ABC = {
    0.2: (2.1235382566683385, 0.938878102813892, 1.6509660061542137),
    0.5: (2.4418204546967077, 1.842794345423633, 2.20172205108942),
    0.75: (4.082988165073597, 3.9586351633020005, 4.082988165073597),
}


@pytest.mark.parametrize("zero_nu", [False, True])
def test_e2_coefficient_anchors(zero_nu):
    prot, _ = validation_protocol("E2")
    if zero_nu:  # the scalar coefficients do not depend on the guidance
        prot = prot.with_nu(np.zeros((4, 2)))
    co = GreenCoefficients(prot)
    assert co.a_plus_1 == pytest.approx(1.5326847726983635, rel=1e-12)
    for t, ref in E2_ABC.items():
        bw = co.backward(t)
        np.testing.assert_allclose([bw.a[0], bw.b[0], bw.c[0]], ref, rtol=1e-12, atol=0)
    assert co.backward(1e-3).c[0] == pytest.approx(1.5330569432994632, rel=1e-12)


def test_start_conditioned_drift_anchor():
    eng, z = start_conditioned_setting()
    x_shifted = 0.5
    u = eng.drift(0.5, np.array([[x_shifted + z]]), np.array([[z]]))
    assert u.shape == (1, 1)
    assert abs(u[0, 0] - (-0.5128977136759871)) < 1e-10


def test_shift_propagator_anchors_beta_one():
    co = GreenCoefficients(MFPIDProtocol([1.0] * 4, 0.0))
    t = np.array([0.1, 0.25, 0.5, 0.75, 0.9])
    sh = co.shift(t)
    np.testing.assert_allclose(sh.lam_plus, [0.0499584, 0.1243530, 0.2449187, 0.3583574,
                                             0.4218990], rtol=0, atol=1e-7)
    np.testing.assert_allclose(sh.lam_plus, np.tanh(t / 2), rtol=0, atol=1e-15)
    assert abs(co.lam_plus_1 - 0.4621172) < 1e-7
    assert co.lam_plus_1 == pytest.approx(np.tanh(0.5), abs=1e-15)
    # lambda_x(t) = lambda^+(1 - t) to round-off
    np.testing.assert_allclose(sh.lam_x, co.shift(1.0 - t).lam_plus, rtol=0, atol=2e-16)


# ---------------------------------------------------------------------------------------------
# identities and limits of the Green-function coefficients
# ---------------------------------------------------------------------------------------------
def _random_protocol(seed, d=2, M=5):
    rng = np.random.default_rng(seed)
    br = np.concatenate([[0.0], np.sort(rng.uniform(0.05, 0.95, M - 1)), [1.0]])
    beta = rng.uniform(0.0, 20.0, M)
    beta[rng.integers(M)] = 0.0  # one Brownian piece
    return MFPIDProtocol(beta, rng.normal(size=(M, d)), br)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_boundary_identities(seed):
    """c^-_0 = a^+_1, theta_y,0 = theta^+_1 (so K_0 = 0), lambda_x = a^- - b^-."""
    co = GreenCoefficients(_random_protocol(seed))
    assert co.c_minus_0 == pytest.approx(co.a_plus_1, rel=1e-13)
    np.testing.assert_allclose(co.theta_y_0, co.theta_plus_1, rtol=1e-12, atol=1e-13)
    assert co.lam_y_0 == pytest.approx(co.lam_plus_1, rel=1e-12)
    t = np.linspace(0.0, 0.99, 37)
    bw, sh = co.backward(t), co.shift(t)
    np.testing.assert_allclose(sh.lam_x, bw.a - bw.b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("beta", [0.0, 1e-9, 2.5, 30.0])
def test_constant_protocol_reduces_to_closed_forms(beta):
    nu = np.array([0.7, -1.2])
    co = GreenCoefficients(MFPIDProtocol([beta] * 5, nu))
    t = np.linspace(0.01, 0.99, 23)
    ref = constant_beta_coefficients(t, beta, nu)
    bw, fw = co.backward(t), co.forward(t)
    for key, val in (("a_minus", bw.a), ("b_minus", bw.b), ("c_minus", bw.c), ("a_plus", fw.a)):
        np.testing.assert_allclose(val, ref[key], rtol=1e-13, err_msg=key)
    for key, val in (("theta_x", bw.theta_x), ("theta_y", bw.theta_y), ("theta_plus", fw.theta)):
        np.testing.assert_allclose(val, ref[key], rtol=1e-12, atol=1e-14, err_msg=key)
    # (a^-)^2 - (b^-)^2 = beta on the last interval
    last = t >= 0.8
    np.testing.assert_allclose(bw.a[last] ** 2 - bw.b[last] ** 2, beta, rtol=0,
                               atol=1e-9 * max(1.0, beta) * (bw.a[last] ** 2).max())


def test_foellmer_limit_beta_zero():
    """beta = 0: a^+ = 1/t, a^- = b^- = c^- = 1/(1-t), theta = 0, u = (yhat - x)/(1-t)."""
    tar = GaussianMixture.diagonal([0.3, 0.7], [[-1.0], [2.0]], [0.4, 0.6])
    eng = MFPID(tar, MFPIDProtocol([0.0, 0.0, 0.0], 5.0))  # the guidance is irrelevant at beta = 0
    co = eng.coefficients
    t = np.linspace(0.05, 0.95, 10)
    bw, fw = co.backward(t), co.forward(t)
    np.testing.assert_allclose(fw.a, 1 / t, rtol=1e-14)
    for v in (bw.a, bw.b, bw.c):
        np.testing.assert_allclose(v, 1 / (1 - t), rtol=1e-14)
    assert np.abs(bw.theta_x).max() < 1e-13 and np.abs(fw.theta).max() < 1e-13
    # the posterior mean of y given x_t for the Brownian bridge from 0, by quadrature in y
    y = np.linspace(-8, 10, 20001)
    x = np.array([-1.5, 0.2, 1.7])
    for tt in (0.2, 0.6, 0.9):
        post = tar.pdf(y)[None, :] * np.exp(-0.5 * (x[:, None] - tt * y[None, :]) ** 2
                                              / (tt * (1 - tt)))
        yhat = (post * y).sum(axis=1) / post.sum(axis=1)
        u = eng.drift(tt, x[:, None])[:, 0]
        np.testing.assert_allclose(u, (yhat - x) / (1 - tt), rtol=1e-10, atol=1e-10)
    # continuity: a tiny stiffness changes the drift by O(beta)
    eng_small = MFPID(tar, MFPIDProtocol([1e-8] * 3, 5.0))
    X = np.array([[0.3], [1.1]])
    np.testing.assert_allclose(eng_small.drift(0.5, X), eng.drift(0.5, X), atol=1e-6)


def _piecewise_ivp(prot, rhs, t_start, t_end, y_start, t_eval, method="DOP853", jac=None):
    """Integrate across the protocol intervals, restarting at every breakpoint."""
    sign = 1.0 if t_end > t_start else -1.0
    inner = [b for b in prot.breaks[1:-1] if (b - t_start) * sign > 0 and (t_end - b) * sign > 0]
    edges = [t_start] + sorted(inner, reverse=sign < 0) + [t_end]
    out = {}
    y = np.asarray(y_start, dtype=float)
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        i = prot.interval(0.5 * (a + b))
        te = sorted({float(t) for t in t_eval if (t - a) * sign >= 0 and (b - t) * sign >= 0}
                    | {float(b)}, reverse=sign < 0)
        extra = {} if jac is None else {"jac": jac}
        sol = solve_ivp(rhs, (a, b), y, method=method, rtol=1e-12, atol=1e-12, t_eval=te,
                        args=(prot.beta[i], prot.nu[i]), **extra)
        for t, col in zip(sol.t, sol.y.T, strict=True):
            out.setdefault(float(t), col)
        y = sol.y[:, -1]
    return np.array([out[float(t)] for t in t_eval])


def _backward_rhs(t, y, be, nu):
    d = nu.size
    a, b = y[0], y[1]
    thx = y[3:3 + d]
    return np.concatenate([[a * a - be, a * b, b * b], a * thx - be * nu, -b * thx])


def _backward_jac(t, y, be, nu):
    d = nu.size
    a, b = y[0], y[1]
    J = np.zeros((y.size, y.size))
    J[0, 0] = 2 * a
    J[1, 0], J[1, 1] = b, a
    J[2, 1] = 2 * b
    for j in range(d):
        J[3 + j, 0], J[3 + j, 3 + j] = y[3 + j], a
        J[3 + d + j, 1], J[3 + d + j, 3 + j] = -y[3 + j], -b
    return J


def _forward_rhs(t, y, be, nu):
    return np.concatenate([[be - y[0] ** 2], -y[0] * y[1:] + be * nu])


def _e2_backward_reference():
    prot, _ = validation_protocol("E2")
    co = GreenCoefficients(prot)
    t_eval = np.array([0.9, 0.75, 0.6, 0.5, 0.3, 0.2, 0.05, 0.0])
    bw = co.backward(t_eval)
    return prot, co, t_eval, np.column_stack([bw.a, bw.b, bw.c, bw.theta_x, bw.theta_y])


def test_pwc_updates_match_ode():
    """The PWC sweeps against DOP853 integrations of the coefficient ODEs (restarted at
    the breakpoints), started from the exact values at t = 0.99 (backward) and 0.01 (forward)."""
    prot, co, t_eval, ref = _e2_backward_reference()
    b0 = co.backward(0.99)
    y0 = np.concatenate([[b0.a[0], b0.b[0], b0.c[0]], b0.theta_x[0], b0.theta_y[0]])
    y = _piecewise_ivp(prot, _backward_rhs, 0.99, 0.0, y0, t_eval)
    np.testing.assert_allclose(y, ref, rtol=1e-9, atol=1e-10)
    t_f = np.array([0.1, 0.2, 0.35, 0.6, 0.8, 1.0])
    f0 = co.forward(0.01)
    y = _piecewise_ivp(prot, _forward_rhs, 0.01, 1.0, np.concatenate([f0.a, f0.theta[0]]), t_f)
    fw = co.forward(t_f)
    np.testing.assert_allclose(y, np.column_stack([fw.a, fw.theta]), rtol=1e-9, atol=1e-10)


@pytest.mark.slow
def test_pwc_updates_match_stiff_ode_from_the_end():
    """Consistency test: a stiff (Radau) integration started at t = 1 - 1e-7 with
    a = b = c = 1e7 and theta = 0 (a start that is itself O(beta * 1e-7) off, hence rtol 1e-6)."""
    prot, co, t_eval, ref = _e2_backward_reference()
    y = _piecewise_ivp(prot, _backward_rhs, 1 - 1e-7, 0.0,
                       np.concatenate([[1e7] * 3, np.zeros(4)]), t_eval, method="Radau",
                       jac=_backward_jac)
    np.testing.assert_allclose(y[:, :3], ref[:, :3], rtol=1e-6)
    np.testing.assert_allclose(y[:, 3:], ref[:, 3:], rtol=1e-6, atol=1e-6)


def test_increasing_stiffness_no_acoth_clamp():
    """Pitfall: beta jumps up so that a^+ < sqrt(beta_new) at the breakpoint; the
    Moebius/tanh update stays exact (an acoth form with a clamp would not)."""
    prot = MFPIDProtocol([0.0, 25.0], 0.0, [0.0, 0.5, 1.0])
    co = GreenCoefficients(prot)
    assert co.forward(0.5).a[0] == pytest.approx(2.0, rel=1e-14)  # < sqrt(25) = 5
    t_f = np.array([0.55, 0.7, 0.9, 1.0])
    y = _piecewise_ivp(prot, _forward_rhs, 0.5, 1.0, np.array([2.0, 0.0]), t_f)
    np.testing.assert_allclose(co.forward(t_f).a, y[:, 0], rtol=1e-10)
    # closed form: a = w (aL + w tanh(w s)) / (w + aL tanh(w s)) with w = 5, aL = 2
    s = t_f - 0.5
    np.testing.assert_allclose(co.forward(t_f).a,
                               5 * (2 + 5 * np.tanh(5 * s)) / (5 + 2 * np.tanh(5 * s)),
                               rtol=1e-14)


# ---------------------------------------------------------------------------------------------
# the drift: u* = grad log psi by an independent Mehler-kernel quadrature
# ---------------------------------------------------------------------------------------------
def _mehler(x, y, beta, nu, tau):
    """Normalised kernel of 1/2 d_xx - beta/2 (x - nu)^2 over a time tau (beta > 0)."""
    w = np.sqrt(beta)
    X, Y = x - nu, y - nu
    sh, ch = np.sinh(w * tau), np.cosh(w * tau)
    return np.sqrt(w / (2 * np.pi * sh)) * np.exp(-w * ((X**2 + Y**2) * ch - 2 * X * Y) / (2 * sh))


def test_drift_is_grad_log_psi_by_kernel_quadrature():
    """psi_t(x) = int G^-_t(x|y) p_tar(y) / G^+_1(y|0) dy, with both kernels composed from
    normalised Mehler kernels of the two intervals (no coefficient formula involved), then
    u* = d/dx log psi by central differences."""
    beta, nu, t1 = (4.0, 1.0), (0.3, 1.0), 0.6
    tar = GaussianMixture.diagonal([0.6, 0.4], [[0.0], [2.0]], [0.25, 0.35])
    eng = MFPID(tar, MFPIDProtocol(beta, np.array(nu)[:, None], [0.0, t1, 1.0]))
    x1 = np.linspace(-6, 8, 2801)
    y = np.linspace(-3, 5, 1601)
    h1, hy = x1[1] - x1[0], y[1] - y[0]
    # forward kernel to the end: G^+_1(y|0) = int M1(y, x1; 1 - t1) M0(x1, 0; t1) dx1
    g_plus = (_mehler(y[:, None], x1[None, :], beta[1], nu[1], 1 - t1)
              @ _mehler(x1, 0.0, beta[0], nu[0], t1)) * h1
    psi1 = tar.pdf(y) / g_plus
    inner = _mehler(x1[:, None], y[None, :], beta[1], nu[1], 1 - t1) @ psi1 * hy  # psi_{t1}(x1)
    for t in (0.3, 0.45):
        x = np.array([-0.5, 0.4, 1.3, 2.2])
        h = 1e-4
        xs = np.concatenate([x - h, x + h])
        psi = _mehler(xs[:, None], x1[None, :], beta[0], nu[0], t1 - t) @ inner * h1
        lp = np.log(psi)
        u_fd = (lp[x.size:] - lp[:x.size]) / (2 * h)
        np.testing.assert_allclose(eng.drift(t, x[:, None])[:, 0], u_fd, rtol=0, atol=2e-7)
    # a time on the last interval: psi_t = int M1(x, y; 1 - t) psi_1(y) dy
    t = 0.8
    x = np.array([0.1, 1.0, 1.9])
    xs = np.concatenate([x - h, x + h])
    lp = np.log(_mehler(xs[:, None], y[None, :], beta[1], nu[1], 1 - t) @ psi1)
    np.testing.assert_allclose(eng.drift(t, x[:, None])[:, 0],
                               (lp[x.size:] - lp[:x.size]) / (2 * h), rtol=0, atol=2e-7)


def test_drift_full_covariance_matches_diagonal_and_weights():
    tar = GaussianMixture.diagonal([0.2, 0.5, 0.3], [[0, 1.0, 2], [2, -1, 0], [1, 1, 1]],
                                   [[0.2, 0.5, 0.1], [0.4, 0.3, 0.2], [0.3, 0.3, 0.3]])
    eng = MFPID(tar, MFPIDProtocol([3.0, 2.0, 0.5], np.arange(9.0).reshape(3, 3) / 9))
    rng = np.random.default_rng(3)
    x, z = rng.normal(size=(50, 3)), rng.normal(size=(50, 3))
    f_diag = eng.drift_factors([0.37])
    f_dense = eng.drift_factors([0.37], diagonal=False)
    assert f_diag.diagonal and not f_dense.diagonal
    u1, w1 = eng.drift(0.37, x, z, factors=f_diag, return_weights=True)
    u2, w2 = eng.drift(0.37, x, z, factors=f_dense, return_weights=True)
    np.testing.assert_allclose(u1, u2, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(w1.sum(axis=1), 1.0, rtol=1e-15)
    np.testing.assert_allclose(w1, w2, rtol=1e-12, atol=1e-15)


def test_start_shift_drift_equals_the_shifted_problem():
    """Start shift: u*(t, x; z) = u~*(t, x - z) of the problem with target m_k - z, guidance
    nu - z and a Dirac start at 0 -- the shift propagators against a direct re-solve."""
    prot, _ = validation_protocol("E2")
    tar = validation_target()
    eng = MFPID(tar, prot)
    rng = np.random.default_rng(7)
    for z in rng.normal(scale=2.0, size=(3, 2)):
        shifted = MFPID(GaussianMixture(tar.weights, tar.means - z, tar.covs),
                        prot.with_nu(prot.nu - z))
        x = rng.normal(size=(20, 2)) + z
        for t in (0.01, 0.3, 0.6, 0.97):
            np.testing.assert_allclose(eng.drift(t, x, np.tile(z, (20, 1))),
                                       shifted.drift(t, x - z), rtol=1e-11, atol=1e-11)


# ---------------------------------------------------------------------------------------------
# marginals (bridge form, published precision form, start shift)
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("t", [1e-3, 0.2, 0.5, 0.77, 0.999])
def test_published_and_bridge_marginals_agree(t):
    prot, _ = validation_protocol("E2")
    eng = MFPID(validation_target(), prot)
    g1, g2 = eng.marginal(t), eng.marginal_published(t)
    np.testing.assert_allclose(g2.weights, g1.weights, rtol=0, atol=1e-12)
    np.testing.assert_allclose(g2.means, g1.means, rtol=0, atol=1e-12)
    np.testing.assert_allclose(g2.covs, g1.covs, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("name", ["E1", "E2"])
def test_score_identity(name):
    """grad log p*_t(x) = u*_t(x) - a^+_t x + theta^+_t for the Dirac start."""
    prot, _ = validation_protocol(name)
    eng = MFPID(validation_target(), prot)
    rng = np.random.default_rng(1)
    for t in (0.05, 0.3, 0.6, 0.95):
        x = rng.normal(size=(40, 2)) * 1.5 + 0.5
        fw = eng.coefficients.forward(t)
        lhs = eng.marginal(t).score(x)
        rhs = eng.drift(t, x) - fw.a[0] * x + fw.theta[0]
        np.testing.assert_allclose(lhs, rhs, rtol=1e-10, atol=1e-10)


def test_marginal_integrates_to_one_and_tends_to_target():
    prot, _ = validation_protocol("E2")
    tar = validation_target()
    eng = MFPID(tar, prot)
    g = np.linspace(-4.0, 6.0, 401)
    X, Y = np.meshgrid(g, g, indexing="ij")
    pts = np.stack([X.ravel(), Y.ravel()], axis=1)
    cell = (g[1] - g[0]) ** 2
    for t in (0.1, 0.5, 0.9):
        assert eng.marginal_published(t).pdf(pts).sum() * cell == pytest.approx(1.0, abs=1e-8)
    p_tar = tar.pdf(pts)
    l1 = [np.abs(eng.marginal(t).pdf(pts) - p_tar).sum() * cell
          for t in (0.9, 0.99, 0.999, 0.9999)]
    assert np.all(np.diff(l1) < 0) and l1[-1] < 2e-3
    # parameters: B -> 1, c -> 0, s -> 0
    br = eng.bridge([1 - 1e-9])
    assert abs(br.B[0] - 1) < 1e-8 and np.abs(br.c).max() < 1e-8 and br.s2[0] < 2e-9


def test_gm_start_marginal_is_the_shifted_bridge():
    """For a start z the marginal is the Dirac-at-0 marginal of the problem shifted by -z
    (target means m_k - z, guidance nu - z), translated back by z; the GM-start marginal is
    its mixture over the start components."""
    prot, _ = validation_protocol("E2")
    tar = validation_target()
    eng = MFPID(tar, prot)
    z = np.array([1.7, -0.6])
    shifted = MFPID(GaussianMixture(tar.weights, tar.means - z, tar.covs),
                    prot.with_nu(prot.nu - z))
    for t in (0.1, 0.4, 0.8):
        g1 = eng.marginal(t, z)
        g0 = shifted.marginal(t)
        np.testing.assert_allclose(g1.means, g0.means + z, atol=1e-12)
        np.testing.assert_allclose(g1.covs, g0.covs, atol=1e-13)
        # the published (independent) weights of the shifted problem equal pi_k
        np.testing.assert_allclose(shifted.marginal_published(t).weights, tar.weights,
                                   atol=1e-12)
    p_in = GaussianMixture([0.5, 0.5], [[3.0, 3.0], [-1.0, 0.0]], [np.eye(2) * 0.3,
                                                                  np.eye(2) * 0.1])
    g = eng.marginal(0.4, p_in)
    assert g.n_components == 6
    mean_expected = eng.mean(0.4, p_in.mean)
    np.testing.assert_allclose(g.mean, mean_expected, atol=1e-12)


def test_terminal_responsibilities_equal_weights_for_any_start_and_guidance():
    tar = GaussianMixture.diagonal([0.6, 0.4], [[0.0], [2.0]], [0.25, 0.35])
    rng = np.random.default_rng(4)
    for _ in range(4):
        z = rng.normal(scale=2.0)
        nu = rng.normal(size=(4, 1))
        eng = MFPID(GaussianMixture(tar.weights, tar.means - z, tar.covs),
                    MFPIDProtocol(geometric_beta(4), nu - z))
        for t in (0.3, 0.9, 0.999):
            np.testing.assert_allclose(eng.marginal_published(t).weights, tar.weights,
                                       atol=1e-11)


# ---------------------------------------------------------------------------------------------
# the linear-guidance theorem, deterministic
# ---------------------------------------------------------------------------------------------
def _line_deviation(p_in, tar, M, guidance="mf"):
    br = np.linspace(0.0, 1.0, M + 1)
    beta = geometric_beta(M)  # 12 * 0.65^(8 i / M): the same continuous profile for every M
    if guidance == "mf":
        nu = linear_guidance(br, p_in.mean, tar.mean)
    else:
        nu = np.zeros((M, tar.dim))
    eng = MFPID(tar, MFPIDProtocol(beta, nu, br))
    t = np.linspace(1e-4, 1 - 1e-4, 2001)
    line = (1 - t)[:, None] * p_in.mean + t[:, None] * tar.mean
    return np.abs(eng.mean(t, p_in.mean) - line).max()


def test_theorem_deviation_falls_like_m_to_minus_two():
    p_in, tar = scenario_d_sweep(2)
    Ms = np.array([8, 16, 32, 64, 128])
    dev = np.array([_line_deviation(p_in, tar, M) for M in Ms])
    slope = np.polyfit(np.log(Ms), np.log(dev), 1)[0]
    assert slope == pytest.approx(-2.0, abs=0.1)
    assert dev[0] < 0.01 * np.linalg.norm(tar.mean - p_in.mean)
    # the independent-agent baseline nu = 0 is visibly curved, and does not improve with M
    dev_ia = [_line_deviation(p_in, tar, M, "zero") for M in (8, 64)]
    assert min(dev_ia) > 0.2 * np.abs(tar.mean - p_in.mean).max()


def test_kernel_identities_for_exactly_linear_guidance():
    """A_t + c_t[1 - t] = 1 - t and B_t + c_t[t] = t when nu is exactly linear (ODE for theta)."""
    prot = MFPIDProtocol(geometric_beta(8), 0.0)
    co = GreenCoefficients(prot)

    def c_of(g, t_eval):
        # theta^+ forward from 0 and theta_x backward from 1 with the continuous guidance g(t)
        def f_rhs(t, y):
            return [-co.forward(t).a[0] * y[0] + prot.beta_at(t) * g(t)]

        def b_rhs(t, y):
            return [co.backward(t).a[0] * y[0] - prot.beta_at(t) * g(t)]

        tp = solve_ivp(f_rhs, (1e-9, 0.9), [0.0], rtol=1e-11, atol=1e-13, t_eval=t_eval,
                       method="LSODA").y[0]
        tx = solve_ivp(b_rhs, (1 - 1e-9, 0.1), [0.0], rtol=1e-11, atol=1e-13,
                       t_eval=t_eval[::-1], method="LSODA").y[0][::-1]
        D = co.forward(t_eval).a + co.backward(t_eval).a
        return (tp + tx) / D

    t = np.array([0.1, 0.3, 0.5, 0.7, 0.9])
    bw, fw, sh = co.backward(t), co.forward(t), co.shift(t)
    D = fw.a + bw.a
    A, B = (fw.a - sh.lam_plus) / D, bw.b / D
    np.testing.assert_allclose(A + c_of(lambda s: 1 - s, t), 1 - t, atol=1e-8)
    np.testing.assert_allclose(B + c_of(lambda s: s, t), t, atol=1e-8)


@pytest.mark.parametrize("initial", ["line", "perturbed"])
def test_exact_fixed_point_converges_to_the_line(initial):
    p_in, tar = scenario_1d("A")
    M = 8
    fp = fixed_point_guidance(tar, p_in, geometric_beta(M), estimator="exact",
                              initial=initial, tol=1e-12, max_iter=200)
    assert fp.converged
    # geometric convergence of the damped map
    h = np.array(fp.history)
    assert np.all(h[5:] < h[4:-1])
    # the fixed point is the midpoint line up to the O(M^-2) PWC error
    dm = abs(tar.mean[0] - p_in.mean[0])
    assert np.abs(fp.nu - fp.line).max() < 0.02 * dm


# ---------------------------------------------------------------------------------------------
# quadrature of the energy, validation
# ---------------------------------------------------------------------------------------------
def test_energy_quadrature_converges():
    p_in, tar = scenario_1d("B")
    eng = MFPID(tar, MFPIDProtocol(geometric_beta(8), linear_guidance(np.linspace(0, 1, 9),
                                                                 p_in.mean, tar.mean)))
    # time rule: converged to ~1e-11; Gauss-Hermite in space: ~1e-5 (the mixture weights
    # switch over a width ~ sqrt(1 - t) near the end)
    e1 = eng.energy_quadrature(p_in, n_hermite=16, n_legendre=8)["energy"]
    e2 = eng.energy_quadrature(p_in, n_hermite=16, n_legendre=12, grading=2.0)["energy"]
    e3 = eng.energy_quadrature(p_in, n_hermite=32, n_legendre=8)["energy"]
    assert e1 == pytest.approx(e2, rel=1e-8)
    assert e1 == pytest.approx(e3, rel=5e-5)
    # the mean channel bounds the energy from below: E >= |m_tar - m_in|^2 (on [eps, 1-eps])
    assert e2 > 0.99 * (tar.mean[0] - p_in.mean[0]) ** 2


def test_time_quadrature_is_exact_for_polynomials():
    nodes, w = time_quadrature([0, 0.25, 0.5, 1.0], 1e-3, 6)
    assert w.sum() == pytest.approx(1 - 2e-3, rel=1e-14)
    assert w @ nodes**5 == pytest.approx(((1 - 1e-3) ** 6 - 1e-18) / 6, rel=1e-13)


def test_validation_errors():
    with pytest.raises(ValueError, match="beta"):
        MFPIDProtocol([-1.0, 2.0])
    with pytest.raises(ValueError, match="breaks"):
        MFPIDProtocol([1.0, 2.0], 0.0, [0.0, 0.7, 0.6])
    with pytest.raises(ValueError, match="weights"):
        GaussianMixture([0.5, 0.6], [0.0, 1.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="positive semi-definite"):
        GaussianMixture([1.0], [[0.0, 0.0]], [[[1.0, 0.0], [0.0, -1.0]]])
    eng = MFPID(GaussianMixture.diagonal([1.0], [[0.0, 0.0]], [1.0]),
                MFPIDProtocol(1.0, 0.0, dim=2))
    with pytest.raises(ValueError, match="t contains"):
        eng.drift_factors([0.5, 1.0])
    with pytest.raises(ValueError, match="x has shape"):
        eng.drift(0.5, np.zeros((3, 3)))
    with pytest.raises(TypeError, match="protocol"):
        MFPID(GaussianMixture.diagonal([1.0], [[0.0, 0.0]], [1.0]), "beta=1")
    with pytest.raises(ValueError, match="dimension"):
        MFPID(GaussianMixture.diagonal([1.0], [[0.0, 0.0]], [1.0]), MFPIDProtocol(1.0, 0.0))
