"""FDDiscretisation (finite horizon): residual, Jacobian, adjointness, mass, positivity, solves."""

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hst

from mfg_solvers import (
    Congestion,
    Domain,
    Grid,
    LocalCoupling,
    MeanCoupling,
    MFGProblem,
    NonlocalCoupling,
    PowerLaw,
    Quadratic,
)
from mfg_solvers.fd import FDDiscretisation, FDPolicy

BOUNDS = {1: (0.0, 1.0), 2: [(0.0, 1.0), (0.0, 1.0)], 3: [(0.0, 1.0)] * 3}
SHAPES = {1: 9, 2: (5, 4), 3: (3, 4, 3)}


def _potential(*x):
    return sum(np.cos(2 * np.pi * xi) * (k + 1) * 0.3 for k, xi in enumerate(x))


def _m0(*x):
    return 1.0 + 0.4 * np.prod([np.sin(2 * np.pi * xi + k) for k, xi in enumerate(x)], axis=0)


def make(dim=1, boundary="periodic", hamiltonian=None, coupling="linear", nu=0.2, nt=5,
         terminal_coupling=None, T=0.5, shape=None, linear_solver="auto", preconditioner="auto"):
    dom = Domain(BOUNDS[dim], boundary)
    if coupling == "linear":
        coupling = LocalCoupling("linear", 0.7)
    elif coupling == "log":
        coupling = LocalCoupling("log", 0.3)
    prob = MFGProblem(dom, nu=nu, hamiltonian=hamiltonian, coupling=coupling, T=T,
                      potential=_potential, m0=_m0,
                      terminal_cost=lambda *x: 0.2 * np.sin(2 * np.pi * x[0]),
                      terminal_coupling=terminal_coupling)
    grid = Grid(BOUNDS[dim], SHAPES[dim] if shape is None else shape, boundary)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return FDDiscretisation(prob, grid, nt, linear_solver=linear_solver,
                                preconditioner=preconditioner)


def random_state(D, seed=0, amp=1.0):
    """A smooth-ish random state with M > 0."""
    rng = np.random.default_rng(seed)
    nt1, N = D.nt + 1, D.size
    U = amp * rng.standard_normal((nt1, N))
    M = rng.uniform(0.5, 1.5, (nt1, N))
    M[0] = D.m0
    return U, M


def unknown_vector(D, state):
    U, M = state
    nU = D.nt + 1 if D.terminal_unknown else D.nt
    return np.concatenate([U[:nU].ravel(), M[1:].ravel()])


def state_from_vector(D, x, base):
    U, M = base[0].copy(), base[1].copy()
    nU = D.nt + 1 if D.terminal_unknown else D.nt
    N = D.size
    U[:nU] = x[: nU * N].reshape(nU, N)
    M[1:] = x[nU * N :].reshape(D.nt, N)
    return U, M


def residual_vector(D, state):
    return np.concatenate([r.ravel() for r in D.residual(state)])


