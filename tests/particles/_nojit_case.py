"""A small particle run used to compare the compiled kernels with NUMBA_DISABLE_JIT=1
(run as a script: writes the results to the .npz path given as argument)."""

import sys

import numpy as np

from mfg_solvers.grid import Grid
from mfg_solvers.particles import (
    AffineDrift,
    Box,
    GaussianKernel,
    PairwiseInteraction,
    QuadraticInteraction,
    deposit,
    gaussian_particles,
    kde_at,
    simulate,
    standard_normals,
)


def case():
    X0 = np.clip(gaussian_particles(300, [0.2, -0.1], 0.3, seed=3), -1.2, 1.2)
    box = Box([(-1.5, 1.5), (-1.2, 1.2)], ("reflecting", "absorbing"))
    run = simulate(X0, T=0.5, n_steps=6, sigma=0.6, drift=AffineDrift(-0.5, 0.1),
                   interaction=[QuadraticInteraction(0.7),
                                PairwiseInteraction(GaussianKernel(0.3, 0.4), "pm", shape=16)],
                   box=box, seed=11)
    grid = Grid([(-1.5, 1.5), (-1.2, 1.2)], (12, 10), "neumann")
    m = deposit(run.X, grid, alive=run.alive)
    z = standard_normals(5, 50, 3, step=2)
    exact = simulate(X0, T=0.5, n_steps=3, sigma=[[0.5, 0.0], [0.2, 0.3]],
                     drift=AffineDrift([[-1.0, 0.3], [0.0, -0.5]], 0.2),
                     interaction=QuadraticInteraction(0.4), scheme="exact", seed=2)
    direct = simulate(X0[:60], T=0.2, n_steps=3, sigma=0.3,
                      interaction=PairwiseInteraction(GaussianKernel(-0.5, 0.5), "direct"),
                      box=Box([(-1.5, 1.5), (-1.2, 1.2)], "periodic"), seed=4)
    density = kde_at(X0, X0[:20], bandwidth="scott")
    return {"X": run.X, "alive": run.alive, "mean": run.mean, "m": m, "z": z,
            "exact": exact.X, "direct": direct.X, "kde": density}


if __name__ == "__main__":
    np.savez(sys.argv[1], **case())
