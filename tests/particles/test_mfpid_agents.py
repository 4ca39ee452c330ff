"""MF-PID agents as particles (mfg_solvers.particles.mfpid_agents): the aligned grid, the numba
kernel against the NumPy drift, reproducibility (seed, thread count, NUMBA_DISABLE_JIT), clouds
against the exact marginal, Monte-Carlo energies against quadrature, the linear-guidance theorem
by Monte Carlo, the damped fixed point on the guidance and the scenario interface."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numba
import numpy as np
import pytest
from scipy.stats import kstest

from mfg_solvers.analytic.mfpid import (
    MFPID,
    GaussianMixture,
    MFPIDProtocol,
    geometric_beta,
    linear_guidance,
    scenario_1d,
    scenario_d_sweep,
    validation_protocol,
    validation_target,
)
from mfg_solvers.particles import rng
from mfg_solvers.particles.mfpid_agents import (
    agent_noise,
    aligned_time_grid,
    fixed_point_guidance,
    run_scenario,
    scenario_from_spec,
    simulate_agents,
)

BR8 = np.linspace(0.0, 1.0, 9)


def _three_guidances(p_in, tar, beta=None, br=BR8):
    beta = geometric_beta(br.size - 1) if beta is None else beta
    M, d = br.size - 1, tar.dim
    return {
        "mf": MFPIDProtocol(beta, linear_guidance(br, p_in.mean, tar.mean), br),
        "ia_zero": MFPIDProtocol(beta, np.zeros((M, d)), br),
        "ia_target": MFPIDProtocol(beta, np.repeat(tar.mean[None], M, axis=0), br),
    }


# ---------------------------------------------------------------------------------------------
# grid and random numbers
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("breaks", [BR8, [0.0, 0.2, 0.5, 0.75, 1.0], [0.0, 0.0005, 0.3, 1.0]])
def test_aligned_time_grid(breaks):
    eps = 1e-3
    t = aligned_time_grid(breaks, 2500, eps)
    assert t.size == 2501 and t[0] == eps and t[-1] == 1 - eps
    dt = np.diff(t)
    assert np.all(dt > 0)
    inner = [b for b in breaks if eps < b < 1 - eps]
    assert all(np.any(np.abs(t - b) < 1e-15) for b in inner)
    # steps proportional to the piece lengths: dt within one step of uniform
    uniform = (1 - 2 * eps) / 2500
    assert dt.max() < 1.01 * uniform and (breaks[1] < 0.01 or dt.min() > 0.99 * uniform)


def test_agent_noise_is_the_counter_stream():
    xi = agent_noise(7, 50, 10, 3)
    np.testing.assert_array_equal(xi[:, :8], rng.standard_normals(7, 50, 8, 3 * 2))
    np.testing.assert_array_equal(xi[:, 8:], rng.standard_normals(7, 50, 2, 3 * 2 + 1))


# ---------------------------------------------------------------------------------------------
# kernel correctness and reproducibility
# ---------------------------------------------------------------------------------------------
def _small_case(d=3, K=3, B=70, seed=2):
    r = np.random.default_rng(seed)
    A = r.normal(size=(K, d, d)) * 0.3
    tar = GaussianMixture(np.full(K, 1 / K), r.normal(size=(K, d)),
                          np.einsum("kij,klj->kil", A, A) + 0.05 * np.eye(d))
    p_in = GaussianMixture.diagonal([0.5, 0.5], r.normal(size=(2, d)) + 3, [0.5, 0.7])
    return tar, p_in, p_in.sample(B, seed)


@pytest.mark.parametrize("d", [3, 12])
def test_numba_kernel_matches_numpy_drift(d):
    tar, p_in, Z = _small_case(d=d)
    prots = _three_guidances(p_in, tar)
    grid = aligned_time_grid(BR8, 80, 1e-3)
    snaps = [0, 40, 80]
    a = simulate_agents(tar, prots, Z, grid, seed=3, snapshot_index=snaps, progress=False,
                        chunk_steps=16)
    b = simulate_agents(tar, prots, Z, grid, seed=3, snapshot_index=snaps, progress=False,
                        backend="numpy")
    for nm in prots:
        assert a.energy[nm] == pytest.approx(b.energy[nm], rel=1e-11)
        np.testing.assert_allclose(a.final[nm], b.final[nm], rtol=0, atol=1e-10)
        np.testing.assert_allclose(a.power[nm], b.power[nm], rtol=1e-10)
        np.testing.assert_allclose(a.mean_path[nm], b.mean_path[nm], rtol=0, atol=1e-11)
        np.testing.assert_allclose(a.snapshots[nm], b.snapshots[nm], rtol=0, atol=1e-10)
    np.testing.assert_array_equal(a.snapshots["mf"][0], Z)


def test_diagonal_kernel_matches_dense_kernel():
    p_in, tar = scenario_d_sweep(4)
    Z = p_in.sample(100, 1)
    grid = aligned_time_grid(BR8, 100, 1e-3)
    prots = _three_guidances(p_in, tar)
    a = simulate_agents(tar, prots, Z, grid, seed=1, covariance="diagonal", progress=False)
    b = simulate_agents(tar, prots, Z, grid, seed=1, covariance="dense", progress=False)
    for nm in prots:
        np.testing.assert_allclose(a.final[nm], b.final[nm], rtol=0, atol=1e-11)
        assert a.energy[nm] == pytest.approx(b.energy[nm], rel=1e-12)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two numba threads")
@pytest.mark.parametrize("d", [3, 12])
def test_bit_identical_for_any_thread_count_and_seeded(d):
    tar, p_in, Z = _small_case(d=d, B=300)
    prots = _three_guidances(p_in, tar)
    grid = aligned_time_grid(BR8, 60, 1e-3)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        a = simulate_agents(tar, prots, Z, grid, seed=9, progress=False)
        numba.set_num_threads(2)
        b = simulate_agents(tar, prots, Z, grid, seed=9, progress=False)
    finally:
        numba.set_num_threads(before)
    c = simulate_agents(tar, prots, Z, grid, seed=10, progress=False)
    for nm in prots:
        np.testing.assert_array_equal(a.final[nm], b.final[nm])
        assert a.energy[nm] == b.energy[nm]
        np.testing.assert_array_equal(a.power[nm], b.power[nm])
        assert np.abs(c.final[nm] - a.final[nm]).max() > 0.1  # another seed, other paths


def test_results_without_jit_match():
    """NUMBA_DISABLE_JIT=1 runs the kernels as Python: same numbers to round-off."""
    code = (
        "import json, numpy as np\n"
        "from mfg_solvers.analytic.mfpid import *\n"
        "from mfg_solvers.particles.mfpid_agents import *\n"
        "out = {}\n"
        "for d, cov in ((2, 'auto'), (12, 'dense')):\n"
        "    p_in, tar = scenario_ar1(d, 0.5) if d > 2 else scenario_d_sweep(d)\n"
        "    Z = p_in.sample(5, 0)\n"
        "    r = simulate_agents(tar, demand_response_protocol(p_in.mean, tar.mean), Z,\n"
        "                        aligned_time_grid(np.linspace(0, 1, 9), 12, 1e-3), seed=4,\n"
        "                        covariance=cov, progress=False)\n"
        "    out[d] = [r.energy['mf'], r.final['mf'].tolist()]\n"
        "print(json.dumps(out))\n"
    )
    out = {}
    for flag in ("0", "1"):
        env = dict(os.environ, NUMBA_DISABLE_JIT=flag)
        proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                              text=True, timeout=300, check=True)
        out[flag] = json.loads(proc.stdout.strip().splitlines()[-1])
    for d in ("2", "12"):
        assert out["0"][d][0] == pytest.approx(out["1"][d][0], rel=1e-12)
        np.testing.assert_allclose(out["0"][d][1], out["1"][d][1], rtol=0, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# against the closed forms
# ---------------------------------------------------------------------------------------------
def test_e1_clouds_match_the_exact_marginal():
    """Experiment E1: Dirac start at the origin, prescribed guidance; particle clouds at fixed times
    against p*_t: 1-D projections (Kolmogorov-Smirnov), 2-D histograms (total variation), mean
    and covariance."""
    prot, eps = validation_protocol("E1")
    tar = validation_target()
    eng = MFPID(tar, prot)
    B = 12000
    grid = aligned_time_grid(prot.breaks, 800, eps)
    idx = [int(np.searchsorted(grid, t)) for t in (0.3, 0.6, 0.9)]
    runs = simulate_agents(tar, prot, np.zeros((B, 2)), grid, seed=11, snapshot_index=idx,
                           progress=False)
    nbin = 14
    edges = np.linspace(-2.5, 4.0, nbin + 1)
    fine = np.linspace(edges[0], edges[-1], 8 * nbin + 1)
    mid = 0.5 * (fine[1:] + fine[:-1])
    P1, P2 = np.meshgrid(mid, mid, indexing="ij")
    for s, i in enumerate(idx):
        X = runs.snapshots["mf"][s]
        g = eng.marginal(grid[i])
        for e in ([1.0, 0.0], [0.0, 1.0], [0.6, 0.8], [0.8, -0.6]):
            e = np.array(e)
            assert kstest(X @ e, g.marginal_1d(e).cdf_1d).statistic < 0.02
        # 2-D histogram against the exact cell probabilities (midpoint rule on 8x8 sub-cells):
        # Pearson chi-square per degree of freedom over the cells with >= 5 expected counts
        counts = np.histogram2d(X[:, 0], X[:, 1], bins=[edges, edges])[0]
        dens = g.pdf(np.stack([P1.ravel(), P2.ravel()], 1)).reshape(P1.shape)
        prob = (dens * (fine[1] - fine[0]) ** 2).reshape(nbin, 8, nbin, 8).sum(axis=(1, 3))
        expected = B * prob
        used = expected >= 5
        chi2 = np.sum((counts[used] - expected[used]) ** 2 / expected[used])
        assert chi2 / (used.sum() - 1) < 2.0
        se = X.std(axis=0) / np.sqrt(B)
        assert np.all(np.abs(X.mean(axis=0) - g.mean) < 4 * se + 5e-3)
        np.testing.assert_allclose(np.cov(X.T), g.covariance, rtol=0,
                                   atol=0.05 * g.covariance.max())


def test_e2_mean_within_standard_error():
    prot, eps = validation_protocol("E2")
    tar = validation_target()
    B = 10000
    grid = aligned_time_grid(prot.breaks, 800, eps)
    runs = simulate_agents(tar, prot, np.zeros((B, 2)), grid, seed=5, progress=False,
                           snapshot_index=[200, 400, 600, 800])
    exact = MFPID(tar, prot).mean(grid)
    for s, i in enumerate([200, 400, 600, 800]):
        X = runs.snapshots["mf"][s]
        se = X.std(axis=0) / np.sqrt(B)
        assert np.all(np.abs(runs.mean_path["mf"][i] - exact[i]) < 4 * se + 2e-3)
        np.testing.assert_allclose(runs.mean_path["mf"][i], X.mean(axis=0), atol=1e-12)


def test_monte_carlo_energies_match_quadrature():
    """Scenario B in 1-D: Monte-Carlo energies (left Riemann sums along the paths) against the
    deterministic quadrature over the exact marginal, for MF and both baselines."""
    p_in, tar = scenario_1d("B")
    mc = run_scenario(p_in, tar, estimator="mc", n_agents=6000, n_steps=2500, seed=3,
                      keep_runs=True)
    qd = run_scenario(p_in, tar, estimator="quadrature", n_hermite=16)
    for nm in ("mf", "ia_zero", "ia_target"):
        E = qd.energy[nm]
        assert abs(mc.energy[nm] - E) < 4 * mc.energy_se[nm] + 0.01 * E
        assert mc.zone_energy[nm].sum() == pytest.approx(mc.energy[nm], rel=1e-12)
    for ref in ("ia_zero", "ia_target"):
        assert abs(mc.savings[ref] - qd.savings[ref]) < 4 * mc.savings_se[ref] + 0.01
    assert qd.savings["ia_zero"] > 0.1 and qd.savings["ia_target"] > 0.0
    # power curve: the sum over steps reproduces the energy
    runs = mc.runs
    assert np.diff(runs.t) @ runs.power["mf"] == pytest.approx(mc.energy["mf"], rel=1e-10)


def test_theorem_by_monte_carlo_uses_the_sample_start_mean():
    """The simulated MF mean path follows the line through the *sample* mean of the drawn starts
    (guidance built from it), within Monte-Carlo and PWC errors; IA(nu=0) does not."""
    p_in, tar = scenario_d_sweep(4)
    B = 3000
    res = run_scenario(p_in, tar, n_agents=B, n_steps=800, seed=2, guidance_mean="sample",
                       keep_runs=True)
    runs = res.runs
    zbar = runs.starts.mean(axis=0)
    t = runs.t
    line = (1 - t)[:, None] * zbar + t[:, None] * tar.mean
    dev = np.abs(runs.mean_path["mf"] - line)
    # standard error of the noise part of the mean path; deterministic PWC error at M = 8
    se = np.sqrt(t * (1 - t) * 1.0 / B)[:, None] + 1e-3
    pwc = np.abs(MFPID(tar, MFPIDProtocol(geometric_beta(8), res.guidance["mf"])).mean(t, zbar)
                 - line).max()
    assert np.all(dev < 4 * se + pwc + 2e-3)
    dev_ia = np.abs(runs.mean_path["ia_zero"] - line).max()
    assert dev_ia > 20 * dev.max()


def test_fixed_point_iteration_by_monte_carlo_converges_to_the_line():
    p_in, tar = scenario_1d("A")
    fp = fixed_point_guidance(tar, p_in, geometric_beta(8), estimator="mc", n_agents=2000,
                              n_steps=400, seed=1, initial="perturbed", max_iter=60)
    assert fp.converged and fp.iterations < 40
    h = np.array(fp.history)
    assert h[-1] < 2e-4 and h[0] > 100 * h[-1]
    dm = abs(tar.mean[0] - fp.m_in[0])
    # the Monte-Carlo fixed point is the sample-mean line (PWC and noise errors ~1 %)
    assert np.abs(fp.nu - fp.line).max() < 0.03 * dm


def test_scenario_interface_and_spec():
    spec = {
        "d": 2, "K": 2,
        "target": {"weights": [0.6, 0.4], "means": [[0.1, 0.1], [1.5, 1.5]],
                   "stds": [0.2, 0.3]},
        "start": {"weights": [0.6, 0.4], "means": [[1.6, 1.6], [5.5, 5.5]],
                  "covs": [[[0.25, 0.05], [0.05, 0.25]], [[0.49, 0.0], [0.0, 0.49]]]},
        "beta": {"beta0": 12.0, "ratio": 0.65}, "n_intervals": 8, "eps": 1e-3,
        "estimator": "mc", "n_agents": 400, "n_steps": 300, "seed": 5,
    }
    res = scenario_from_spec(spec)
    summ = res.summary()
    for key in ("energy_mf", "energy_ia_zero", "energy_ia_target", "savings", "savings_se",
                "savings_vs_ia_target", "energy_se_mf", "peak_power_mf", "zone_energy_mf"):
        assert key in summ
    json.dumps(summ)
    assert res.energy_mf == summ["energy_mf"] and res.energy_ia_zero > res.energy_mf
    assert len(summ["zone_energy_mf"]) == 2
    assert summ["savings"] == pytest.approx(1 - res.energy_mf / res.energy_ia_zero, rel=1e-12)
    assert 0 < summ["savings"] < 1 and summ["savings_se"] > 0
    again = scenario_from_spec(spec)
    assert again.energy == res.energy  # seeded
    with pytest.raises(ValueError, match="unknown scenario keys"):
        scenario_from_spec({**spec, "n_particles": 3})
    with pytest.raises(ValueError, match="K=3"):
        scenario_from_spec({**spec, "K": 3})
    with pytest.raises(ValueError, match="estimator"):
        scenario_from_spec({**spec, "estimator": "exact"})


def test_validation():
    tar = validation_target()
    prot, _ = validation_protocol("E1")
    grid = aligned_time_grid(prot.breaks, 10, 1e-3)
    with pytest.raises(ValueError, match="starts has shape"):
        simulate_agents(tar, prot, np.zeros((5, 3)), grid, seed=0)
    with pytest.raises(ValueError, match="t_grid"):
        simulate_agents(tar, prot, np.zeros((5, 2)), np.linspace(0, 1, 5), seed=0)
    with pytest.raises(ValueError, match="backend"):
        simulate_agents(tar, prot, np.zeros((5, 2)), grid, seed=0, backend="torch")
    with pytest.raises(ValueError, match="other breaks or beta"):
        simulate_agents(tar, {"a": prot, "b": MFPIDProtocol([1.0] * 4, np.zeros((4, 2)))},
                        np.zeros((5, 2)), grid, seed=0)
    with pytest.raises(TypeError, match="seed"):
        simulate_agents(tar, prot, np.zeros((5, 2)), grid, seed=1.5)
    with pytest.raises(ValueError, match="n_steps"):
        aligned_time_grid(prot.breaks, 2, 1e-3)


def test_fixed_point_mean_field_equals_imposed_linear_guidance():
    """Without the theorem: MF guidance found by the damped fixed point (Monte Carlo, common
    random numbers) and the exogenous linear guidance IA(linear) give the same energy."""
    p_in, tar = scenario_1d("B")
    res = run_scenario(p_in, tar, n_agents=1500, n_steps=400, seed=4, mf_guidance="fixed_point",
                       guidance_mean="sample")
    assert set(res.energy) == {"mf", "ia_linear", "ia_zero", "ia_target"}
    assert res.settings["fixed_point_iterations"] < 60
    np.testing.assert_allclose(res.guidance["mf"], res.guidance["ia_linear"], rtol=0,
                               atol=0.03 * abs(tar.mean[0] - p_in.mean[0]))
    assert abs(res.savings["ia_linear"]) < 3 * res.savings_se["ia_linear"] + 2e-3
    assert res.savings["ia_zero"] > 0.1


@pytest.mark.slow
def test_monte_carlo_energies_match_quadrature_2d():
    """d-sweep scenario at d = 2: per-zone Monte-Carlo energies (B = 20000) against the
    deterministic Gauss-Hermite / Gauss-Legendre quadrature over the exact marginal."""
    p_in, tar = scenario_d_sweep(2)
    mc = run_scenario(p_in, tar, estimator="mc", n_agents=20000, n_steps=2500, seed=8)
    qd = run_scenario(p_in, tar, estimator="quadrature", n_hermite=12)
    for nm in ("mf", "ia_zero", "ia_target"):
        E = qd.energy[nm]
        assert abs(mc.energy[nm] - E) < 4 * mc.energy_se[nm] + 0.01 * E
        np.testing.assert_allclose(mc.zone_energy[nm], qd.zone_energy[nm], rtol=0.03)
    assert abs(mc.savings["ia_zero"] - qd.savings["ia_zero"]) < 4 * mc.savings_se["ia_zero"] + 0.01


def test_k_sweep_and_ar1_scenarios():
    """K-sweep: the target mean is 0, so IA(nu=0) and IA(nu=m_tar) are the same run; AR(1)
    experiment: zone correlation runs the full-covariance kernel and agrees with the NumPy drift."""
    from mfg_solvers.analytic.mfpid import scenario_ar1, scenario_k_sweep

    p_in, tar = scenario_k_sweep(3)
    np.testing.assert_allclose(tar.mean, 0.0, atol=1e-15)
    np.testing.assert_allclose(p_in.mean, 4.0, atol=1e-14)
    res = run_scenario(p_in, tar, n_agents=300, n_steps=200, seed=1)
    assert res.energy["ia_zero"] == res.energy["ia_target"]
    assert res.savings["ia_zero"] > 0.1
    p_in, tar = scenario_ar1(8, 0.8)
    assert not tar.is_diagonal
    assert tar.covs[0, 0, 2] == pytest.approx(0.04 * 0.64, rel=1e-14)
    a = run_scenario(p_in, tar, n_agents=64, n_steps=40, seed=2)
    b = run_scenario(p_in, tar, n_agents=64, n_steps=40, seed=2, backend="numpy")
    for nm in a.energy:
        assert a.energy[nm] == pytest.approx(b.energy[nm], rel=1e-11)
