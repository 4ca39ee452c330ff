"""Stencil tables, stencil matrices, tridiagonal solves and block sweeps."""

import numpy as np
import pytest
import scipy.sparse as sp

from mfg_solvers import Grid
from mfg_solvers.fd import kernels as K
from mfg_solvers.fd.linear_solvers import StepMatrices, gmres
from mfg_solvers.fd.stencil import Stencil

GRIDS = [
    Grid((0.0, 1.0), 7, "periodic"),
    Grid((0.0, 1.0), 6, "neumann"),
    Grid([(0.0, 1.0), (0.0, 2.0)], (5, 4), ("periodic", "neumann")),
    Grid([(0.0, 1.0), (0.0, 1.0), (-1.0, 1.0)], (3, 4, 5), ("neumann", "periodic", "periodic")),
]
IDS = ["1d-periodic", "1d-neumann", "2d-mixed", "3d-mixed"]


def _random_coef(st, rng, shift=3.0, nu=0.4, B=1):
    """Stencil coefficients of shift*I - nu*Lap + A(dg) with a monotone random dg."""
    dg = rng.standard_normal((B, st.size, 2 * st.dim))
    dg[..., 0::2] = -np.abs(dg[..., 0::2])
    dg[..., 1::2] = np.abs(dg[..., 1::2])
    coef = np.empty((B, st.size, st.n_entries))
    K.stencil_coefficients(dg, shift, nu, st.nbp, st.nbm, st.inv_h, coef)
    return dg, coef


@pytest.mark.parametrize("grid", GRIDS, ids=IDS)
def test_neighbour_tables(grid):
    st = Stencil(grid)
    idx = np.arange(grid.size).reshape(grid.shape)
    for k in range(grid.dim):
        n = grid.shape[k]
        nxt = st.nbp[k].reshape(grid.shape)
        prv = st.nbm[k].reshape(grid.shape)
        for i in range(n):
            sl = [slice(None)] * grid.dim
            sl[k] = i
            sl = tuple(sl)
            if i + 1 < n:
                np.testing.assert_array_equal(nxt[sl], np.take(idx, i + 1, axis=k))
            else:
                want = np.take(idx, 0, axis=k) if grid.periodic[k] else -1
                np.testing.assert_array_equal(nxt[sl], want)
            if i > 0:
                np.testing.assert_array_equal(prv[sl], np.take(idx, i - 1, axis=k))
            else:
                want = np.take(idx, n - 1, axis=k) if grid.periodic[k] else -1
                np.testing.assert_array_equal(prv[sl], want)


@pytest.mark.parametrize("grid", GRIDS, ids=IDS)
def test_stencil_matrix_forms_agree(grid):
    st = Stencil(grid)
    rng = np.random.default_rng(0)
    _, coef = _random_coef(st, rng)
    A = st.csr(coef[0]).toarray()
    np.testing.assert_allclose(st.csc(coef[0]).toarray(), A, rtol=0, atol=0)
    x = rng.standard_normal((1, grid.size))
    y = np.empty_like(x)
    K.stencil_apply(coef, st.nbp, st.nbm, x, y)
    np.testing.assert_allclose(y[0], A @ x[0], rtol=1e-13, atol=1e-12)
    K.stencil_apply_transpose(coef, st.nbp, st.nbm, x, y)
    np.testing.assert_allclose(y[0], A.T @ x[0], rtol=1e-13, atol=1e-12)
    # Z-matrix with row sums equal to the shift (the M-matrix structure of the scheme)
    off = A - np.diag(np.diag(A))
    assert np.all(off <= 0.0)
    np.testing.assert_allclose(A.sum(axis=1), 3.0, rtol=1e-12)


