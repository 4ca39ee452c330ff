"""Benchmark: all-at-once Newton for the ACD finite-difference MFG scheme.

Problem (periodic benchmark): on the torus :math:`[0, 1)`, :math:`\\nu = 0.1`, :math:`T = 1`,

.. math::

    -\\partial_t u - 0.1\\,u_{xx} + \\tfrac12 u_x^2 = -\\cos(2\\pi x) + m,\\quad u(T) = 0,\\qquad
    \\partial_t m - 0.1\\,m_{xx} - (m u_x)_x = 0,\\quad
    m_0 \\propto 1 + \\tfrac12\\cos(2\\pi(x - \\tfrac14)),

with :math:`N_x = N_t = n` (default 400), Newton from :math:`U \\equiv 0`,
:math:`M \\equiv m_0` to a residual (max norm, scaled as in docs/theory.md) below
``1e-10``. It is solved twice
in the same process:

(a) the independent plain-SciPy implementation of ``benchmarks/baseline_scipy_acd.py``
    (Jacobian assembled block by block with ``scipy.sparse``, ``spsolve`` of the
    :math:`2 N_x N_t` system) -- the baseline;
(b) the package: ``mfg_solvers.solve(problem, grid, nt, method="newton")``.

It prints Newton iterations, total time, per-iteration assembly / linear-solve times, the
speed-up (a)/(b) (target >= 20x) and the max difference between the two discrete solutions,
then times a 2-D case (:math:`100 \\times 100` grid, 100 steps; run in a child process so that
its peak resident memory is measured on its own). Results go to
``benchmarks/results/fd_newton.json``.

Usage::

    python benchmarks/fd_newton.py            # n = 400 (the baseline alone takes about a minute)
    python benchmarks/fd_newton.py --n 200
    python benchmarks/fd_newton.py --quick    # small sizes, a smoke test (writes no file)
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import baseline_scipy_acd as baseline  # noqa: E402

TARGET_SPEEDUP = 20.0
TOL = 1e-10


# ---------------------------------------------------------------------------------------------
# problem definitions for the package
# ---------------------------------------------------------------------------------------------
def periodic_problem_1d():
    from mfg_solvers import Domain, LocalCoupling, MFGProblem

    return MFGProblem(
        Domain((0.0, 1.0), "periodic"), nu=0.1, coupling=LocalCoupling("linear", 1.0), T=1.0,
        potential=baseline.benchmark_potential, m0=baseline.benchmark_m0,
        name="periodic benchmark (periodic benchmark)",
    )


def periodic_problem_2d():
    """The 2-D analogue: V = -cos 2πx - cos 2πy, m0 ∝ 1 + ½ cos 2π(x-¼) cos 2π(y-¼)."""
    from mfg_solvers import Domain, LocalCoupling, MFGProblem

    return MFGProblem(
        Domain(((0.0, 1.0), (0.0, 1.0)), "periodic"), nu=0.1,
        coupling=LocalCoupling("linear", 1.0), T=1.0,
        potential=lambda x, y: -np.cos(2 * np.pi * x) - np.cos(2 * np.pi * y),
        m0=lambda x, y: 1.0 + 0.5 * np.cos(2 * np.pi * (x - 0.25)) * np.cos(2 * np.pi * (y - 0.25)),
        name="2-D periodic benchmark",
    )


def package_solve(problem, shape, nt):
    from mfg_solvers import Grid, solve

    grid = Grid(problem.domain.bounds, shape, problem.domain.boundary)
    return solve(problem, grid, nt, method="newton", tol=TOL, progress=False)


def solution_summary(sol, wall: float) -> dict:
    a = sol.attrs
    it = int(sol.iterations)
    out = {
        "iterations": it,
        "residual_history": [float(r) for r in sol.residual_history],
        "time_total": wall,
        "time_assembly": float(a.get("time_assembly", float("nan"))),
        "time_linear_solve": float(a.get("time_linear_solve", float("nan"))),
        "converged": bool(sol.converged),
    }
    for key in ("linear_solver", "solver", "scheme"):
        if key in a:
            out[key] = str(a[key])
    n = max(it, 1)
    out["time_per_iteration"] = wall / n
    out["assembly_per_iteration"] = out["time_assembly"] / n
    out["linear_solve_per_iteration"] = out["time_linear_solve"] / n
    return out


def _proc_status_mb(key: str) -> float | None:
    """``VmHWM`` (peak) or ``VmRSS`` (current) of this process in MiB, Linux only."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (Linux >= 4.0: write 5 to /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _peak_rss_mb() -> float:
    """Peak resident set size in MiB: VmHWM where available, else ru_maxrss (which on Linux
    also counts the parent's peak inherited through fork, hence the preference)."""
    hwm = _proc_status_mb("VmHWM")
    if hwm is not None:
        return hwm
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024.0 if sys.platform != "darwin" else peak / 2**20


