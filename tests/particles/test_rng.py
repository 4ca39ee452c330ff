"""Counter-based random streams: distribution, independence, reproducibility."""

import math

import numpy as np
import pytest
from scipy import stats

from mfg_solvers.particles import rng


def test_ziggurat_radius_matches_known_value():
    # 256-layer ziggurat of exp(-x^2/2): the base-strip abscissa r is a known constant
    assert abs(rng.ZIG_R - 3.6541528853610088) < 1e-12
    # every layer has the same area v = x_k (f(x_{k+1}) - f(x_k))
    x, f = rng._ZX, rng._ZF
    v = x[1:-1] * (f[2:] - f[1:-1])
    assert np.max(np.abs(v / v[0] - 1.0)) < 1e-10


def test_normals_distribution():
    z = rng.standard_normals(7, 400_000, 2, step=3).ravel()
    n = z.size
    assert abs(z.mean()) < 5 / math.sqrt(n)
    assert abs(z.var() - 1.0) < 5 * math.sqrt(2.0 / n)
    assert abs(stats.kurtosis(z)) < 5 * math.sqrt(24.0 / n)
    assert stats.kstest(z, "norm").pvalue > 1e-3
    # the tail beyond r goes through the rejection path: its frequency must be right
    p_tail = 2 * stats.norm.sf(rng.ZIG_R)
    f_tail = np.mean(np.abs(z) > rng.ZIG_R)
    assert abs(f_tail - p_tail) < 5 * math.sqrt(p_tail / n)
    # and the wedge region of the top layers (|z| small) as well
    p_core = 2 * (stats.norm.cdf(0.3) - 0.5)
    assert abs(np.mean(np.abs(z) < 0.3) - p_core) < 5 * math.sqrt(p_core / n)


def test_uniforms_distribution():
    u = rng.uniforms(11, 300_000, 1, step=0).ravel()
    assert u.min() >= 0.0 and u.max() < 1.0
    assert stats.kstest(u, "uniform").pvalue > 1e-3


def test_streams_are_uncorrelated_across_particles_steps_and_slots():
    n = 200_000
    a = rng.standard_normals(5, n, 3, step=10)
    b = rng.standard_normals(5, n, 3, step=11)
    c = rng.standard_normals(6, n, 3, step=10)
    bound = 5 / math.sqrt(n)
    for u, v in [(a[:, 0], a[:, 1]), (a[:, 1], a[:, 2]), (a[:, 0], b[:, 0]), (a[:, 0], c[:, 0]),
                 (a[:-1, 0], a[1:, 0])]:
        assert abs(np.corrcoef(u, v)[0, 1]) < bound


def test_draws_depend_only_on_global_index():
    full = rng.standard_normals(3, 1000, 2, step=4)
    part = rng.standard_normals(3, 300, 2, step=4, offset=500)
    assert np.array_equal(full[500:800], part)
    slot = rng.standard_normals(3, 1000, 1, step=4, first_slot=1)
    assert np.array_equal(full[:, 1:2], slot)
    again = rng.standard_normals(3, 1000, 2, step=4)
    assert np.array_equal(full, again)


def test_initial_samplers():
    cov = np.array([[0.5, 0.2], [0.2, 0.3]])
    X = rng.gaussian_particles(200_000, [1.0, -2.0], cov, seed=9)
    n = X.shape[0]
    assert np.all(np.abs(X.mean(0) - [1.0, -2.0]) < 5 * np.sqrt(np.diag(cov) / n))
    assert np.max(np.abs(np.cov(X.T) - cov)) < 5 * 0.5 * math.sqrt(2.0 / n)
    # sharding does not change the cloud
    Y = rng.gaussian_particles(1000, [1.0, -2.0], cov, seed=9, offset=2000)
    assert np.array_equal(Y, X[2000:3000])
    U = rng.uniform_particles(100_000, [(0.0, 2.0), (-1.0, 1.0)], seed=2)
    assert U[:, 0].min() >= 0 and U[:, 0].max() < 2 and U[:, 1].min() >= -1
    assert abs(U[:, 0].mean() - 1.0) < 5 * math.sqrt(1 / 3 / 1e5)


@pytest.mark.parametrize("seed", [-1, 2**63, 1.5, "1", True])
def test_bad_seed(seed):
    with pytest.raises((ValueError, TypeError), match="seed"):
        rng.standard_normals(seed, 10, 1, step=0)


def test_bad_draw_arguments():
    with pytest.raises(ValueError, match="first_slot"):
        rng.standard_normals(0, 10, 3, step=0, first_slot=rng.SLOTS - 1)
    with pytest.raises(ValueError, match="n="):
        rng.standard_normals(0, -1, 1, step=0)
    with pytest.raises(ValueError, match="not positive semi-definite"):
        rng.gaussian_particles(10, [0.0, 0.0], [[1.0, 2.0], [2.0, 1.0]], seed=0)
