"""The package's Newton solution equals that of an independent plain-SciPy implementation of the
same ACD scheme (benchmarks/baseline_scipy_acd.py) on the periodic benchmark (docs/theory.md)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from mfg_solvers import Domain, Grid, LocalCoupling, MFGProblem, solve

BASELINE_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "baseline_scipy_acd.py"


def _load_baseline():
    spec = importlib.util.spec_from_file_location("baseline_scipy_acd", BASELINE_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def baseline():
    return _load_baseline()


@pytest.mark.parametrize("nx, nt", [(40, 40), (30, 45)])
def test_newton_matches_independent_scipy_baseline(baseline, nx, nt):
    disc = baseline.PeriodicACD(nx, nt)
    Ub, Mb, info = baseline.solve_newton(disc, tol=1e-11)

    problem = MFGProblem(
        Domain((0.0, 1.0), "periodic"), nu=0.1, coupling=LocalCoupling("linear", 1.0), T=1.0,
        potential=baseline.benchmark_potential, m0=baseline.benchmark_m0,
    )
    grid = Grid((0.0, 1.0), nx, "periodic")
    sol = solve(problem, grid, nt, method="newton", tol=1e-11, progress=False)

    np.testing.assert_allclose(sol.axes[0], disc.x, rtol=0, atol=1e-15)
    np.testing.assert_allclose(sol.t, disc.t, rtol=0, atol=1e-15)
    # both stop below 1e-11; the discrete solutions agree to round-off (observed ~1e-15)
    assert np.abs(sol.u - Ub).max() < 1e-10
    assert np.abs(sol.m - Mb).max() < 1e-10
    # same Newton iterates: the residual histories coincide while they are large
    hist_p = np.asarray(sol.residual_history)
    hist_b = np.asarray(info["residual_history"])
    assert len(hist_b) >= 6
    np.testing.assert_allclose(hist_p[:5], hist_b[:5], rtol=1e-8)
    assert sol.iterations == info["iterations"]
    # the shape docs/theory.md reports at 200 x 200 (2.1 -> 14 -> 6.3 -> 0.24 -> 1.5e-3 ->
    # 9.2e-10): the residual rises after the first full step, then converges quadratically;
    # mass is exact and m stays positive
    assert hist_b[1] > hist_b[0] and hist_b[4] < 1e-2 and hist_b[5] < 1e-8
    assert np.abs(Mb.sum(axis=1) * disc.h - 1).max() < 1e-12
    assert Mb.min() > 0.3

