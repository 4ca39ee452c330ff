"""Run under ``mpiexec -n 2``: the same particle runs sharded over the ranks and on one rank
(COMM_SELF on rank 0), compared; rank 0 writes a JSON report to the path given as argument."""

import json
import sys

import numpy as np
from mpi4py import MPI

from mfg_solvers.grid import Grid
from mfg_solvers.particles import (
    AffineDrift,
    Box,
    GaussianKernel,
    PairwiseInteraction,
    QuadraticInteraction,
    deposit,
    gaussian_particles,
    run_particles,
    shard_range,
    simulate,
)
from mfg_solvers.particles.integrators import cloud_moments
from mfg_solvers.particles.mpi import allgather_rows

N = 3000
BOX = Box([(-2.5, 2.5), (-2.0, 2.0)], ("reflecting", "absorbing"))
GRID = Grid([(-2.5, 2.5), (-2.0, 2.0)], (20, 16), "neumann")


def runs(comm, start, stop):
    X0 = np.clip(gaussian_particles(stop - start, [0.3, 0.0], 0.4, seed=5, offset=start),
                 [-2.5, -2.0], [2.5, 2.0])
    kw = dict(T=0.5, n_steps=10, sigma=0.5, drift=AffineDrift(-0.5), box=BOX, seed=8,
              record_every=5, comm=comm)
    moment = simulate(X0, interaction=QuadraticInteraction(1.0), **kw)
    direct = simulate(X0, interaction=PairwiseInteraction(GaussianKernel(0.5, 0.4), "direct"),
                      **kw)
    pm = simulate(X0, interaction=PairwiseInteraction(GaussianKernel(0.5, 0.4), "pm", grid=GRID),
                  **kw)
    dens = deposit(moment.X, GRID, alive=moment.alive, n_total=N, comm=comm)
    mom = cloud_moments(moment.X, moment.alive, comm)
    return moment, direct, pm, dens, mom


def main(path):
    world = MPI.COMM_WORLD
    rank, size = world.Get_rank(), world.Get_size()
    start, stop = shard_range(N, size, rank)
    sharded = runs(world, start, stop)
    X_all = [allgather_rows(world, r.X) for r in sharded[:3]]
    spec = {"n_particles": 4096, "dim": 2, "T": 0.5, "n_steps": 10, "seed": 3, "sigma": 0.4,
            "initial": {"kind": "gaussian", "mean": [1.0, 0.0], "cov": 0.2},
            "drift": {"kind": "ou", "theta": 1.0, "mu": [0.0, 0.5]},
            "interaction": {"kind": "quadratic", "k": 0.5}}
    summary_mpi = run_particles(spec, comm=world)
    # every rank computes the one-rank reference (rather than idling in a collective)
    single = runs(None, 0, N)
    summary_one = run_particles(spec)
    if rank == 0:
        report = {
            "size": size,
            "moment_X_identical": bool(np.array_equal(X_all[0], single[0].X)),
            "moment_stats_identical": bool(np.array_equal(sharded[0].mean, single[0].mean)
                                           and np.array_equal(sharded[0].cov, single[0].cov)
                                           and np.array_equal(sharded[0].mass, single[0].mass)),
            "direct_X_identical": bool(np.array_equal(X_all[1], single[1].X)),
            "pm_X_maxdiff": float(np.max(np.abs(X_all[2] - single[2].X))),
            "density_maxdiff": float(np.max(np.abs(sharded[3] - single[3]))),
            "cloud_moments_identical": bool(
                np.array_equal(sharded[4][0], single[4][0])
                and np.array_equal(sharded[4][1], single[4][1])
                and sharded[4][2] == single[4][2]),
            "mass": float(single[0].mass[-1]),
            "summary_mean_diff": float(np.max(np.abs(np.subtract(summary_mpi["mean"],
                                                                 summary_one["mean"])))),
            "summary_cov_diff": float(np.max(np.abs(np.subtract(summary_mpi["cov"],
                                                                summary_one["cov"])))),
            "summary_ranks": summary_mpi["ranks"],
        }
        with open(path, "w") as fh:
            json.dump(report, fh)


if __name__ == "__main__":
    main(sys.argv[1])
