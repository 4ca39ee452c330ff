"""Particle engine throughput: Euler--Maruyama with the quadratic mean-field interaction.

Model (d = 2): dX^i = (-a X^i - k (X^i - mean(X))) dt + s dW^i, N particles, 100 steps.

Measured in one process, on the same machine and the same initial cloud:

* ``numpy``: a plain vectorised NumPy implementation (in-place updates, one preallocated noise
  buffer filled by ``Generator.standard_normal``) -- the baseline;
* ``numba-1``: :func:`mfg_solvers.particles.simulate` on one numba thread;
* ``numba-max``: the same on all numba threads (2 on the CI machine).

Reported: particle-steps per second, the speed-up of each over the baseline (target >= 5x with
all threads), the thread scaling 1 -> max, and the process CPU time of each (the CPU-time ratio
of the one-thread run is the per-core speed-up, which stays meaningful when other processes
share the cores). Results go to benchmarks/results/particles.json, with the load average.

The configurations are run in turn, ``--repeat`` times (default 3), and the fastest run of each
is kept: the usual guard against other processes on a shared machine.

Usage: ``python benchmarks/particles.py [--sizes 1e6 1e7] [--steps 100] [--repeat 3]``
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mfg_solvers.particles import (  # noqa: E402
    AffineDrift,
    QuadraticInteraction,
    gaussian_particles,
    simulate,
)
from mfg_solvers.particles.exact import linear_mv_moments  # noqa: E402

A, K, SIGMA, T = 1.0, 1.0, 0.5, 1.0
MEAN0, COV0 = [1.0, -0.5], 0.3
TARGET_SPEEDUP = 5.0


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
                       interaction=QuadraticInteraction(K), seed=1, progress=False)
        return run, time.perf_counter() - t0, time.process_time() - c0
    finally:
        numba.set_num_threads(old)


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


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=float, nargs="+", default=[1e6, 1e7])
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "particles.json")
    args = ap.parse_args(argv)
    load_start = os.getloadavg() if hasattr(os, "getloadavg") else None
    max_threads = numba.config.NUMBA_NUM_THREADS
    # compile (or load from cache) outside the timings
    simulate(gaussian_particles(2048, MEAN0, COV0, seed=0), T=T, n_steps=2, sigma=SIGMA,
             drift=AffineDrift(-A), interaction=QuadraticInteraction(K), seed=1, progress=False)
    results = []
    for size in args.sizes:
        n = int(size)
        X0 = gaussian_particles(n, MEAN0, COV0, seed=0)
        work = n * args.steps
        entry = {"n_particles": n, "dim": 2, "n_steps": args.steps, "repeat": args.repeat}
        # interleaved repetitions (numpy, numba-1, numba-max, numpy, ...): each configuration sees
        # the same conditions on a shared machine; the fastest of each is kept
        configs = [("numba-1", 1), ("numba-max", max_threads)]
        best = {label: (math.inf, math.inf) for label in ["numpy"] + [c[0] for c in configs]}
        moments = {}
        for _ in range(args.repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            Xn = numpy_baseline(X0, args.steps, seed=1)
            el, cpu = time.perf_counter() - t0, time.process_time() - c0
            best["numpy"] = min(best["numpy"], (el, cpu))
            moments["numpy"] = (Xn.mean(0), np.cov(Xn.T, bias=True))
            del Xn
            for label, threads in configs:
                run, el, cpu = run_numba(X0, args.steps, threads)
                best[label] = min(best[label], (el, cpu))
                moments[label] = (run.mean[-1], run.cov[-1])
                del run
        t_np, c_np = best["numpy"]
        entry["numpy"] = {"seconds": t_np, "cpu_seconds": c_np,
                          "particle_steps_per_s": work / t_np,
                          "moments_ok": check("numpy", *moments["numpy"], n, args.steps)}
        for label, threads in configs:
            el, cpu = best[label]
            entry[label] = {
                "threads": threads,
                "seconds": el,
                "cpu_seconds": cpu,
                "particle_steps_per_s": work / el,
                "speedup_vs_numpy": t_np / el,
                "cpu_time_ratio_numpy_over_this": c_np / cpu,
                "moments_ok": check(label, *moments[label], n, args.steps),
            }
        entry["thread_scaling"] = entry["numba-1"]["seconds"] / entry["numba-max"]["seconds"]
        entry["meets_target"] = entry["numba-max"]["speedup_vs_numpy"] >= TARGET_SPEEDUP
        results.append(entry)
        print(f"N={n:>9d}  numpy {work / t_np / 1e6:7.1f} M/s   "
              f"numba-1 {entry['numba-1']['particle_steps_per_s'] / 1e6:7.1f} M/s "
              f"(x{entry['numba-1']['speedup_vs_numpy']:.1f})   "
              f"numba-{max_threads} {entry['numba-max']['particle_steps_per_s'] / 1e6:7.1f} M/s "
              f"(x{entry['numba-max']['speedup_vs_numpy']:.1f}, "
              f"scaling {entry['thread_scaling']:.2f})")
    try:
        load = os.getloadavg()
    except OSError:  # pragma: no cover
        load = None
    report = {
        "benchmark": "particles: Euler-Maruyama with quadratic mean-field interaction, d=2",
        "model": {"a": A, "k": K, "sigma": SIGMA, "T": T},
        "target_speedup_vs_numpy": TARGET_SPEEDUP,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpu_count": os.cpu_count(),
            "numba_threads": max_threads,
            "threading_layer": numba.threading_layer(),
            "numba": numba.__version__,
            "numpy": np.__version__,
            "load_average_at_start": load_start,
            "load_average_at_end": load,
        },
        "results": results,
        "all_targets_met": all(e["meets_target"] for e in results),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
