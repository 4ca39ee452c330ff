"""MF-PID agent simulation: numba kernel against a plain NumPy implementation of the same drift.

The d-sweep of the MF-PID demand-response study (M. Chertkov, arXiv:2605.00007; catalogue entry
``mfpid_dsweep``, data in docs/mfpid.md): d in (1, 2, 4, 8, 16, 32), K = 2, B = 4000 agents,
2500 Euler--Maruyama steps on [1e-3, 1 - 1e-3] (the demand-response protocol), the mean-field
guidance and the two independent-agent baselines advanced together with common random numbers.

For each d the script times

* ``numba_dense``: :func:`mfg_solvers.particles.mfpid_agents.simulate_agents` with the general
  full-covariance kernel (one (d x d) @ (d x 64) product per block, component and step);
* ``numba_auto``: the same call with ``covariance="auto"``, which here uses the diagonal kernel
  (the d-sweep covariances are diagonal);
* ``numpy``: the same simulation with ``backend="numpy"`` -- the vectorised NumPy drift of
  :meth:`MFPID.drift` (batched matrix products, log-sum-exp weights) in a Python time loop, with
  the same random numbers. By default it runs the first ``--baseline-steps`` steps and its time is
  scaled to the full run (the cost per step is constant); ``--baseline-steps 2500`` runs it all.

Compilation is excluded (a short warm-up run first). Results, with the machine description, go to
``benchmarks/results/mfpid.json``. The paper's author reports about 353 s for the MF run at
d = 32 with the author's own implementation (torch, float64, laptop CPU); the target here is
<= 10 s for MF plus both baselines.

Run ``python benchmarks/mfpid.py`` (``--dims 32 --baseline-steps 250`` for a quick look).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numba
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mfg_solvers.analytic.mfpid import (  # noqa: E402
    MFPIDProtocol,
    geometric_beta,
    linear_guidance,
    scenario_d_sweep,  # noqa: E402
)
from mfg_solvers.particles.mfpid_agents import aligned_time_grid, simulate_agents  # noqa: E402

PAPER_SECONDS_D32 = 353.0
TARGET_SECONDS_D32 = 10.0


def _protocols(p_in, tar, M=8):
    br = np.linspace(0.0, 1.0, M + 1)
    beta = geometric_beta(M)
    return {
        "mf": MFPIDProtocol(beta, linear_guidance(br, p_in.mean, tar.mean), br),
        "ia_zero": MFPIDProtocol(beta, np.zeros((M, tar.dim)), br),
        "ia_target": MFPIDProtocol(beta, np.repeat(tar.mean[None], M, axis=0), br),
    }


def _timed(fn):
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w0, time.process_time() - c0


def run_dimension(d: int, n_agents: int, n_steps: int, baseline_steps: int, seed: int) -> dict:
    p_in, tar = scenario_d_sweep(d)
    prots = _protocols(p_in, tar)
    starts = p_in.sample(n_agents, seed)
    grid = aligned_time_grid(prots["mf"].breaks, n_steps, 1e-3)
    row = {"d": d}
    for label, cov in (("numba_dense", "dense"), ("numba_auto", "auto")):
        simulate_agents(tar, prots, starts, grid[:4], seed=seed, covariance=cov, progress=False)
        runs, wall, cpu = _timed(lambda cov=cov: simulate_agents(
            tar, prots, starts, grid, seed=seed, covariance=cov, progress=False))
        row[f"{label}_s"] = wall
        row[f"{label}_cpu_s"] = cpu
        if label == "numba_dense":
            row["energy"] = dict(runs.energy)
            row["energy_se"] = dict(runs.energy_se)
            row["energy_per_zone_mf"] = runs.energy["mf"] / d
            row["savings_vs_ia_zero"] = runs.saving("mf", "ia_zero")[0]
            row["savings_vs_ia_target"] = runs.saving("mf", "ia_target")[0]
            dense_runs = runs
    nb = min(baseline_steps, n_steps)
    base, wall, cpu = _timed(lambda: simulate_agents(
        tar, prots, starts, grid[:nb + 1], seed=seed, backend="numpy", progress=False))
    scale = n_steps / nb
    row["numpy_s"] = wall * scale
    row["numpy_cpu_s"] = cpu * scale
    row["numpy_steps_measured"] = nb
    # the baseline is the same computation: compare the paths it produced
    row["max_abs_diff_vs_numpy"] = float(max(
        np.abs(base.mean_path[nm] - dense_runs.mean_path[nm][:nb + 1]).max() for nm in prots))
    row["speedup_dense_vs_numpy"] = row["numpy_s"] / row["numba_dense_s"]
    row["speedup_auto_vs_numpy"] = row["numpy_s"] / row["numba_auto_s"]
    # CPU seconds summed over threads: the comparison that a busy machine distorts least
    row["cpu_ratio_dense_vs_numpy"] = row["numpy_cpu_s"] / row["numba_dense_cpu_s"]
    row["cpu_ratio_auto_vs_numpy"] = row["numpy_cpu_s"] / row["numba_auto_cpu_s"]
    return row


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dims", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32])
    ap.add_argument("--agents", type=int, default=4000)
    ap.add_argument("--steps", type=int, default=2500)
    ap.add_argument("--baseline-steps", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "mfpid.json")
    args = ap.parse_args(argv)
    rows = []
    for d in args.dims:
        row = run_dimension(d, args.agents, args.steps, args.baseline_steps, args.seed)
        rows.append(row)
        print(f"d={d:3d}  numba dense {row['numba_dense_s']:7.2f} s"
              f" (cpu {row['numba_dense_cpu_s']:6.2f})"
              f"  numba auto {row['numba_auto_s']:7.2f} s  numpy {row['numpy_s']:8.2f} s"
              f"  speed-up {row['speedup_dense_vs_numpy']:5.1f}x"
              f" / {row['speedup_auto_vs_numpy']:5.1f}x"
              f"  saving {100 * row['savings_vs_ia_zero']:5.1f} %", flush=True)
    result = {
        "benchmark": "mfpid",
        "description": "MF + IA(nu=0) + IA(nu=m_tar) agents with common random numbers, "
                       "d-sweep scenario, times in seconds (compilation excluded); *_s is "
                       "wall-clock, *_cpu_s is CPU time summed over threads",
        "agents": args.agents,
        "steps": args.steps,
        "paper_reference_s_d32_mf_only": PAPER_SECONDS_D32,
        "target_s_d32": TARGET_SECONDS_D32,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "numba_threads": numba.get_num_threads(),
            "threading_layer": numba.threading_layer(),
            "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
            "python": platform.python_version(),
            "numpy": np.__version__,
            "numba": numba.__version__,
        },
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"written {args.out}")
    return result


if __name__ == "__main__":
    main()
