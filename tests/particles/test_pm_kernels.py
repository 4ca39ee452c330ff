"""The per-dimension deposition and gathering kernels and the particle--mesh evaluation path:
values against plain NumPy references, thread independence, the one-pass bounds of the live
particles, the shared kernel-FFT cache and the error reports."""

import itertools

import numba
import numpy as np
import pytest

from mfg_solvers.grid import Grid
from mfg_solvers.particles import (
    Box,
    GaussianKernel,
    PairwiseInteraction,
    RegularisedCoulombKernel,
    gaussian_particles,
    interaction_drift,
    interactions,
    interpolate,
)
from mfg_solvers.particles.density import (
    GATHER_BLOCK,
    _gather_kernel,
    deposit_masses,
    grid_geometry,
    live_bounds,
)

BOUNDS = [(-1.0, 2.0), (0.5, 1.5), (-3.0, -1.0)]
SHAPES = (11, 7, 6)
CASES = [(1, "neumann"), (1, "periodic"), (2, "neumann"), (2, "mixed"), (3, "periodic"),
         (3, "mixed")]


def _grid(d, bc):
    names = [bc] * d if bc != "mixed" else ["periodic", "neumann", "periodic"][:d]
    return Grid(BOUNDS[:d], SHAPES[:d], names)


def _cloud(grid, n, seed):
    """Particles over the box and 30% beyond it, with some exactly on the end nodes."""
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.uniform(a - 0.3 * (b - a), b + 0.3 * (b - a), n)
                         for a, b in grid.bounds])
    X[:4] = [a for a, _ in grid.bounds]
    X[4:8] = [b for _, b in grid.bounds]
    return X


def _cells(X, grid, clamp):
    """NumPy reference of the cell rule: lower/upper nodes, upper weights and the in-box mask."""
    lo, h, shape, per = grid_geometry(grid)
    inside = np.ones(X.shape[0], dtype=bool)
    i0, i1, w = [], [], []
    for k in range(grid.dim):
        s = (X[:, k] - lo[k]) / h[k]
        n = shape[k]
        if per[k]:
            s = np.mod(s, n)
            a = np.minimum(np.floor(s).astype(np.int64), n - 1)
            b = np.where(a + 1 < n, a + 1, 0)
        else:
            out = (s < 0) | (s > n - 1)
            inside &= ~out
            s = np.clip(s, 0.0, n - 1.0) if clamp else np.where(out, 0.0, s)
            a = np.minimum(np.floor(s).astype(np.int64), n - 2)
            b = a + 1
        i0.append(a)
        i1.append(b)
        w.append(s - a)
    return i0, i1, w, inside


def _deposit_reference(X, grid, weights, alive, method):
    i0, i1, w, inside = _cells(X, grid, clamp=False)
    keep = inside & alive.astype(bool)
    masses = np.zeros(grid.shape)
    for corner in itertools.product((0, 1), repeat=grid.dim):
        idx, wt = [], weights[keep].copy()
        for k, c in enumerate(corner):
            idx.append(np.where(c, i1[k], i0[k])[keep])
            if method == "cic":
                wt = wt * (w[k][keep] if c else 1.0 - w[k][keep])
            else:
                wt = wt * ((w[k][keep] >= 0.5) == bool(c))
        np.add.at(masses, tuple(idx), wt)
    return masses, int(np.count_nonzero(alive.astype(bool) & ~inside))


def _gather_reference(X, grid, F):
    """Multilinear interpolation of ``F`` (shape ``(*grid.shape, m)``), clamped ends."""
    i0, i1, w, _ = _cells(X, grid, clamp=True)
    out = np.zeros((X.shape[0], F.shape[-1]))
    for corner in itertools.product((0, 1), repeat=grid.dim):
        idx, wt = [], np.ones(X.shape[0])
        for k, c in enumerate(corner):
            idx.append(np.where(c, i1[k], i0[k]))
            wt = wt * (w[k] if c else 1.0 - w[k])
        out += wt[:, None] * F[tuple(idx)]
    return out


@pytest.mark.parametrize("d, bc", CASES, ids=[f"{d}d-{bc}" for d, bc in CASES])
@pytest.mark.parametrize("method", ["cic", "ngp"])
def test_deposition_matches_the_numpy_reference(d, bc, method):
    grid = _grid(d, bc)
    X = _cloud(grid, 3000, seed=d)
    rng = np.random.default_rng(10 + d)
    weights = rng.uniform(0.0, 2.0, X.shape[0])
    alive = (rng.uniform(size=X.shape[0]) > 0.2).astype(np.uint8)
    masses, dropped = deposit_masses(X, grid, method, weights, alive)
    ref, ref_dropped = _deposit_reference(X, grid, weights, alive, method)
    assert dropped == ref_dropped
    assert (dropped > 0) == (bc != "periodic")  # only walls drop particles
    assert np.max(np.abs(masses - ref)) < 1e-13 * ref.sum()
    # unit weights and all alive by default
    masses, _ = deposit_masses(X, grid, method)
    ref, _ = _deposit_reference(X, grid, np.ones(X.shape[0]), np.ones(X.shape[0]), method)
    assert np.max(np.abs(masses - ref)) < 1e-13 * ref.sum()