# ---------------------------------------------------------------------------------------------
# the 2-D case, in a child process
# ---------------------------------------------------------------------------------------------
def child_2d(n: int, nt: int) -> dict:
    """Runs in the child: warm up (JIT) on a tiny grid, then time the n x n x nt solve."""
    prob = periodic_problem_2d()
    tic = time.perf_counter()
    package_solve(prob, (8, 8), 4)
    compile_time = time.perf_counter() - tic
    reset = _reset_peak_rss()
    rss_before = _proc_status_mb("VmRSS") or _peak_rss_mb()
    tic = time.perf_counter()
    cpu = time.process_time()
    sol = package_solve(prob, (n, n), nt)
    wall = time.perf_counter() - tic
    out = solution_summary(sol, wall)
    out["cpu_time_total"] = time.process_time() - cpu
    m = sol.m
    mass = m.reshape(m.shape[0], -1).sum(axis=1) * sol.cell_volume
    out.update(
        shape=[n, n], nt=nt, unknowns=2 * n * n * nt, warmup_time=compile_time,
        rss_before_mb=rss_before, peak_rss_mb=_peak_rss_mb(), peak_rss_reset=reset,
        min_m=float(m.min()), mass_error=float(np.abs(mass - 1).max()),
    )
    return out


def run_2d(n: int, nt: int) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child-2d", str(n), str(nt)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed",
                "shape": [n, n], "nt": nt}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


# ---------------------------------------------------------------------------------------------
def machine_info() -> dict:
    import numba
    import scipy

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "numba": numba.__version__,
        "numba_threads": numba.config.NUMBA_NUM_THREADS,
        "load_average_at_start": list(os.getloadavg()),
    }


def _per_iteration(info: dict) -> None:
    n_it = max(info["iterations"], 1)
    info["time_per_iteration"] = info["time_total"] / n_it
    info["assembly_per_iteration"] = info["time_assembly"] / n_it
    info["linear_solve_per_iteration"] = info["time_linear_solve"] / n_it


