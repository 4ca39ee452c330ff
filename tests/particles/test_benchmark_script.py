"""The particle benchmark script (benchmarks/particles.py): its floor kernel draws exactly the
package's normals, its crossover and power-law fits are exact on power laws, and a tiny run
writes the expected report."""

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest

from mfg_solvers.particles import standard_normals

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "particles.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("benchmark_particles_script", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_floor_adds_the_package_normals(bench):
    assert bench.floor_generator_check(seed=3, n=2 * bench.BLOCK + 5, steps=(0, 2))
    n, scale = 1500, 0.25
    X = bench.floor_run(np.zeros((n, 2)), 3, seed=3, scale=scale)
    ref = sum(scale * standard_normals(3, n, 2, step) for step in range(3))
    np.testing.assert_allclose(X, ref, rtol=0, atol=1e-14)


def test_power_law_fits_and_crossover_are_exact_on_power_laws(bench):
    ns = np.array([256, 512, 1024, 2048, 4096])
    a = 3e-9
    b = a * 3000.0**1.75  # a N^2 = b N^(1/4) at N = 3000
    t_direct, t_pm = a * ns**2.0, b * ns**0.25
    p, c = bench.fit_power_law(ns, t_direct)
    assert p == pytest.approx(2.0, abs=1e-12) and c == pytest.approx(a, rel=1e-10)
    assert bench.n2_coefficient(ns[-3:], t_direct[-3:]) == pytest.approx(a, rel=1e-12)
    n_star, bracket = bench.crossover_n(ns, t_direct, t_pm)
    # log(t_pm / t_direct) is linear in log N, so the interpolation is exact
    assert n_star == pytest.approx(3000.0, rel=1e-12)
    assert bracket == (2048, 4096)
    assert bench.crossover_n(ns, t_direct, 0.5 * t_direct) == (None, None)
    assert bench.crossover_n(ns, t_direct, 2.0 * t_direct) == (None, None)


def test_tiny_run_writes_the_report(bench, tmp_path):
    out = tmp_path / "particles.json"
    bench.main(["--sizes", "4096", "--steps", "3", "--repeat", "1", "--pm-n", "3000",
                "--pm-grid", "32", "--pm-steps", "2", "--pm-max-n", "1024", "--out", str(out)])
    rep = json.loads(out.read_text())
    (entry,) = rep["results"]
    assert entry["floor-max"]["same_normals_as_package"] is True
    assert entry["ratio_to_floor"] == pytest.approx(
        entry["numba-max"]["seconds"] / entry["floor-max"]["seconds"], rel=1e-12)
    assert entry["meets_target"] == (entry["meets_speedup_target"]
                                     and entry["meets_floor_target"])
    assert rep["targets_checked"] == ["speedup_vs_numpy", "ratio_to_floor"]
    pm = rep["particle_mesh"]
    assert pm["step"]["n_particles"] == 3000
    assert pm["step"]["initial_cloud"]["max_abs_coordinate"] < 5.0
    cross = pm["crossover"]
    assert [r["n"] for r in cross["table"]][:2] == [256, 512]
    assert all(r["n"] <= 1024 for r in cross["table"])
    err = cross["relative_error"]["max_abs_error_over_max_abs_drift"]
    assert math.isfinite(err) and 0.0 < err < 0.2