def test_periodic_wrap_at_and_beyond_the_seam():
    # coordinates on the seam, a period away, just below it and several periods out
    grid = Grid([(0.0, 1.0)], (4,), "periodic")  # nodes 0, .25, .5, .75
    X = np.array([[0.0], [1.0], [-1e-17], [-0.1], [2.9], [-3.3], [0.125]])
    masses, _ = deposit_masses(X, grid)
    ref, _ = _deposit_reference(X, grid, np.ones(7), np.ones(7), "cic")
    assert np.max(np.abs(masses - ref)) < 1e-14
    assert abs(masses.sum() - 7.0) < 1e-14
    # 0, 1 and -1e-17 (s = 4 - 4e-17 rounds to 4) sit on node 0; -0.1 and 2.9 split 0.4 / 0.6
    # between nodes 3 and 0; -3.3 is 2.8 cells in: 0.2 / 0.8 on nodes 2 / 3; 0.125 halves 0 / 1
    assert np.allclose(masses, [3.0 + 0.6 + 0.6 + 0.5, 0.5, 0.2, 0.4 + 0.4 + 0.8], atol=1e-12)


@pytest.mark.parametrize("d, bc", CASES, ids=[f"{d}d-{bc}" for d, bc in CASES])
def test_gathering_matches_the_numpy_reference(d, bc):
    grid = _grid(d, bc)
    X = _cloud(grid, 2000, seed=20 + d)
    rng = np.random.default_rng(30 + d)
    alive = (rng.uniform(size=X.shape[0]) > 0.2).astype(np.uint8)
    live = alive.astype(bool)
    lo, h, shape, per = grid_geometry(grid)
    for m in sorted({1, d, d + 1}):  # m = d takes the unrolled path
        F0 = rng.standard_normal(grid.shape + (m,))
        F1 = rng.standard_normal(grid.shape + (m,))
        f = interpolate(X, grid, F0, alive=alive)
        ref = _gather_reference(X, grid, F0)
        assert np.max(np.abs(f[live] - ref[live])) < 1e-13
        assert np.all(f[~live] == 0.0)
        # a blend of two fields, scaled and added to what is there; dead particles untouched
        base = rng.standard_normal((X.shape[0], m))
        out = base.copy()
        _gather_kernel(X, alive, lo, h, shape, per, F0.reshape(-1, m), F1.reshape(-1, m), 0.3,
                       -2.0, out, GATHER_BLOCK)
        ref = base - 2.0 * _gather_reference(X, grid, 0.7 * F0 + 0.3 * F1)
        assert np.max(np.abs(out[live] - ref[live])) < 1e-12
        assert np.array_equal(out[~live], base[~live])
        # assign mode: the same values as adding to zeros, bit for bit
        zeros = np.zeros((X.shape[0], m))
        fresh = np.full((X.shape[0], m), np.nan)
        for target, assign in ((zeros, False), (fresh, True)):
            _gather_kernel(X, alive, lo, h, shape, per, F0.reshape(-1, m), F1.reshape(-1, m),
                           0.3, -2.0, target, GATHER_BLOCK, assign=assign)
        assert np.array_equal(zeros, fresh)


def test_live_bounds_match_numpy_on_the_live_rows():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((50_000, 3))
    alive = (rng.uniform(size=X.shape[0]) > 0.5).astype(np.uint8)
    X[~alive.astype(bool)] *= 100.0  # dead particles far out do not count
    lo, hi, bad = live_bounds(X, alive)
    live = X[alive.astype(bool)]
    assert np.array_equal(lo, live.min(axis=0)) and np.array_equal(hi, live.max(axis=0))
    assert bad == 0
    # a dead NaN and a live infinity are counted; a live NaN makes its axis NaN (as NumPy's min)
    dead = int(np.flatnonzero(alive == 0)[0])
    on = np.flatnonzero(alive == 1)
    X[dead, 0] = np.nan
    X[on[0], 1] = np.inf
    X[on[1], 2] = np.nan
    lo, hi, bad = live_bounds(X, alive)
    live = X[alive.astype(bool)]
    assert bad == 3
    np.testing.assert_array_equal(lo, live.min(axis=0))
    np.testing.assert_array_equal(hi, live.max(axis=0))
    # no live particle at all
    lo, hi, bad = live_bounds(X[:10], np.zeros(10, dtype=np.uint8))
    assert np.all(lo == np.inf) and np.all(hi == -np.inf)