CASES = [
    dict(dim=1, boundary="periodic"),
    dict(dim=1, boundary="neumann"),
    dict(dim=2, boundary=("periodic", "neumann")),
    dict(dim=3, boundary=("neumann", "periodic", "neumann")),
    dict(dim=1, hamiltonian=PowerLaw(1.7)),
    dict(dim=2, hamiltonian=PowerLaw(2.6), boundary="neumann"),
    dict(dim=1, hamiltonian=Congestion(0.5, 0.8), coupling="log"),
    dict(dim=2, hamiltonian=Congestion(1.0, 1.0)),
    dict(dim=1, coupling=NonlocalCoupling(lambda dx: np.exp(-(dx**2) / 0.05), 0.5)),
    dict(dim=1, boundary="neumann", coupling=MeanCoupling(q=1.3, kappa=0.6),
         terminal_coupling=MeanCoupling(q=0.5, kappa=0.3)),
    dict(dim=1, terminal_coupling=LocalCoupling("linear", 0.4)),
    dict(dim=1, nu=0.0),
    dict(dim=1, coupling=None),
]
CASE_IDS = [
    "1d-per", "1d-neu", "2d-mix", "3d-mix", "power1.7", "2d-power2.6", "congestion-log",
    "2d-congestion", "nonlocal", "mean+terminal-mean", "terminal-local", "nu0", "no-coupling",
]


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_jacobian_matches_finite_differences(case):
    D = make(**case)
    state = random_state(D, seed=1)
    J = D.jacobian(state).toarray()
    x0 = unknown_vector(D, state)
    rng = np.random.default_rng(2)
    eps = 1e-7
    for _ in range(3):
        v = rng.standard_normal(x0.size)
        rp = residual_vector(D, state_from_vector(D, x0 + eps * v, state))
        rm = residual_vector(D, state_from_vector(D, x0 - eps * v, state))
        fd = (rp - rm) / (2 * eps)
        Jv = J @ v
        assert np.max(np.abs(Jv - fd)) <= 1e-6 * max(1.0, np.max(np.abs(Jv)))


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_krylov_and_direct_newton_directions_agree(case):
    Dk = make(linear_solver="krylov", **case)
    Dd = make(linear_solver="direct", **case)
    state = random_state(Dk, seed=3, amp=0.3)
    dk = Dk.newton_direction(state)
    dd = Dd.newton_direction(state)
    scale = max(np.max(np.abs(dd[0])), np.max(np.abs(dd[1])))
    np.testing.assert_allclose(dk[0], dd[0], rtol=0, atol=1e-8 * scale)
    np.testing.assert_allclose(dk[1], dd[1], rtol=0, atol=1e-8 * scale)
    # and the direction solves J d = -R
    J = Dd.jacobian(state)
    d = np.concatenate([dd[0][: (Dd.nt + Dd.terminal_unknown)].ravel(), dd[1][1:].ravel()])
    r = residual_vector(Dd, state)
    assert np.max(np.abs(J @ d + r)) <= 1e-9 * max(1.0, np.max(np.abs(r)))


@pytest.mark.parametrize("case", CASES[:8], ids=CASE_IDS[:8])
def test_fp_operator_is_the_exact_transpose_of_the_linearised_hjb(case):
    """d(R_M^{n+1})/d(M^{n+1}) = (d(R_U^n)/d(U^n))^T (for m-independent H) to 1e-12."""
    D = make(**case)
    state = random_state(D, seed=4)
    J = D.jacobian(state).tocsr()
    N, nt = D.size, D.nt
    nU = nt + 1 if D.terminal_unknown else nt
    for n in range(nt):
        LUU = J[n * N : (n + 1) * N, n * N : (n + 1) * N].toarray()
        KMM = J[(nU + n) * N : (nU + n + 1) * N, (nU + n) * N : (nU + n + 1) * N].toarray()
        if D.ham.depends_on_m:
            # congestion: K = (I/dt - nu Lap + diag(w + M w') A0)^T, L = I/dt - nu Lap + diag(w) A0
            continue
        np.testing.assert_allclose(KMM, LUU.T, rtol=0, atol=1e-12 * np.max(np.abs(LUU)))
    # FP transport = transpose of A(U): <A(U) W, M> = <W, A(U)^T M>
    U, M = state
    rng = np.random.default_rng(5)
    W = rng.standard_normal(N)
    q = D._slots(U[:1])
    _, dg = D._ham(q, M[1:2])
    AW = np.sum(dg[0] * D._slots(W[None])[0], axis=-1)
    ATM = D._adjoint(M[1][None, :, None] * dg)[0]
    assert np.dot(AW, M[1]) == pytest.approx(np.dot(W, ATM), rel=1e-12, abs=1e-12)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=hst.integers(0, 2**31 - 1), dim=hst.sampled_from([1, 2]),
       boundary=hst.sampled_from(["periodic", "neumann"]), nu=hst.sampled_from([0.0, 0.05, 0.3]),
       kind=hst.sampled_from(["quadratic", "power", "congestion"]))
