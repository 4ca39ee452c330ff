"""Particle engine throughput: Euler--Maruyama with the quadratic mean-field interaction, its
noise floor, and the particle--mesh pairwise interaction.

**1. Euler--Maruyama throughput.** Model (d = 2):
:math:`dX^i = (-a X^i - k (X^i - \\bar X))\\,dt + s\\,dW^i`, N particles (default 10^6 and 10^7),
100 steps. Measured in one process, on the same machine and the same initial cloud:

* ``numpy``: a plain vectorised NumPy implementation (in-place updates, one preallocated noise
  buffer filled by ``Generator.standard_normal``) -- the baseline;
* ``numba-1``: :func:`mfg_solvers.particles.simulate` on one numba thread;
* ``numba-max``: the same on all numba threads (2 on the CI machine);
* ``floor-1`` / ``floor-max``: the floor kernel :func:`floor_step` of this script, on one and on
  all threads. Per step it only draws the d standard normals of every particle from the engine's
  own counter-based streams (:mod:`mfg_solvers.particles.rng`: the same per-particle keys, step
  hashes and ziggurat as the integrators, parallel over the same fixed blocks of
  :data:`~mfg_solvers.particles.integrators.BLOCK` particles) and adds
  :math:`s\\sqrt{\\Delta t}\\,z` to the positions -- no mean, no drift, no bookkeeping. Any
  Euler--Maruyama step with these random numbers does at least this work; a generator check
  confirms that its draws are bit-identical to :func:`~mfg_solvers.particles.standard_normals`.

Reported per N: particle-steps per second, the speed-up of each over the baseline, the thread
scaling 1 -> max, the process CPU time of each (the CPU-time ratio of the one-thread runs is the
per-core figure, which stays meaningful when other processes share the cores), and the ratio
``numba-max seconds / floor-max seconds`` (also on one thread). Two targets (issue 4, section 8):

1. ``numba-max`` at least 5x the NumPy baseline (``speedup_vs_numpy >= 5``);
2. ``numba-max`` within 2x of the floor (``ratio_to_floor <= 2``).

``meets_target`` of an N holds when both hold; ``all_targets_met`` covers every N. The package
times include what a call of ``simulate`` does besides the steps (copy of the initial cloud,
validation, moments at start and end); the floor times are the kernel calls alone.
``ratio_to_floor_step_loop`` uses the step loop of ``simulate`` alone (its ``timings["steps"]``).

**2. Particle--mesh (PM) interaction.** Repulsive Gaussian kernel
:math:`W = e^{-|x|^2/(2\\cdot 0.5^2)}` (``GaussianKernel(1.0, 0.5)``), particles from
:math:`\\mathcal N(0, 0.5 I)` (``gaussian_particles``, seed 0; checked to lie inside the box),
PM on a fixed 256^2 grid on ``[-5, 5]^2`` (free space: zero-padded FFT convolution):

a. at N = 10^6 (``--pm-n``): the time of one interaction evaluation
   (:func:`~mfg_solvers.particles.interaction_drift`), of its N-independent part (the FFT
   convolution on the mesh), and of one full step of ``simulate`` with the PM interaction
   (10 steps timed and divided; Euler--Maruyama, :math:`\\Delta t = 0.01`), all after a
   warm-up call and best of ``--repeat``;
b. the crossover with direct summation (``method="direct"``, :math:`O(N^2)`): both timed for
   N = 256, 512, ..., up to the first N where PM is faster plus one more doubling (at most
   65536). A direct timing above 5 s ends the direct measurements; larger N are extrapolated with
   the :math:`c N^2` law fitted to the last measured sizes (marked ``extrapolated``). Reported:
   the table, the fitted log-log exponents (for direct also over the sizes run on all
   threads), the crossover N by linear interpolation of
   :math:`\\log(t_\\text{pm}/t_\\text{direct})` in :math:`\\log N` between the two bracketing
   sizes, and the PM error at that N, :math:`\\max|b_\\text{pm} - b_\\text{direct}| /
   \\max|b_\\text{direct}|`. The interaction calls choose their thread count as the package does
   (one thread below :data:`~mfg_solvers.particles._threads.PARALLEL_WORK` units of work, i.e.
   direct sums below N of about 724 and PM below 32768 particles).

The configurations of part 1 are run in turn, ``--repeat`` times (default 3), and the fastest run
of each is kept: the usual guard against other processes on a shared machine. The short timings
of part 2 are repeated until they add up to at least 0.2 s (best kept). Results go to
benchmarks/results/particles.json (keys ``results``, ``floor``, ``particle_mesh``), with the
machine and the load average.

Usage: ``python benchmarks/particles.py [--sizes 1e6 1e7] [--steps 100] [--repeat 3]
[--no-throughput] [--no-floor] [--no-pm] [--pm-n 1e6] [--pm-grid 256] [--pm-steps 10]
[--pm-max-n 65536] [--direct-limit 5] [--out FILE]``; a quick look:
``--sizes 1e5 --steps 20 --repeat 1 --pm-n 1e5 --out /tmp/particles.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numba
import numpy as np
from numba import njit, prange

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mfg_solvers.grid import Grid  # noqa: E402
from mfg_solvers.particles import (  # noqa: E402
    AffineDrift,
    GaussianKernel,
    PairwiseInteraction,
    QuadraticInteraction,
    gaussian_particles,
    interaction_drift,
    simulate,
    standard_normals,
)
from mfg_solvers.particles._threads import PARALLEL_WORK  # noqa: E402
from mfg_solvers.particles.density import deposit_masses  # noqa: E402
from mfg_solvers.particles.exact import linear_mv_moments  # noqa: E402
from mfg_solvers.particles.integrators import BLOCK  # noqa: E402
from mfg_solvers.particles.rng import (  # noqa: E402
    StreamKeys,
    mix64,
    normal_from_bits,
    particle_key,
)

A, K, SIGMA, T = 1.0, 1.0, 0.5, 1.0
MEAN0, COV0 = [1.0, -0.5], 0.3
TARGET_SPEEDUP = 5.0
TARGET_FLOOR_RATIO = 2.0
SEED = 1

# particle--mesh set-up (part 2)
PM_BOUNDS = [(-5.0, 5.0), (-5.0, 5.0)]
PM_STRENGTH, PM_WIDTH = 1.0, 0.5
PM_COV = 0.5
PM_DT = 0.01
PM_N0 = 256
MIN_TOTAL = 0.2  # seconds: short timings are repeated until they add up to this


# ---------------------------------------------------------------------------------------------
# part 1: Euler--Maruyama, NumPy baseline, package, floor
# ---------------------------------------------------------------------------------------------
def numpy_baseline(X0: np.ndarray, n_steps: int, seed: int) -> np.ndarray:
    """Plain vectorised NumPy Euler--Maruyama of the same model (in place, no temporaries of
    size N except one noise buffer)."""
    rng = np.random.default_rng(seed)
    X = X0.copy()
    Z = np.empty_like(X)
    dt = T / n_steps
    decay = 1.0 - (A + K) * dt
    scale = SIGMA * math.sqrt(dt)
    for _ in range(n_steps):
        xbar = X.mean(axis=0)
        rng.standard_normal(out=Z)
        X *= decay
        X += (K * dt) * xbar
        Z *= scale
        X += Z
    return X


def run_numba(X0: np.ndarray, n_steps: int, threads: int):
    old = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        t0, c0 = time.perf_counter(), time.process_time()
        run = simulate(X0, T=T, n_steps=n_steps, sigma=SIGMA, drift=AffineDrift(-A),
                       interaction=QuadraticInteraction(K), seed=SEED, progress=False)
        return run, time.perf_counter() - t0, time.process_time() - c0
    finally:
        numba.set_num_threads(old)


@njit(parallel=True, cache=False)
def floor_step(X, key_a, hashes, scale):
    """``X[i, k] += scale * z_{i,n,k}``: the noise of one step and nothing else.

    ``z_{i,n,k}`` is the standard normal of particle ``i``, step ``n`` and slot ``k`` of the
    counter-based streams (``hashes = StreamKeys(seed).step_hashes(n)``), drawn exactly as the
    Euler--Maruyama kernel of the package draws it; parallel over fixed blocks of ``BLOCK``
    particles. The lower bound of any step that uses these random numbers.
    """
    N, d = X.shape
    nb = (N + BLOCK - 1) // BLOCK
    h0 = hashes[0]
    h1 = hashes[1]
    h2 = hashes[2]
    for b in prange(nb):
        for i in range(b * BLOCK, min(N, (b + 1) * BLOCK)):
            key = particle_key(key_a, np.uint64(i))
            X[i, 0] += scale * normal_from_bits(mix64(key + h0))
            if d > 1:
                X[i, 1] += scale * normal_from_bits(mix64(key + h1))
            if d > 2:
                X[i, 2] += scale * normal_from_bits(mix64(key + h2))


def floor_run(X: np.ndarray, n_steps: int, seed: int, scale: float) -> np.ndarray:
    """``n_steps`` floor steps on ``X`` (in place; step hashes computed per step, as the
    integrators do)."""
    if not 1 <= X.shape[1] <= 3:
        raise ValueError(f"X has {X.shape[1]} columns; the floor kernel takes 1 to 3")
    keys = StreamKeys(seed)
    with np.errstate(over="ignore"):
        for step in range(n_steps):
            floor_step(X, keys.a, keys.step_hashes(step), scale)
    return X


def run_floor(X0: np.ndarray, n_steps: int, threads: int):
    """Time ``n_steps`` floor steps on a copy of ``X0`` (the copy is not timed)."""
    old = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        X = X0.copy()
        scale = SIGMA * math.sqrt(T / n_steps)
        t0, c0 = time.perf_counter(), time.process_time()
        floor_run(X, n_steps, SEED, scale)
        return X, time.perf_counter() - t0, time.process_time() - c0
    finally:
        numba.set_num_threads(old)


def floor_generator_check(seed: int = SEED, n: int = 3 * BLOCK + 17, steps=(0, 7)) -> bool:
    """The floor draws the package's normals: from zero positions and ``scale = 1`` one floor
    step ``n`` gives exactly ``standard_normals(seed, n, 2, step=n)``."""
    keys = StreamKeys(seed)
    ok = True
    for step in steps:
        X = np.zeros((n, 2))
        with np.errstate(over="ignore"):
            floor_step(X, keys.a, keys.step_hashes(step), 1.0)
        ok = ok and bool(np.array_equal(X, standard_normals(seed, n, 2, step)))
    return ok


def floor_moments_check(X_end: np.ndarray, X0: np.ndarray, n_steps: int) -> bool:
    """The floor increment after ``n_steps`` is N(0, s^2 T I): mean and variance within 5
    standard errors."""
    inc = X_end - X0
    n = inc.shape[0]
    var = SIGMA**2 * T
    ok_mean = np.all(np.abs(inc.mean(axis=0)) < 5 * math.sqrt(var / n))
    ok_var = np.all(np.abs(inc.var(axis=0) - var) < 5 * var * math.sqrt(2.0 / n))
    return bool(ok_mean and ok_var)


def check(name, X_mean, X_cov, n, n_steps):
    """Both implementations must reproduce the Euler moments of the model (5 standard errors)."""
    ref = linear_mv_moments(T, MEAN0, COV0, -A - K, K, 0.0, SIGMA, N=n, scheme="euler",
                            n_steps=n_steps)
    se_mean = 5 * np.sqrt(np.diag(ref["cov_mean"]) + 1e-300)
    se_cov = 5 * np.max(np.diag(ref["cov_empirical"])) * math.sqrt(2.0 / n)
    ok = bool(np.all(np.abs(X_mean - ref["mean"]) < se_mean)
              and np.max(np.abs(X_cov - ref["cov_empirical"])) < se_cov)
    if not ok:
        print(f"  !! {name}: moments off the closed form", file=sys.stderr)
    return ok


def throughput(sizes, n_steps, repeat, with_floor, max_threads):
    """Part 1: one entry per N (see the module docstring)."""
    # compile (or load from cache) outside the timings
    simulate(gaussian_particles(2048, MEAN0, COV0, seed=0), T=T, n_steps=2, sigma=SIGMA,
             drift=AffineDrift(-A), interaction=QuadraticInteraction(K), seed=SEED,
             progress=False)
    generator_ok = None
    if with_floor:
        floor_run(np.zeros((2048, 2)), 2, SEED, 1.0)
        generator_ok = floor_generator_check()
        if not generator_ok:
            print("  !! floor: draws differ from mfg_solvers.particles.standard_normals",
                  file=sys.stderr)
    results = []
    for size in sizes:
        n = int(size)
        X0 = gaussian_particles(n, MEAN0, COV0, seed=0)
        work = n * n_steps
        entry = {"n_particles": n, "dim": 2, "n_steps": n_steps, "repeat": repeat}
        # interleaved repetitions (numpy, numba-1, numba-max, floor-1, floor-max, numpy, ...):
        # each configuration sees the same conditions on a shared machine; the fastest is kept
        configs = [("numba-1", 1), ("numba-max", max_threads)]
        floors = [("floor-1", 1), ("floor-max", max_threads)] if with_floor else []
        labels = ["numpy"] + [c[0] for c in configs + floors]
        best = {label: (math.inf, math.inf) for label in labels}
        moments, floor_ok, loop = {}, {}, {}
        for _ in range(repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            Xn = numpy_baseline(X0, n_steps, seed=SEED)
            el, cpu = time.perf_counter() - t0, time.process_time() - c0
            best["numpy"] = min(best["numpy"], (el, cpu))
            moments["numpy"] = (Xn.mean(0), np.cov(Xn.T, bias=True))
            del Xn
            for label, threads in configs:
                run, el, cpu = run_numba(X0, n_steps, threads)
                best[label] = min(best[label], (el, cpu))
                loop[label] = min(loop.get(label, math.inf), run.timings["steps"])
                moments[label] = (run.mean[-1], run.cov[-1])
                del run
            for label, threads in floors:
                Xf, el, cpu = run_floor(X0, n_steps, threads)
                best[label] = min(best[label], (el, cpu))
                floor_ok[label] = floor_moments_check(Xf, X0, n_steps)
                del Xf
        t_np, c_np = best["numpy"]
        entry["numpy"] = {"seconds": t_np, "cpu_seconds": c_np,
                          "particle_steps_per_s": work / t_np,
                          "moments_ok": check("numpy", *moments["numpy"], n, n_steps)}
        for label, threads in configs:
            el, cpu = best[label]
            entry[label] = {
                "threads": threads,
                "seconds": el,
                "cpu_seconds": cpu,
                "particle_steps_per_s": work / el,
                "speedup_vs_numpy": t_np / el,
                "cpu_time_ratio_numpy_over_this": c_np / cpu,
                "step_loop_seconds": loop[label],
                "moments_ok": check(label, *moments[label], n, n_steps),
            }
        for label, threads in floors:
            el, cpu = best[label]
            entry[label] = {
                "threads": threads,
                "seconds": el,
                "cpu_seconds": cpu,
                "particle_steps_per_s": work / el,
                "speedup_vs_numpy": t_np / el,
                "increment_moments_ok": floor_ok[label],
                "same_normals_as_package": generator_ok,
            }
        entry["thread_scaling"] = entry["numba-1"]["seconds"] / entry["numba-max"]["seconds"]
        entry["meets_speedup_target"] = entry["numba-max"]["speedup_vs_numpy"] >= TARGET_SPEEDUP
        if with_floor:
            entry["ratio_to_floor"] = entry["numba-max"]["seconds"] / entry["floor-max"]["seconds"]
            entry["ratio_to_floor_1thread"] = (entry["numba-1"]["seconds"]
                                               / entry["floor-1"]["seconds"])
            entry["ratio_to_floor_step_loop"] = (entry["numba-max"]["step_loop_seconds"]
                                                 / entry["floor-max"]["seconds"])
            entry["meets_floor_target"] = entry["ratio_to_floor"] <= TARGET_FLOOR_RATIO
        else:
            entry["ratio_to_floor"] = None
            entry["ratio_to_floor_1thread"] = None
            entry["ratio_to_floor_step_loop"] = None
            entry["meets_floor_target"] = None
        entry["meets_target"] = bool(entry["meets_speedup_target"]
                                     and entry["meets_floor_target"] is not False)
        results.append(entry)
        print(f"N={n:>9d}  numpy {work / t_np / 1e6:7.1f} M/s   "
              f"numba-1 {entry['numba-1']['particle_steps_per_s'] / 1e6:7.1f} M/s "
              f"(x{entry['numba-1']['speedup_vs_numpy']:.1f})   "
              f"numba-{max_threads} {entry['numba-max']['particle_steps_per_s'] / 1e6:7.1f} M/s "
              f"(x{entry['numba-max']['speedup_vs_numpy']:.1f}, "
              f"scaling {entry['thread_scaling']:.2f})   "
              f"target >= x{TARGET_SPEEDUP:g}: "
              f"{'met' if entry['meets_speedup_target'] else 'NOT met'}")
        if with_floor:
            print(f"N={n:>9d}  floor-1 {entry['floor-1']['particle_steps_per_s'] / 1e6:7.1f} M/s   "
                  f"floor-{max_threads} {entry['floor-max']['particle_steps_per_s'] / 1e6:7.1f} M/s"
                  f"   numba/floor {entry['ratio_to_floor']:.2f} "
                  f"({entry['ratio_to_floor_1thread']:.2f} on 1 thread, "
                  f"{entry['ratio_to_floor_step_loop']:.2f} step loop only)   "
                  f"target <= {TARGET_FLOOR_RATIO:g}: "
                  f"{'met' if entry['meets_floor_target'] else 'NOT met'}")
    return results


# ---------------------------------------------------------------------------------------------
# part 2: particle--mesh interaction
# ---------------------------------------------------------------------------------------------
def best_time(fn, repeat: int, min_total: float = MIN_TOTAL, max_runs: int = 200,
              single_above: float = math.inf):
    """``(best seconds, runs)`` of ``fn()``: at least ``repeat`` runs, more until they add up to
    ``min_total`` seconds (at most ``max_runs``); a run longer than ``single_above`` seconds
    ends the repetitions."""
    best, total, runs = math.inf, 0.0, 0
    while runs < max(1, repeat) or (total < min_total and runs < max_runs):
        t0 = time.perf_counter()
        fn()
        el = time.perf_counter() - t0
        best, total, runs = min(best, el), total + el, runs + 1
        if el > single_above:
            break
    return best, runs


def fit_power_law(ns, ts) -> tuple[float, float]:
    """Least-squares fit ``log t = log c + p log N``: returns ``(p, c)``."""
    ln, lt = np.log(np.asarray(ns, dtype=float)), np.log(np.asarray(ts, dtype=float))
    if ln.size < 2:
        return float("nan"), float("nan")
    p, logc = np.polyfit(ln, lt, 1)
    return float(p), float(math.exp(logc))


def n2_coefficient(ns, ts) -> float:
    """``c`` of the law ``t = c N^2`` fitted (in log space) to the given sizes."""
    ns, ts = np.asarray(ns, dtype=float), np.asarray(ts, dtype=float)
    return float(math.exp(np.mean(np.log(ts) - 2.0 * np.log(ns))))


def crossover_n(ns, t_direct, t_pm):
    """The N where PM overtakes direct summation: linear interpolation of
    ``log(t_pm / t_direct)`` in ``log N`` between the first size where PM is faster and the size
    before it. Returns ``(N, (n_below, n_above))``, or ``(None, None)`` if direct is faster at
    every size or PM already at the first."""
    r = np.log(np.asarray(t_pm, dtype=float) / np.asarray(t_direct, dtype=float))
    ln = np.log(np.asarray(ns, dtype=float))
    for k in range(r.size):
        if r[k] < 0.0:
            if k == 0:
                return None, None
            frac = r[k - 1] / (r[k - 1] - r[k])
            n_star = float(math.exp(ln[k - 1] + frac * (ln[k] - ln[k - 1])))
            return n_star, (int(ns[k - 1]), int(ns[k]))
    return None, None


def pm_setup(grid_nodes: int):
    grid = Grid(PM_BOUNDS, (grid_nodes, grid_nodes), "neumann")
    kernel = GaussianKernel(PM_STRENGTH, PM_WIDTH)
    return (grid, PairwiseInteraction(kernel, method="pm", grid=grid),
            PairwiseInteraction(kernel, method="direct"))


def pm_cloud(n: int) -> tuple[np.ndarray, float]:
    """The PM test cloud and its largest coordinate magnitude; it must lie inside the box."""
    X = gaussian_particles(n, [0.0, 0.0], PM_COV, seed=0)
    xmax = float(np.max(np.abs(X)))
    half = min(b - a for a, b in PM_BOUNDS) / 2.0
    if xmax >= half:
        raise ValueError(f"the PM cloud of {n} particles reaches |x| = {xmax:.3g}, outside the "
                         f"box {PM_BOUNDS}")
    return X, xmax


def pm_step_timings(n: int, grid_nodes: int, n_steps: int, repeat: int) -> dict:
    """Part 2a: interaction evaluation, mesh convolution and one ``simulate`` step at ``n``."""
    grid, pm, _ = pm_setup(grid_nodes)
    X, xmax = pm_cloud(n)
    interaction_drift(X, pm)  # warm-up: compilation and the kernel's FFT
    t_eval, runs_eval = best_time(lambda: interaction_drift(X, pm), repeat)
    masses, _ = deposit_masses(X, grid, "cic")
    q = masses / n
    t_mesh, _ = best_time(lambda: pm.mesh_field(q, grid), repeat)
    sim = dict(sigma=SIGMA, interaction=pm, seed=SEED, progress=False)
    simulate(X, T=PM_DT, n_steps=1, **sim)  # warm-up
    best_loop, best_wall, final_max, total, runs_sim = math.inf, math.inf, 0.0, 0.0, 0
    while runs_sim < max(1, repeat) or total < MIN_TOTAL:
        t0 = time.perf_counter()
        run = simulate(X, T=n_steps * PM_DT, n_steps=n_steps, **sim)
        wall = time.perf_counter() - t0
        best_wall = min(best_wall, wall)
        best_loop = min(best_loop, run.timings["steps"])
        final_max = float(np.max(np.abs(run.X)))
        total, runs_sim = total + wall, runs_sim + 1
        del run
    out = {
        "n_particles": n,
        "grid": [grid_nodes, grid_nodes],
        "bounds": [list(b) for b in PM_BOUNDS],
        "kernel": {"name": "GaussianKernel", "strength": PM_STRENGTH, "width": PM_WIDTH},
        "initial_cloud": {"mean": [0.0, 0.0], "cov": PM_COV, "seed": 0,
                          "max_abs_coordinate": xmax},
        "interaction_seconds": t_eval,
        "interaction_runs": runs_eval,
        "mesh_convolution_seconds": t_mesh,
        "simulate": {"n_steps": n_steps, "dt": PM_DT, "sigma": SIGMA, "scheme": "euler",
                     "seconds_per_step": best_loop / n_steps,
                     "wall_seconds_per_step": best_wall / n_steps,
                     "particle_steps_per_s": n * n_steps / best_loop,
                     "runs": runs_sim,
                     "max_abs_coordinate_at_end": final_max},
    }
    print(f"PM   N={n:>9d} on {grid_nodes}^2: interaction {t_eval * 1e3:8.2f} ms/evaluation "
          f"(mesh convolution alone {t_mesh * 1e3:.2f} ms)   simulate "
          f"{best_loop / n_steps * 1e3:8.2f} ms/step ({best_wall / n_steps * 1e3:.2f} ms/step "
          f"with set-up; {n * n_steps / best_loop / 1e6:.1f} M particle-steps/s)")
    return out


def pm_crossover(grid_nodes: int, repeat: int, max_n: int, direct_limit: float) -> dict:
    """Part 2b: direct against PM for N = 256, 512, ... (see the module docstring)."""
    _, pm, direct = pm_setup(grid_nodes)
    Xw, _ = pm_cloud(512)
    interaction_drift(Xw, pm)  # warm-up: compilation and the kernel's FFT
    interaction_drift(Xw, direct)
    rows = []
    direct_on = True
    first_pm_faster = None
    n = PM_N0
    while n <= max_n:
        X, _ = pm_cloud(n)
        row = {"n": n}
        if direct_on:
            td, rd = best_time(lambda X=X: interaction_drift(X, direct), repeat,
                               single_above=direct_limit)
            row.update(t_direct=td, direct_runs=rd, direct_extrapolated=False)
            if td > direct_limit:
                direct_on = False
        else:
            measured = [r for r in rows if not r["direct_extrapolated"]]
            last = measured[-3:]
            c = n2_coefficient([r["n"] for r in last], [r["t_direct"] for r in last])
            row.update(t_direct=c * n * n, direct_runs=0, direct_extrapolated=True)
        tp, rp = best_time(lambda X=X: interaction_drift(X, pm), repeat)
        row.update(t_pm=tp, pm_runs=rp)
        rows.append(row)
        tag = " (extrapolated, c N^2)" if row["direct_extrapolated"] else ""
        print(f"PM vs direct  N={n:>6d}: direct {row['t_direct'] * 1e3:10.2f} ms{tag}   "
              f"PM {tp * 1e3:8.2f} ms   PM/direct {tp / row['t_direct']:.3g}")
        if first_pm_faster is None and tp < row["t_direct"]:
            first_pm_faster = n
        if first_pm_faster is not None and n >= 2 * first_pm_faster:
            break
        n *= 2
    ns = [r["n"] for r in rows]
    meas = [r for r in rows if not r["direct_extrapolated"]]
    p_direct, c_direct = fit_power_law([r["n"] for r in meas], [r["t_direct"] for r in meas])
    p_pm, c_pm = fit_power_law(ns, [r["t_pm"] for r in rows])
    # the package runs direct sums of fewer than n_par particles on one thread
    n_par = math.ceil(math.sqrt(16.0 * PARALLEL_WORK))
    par = [r for r in meas if r["n"] >= n_par]
    p_par, _ = fit_power_law([r["n"] for r in par], [r["t_direct"] for r in par])
    n_star, bracket = crossover_n(ns, [r["t_direct"] for r in rows], [r["t_pm"] for r in rows])
    out = {
        "grid": [grid_nodes, grid_nodes],
        "sizes_doubling_from": PM_N0,
        "max_n": max_n,
        "direct_time_limit_s": direct_limit,
        "table": rows,
        "fitted_exponent_direct": p_direct,
        "fitted_exponent_direct_all_threads": p_par if len(par) >= 2 else None,
        "direct_all_threads_from_n": n_par,
        "fitted_exponent_pm": p_pm,
        "fit_note": "least squares of log t on log N over the measured sizes",
        "direct_extrapolated_sizes": [r["n"] for r in rows if r["direct_extrapolated"]],
        "first_n_pm_faster": first_pm_faster,
        "crossover_n": n_star,
        "crossover_bracket": bracket,
    }
    print(f"PM vs direct  fitted exponents (t ~ N^p): direct {p_direct:.2f} "
          f"(measured N = {ns[0]}..{meas[-1]['n'] if meas else '-'}; "
          f"{p_par if len(par) >= 2 else float('nan'):.2f} over N >= {n_par}, where it uses "
          f"all threads), PM {p_pm:.2f} (N = {ns[0]}..{ns[-1]})")
    if n_star is None:
        where = ("PM is faster at every size" if rows and rows[0]["t_pm"] < rows[0]["t_direct"]
                 else f"PM is not faster up to N = {ns[-1]}")
        out["crossover_note"] = where
        print(f"PM vs direct  no crossover found: {where}")
        n_err = first_pm_faster or (meas[-1]["n"] if meas else None)
    else:
        print(f"PM vs direct  crossover at N = {n_star:.0f} (log-linear interpolation between "
              f"N = {bracket[0]} and {bracket[1]})")
        n_err = int(round(n_star))
    if n_err is not None:
        X, _ = pm_cloud(n_err)
        b_dir = interaction_drift(X, direct)
        b_pm = interaction_drift(X, pm)
        err = float(np.max(np.abs(b_pm - b_dir)) / np.max(np.abs(b_dir)))
        out["relative_error"] = {"n": n_err, "max_abs_error_over_max_abs_drift": err,
                                 "max_abs_drift": float(np.max(np.abs(b_dir)))}
        print(f"PM vs direct  PM error at N = {n_err}: max|b_pm - b_direct| / max|b_direct| "
              f"= {err:.2e}")
    return out


# ---------------------------------------------------------------------------------------------
# driver
# ---------------------------------------------------------------------------------------------
def _threading_layer():
    try:
        return numba.threading_layer()
    except ValueError:  # no parallel kernel has run
        return None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=float, nargs="+", default=[1e6, 1e7],
                    help="particle counts of part 1")
    ap.add_argument("--steps", type=int, default=100, help="time steps of part 1")
    ap.add_argument("--repeat", type=int, default=3, help="repetitions (best kept)")
    ap.add_argument("--no-throughput", action="store_true",
                    help="skip part 1 (Euler-Maruyama throughput and floor)")
    ap.add_argument("--no-floor", action="store_true", help="skip the floor kernel")
    ap.add_argument("--no-pm", action="store_true", help="skip the particle-mesh timings")
    ap.add_argument("--pm-n", type=float, default=1e6, help="N of the PM step timings")
    ap.add_argument("--pm-grid", type=int, default=256, help="PM nodes per axis")
    ap.add_argument("--pm-steps", type=int, default=10, help="simulate steps timed with PM")
    ap.add_argument("--pm-max-n", type=int, default=65536, help="largest N of the crossover")
    ap.add_argument("--direct-limit", type=float, default=5.0,
                    help="seconds of one direct sum after which larger N are extrapolated")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "particles.json")
    args = ap.parse_args(argv)
    for name in ("steps", "repeat", "pm_steps", "pm_max_n"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')}={getattr(args, name)} must be >= 1")
    if args.pm_grid < 4:
        ap.error(f"--pm-grid={args.pm_grid} must be >= 4")
    load_start = os.getloadavg() if hasattr(os, "getloadavg") else None
    max_threads = numba.config.NUMBA_NUM_THREADS
    with_floor = not args.no_floor

    results = ([] if args.no_throughput
               else throughput(args.sizes, args.steps, args.repeat, with_floor, max_threads))
    particle_mesh = None
    if not args.no_pm:
        particle_mesh = {
            "step": pm_step_timings(int(args.pm_n), args.pm_grid, args.pm_steps, args.repeat),
            "crossover": pm_crossover(args.pm_grid, args.repeat, args.pm_max_n,
                                      args.direct_limit),
        }
    try:
        load = os.getloadavg()
    except OSError:  # pragma: no cover
        load = None
    targets = [] if not results else ["speedup_vs_numpy"] + (["ratio_to_floor"]
                                                             if with_floor else [])
    report = {
        "benchmark": "particles: Euler-Maruyama with quadratic mean-field interaction, d=2; "
                     "noise floor; particle-mesh interaction",
        "model": {"a": A, "k": K, "sigma": SIGMA, "T": T},
        "target_speedup_vs_numpy": TARGET_SPEEDUP,
        "target_ratio_to_floor": TARGET_FLOOR_RATIO,
        "targets_checked": targets,
        "floor": {
            "measured": with_floor and bool(results),
            "kernel": "per step: the d standard normals of every particle from the package's "
                      "counter-based streams (same keys, hashes, ziggurat), X += s sqrt(dt) z; "
                      "prange over blocks of BLOCK particles; no mean, no drift",
            "block": BLOCK,
            "ratio_definition": "numba-max seconds / floor-max seconds",
        },
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpu_count": os.cpu_count(),
            "numba_threads": max_threads,
            "threading_layer": _threading_layer(),
            "numba": numba.__version__,
            "numpy": np.__version__,
            "load_average_at_start": load_start,
            "load_average_at_end": load,
        },
        "results": results,
        "particle_mesh": particle_mesh,
        "all_targets_met": all(e["meets_target"] for e in results) if results else None,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