@pytest.mark.parametrize("grid", GRIDS, ids=IDS)
def test_slot_adjoint_is_transpose_of_slots(grid):
    st = Stencil(grid)
    rng = np.random.default_rng(1)
    U = rng.standard_normal((1, grid.size))
    W = rng.standard_normal((1, grid.size, 2 * grid.dim))
    q = np.empty_like(W)
    K.compute_slots(U, st.nbp, st.nbm, st.inv_h, q)
    out = np.empty_like(U)
    K.slot_adjoint(W, st.nbp, st.nbm, st.inv_h, out)
    assert np.sum(q * W) == pytest.approx(np.sum(U * out), rel=1e-12)
    # the Laplacian is -D_fwd^T D_fwd: symmetric with zero row sums (mass conservation)
    lap = np.empty_like(U)
    ones = np.ones((1, grid.size))
    K.laplacian_apply(ones, st.nbp, st.nbm, st.inv_h, lap)
    np.testing.assert_allclose(lap, 0.0, atol=1e-12)
    V = rng.standard_normal((1, grid.size))
    lapV = np.empty_like(V)
    K.laplacian_apply(U, st.nbp, st.nbm, st.inv_h, lap)
    K.laplacian_apply(V, st.nbp, st.nbm, st.inv_h, lapV)
    assert np.sum(V * lap) == pytest.approx(np.sum(U * lapV), rel=1e-12)


def test_laplacian_of_cosine_is_second_order():
    errs, hs = [], []
    for n in (16, 32, 64, 128):
        grid = Grid((0.0, 1.0), n, "periodic")
        st = Stencil(grid)
        x = grid.axes[0]
        U = np.cos(2 * np.pi * x)[None]
        out = np.empty_like(U)
        K.laplacian_apply(U, st.nbp, st.nbm, st.inv_h, out)
        errs.append(np.max(np.abs(out[0] + (2 * np.pi) ** 2 * U[0])))
        hs.append(1.0 / n)
    order = np.polyfit(np.log(hs), np.log(errs), 1)[0]
    assert abs(order - 2.0) < 0.05


@pytest.mark.parametrize("grid", GRIDS, ids=IDS)
@pytest.mark.parametrize("transpose", [False, True])
def test_step_solves_match_dense(grid, transpose):
    st = Stencil(grid)
    rng = np.random.default_rng(2)
    _, coef = _random_coef(st, rng, B=3)
    sm = StepMatrices(st, coef)
    r = rng.standard_normal(grid.size)
    for n in range(3):
        A = st.csr(coef[n]).toarray()
        A = A.T if transpose else A
        np.testing.assert_allclose(sm.solve(n, r, transpose), np.linalg.solve(A, r), rtol=1e-10,
                                   atol=1e-12)