def run(n: int, n2d: int, nt2d: int, skip_2d: bool = False, verbose: bool = True) -> dict:
    """Both solves of the 1-D benchmark (and the 2-D case); returns the JSON record.

    The package runs first so that the baseline can be given the same iteration budget: both
    perform the same Newton iterates (identical to round-off), and at n = 400 the residual's
    round-off floor of the baseline (about 1.3e-10) lies above ``TOL``, so without the cap it
    would spin on round-off. The baseline stops at ``TOL`` or after as many iterations as the
    package needed, whichever comes first; its final residual is recorded.
    """
    import mfg_solvers

    machine = machine_info()
    print(f"== periodic benchmark, Nx = Nt = {n}, Newton to {TOL:g}")
    # (b) package: warm-up (numba compilation) first, then the timed solve
    prob = periodic_problem_1d()
    tic = time.perf_counter()
    package_solve(prob, 16, 16)
    warmup = time.perf_counter() - tic
    _reset_peak_rss()
    rss0 = _proc_status_mb("VmRSS")
    tic = time.perf_counter()
    cpu = time.process_time()
    sol = package_solve(prob, n, n)
    wall = time.perf_counter() - tic
    info_p = solution_summary(sol, wall)
    info_p["cpu_time_total"] = time.process_time() - cpu
    info_p["warmup_time"] = warmup
    info_p["rss_before_mb"], info_p["peak_rss_mb"] = rss0, _peak_rss_mb()

    # (a) baseline, same iteration budget
    _reset_peak_rss()
    rss0 = _proc_status_mb("VmRSS")
    disc = baseline.PeriodicACD(n, n)
    Ub, Mb, info_b = baseline.solve_newton(
        disc, tol=TOL, max_iter=info_p["iterations"], raise_on_failure=False, verbose=verbose
    )
    _per_iteration(info_b)
    info_b["rss_before_mb"], info_b["peak_rss_mb"] = rss0, _peak_rss_mb()

    print(f"(a) SciPy baseline : {info_b['iterations']} iterations, {info_b['time_total']:8.3f} s "
          f"(per iteration: assembly {info_b['assembly_per_iteration']:.3f} s, "
          f"linear solve {info_b['linear_solve_per_iteration']:.3f} s)")
    print("    residuals: " + " ".join(f"{r:.2e}" for r in info_b["residual_history"]))
    print(f"(b) mfg_solvers    : {info_p['iterations']} iterations, {wall:8.3f} s "
          f"(per iteration: assembly {info_p['assembly_per_iteration']:.3f} s, "
          f"linear solve {info_p['linear_solve_per_iteration']:.3f} s; "
          f"JIT warm-up {warmup:.1f} s, not counted)")
    print("    residuals: " + " ".join(f"{r:.2e}" for r in info_p["residual_history"]))

    du = float(np.abs(sol.u - Ub).max())
    dm = float(np.abs(sol.m - Mb).max())
    speedup = info_b["time_total"] / wall
    per_it = info_b["time_per_iteration"] / info_p["time_per_iteration"]
    cpu_ratio = info_b["cpu_time_total"] / info_p["cpu_time_total"]
    print(f"speed-up (a)/(b) = {speedup:.1f}x wall clock (target {TARGET_SPEEDUP:.0f}x: "
          f"{'met' if speedup >= TARGET_SPEEDUP else 'NOT met'}); per iteration {per_it:.1f}x; "
          f"CPU-time ratio {cpu_ratio:.1f}x; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cores")
    print(f"max |U_pkg - U_base| = {du:.2e}, max |M_pkg - M_base| = {dm:.2e}")
    if info_p["rss_before_mb"] is not None:
        print(f"peak RSS during the solve: baseline {info_b['peak_rss_mb']:.0f} MiB, package "
              f"{info_p['peak_rss_mb']:.0f} MiB (process RSS before: "
              f"{info_b['rss_before_mb']:.0f} / {info_p['rss_before_mb']:.0f} MiB)")

    result = {
        "benchmark": "fd_newton",
        "problem": "periodic benchmark, periodic benchmark",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "package_version": mfg_solvers.__version__,
        "machine": machine,
        "n": n,
        "tol": TOL,
        "baseline": info_b,
        "package": info_p,
        "speedup": speedup,
        "speedup_per_iteration": per_it,
        "cpu_time_ratio": cpu_ratio,
        "load_average_at_end": list(os.getloadavg()),
        "target_speedup": TARGET_SPEEDUP,
        "meets_target": bool(speedup >= TARGET_SPEEDUP),
        "max_abs_diff_u": du,
        "max_abs_diff_m": dm,
    }
    if not skip_2d:
        print(f"== 2-D periodic case {n2d} x {n2d} grid, {nt2d} steps (child process)")
        r2 = run_2d(n2d, nt2d)
        if "error" in r2:
            print(f"2-D case failed: {r2['error']}")
        else:
            print(f"2-D: {r2['iterations']} iterations, {r2['time_total']:.2f} s (assembly "
                  f"{r2['time_assembly']:.2f} s, linear solve {r2['time_linear_solve']:.2f} s); "
                  f"peak RSS {r2['peak_rss_mb']:.0f} MiB (before the solve "
                  f"{r2['rss_before_mb']:.0f} MiB); mass error {r2['mass_error']:.1e}")
        result["case_2d"] = r2
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description="ACD Newton benchmark: package vs SciPy baseline")
    parser.add_argument("--n", type=int, default=400, help="Nx = Nt of the 1-D case (default 400)")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes (n = 60, 2-D 24 x 24 x 12); writes no file unless --out")
    parser.add_argument("--n2d", type=int, default=100, help="2-D grid size per axis (default 100)")
    parser.add_argument("--nt2d", type=int, default=100, help="2-D time steps (default 100)")
    parser.add_argument("--no-2d", action="store_true", help="skip the 2-D case")
    parser.add_argument("--out", type=Path, default=None,
                        help="output JSON (default benchmarks/results/fd_newton.json)")
    parser.add_argument("--child-2d", nargs=2, type=int, metavar=("N", "NT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child_2d:
        print(json.dumps(child_2d(*args.child_2d), default=_json_default))
        return
    if args.quick:
        n, n2d, nt2d = 60, 24, 12
    else:
        n, n2d, nt2d = args.n, args.n2d, args.nt2d
    result = run(n, n2d, nt2d, skip_2d=args.no_2d)
    out = args.out
    if out is None and not args.quick:
        out = HERE / "results" / "fd_newton.json"
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2, default=_json_default) + "\n")
        print(f"written {out}")


if __name__ == "__main__":
    main()