@pytest.mark.parametrize("d, bc", [(1, "neumann"), (2, "mixed"), (3, "periodic")])
def test_mesh_field_is_the_full_fft_convolution(d, bc, monkeypatch):
    # the axis-by-axis transforms equal the convolution computed by full-size NumPy FFTs
    grid = _grid(d, bc)
    it = PairwiseInteraction(RegularisedCoulombKernel(0.7, 0.3), "pm", grid=grid)
    q = np.random.default_rng(4).uniform(size=grid.shape)
    ext, ffts = it._grad_kernel_fft(grid)
    axes = tuple(range(d))
    qf = np.fft.rfftn(q, s=ext, axes=axes)
    sl = tuple(slice(0, n) for n in grid.shape)
    ref = np.stack([-np.fft.irfftn(qf * f, s=ext, axes=axes)[sl] for f in ffts], axis=-1)
    F = it.mesh_field(q, grid)
    assert F.shape == grid.shape + (d,)
    assert np.max(np.abs(F - ref)) < 1e-13 * np.max(np.abs(ref))
    # threaded transforms (used on large meshes) give the same values
    monkeypatch.setattr(interactions, "_FFT_THREADED_SIZE", 0)
    threaded = _with_threads(min(2, numba.config.NUMBA_NUM_THREADS),
                             lambda: it.mesh_field(q, grid))
    assert np.array_equal(threaded, F)


def _with_threads(n, f):
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(n)
        return f()
    finally:
        numba.set_num_threads(old)


@pytest.mark.parametrize("d", [2, 3])
def test_particle_mesh_drift_is_thread_independent(d):
    # enough particles for the parallel kernels (and several deposition chunks)
    X = gaussian_particles(70_000, [0.0] * d, 0.5, seed=d)
    alive = (np.arange(X.shape[0]) % 7 != 0).astype(np.uint8)
    box = Box([(-4.0, 4.0)] * d, "periodic")
    for it in (PairwiseInteraction(GaussianKernel(1.0, 0.5), "pm", shape=24),
               PairwiseInteraction(GaussianKernel(1.0, 0.5), "pm", shape=24).with_box(box)):
        one = _with_threads(1, lambda it=it: interaction_drift(X, it, alive))
        two = _with_threads(min(2, numba.config.NUMBA_NUM_THREADS),
                            lambda it=it: interaction_drift(X, it, alive))
        assert np.array_equal(one, two)
        assert np.all(one[alive == 0] == 0.0) and np.all(np.isfinite(one))
        # the drift added by add_drift (the path of the integrators) is the same
        out = np.ones_like(X)
        it.add_drift(X, alive, out, float(X.shape[0]))
        assert np.max(np.abs(out - 1.0 - one)) < 1e-15


def test_kernel_fft_cache_is_shared_by_box_copies_and_follows_the_kernel():
    X = gaussian_particles(2000, [0.0, 0.0], 0.5, seed=9)
    grid = Grid([(-3.0, 3.0), (-3.0, 3.0)], (32, 32), "neumann")
    kern = GaussianKernel(1.0, 0.5)
    it = PairwiseInteraction(kern, "pm", grid=grid)
    a = interaction_drift(X, it)
    copy = it.with_box(Box([(-3.0, 3.0), (-3.0, 3.0)], "reflecting"))
    assert copy._kernel_cache is it._kernel_cache and len(it._kernel_cache) == 1
    assert np.array_equal(interaction_drift(X, copy), a)
    # a changed kernel parameter is a new cache key: the drift follows the kernel
    kern.width = 0.8
    b = interaction_drift(X, copy)
    fresh = interaction_drift(X, PairwiseInteraction(GaussianKernel(1.0, 0.8), "pm", grid=grid))
    assert np.array_equal(b, fresh) and not np.allclose(a, b)


def test_particle_mesh_error_reports():
    grid = Grid([(-1.0, 1.0), (-1.0, 1.0)], (16, 16), "neumann")
    it = PairwiseInteraction(GaussianKernel(), "pm", grid=grid)
    X = np.array([[0.0, 0.0], [0.5, -0.5], [0.9, 0.1]])
    al = np.ones(3, dtype=np.uint8)
    for bad in (np.nan, np.inf):
        Y = X.copy()
        Y[1, 0] = bad
        with pytest.raises(ValueError, match="1 particle.*NaN or infinite"):
            interaction_drift(Y, it)
        with pytest.raises(ValueError, match="NaN or infinite"):  # before the dimension error
            interaction_drift(Y, PairwiseInteraction(GaussianKernel(), "pm", grid=Grid(
                (-1.0, 1.0), 16, "neumann")))
    Y = X.copy()
    Y[2, 1] = 1.5
    with pytest.raises(ValueError, match="particle-mesh box along axis 1"):
        interaction_drift(Y, it)
    with pytest.raises(ValueError, match="particle-mesh box along axis 1"):
        it.add_drift(Y, al, np.zeros_like(Y), 3.0)
    # a dead particle outside the mesh is ignored and gets no drift
    alive = np.array([1, 1, 0], dtype=np.uint8)
    b = interaction_drift(Y, it, alive)
    assert np.all(b[2] == 0.0)
    assert np.allclose(b[:2], interaction_drift(Y[:2], it) * 2.0 / 3.0, rtol=1e-14, atol=0)
    with pytest.raises(ValueError, match="alive has shape"):
        interaction_drift(X, it, np.ones(2))
    with pytest.raises(ValueError, match="dimension"):
        it.add_drift(X[:, :1].copy(), al, np.zeros((3, 1)), 3.0)