@pytest.mark.parametrize("grid", GRIDS, ids=IDS)
@pytest.mark.parametrize("terminal", [False, True])
def test_sweeps_solve_the_block_bidiagonal_systems(grid, terminal):
    st = Stencil(grid)
    rng = np.random.default_rng(3)
    nb, inv_dt = 4, 3.0
    _, coef = _random_coef(st, rng, shift=inv_dt, B=nb)
    sm = StepMatrices(st, coef)
    N = grid.size
    I = sp.identity(N)
    blocks = [[None] * (nb + terminal) for _ in range(nb + terminal)]
    for n in range(nb):
        blocks[n][n] = st.csr(coef[n])
        if n + 1 < nb or terminal:
            blocks[n][n + 1] = -inv_dt * I
    if terminal:
        blocks[nb][nb] = I
    L = sp.bmat(blocks).toarray()
    rhs = rng.standard_normal((nb + terminal, N))
    x = sm.backward(rhs, inv_dt, terminal)
    np.testing.assert_allclose(L @ x.ravel(), rhs.ravel(), rtol=1e-10, atol=1e-10)
    # forward sweep with the transposed blocks = transpose of the non-terminal L
    Lt = sp.bmat([[st.csr(coef[n]).T if m == n else (-inv_dt * I if m == n - 1 else None)
                   for m in range(nb)] for n in range(nb)]).toarray()
    rhs = rng.standard_normal((nb, N))
    y = sm.forward(rhs, inv_dt)
    np.testing.assert_allclose(Lt @ y.ravel(), rhs.ravel(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("periodic", [True, False])
def test_tridiagonal_solve_preserves_positivity_exactly(periodic):
    """M-matrix elimination adds only non-negative terms: tiny right-hand sides stay >= 0."""
    grid = Grid((0.0, 1.0), 40, "periodic" if periodic else "neumann")
    st = Stencil(grid)
    rng = np.random.default_rng(4)
    _, coef = _random_coef(st, rng, shift=1.0, nu=0.0)
    r = np.zeros(grid.size)
    r[::7] = 1e-300 * rng.uniform(size=r[::7].size)
    r[3] = 1.0
    for transpose in (False, True):
        x = StepMatrices(st, coef).solve(0, r, transpose)
        assert np.all(x >= 0.0)


def test_gmres_solves_a_nonsymmetric_system():
    rng = np.random.default_rng(5)
    n = 300
    A = np.eye(n) + 0.3 * rng.standard_normal((n, n)) / np.sqrt(n)
    b = rng.standard_normal(n)
    x, info = gmres(lambda v: A @ v, b, rtol=1e-12, restart=15)
    assert info.converged
    assert np.linalg.norm(A @ x - b) <= 1e-11 * np.linalg.norm(b)
    np.testing.assert_allclose(x, np.linalg.solve(A, b), rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize(
    "shape,periodic",
    [((40, 7), (False, True)), ((5, 6, 7), (False, True, False)), ((3,), (True,)),
     ((20, 20), (True, True))],
)
def test_nested_dissection_is_a_permutation_with_small_fill(shape, periodic):
    from mfg_solvers.fd.orderings import nested_dissection

    order = nested_dissection(shape, periodic, leaf=8)
    np.testing.assert_array_equal(np.sort(order), np.arange(int(np.prod(shape))))
    if shape == (20, 20):
        # 5-point Laplacian of the periodic 20x20 grid: ND order needs less fill than natural
        import scipy.sparse.linalg as spla

        n = 20
        I1 = sp.identity(n)
        T = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(n, n)).tolil()
        T[0, n - 1] = T[n - 1, 0] = -1
        A = (sp.kron(T, I1) + sp.kron(I1, T) + 0.1 * sp.identity(n * n)).tocsc()
        opts = dict(permc_spec="NATURAL", diag_pivot_thresh=0.0, options=dict(SymmetricMode=True))
        lu_nat = spla.splu(A, **opts)
        lu_nd = spla.splu(A[order][:, order].tocsc(), **opts)
        assert lu_nd.L.nnz + lu_nd.U.nnz < 0.8 * (lu_nat.L.nnz + lu_nat.U.nnz)


@pytest.mark.parametrize("grid", GRIDS, ids=IDS)
def test_spectral_heat_sweeps_equal_exact_sweeps_without_transport(grid):
    from mfg_solvers.fd.linear_solvers import HeatSweeps

    st = Stencil(grid)
    nu, inv_dt, nb = 0.3, 5.0, 4
    coef = np.empty((nb, grid.size, st.n_entries))
    K.stencil_coefficients(np.zeros((nb, grid.size, 2 * grid.dim)), inv_dt, nu, st.nbp, st.nbm,
                           st.inv_h, coef)
    exact, heat = StepMatrices(st, coef), HeatSweeps(grid, nu, inv_dt)
    r = np.random.default_rng(6).standard_normal((nb + 1, grid.size))
    np.testing.assert_allclose(heat.backward(r[:nb]), exact.backward(r[:nb], inv_dt, False),
                               rtol=0, atol=1e-13)
    np.testing.assert_allclose(heat.backward(r, True), exact.backward(r, inv_dt, True),
                               rtol=0, atol=1e-13)
    np.testing.assert_allclose(heat.forward(r[:nb]), exact.forward(r[:nb], inv_dt),
                               rtol=0, atol=1e-13)