def test_fp_conserves_mass_and_positivity_on_random_data(seed, dim, boundary, nu, kind):
    ham = {"quadratic": Quadratic(), "power": PowerLaw(1.6), "congestion": Congestion(0.3, 0.9)}
    D = make(dim=dim, boundary=boundary, nu=nu, hamiltonian=ham[kind], nt=6)
    rng = np.random.default_rng(seed)
    U = 3.0 * rng.standard_normal((D.nt + 1, D.size))
    M = D.solve_fp(U)
    mass = M.sum(axis=1) * D.grid.cell_volume
    np.testing.assert_allclose(mass, 1.0, rtol=0, atol=1e-12)
    assert np.all(M >= 0.0)
    # frozen-policy FP: same properties
    Mp = D.solve_fp_policy(D.policy(U, M))
    np.testing.assert_allclose(Mp.sum(axis=1) * D.grid.cell_volume, 1.0, rtol=0, atol=1e-12)
    assert np.all(Mp >= 0.0)
    # and the FP residual vanishes for the computed M
    RM = D.residual((U, M))[1]
    assert np.max(np.abs(RM)) <= 1e-9 * max(1.0, np.max(np.abs(M)) / D.dt)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_solve_hjb_and_solve_fp_zero_their_residuals(case):
    D = make(**case)
    U0, M0 = random_state(D, seed=6)
    U = D.solve_hjb(M0)
    RU = D.residual((U, M0))[0]
    scale = max(1.0, np.max(np.abs(U)) / D.dt)
    assert np.max(np.abs(RU)) <= 1e-10 * scale
    M = D.solve_fp(U)
    np.testing.assert_allclose(M[0], D.m0)
    assert np.max(np.abs(D.residual((U, M))[1])) <= 1e-10 * max(1.0, np.max(M) / D.dt)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_policy_solves_reproduce_the_nonlinear_solves(case):
    """With the policy of U* = HJB(M), the linear HJB returns U*; FP(policy) = FP(U*)."""
    D = make(**case)
    _, M = random_state(D, seed=7)
    U = D.solve_hjb(M)
    P = D.policy(U, M)
    assert isinstance(P, FDPolicy)
    Up = D.solve_hjb_policy(P, M)
    np.testing.assert_allclose(Up, U, rtol=0, atol=1e-9 * max(1.0, np.max(np.abs(U))))
    if not D.ham.depends_on_m:
        np.testing.assert_allclose(D.solve_fp_policy(P), D.solve_fp(U), rtol=0, atol=1e-11)


def _newton(D, tol=1e-10, maxit=15):
    state = D.initial_guess()
    hist = [D.residual_norm(state)]
    while hist[-1] >= tol and len(hist) <= maxit:
        dU, dM = D.newton_direction(state)
        state = (state[0] + dU, state[1] + dM)
        hist.append(D.residual_norm(state))
    return state, hist


def periodic_benchmark():
    dom = Domain((0.0, 1.0), "periodic")
    return MFGProblem(dom, nu=0.1, coupling=LocalCoupling("linear"), T=1.0,
                      potential=lambda x: -np.cos(2 * np.pi * x),
                      m0=lambda x: 1 + 0.5 * np.cos(2 * np.pi * (x - 0.25)))


@pytest.mark.parametrize("n", [50, 100])
def test_periodic_benchmark_newton(n):
    D = FDDiscretisation(periodic_benchmark(), Grid((0.0, 1.0), n, "periodic"), n)
    state, hist = _newton(D, tol=1e-9)
    assert len(hist) - 1 <= 6
    assert hist[1] > hist[0]  # the residual rises after the first full step (periodic benchmark)
    assert hist[-1] < 1e-9
    # quadratic tail
    assert hist[-1] < 10 * hist[-2] ** 2 + 1e-11
    U, M = state
    np.testing.assert_allclose(M.sum(axis=1) / n, 1.0, rtol=0, atol=1e-12)
    assert np.all(M >= 0.0)
    assert M.min() == pytest.approx(0.40, abs=0.02)


