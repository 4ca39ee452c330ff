"""Benchmark: Newton for the finite-element MFG solver (``mfg_solvers.fem``).

Problem: unit square with reflecting walls, :math:`\\nu = 0.1`, :math:`T = 1/2`, 8 implicit
Euler steps, congestion Hamiltonian :math:`|p|^2 / (2 (1 + m)^{1/2})`, :math:`f = V + m` with
:math:`V = -\\cos(2\\pi x)\\cos(\\pi y)`, :math:`u(T) = (x - 0.8)^2 / 2`,
:math:`m_0 \\propto 1 + \\tfrac12\\cos(\\pi x)\\cos(\\pi y)`; P1 elements on structured meshes
:math:`n \\times n` (``--sizes``), Newton from the cold start to a scaled residual below 1e-10.

Measured, for every size (all in this process):

* the Newton iterations and the time per Newton iteration (``linear_solver="auto"``: GMRES on
  the Schur complement with backward / forward sweeps);
* the cost of one coupled Newton step (assembly of the residuals and of the four Jacobian
  blocks of every time step, factorisations, GMRES) as a ratio to **one linear solve of the
  same size** (target <= 3x), against two baselines run on the same matrices:

  1. the coupled linear system itself -- the Newton system just assembled, solved again with
     fresh factorisations of its blocks and GMRES (what the step costs without the assembly);
     measured for the first Newton step (cold start) and for a step at the converged state,
     the larger ratio counts;
  2. stricter: a block-triangular linear system with the same :math:`2 N_T N` unknowns -- one
     backward sweep of the linearised HJB and one forward sweep of the FP with the same sparse
     LU factorisations, no coupling and no GMRES (the cheapest solve of that size; converged
     state);

* the same ratio for the direct solver (``linear_solver="direct"``: MUMPS LU of the whole
  space-time matrix), against that factorisation and solve alone (sizes up to 64 only: its
  fill-in grows like that of a 3-D problem);
* the split of that step into assembly and its own linear solve (factorisations + GMRES);
* the speed-up of the whole Newton solve with 2 MPI ranks (``mpiexec -n 1`` and ``-n 2`` child
  processes, ``--mpi-size``; the per-step factorisations use the package default
  ``lu="auto"``: PETSc's LU for serial blocks below 10 000 dofs, MUMPS above and in parallel).

Results go to ``benchmarks/results/fem.json``.

Usage::

    python benchmarks/fem.py                 # sizes 16 32 64 128
    python benchmarks/fem.py --sizes 16 32   # quicker
    python benchmarks/fem.py --no-mpi        # skip the 2-rank run
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

TOL = 1e-10
NT = 8
TARGET_RATIO = 3.0


def problem():
    from mfg_solvers import Congestion, Domain, LocalCoupling, MFGProblem

    return MFGProblem(
        Domain([(0, 1), (0, 1)], "neumann"), 0.1, hamiltonian=Congestion(1.0, 0.5),
        coupling=LocalCoupling("linear", 1.0),
        potential=lambda x, y: -np.cos(2 * np.pi * x) * np.cos(np.pi * y),
        m0=lambda x, y: 1 + 0.5 * np.cos(np.pi * x) * np.cos(np.pi * y), T=0.5,
        terminal_cost=lambda x, y: 0.5 * (x - 0.8) ** 2, name="fem benchmark",
    )


def discretisation(n, **kwargs):
    from mfg_solvers.fem import FEMDiscretisation, rectangle_mesh
    from mfg_solvers.model import MassNormalisationWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MassNormalisationWarning)
        return FEMDiscretisation(problem(), rectangle_mesh([(0, 1), (0, 1)], n), NT, **kwargs)


def solve(disc):
    from mfg_solvers.coupling import solve_newton

    t0 = time.perf_counter()
    sol = solve_newton(disc, tol=TOL, progress=False)
    return sol, time.perf_counter() - t0


def _touch(mats):
    for A in mats:
        # exact in floating point; bumps the PETSc state, so the next solve refactorises
        A.scale(2.0)
        A.scale(0.5)


def step_and_coupled_solve(disc, state, repeats: int) -> dict:
    """One coupled Newton step at ``state`` (Schur / GMRES, best of ``repeats``) and, on the same
    assembled matrices, one solve of the same coupled linear system alone (fresh factorisations
    of its blocks and GMRES, no assembly)."""
    steps, splits = [], []
    for _ in range(repeats):
        disc.timings.update(assembly=0.0, linear_solve=0.0)
        t0 = time.perf_counter()
        disc.newton_direction(state)
        steps.append(time.perf_counter() - t0)
        splits.append(dict(disc.timings))
    k_best = int(np.argmin(steps))
    gmres_its = disc.krylov_iterations[-1]
    sch = disc._schur
    RU, RM = disc._raw_residual(state)
    rU, rM = -RU[: disc.nt], -RM[1:]
    coupled = []
    for _ in range(repeats):
        _touch(sch.mats["JHU"] + sch.mats["JFM"])
        t0 = time.perf_counter()
        sch.factorise()
        sch.solve(rU, rM)
        coupled.append(time.perf_counter() - t0)
    t_coupled = min(coupled)
    return {
        "time_newton_step": steps[k_best],
        "time_step_assembly": splits[k_best]["assembly"],
        "time_step_linear_solve": splits[k_best]["linear_solve"],
        "gmres_iterations": int(gmres_its),
        "time_coupled_linear_solve": t_coupled,
        "ratio_step_to_coupled_linear_solve": steps[k_best] / t_coupled,
    }


def measure_size(n: int, repeats: int = 3, max_direct: int = 64) -> dict:
    """Newton solve and the per-step ratios for the n x n mesh."""
    disc = discretisation(n)
    start = disc.initial_guess()
    disc.newton_direction(start)  # warm-up: compiled forms, patterns, analysis
    disc.timings.update(assembly=0.0, linear_solve=0.0)
    sol, t_solve = solve(disc)
    state = disc.from_solution(sol)
    ndofs = int(sol.attrs["num_dofs"])
    # the first Newton step (cold start) and a step at the converged state
    cold = step_and_coupled_solve(disc, start, repeats)
    conv = step_and_coupled_solve(disc, state, repeats)
    t_step = conv["time_newton_step"]
    split = {"assembly": conv["time_step_assembly"], "linear_solve": conv["time_step_linear_solve"]}
    gmres_its = conv["gmres_iterations"]
    t_coupled = conv["time_coupled_linear_solve"]
    sch = disc._schur
    # baseline 2 (stricter): a block-triangular linear system of the same size with the same
    # factorisations -- one backward and one forward sweep, no coupling, no GMRES
    rng = np.random.default_rng(0)
    r = rng.standard_normal((disc.nt, disc.size))
    lin = []
    for _ in range(repeats):
        _touch(sch.mats["JHU"] + sch.mats["JFM"])
        t0 = time.perf_counter()
        sch.factorise()
        sch.solve_L(r)
        sch.solve_K(r)
        lin.append(time.perf_counter() - t0)
    t_lin = min(lin)
    out = {
        "n": n,
        "dofs_per_field": ndofs,
        "unknowns": 2 * NT * ndofs,
        "newton_iterations": int(sol.iterations),
        "residual_history": [float(v) for v in sol.residual_history],
        "time_solve": t_solve,
        "time_per_newton_iteration": t_solve / max(sol.iterations, 1),
        "time_newton_step": t_step,
        "gmres_iterations": int(gmres_its),
        "time_step_assembly": split["assembly"],
        "time_step_linear_solve": split["linear_solve"],
        "lu": sch.lu,
        "time_coupled_linear_solve": t_coupled,
        "ratio_step_to_coupled_linear_solve_converged": t_step / t_coupled,
        "cold_start": cold,
        "ratio_step_to_coupled_linear_solve": max(t_step / t_coupled,
                                                  cold["ratio_step_to_coupled_linear_solve"]),
        "time_block_triangular_solve": t_lin,
        "ratio_step_to_block_triangular_solve": t_step / t_lin,
        "max_mass_error": float(np.abs(sol.dataset["mass"].values - 1).max()),
        "min_density": float(sol.attrs["min_density"]),
    }
    line = (f"n={n:4d} dofs={ndofs:6d} unknowns={out['unknowns']:7d} "
            f"newton={sol.iterations} t/iter={out['time_per_newton_iteration']:.3f}s "
            f"step={t_step:.3f}s (assembly {split['assembly']:.3f}s, GMRES {gmres_its} its "
            f"{split['linear_solve']:.3f}s, LU {sch.lu}) | coupled linear solve "
            f"{t_coupled:.3f}s: ratio {t_step / t_coupled:.2f}x (cold start: step "
            f"{cold['time_newton_step']:.3f}s, GMRES {cold['gmres_iterations']} its, ratio "
            f"{cold['ratio_step_to_coupled_linear_solve']:.2f}x) | "
            f"block-triangular solve {t_lin:.3f}s: ratio "
            f"{out['ratio_step_to_block_triangular_solve']:.2f}x")
    if n > max_direct:
        print(line, flush=True)
        return out
    # direct solver: one Newton step against its own factorisation + solve
    direct = discretisation(n, linear_solver="direct")
    direct.newton_direction(state)  # warm-up (symbolic analysis)
    d_steps, d_solves = [], []
    for _ in range(repeats):
        direct.timings.update(assembly=0.0, linear_solve=0.0)
        t0 = time.perf_counter()
        direct.newton_direction(state)
        d_steps.append(time.perf_counter() - t0)
        d_solves.append(direct.timings["linear_solve"])
    k = int(np.argmin(d_steps))
    out.update({
        "direct_time_newton_step": d_steps[k],
        "direct_time_factorise_and_solve": d_solves[k],
        "direct_ratio_step_to_linear_solve": d_steps[k] / d_solves[k],
    })
    print(line + f" | direct step={d_steps[k]:.3f}s "
          f"ratio={out['direct_ratio_step_to_linear_solve']:.2f}x", flush=True)
    return out


def worker(n: int) -> dict:
    """Whole Newton solve on the n x n mesh (run serially and under mpiexec)."""
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    disc = discretisation(n)
    start = disc.initial_guess()
    disc.newton_direction(start)  # warm-up
    step, split = float("inf"), {}
    for _ in range(3):  # best of 3 (the slowest rank of each)
        disc.timings.update(assembly=0.0, linear_solve=0.0)
        comm.barrier()
        t0 = time.perf_counter()
        disc.newton_direction(start)
        t = comm.allreduce(time.perf_counter() - t0, op=MPI.MAX)
        if t < step:
            step = t
            split = {k: comm.allreduce(v, op=MPI.MAX) for k, v in disc.timings.items()}
    comm.barrier()
    sol, t = solve(disc)
    t = comm.allreduce(t, op=MPI.MAX)
    return {"ranks": comm.size, "time_solve": t, "time_newton_step": step,
            "time_step_assembly": split["assembly"],
            "time_step_linear_solve": split["linear_solve"],
            "newton_iterations": int(sol.iterations), "u": sol.u[0, ::97].tolist()}


def mpi_speedup(n: int) -> dict:
    exe = Path(sys.executable).parent / "mpiexec"
    mpiexec = str(exe) if exe.exists() else shutil.which("mpiexec")
    if mpiexec is None:
        return {"skipped": "mpiexec not found"}
    runs = {}
    for ranks in (1, 2):
        env = dict(os.environ, OMP_NUM_THREADS="1")
        proc = subprocess.run(
            [mpiexec, "-n", str(ranks), sys.executable, __file__, "--worker", str(n)],
            capture_output=True, text=True, env=env, cwd=str(ROOT), timeout=1800,
        )
        if proc.returncode != 0:
            return {"failed": proc.stderr[-2000:]}
        runs[ranks] = json.loads(proc.stdout.strip().splitlines()[-1])
    diff = float(np.abs(np.array(runs[1]["u"]) - np.array(runs[2]["u"])).max())
    out = {
        "n": n,
        "time_1_rank": runs[1]["time_solve"],
        "time_2_ranks": runs[2]["time_solve"],
        "speedup": runs[1]["time_solve"] / runs[2]["time_solve"],
        "newton_step_1_rank": {k: runs[1][k] for k in ("time_newton_step", "time_step_assembly",
                                                       "time_step_linear_solve")},
        "newton_step_2_ranks": {k: runs[2][k] for k in ("time_newton_step",
                                                        "time_step_assembly",
                                                        "time_step_linear_solve")},
        "speedup_newton_step": runs[1]["time_newton_step"] / runs[2]["time_newton_step"],
        "newton_iterations": [runs[1]["newton_iterations"], runs[2]["newton_iterations"]],
        "max_difference_u_sample": diff,
    }
    print(f"MPI n={n}: solve 1 rank {out['time_1_rank']:.2f}s, 2 ranks "
          f"{out['time_2_ranks']:.2f}s, speed-up {out['speedup']:.2f}x; one Newton step "
          f"speed-up {out['speedup_newton_step']:.2f}x (|u1 - u2| = {diff:.1e})", flush=True)
    return out


def machine() -> dict:
    from mfg_solvers.fem._backend import dolfinx

    return {
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "dolfinx": dolfinx.__version__,
        "load_average_at_start": list(os.getloadavg()),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[16, 32, 64, 128])
    parser.add_argument("--no-mpi", action="store_true")
    parser.add_argument("--mpi-size", type=int, default=128, help="mesh of the 2-rank run")
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "fem.json")
    args = parser.parse_args(argv)
    if args.worker is not None:
        from mpi4py import MPI

        res = worker(args.worker)
        if MPI.COMM_WORLD.rank == 0:
            print(json.dumps(res))
        return
    import mfg_solvers

    result = {
        "benchmark": "fem",
        "problem": problem().name + f", congestion, nt={NT}, P1, unit square",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "package_version": mfg_solvers.__version__,
        "machine": machine(),
        "tol": TOL,
        "target_ratio_step_to_coupled_linear_solve": TARGET_RATIO,
        "sizes": [measure_size(n) for n in args.sizes],
    }
    sizes = result["sizes"]
    if len(sizes) >= 2:
        dofs = np.array([s["unknowns"] for s in sizes], dtype=float)
        times = np.array([s["time_per_newton_iteration"] for s in sizes])
        result["fitted_exponent_time_vs_unknowns"] = float(
            np.polyfit(np.log(dofs), np.log(times), 1)[0])
    result["max_ratio_step_to_coupled_linear_solve"] = max(
        s["ratio_step_to_coupled_linear_solve"] for s in sizes)
    result["max_ratio_step_to_block_triangular_solve"] = max(
        s["ratio_step_to_block_triangular_solve"] for s in sizes)
    if not args.no_mpi:
        result["mpi"] = mpi_speedup(args.mpi_size)
    result["machine"]["load_average_at_end"] = list(os.getloadavg())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"max ratio Newton step / coupled linear solve: "
          f"{result['max_ratio_step_to_coupled_linear_solve']:.2f}x (target <= {TARGET_RATIO}x); "
          f"/ block-triangular solve: {result['max_ratio_step_to_block_triangular_solve']:.2f}x; "
          f"written {args.out}")


if __name__ == "__main__":
    main()
