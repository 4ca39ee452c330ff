"""Interactions: the moment route, the direct pairwise sum and the particle--mesh method, with the
particle--mesh error against the direct sum and its order in h."""

import numpy as np
import pytest

from mfg_solvers.grid import Grid
from mfg_solvers.particles import (
    AffineDrift,
    Box,
    GaussianKernel,
    MeanFieldAffine,
    MorseKernel,
    PairwiseInteraction,
    QuadraticInteraction,
    QuadraticKernel,
    RegularisedCoulombKernel,
    gaussian_particles,
    interaction_drift,
    simulate,
)


def _pm_errors(X, kernel, shapes):
    ref = interaction_drift(X, PairwiseInteraction(kernel, "direct"))
    errs, hs = [], []
    al = np.ones(X.shape[0], dtype=np.uint8)
    for n in shapes:
        it = PairwiseInteraction(kernel, "pm", shape=n)
        b = interaction_drift(X, it)
        errs.append(np.sqrt(np.mean(np.sum((b - ref) ** 2, 1)) / np.mean(np.sum(ref**2, 1))))
        hs.append(it.mesh_for(X, al).spacing[0])
    return np.array(hs), np.array(errs)


def test_kernel_gradients_match_finite_differences():
    rng = np.random.default_rng(0)
    coulomb = RegularisedCoulombKernel(0.8, 0.2)
    for kern, d in [(GaussianKernel(1.3, 0.7), 2), (MorseKernel(1.0, 1.2, 2.0, 0.4, 0.1), 3),
                    (coulomb, 1), (coulomb, 2), (coulomb, 3), (QuadraticKernel(2.0), 2)]:
        x = rng.standard_normal((50, d))
        g = np.stack(kern.gradient(*x.T), -1)
        eps = 1e-6
        fd = np.stack([(kern.value(*(x + eps * e).T) - kern.value(*(x - eps * e).T)) / (2 * eps)
                       for e in np.eye(d)], -1)
        assert np.max(np.abs(g - fd)) < 1e-7 * max(1.0, np.abs(g).max())


def test_quadratic_interaction_reduces_to_the_mean():
    X = gaussian_particles(3000, [1.0, -1.0], 0.5, seed=1)
    k = 1.7
    direct = interaction_drift(X, PairwiseInteraction(QuadraticKernel(k), "direct"))
    assert np.max(np.abs(direct + k * (X - X.mean(0)))) < 1e-12
    kw = dict(T=0.5, n_steps=10, sigma=0.3, drift=AffineDrift(-0.5), seed=2)
    moments = simulate(X, interaction=QuadraticInteraction(k), **kw)
    pairwise = simulate(X, interaction=PairwiseInteraction(QuadraticKernel(k), "direct"), **kw)
    assert np.max(np.abs(moments.X - pairwise.X)) < 1e-12
    # the same through MeanFieldAffine plus an affine drift
    affine = simulate(X, interaction=MeanFieldAffine(k), **{**kw, "drift": AffineDrift(-0.5 - k)})
    assert np.max(np.abs(affine.X - moments.X)) < 1e-12


@pytest.mark.parametrize("kernel", [GaussianKernel(1.0, 0.5), RegularisedCoulombKernel(1.0, 0.3)],
                         ids=["gaussian", "coulomb"])
def test_particle_mesh_second_order(kernel):
    X = gaussian_particles(1500, [0.0, 0.0], [[1.0, 0.3], [0.3, 0.5]], seed=4)
    h, err = _pm_errors(X, kernel, (16, 32, 64, 128))
    order = np.polyfit(np.log(h), np.log(err), 1)[0]
    assert abs(order - 2.0) < 0.2, (order, err)
    assert err[-1] < 5e-3


def test_particle_mesh_morse():
    X = gaussian_particles(1500, [0.0, 0.0], 0.5, seed=5)
    # smoothed Morse: second order; the cusped one (eps = 0) only first order
    h, err = _pm_errors(X, MorseKernel(1.0, 1.0, 1.5, 0.3, eps=0.2), (16, 32, 64, 128))
    assert np.polyfit(np.log(h), np.log(err), 1)[0] > 1.6
    h, err = _pm_errors(X, MorseKernel(1.0, 1.0, 1.5, 0.3), (16, 32, 64, 128))
    assert 0.7 < np.polyfit(np.log(h), np.log(err), 1)[0] < 1.3


def test_periodic_particle_mesh_against_minimal_image_sum():
    # a cloud straddling the seam x = 0 ~ 2 of a periodic box; a kernel narrow enough to be
    # periodic to round-off (its value at half a period is ~1e-9 of its peak)
    box = Box([(0.0, 2.0), (0.0, 1.0)], "periodic")
    X = gaussian_particles(1500, [0.0, 0.5], [0.04, 0.02], seed=6)
    X = np.column_stack([np.mod(X[:, 0], 2.0), np.mod(X[:, 1], 1.0)])
    kern = GaussianKernel(-1.0, 0.08)
    ref = np.zeros_like(X)
    al = np.ones(X.shape[0], dtype=np.uint8)
    PairwiseInteraction(kern, "direct").with_box(box).add_drift(X, al, ref, float(X.shape[0]))
    errs, hs = [], []
    for n in (64, 128, 256, 512):
        it = PairwiseInteraction(kern, "pm", shape=n).with_box(box)
        out = np.zeros_like(X)
        it.add_drift(X, al, out, float(X.shape[0]))
        errs.append(np.sqrt(np.mean((out - ref) ** 2) / np.mean(ref**2)))
        hs.append(it.mesh_for(X, al).spacing[0])
    order = np.polyfit(np.log(hs), np.log(errs), 1)[0]
    assert abs(order - 2.0) < 0.2 and errs[-1] < 2e-3, (order, errs)
    # minimal image: a particle near x = 0 feels its neighbours across the seam at x = 2
    Y = np.array([[0.02, 0.5], [1.98, 0.5]])
    f = interaction_drift(Y, PairwiseInteraction(kern, "direct").with_box(box))
    assert f[0, 0] < 0 < f[1, 0]  # attraction across the seam


def test_fixed_mesh_and_errors():
    X = gaussian_particles(500, [0.0], 0.1, seed=7)
    grid = Grid((-3.0, 3.0), 256, "neumann")
    fixed = interaction_drift(X, PairwiseInteraction(GaussianKernel(1.0, 0.5), "pm", grid=grid))
    direct = interaction_drift(X, PairwiseInteraction(GaussianKernel(1.0, 0.5), "direct"))
    assert np.max(np.abs(fixed - direct)) < 1e-3 * np.max(np.abs(direct))
    far = np.vstack([X, [[10.0]]])
    with pytest.raises(ValueError, match="particle-mesh box"):
        interaction_drift(far, PairwiseInteraction(GaussianKernel(), "pm", grid=grid))
    with pytest.raises(ValueError, match="method"):
        PairwiseInteraction(GaussianKernel(), "tree")
    with pytest.raises(ValueError, match="width"):
        GaussianKernel(1.0, 0.0)
    with pytest.raises(TypeError, match="Kernel"):
        PairwiseInteraction(lambda r: r)