def test_periodic_benchmark_residual_history_at_200():
    D = FDDiscretisation(periodic_benchmark(), Grid((0.0, 1.0), 200, "periodic"), 200)
    _, hist = _newton(D, tol=1e-9)
    ref = [2.1, 14, 6.3, 0.24, 1.5e-3, 9.2e-10]
    assert len(hist) == len(ref)
    for h, r in zip(hist[:5], ref[:5], strict=True):
        assert h == pytest.approx(r, rel=0.05)
    assert hist[5] < 1e-9


def test_newton_solution_is_the_same_for_both_linear_solvers():
    sols = {}
    for ls in ("direct", "krylov"):
        D = FDDiscretisation(periodic_benchmark(), Grid((0.0, 1.0), 40, "periodic"), 30,
                             linear_solver=ls)
        sols[ls], hist = _newton(D, tol=1e-11)
        assert hist[-1] < 1e-11
    np.testing.assert_allclose(sols["direct"][0], sols["krylov"][0], rtol=0, atol=1e-10)
    np.testing.assert_allclose(sols["direct"][1], sols["krylov"][1], rtol=0, atol=1e-10)


def test_newton_converges_in_2d_and_policy_iteration_agrees():
    D = make(dim=2, boundary=("periodic", "neumann"), shape=(8, 7), nt=6, nu=0.3)
    state, hist = _newton(D, tol=1e-10)
    assert hist[-1] < 1e-10 and len(hist) <= 10
    # policy iteration from the same cold start reaches the same discrete solution
    U, M = D.initial_guess()
    for _ in range(60):
        P = D.policy(U, M)
        M = D.solve_fp_policy(P)
        U = D.solve_hjb_policy(P, M)
        if D.residual_norm((U, M)) < 1e-10:
            break
    assert D.residual_norm((U, M)) < 1e-10
    np.testing.assert_allclose(U, state[0], rtol=0, atol=1e-8)
    np.testing.assert_allclose(M, state[1], rtol=0, atol=1e-8)


def test_terminal_coupling_unknown_and_direction_layout():
    D = make(terminal_coupling=LocalCoupling("linear", 0.4))
    state, hist = _newton(D)
    assert hist[-1] < 1e-10
    U, M = state
    np.testing.assert_allclose(U[-1], D.g_terminal + 0.4 * M[-1], rtol=0, atol=1e-10)
    dU, dM = D.newton_direction(D.initial_guess())
    assert dU.shape == dM.shape == (D.nt + 1, D.size)
    assert np.all(dM[0] == 0.0)


def test_to_solution_and_control():
    D = make(dim=2, boundary="periodic", shape=(6, 5), nt=4)
    U, M = random_state(D, seed=8)
    sol = D.to_solution((U, M), solver="test", iterations=3, residual_history=[1.0, 0.1])
    assert sol.u.shape == (5, 6, 5) and sol.m.shape == (5, 6, 5)
    assert sol.control.shape == (5, 6, 5, 2)
    np.testing.assert_allclose(sol.t, np.linspace(0, D.problem.T, 5))
    np.testing.assert_allclose(sol.residual_history, [1.0, 0.1])
    assert sol.attrs["solver"] == "test" and "time_assembly" in sol.attrs
    # control = -(dg_fwd + dg_bwd) per axis; for an exactly linear U along x it is -u_x
    D1 = make(dim=1, boundary="neumann", shape=11, nt=3)
    x = D1.grid.axes[0]
    U1 = np.tile(2.0 * x, (4, 1))
    c = D1.control((U1, np.tile(D1.m0, (4, 1))))
    np.testing.assert_allclose(c[:, 1:-1, 0], -2.0, rtol=1e-12)


def test_with_viscosity():
    D = make(nu=0.2)
    D2 = D.with_viscosity(0.5)
    assert D2.nu == 0.5 and D.nu == 0.2 and D2.problem.nu == 0.5 and D.problem.nu == 0.2
    assert D2.nt == D.nt and D2.grid == D.grid
    with pytest.raises(ValueError, match="nu"):
        D.with_viscosity(-1.0)


def test_timings_accumulate():
    D = make()
    state = D.initial_guess()
    D.newton_direction(state)
    assert D.timings["assembly"] > 0.0 and D.timings["linear_solve"] > 0.0
    assert D.stats["newton_directions"] == 1


def test_bad_input():
    prob = periodic_benchmark()
    grid = Grid((0.0, 1.0), 10, "periodic")
    with pytest.raises(ValueError, match="nt"):
        FDDiscretisation(prob, grid, None)
    with pytest.raises(ValueError, match="nt"):
        FDDiscretisation(prob, grid, 0)
    with pytest.raises(ValueError, match="nt"):
        FDDiscretisation(prob, grid, 2.5)
    with pytest.raises(ValueError, match="domain"):
        FDDiscretisation(prob, Grid((0.0, 2.0), 10, "periodic"), 5)
    with pytest.raises(ValueError, match="domain"):
        FDDiscretisation(prob, Grid((0.0, 1.0), 10, "neumann"), 5)
    with pytest.raises(ValueError, match="linear_solver"):
        FDDiscretisation(prob, grid, 5, linear_solver="lu")
    with pytest.raises(TypeError, match="problem"):
        FDDiscretisation("problem", grid, 5)
    with pytest.raises(TypeError, match="grid"):
        FDDiscretisation(prob, (0.0, 1.0), 5)
    D = FDDiscretisation(prob, grid, 5)
    with pytest.raises(ValueError, match="shape"):
        D.residual((np.zeros((5, 10)), np.zeros((6, 10))))
    with pytest.raises(ValueError, match="tuple"):
        D.residual(np.zeros((6, 10)))
    with pytest.raises(TypeError, match="FDPolicy"):
        D.solve_fp_policy("policy")
    Dc = make(hamiltonian=Congestion())
    with pytest.raises(ValueError, match="M=None"):
        Dc.policy(Dc.initial_guess()[0])


@pytest.mark.parametrize(
    "case",
    [dict(dim=2, boundary=("periodic", "neumann"), shape=(9, 8)),
     dict(dim=3, boundary=("neumann", "periodic", "periodic"), shape=(5, 4, 6)),
     dict(dim=2, boundary="neumann", shape=(8, 8), hamiltonian=Congestion(0.5, 0.5),
          terminal_coupling=LocalCoupling("linear", 0.3))],
    ids=["2d", "3d", "2d-congestion-terminal"],
)
def test_heat_preconditioned_krylov_matches_direct(case):
    Dh = make(preconditioner="heat", **case)
    Dd = make(linear_solver="direct", **case)
    state = random_state(Dh, seed=9, amp=0.02)  # mild gradients: the heat part dominates
    dh, dd = Dh.newton_direction(state), Dd.newton_direction(state)
    assert Dh.stats["heat_fallbacks"] == 0 and Dh.stats["krylov_iterations"][0] < 60
    scale = max(np.max(np.abs(dd[0])), np.max(np.abs(dd[1])))
    np.testing.assert_allclose(dh[0], dd[0], rtol=0, atol=1e-8 * scale)
    np.testing.assert_allclose(dh[1], dd[1], rtol=0, atol=1e-8 * scale)


def test_heat_preconditioner_falls_back_to_exact_sweeps_when_transport_dominates():
    kw = dict(dim=2, boundary="periodic", shape=(10, 10), nu=0.002)
    Dh = make(preconditioner="heat", **kw)
    Dd = make(linear_solver="direct", **kw)
    state = random_state(Dh, seed=10, amp=1.0)
    dh, dd = Dh.newton_direction(state), Dd.newton_direction(state)
    assert Dh.stats["heat_fallbacks"] == 1
    scale = max(np.max(np.abs(dd[0])), np.max(np.abs(dd[1])))
    np.testing.assert_allclose(dh[1], dd[1], rtol=0, atol=1e-8 * scale)
    with pytest.raises(ValueError, match="preconditioner"):
        make(preconditioner="heat", nu=0.0)
    with pytest.raises(ValueError, match="preconditioner"):
        make(preconditioner="multigrid")
