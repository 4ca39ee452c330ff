"""Catalogue kind ``particles`` (mfg_solvers.kinds.particles) and the MPI path of the CLI.

The closed forms are written out here independently of the package: for

    dX = [-theta (X - mu) - k (X - mean(X))] dt + sigma dW,   X0 ~ N(m0, S0),

the mean is ``mu + (m0 - mu) e^{-theta t}`` and the deviations from the empirical mean follow an
OU process of rate ``a = theta + k``, so the expected empirical variance is
``(1 - 1/N) [S0 e^{-2at} + sigma^2 (1 - e^{-2at}) / (2a)]``. The Euler--Maruyama iterates obey
the scalar recursions ``m <- m (1 - theta dt) + theta mu dt`` and
``v <- (1 - a dt)^2 v + sigma^2 dt``. A single particle's law tends to the mean-field law
``N(m(t), S_a(t))`` with ``S_a`` the variance above without the factor ``(1 - 1/N)``.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from mfg_solvers import catalogue as cat
from mfg_solvers import cli
from mfg_solvers.catalogue import CatalogueError
from mfg_solvers.kinds.particles import closed_form_paths, plot_density, plot_moments
from mfg_solvers.particles.run import ParticleResult

ROOT = Path(__file__).resolve().parents[1]
CATALOGUE = ROOT / "problems"
ENTRY = "particles_mean_field"
LAUNCHER_VARIABLES = ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE",
                      "MPI_LOCALNRANKS")


def _raw(name: str = ENTRY) -> dict:
    return tomllib.loads((CATALOGUE / f"{name}.toml").read_text(encoding="utf-8"))


def _small(**parameters) -> dict:
    """The entry as a dict, at a small size, with parameters replaced."""
    raw = _raw()
    raw.pop("ci")
    raw.pop("reference")
    raw["parameters"].update({"n_particles": 4096, "n_steps": 40}, **parameters)
    return raw


def _mean_exact(m0, mu, theta, t):
    return mu + (m0 - mu) * math.exp(-theta * t)


def _var_exact(S0, sigma, a, t, N):
    e = math.exp(-2 * a * t)
    return (1 - 1 / N) * (S0 * e + sigma**2 * (1 - e) / (2 * a))


def _euler(m0, S0, mu, theta, k, sigma, T, n, N):
    dt = T / n
    m, v = m0, S0
    for _ in range(n):
        m = m * (1 - theta * dt) + theta * mu * dt
        v = (1 - (theta + k) * dt) ** 2 * v + sigma**2 * dt
    return m, (1 - 1 / N) * v


def _assert_same_result(a: ParticleResult, b: ParticleResult):
    for name in ("t", "mean", "cov", "mass"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype == np.float64 and np.array_equal(x, y), name
    assert (a.density is None) == (b.density is None)
    if a.density is not None:
        assert np.array_equal(a.density, b.density)
        assert len(a.density_axes) == len(b.density_axes)
        for x, y in zip(a.density_axes, b.density_axes, strict=True):
            assert np.array_equal(x, y)
    assert a.attrs == b.attrs
    assert all(type(v) is type(a.attrs[k]) for k, v in b.attrs.items())


@pytest.fixture(autouse=True)
def _no_launcher(monkeypatch):
    for name in LAUNCHER_VARIABLES:
        monkeypatch.delenv(name, raising=False)


# ---------------------------------------------------------------------------------------------
# the catalogue entry
# ---------------------------------------------------------------------------------------------
def test_entry_closed_form_values_match_the_formulas():
    raw = _raw()
    p = raw["parameters"]
    m0, S0 = p["initial"]["mean"], p["initial"]["cov"]
    theta, mu, k, sigma, T = (p["drift"]["theta"], p["drift"]["mu"], p["interaction"]["k"],
                              p["sigma"], p["T"])
    N = raw["ci"]["parameters"]["n_particles"]
    ref = raw["reference"]
    assert ref["mean_T_exact"]["value"] == pytest.approx(_mean_exact(m0, mu, theta, T), rel=1e-14)
    assert ref["var_T_exact"]["value"] == pytest.approx(
        _var_exact(S0, sigma, theta + k, T, N), rel=1e-13)
    # the stated tolerances cover 4 standard errors plus the Euler bias at the CI size
    n = raw["ci"]["parameters"]["n_steps"]
    m_e, v_e = _euler(m0, S0, mu, theta, k, sigma, T, n, N)
    e = math.exp(-2 * theta * T)
    var_mean = S0 * e + sigma**2 * (1 - e) / (2 * theta)
    se_mean = math.sqrt(var_mean / N)
    se_var = _var_exact(S0, sigma, theta + k, T, N) * math.sqrt(2 / N)
    assert ref["mean_T"]["atol"] >= 4 * se_mean + abs(m_e - ref["mean_T_exact"]["value"])
    assert ref["var_T"]["atol"] >= 4 * se_var + abs(v_e - ref["var_T_exact"]["value"])


def test_entry_is_listed_and_verifies():
    specs = {s.name: s for s in cat.list_problems(CATALOGUE)}
    spec = specs[ENTRY]
    assert spec.kind == "particles"
    ci = spec.ci_spec()
    assert ci.parameters["n_particles"] == 20000 and ci.parameters["n_steps"] == 200
    rows = cat.verify([ENTRY], directory=CATALOGUE)
    assert len(rows) == len(spec.reference) and all(r.passed for r in rows), rows


def test_summary_matches_independent_closed_form_and_euler_recursion():
    m0, S0, mu, theta, k, sigma, T, N, n = 1.5, 0.25, 0.5, 1.0, 2.0, 0.8, 1.0, 4096, 40
    _, s = cat.run_problem(_small())
    assert s["n_particles"] == N and s["ranks"] == 1 and s["mass"] == 1.0
    assert s["mean_T_exact"] == pytest.approx(_mean_exact(m0, mu, theta, T), rel=1e-13)
    assert s["var_T_exact"] == pytest.approx(_var_exact(S0, sigma, theta + k, T, N), rel=1e-12)
    m_e, v_e = _euler(m0, S0, mu, theta, k, sigma, T, n, N)
    assert s["mean_T_scheme"] == pytest.approx(m_e, rel=1e-12)
    assert s["var_T_scheme"] == pytest.approx(v_e, rel=1e-12)
    # Monte-Carlo scores against the scheme's expectations
    assert abs(s["mean_T_z"]) < 4 and abs(s["var_T_z"]) < 4
    assert abs(s["mean_T"] - m_e) < 4 * s["mean_T_se"]
    assert s["density_mass"] == pytest.approx(1.0, abs=1e-9)
    assert s["mean_T"] == s["mean"][0] and s["var_T"] == s["cov"][0][0]


def test_exact_scheme_has_no_bias_and_same_seed_reproduces():
    raw = _small(scheme="exact", n_steps=4)
    _, a = cat.run_problem(raw)
    _, b = cat.run_problem(raw)
    assert a["mean_T_scheme"] == a["mean_T_exact"] and a["var_T_scheme"] == a["var_T_exact"]
    assert a["mean_T"] == b["mean_T"] and a["var_T"] == b["var_T"]
    assert abs(a["mean_T_z"]) < 4 and abs(a["var_T_z"]) < 4
    _, c = cat.run_problem(raw, {"parameters.seed": 8})
    assert c["mean_T"] != a["mean_T"]


def test_two_dimensional_entry_has_per_axis_keys(tmp_path):
    raw = _small(
        initial={"kind": "gaussian", "mean": [1.0, -1.0], "cov": [0.3, 0.2]},
        drift={"kind": "ou", "theta": 1.0, "mu": [0.0, 0.5]},
        interaction={"kind": "quadratic", "k": 0.5},
        sigma=[0.4, 0.6],
        box={"bounds": [[-4.0, 4.0], [-4.0, 4.0]], "boundary": "free"},
        density={"shape": [33, 33]},
        record_every=20,
    )
    result, s = cat.run_problem(raw, out=tmp_path)
    assert s["dim"] == 2
    # the per-axis moments over time and the 2-D density, saved and read back exactly
    assert result.mean.shape == (3, 2) and result.cov.shape == (3, 2, 2)
    assert result.density.shape == (33, 33)
    saved = ParticleResult.load(tmp_path / "solution.nc")
    _assert_same_result(result, saved)
    assert saved.mean[-1].tolist() == s["mean"] and saved.cov[-1].tolist() == s["cov"]
    assert saved.var[-1].tolist() == [s["var_T_x"], s["var_T_y"]]
    assert np.array_equal(saved.cov[-1], saved.cov[-1].T)
    assert all((tmp_path / f"{name}.png").is_file() for name in ("moments", "density"))
    for ax, m0, mu, S0, sig in (("x", 1.0, 0.0, 0.3, 0.4), ("y", -1.0, 0.5, 0.2, 0.6)):
        assert s[f"mean_T_{ax}_exact"] == pytest.approx(_mean_exact(m0, mu, 1.0, 1.0), rel=1e-13)
        assert s[f"var_T_{ax}_exact"] == pytest.approx(_var_exact(S0, sig, 1.5, 1.0, 4096),
                                                       rel=1e-12)
        assert abs(s[f"mean_T_{ax}_z"]) < 4 and abs(s[f"var_T_{ax}_z"]) < 4
    assert "mean_T" not in s and s["density_mass"] == pytest.approx(1.0, abs=1e-9)


def test_pairwise_kernel_in_a_periodic_box_has_no_closed_form(tmp_path):
    raw = _small(
        n_particles=2048, n_steps=10,
        initial={"kind": "uniform", "bounds": [0.0, 1.0]},
        drift=None, sigma=0.3,
        interaction={"kind": "gaussian", "strength": -0.5, "width": 0.1, "method": "pm",
                     "mesh": 64},
        box={"bounds": [0.0, 1.0], "boundary": "periodic"},
        density={"shape": 32},
    )
    del raw["parameters"]["drift"]
    result, s = cat.run_problem(raw, out=tmp_path)
    assert "mean_T_exact" not in s and "w2_to_meanfield" not in s
    # periodic grid: 32 nodes, the right end is the left one
    x = result.density_axes[0]
    assert np.allclose(x, np.arange(32) / 32, rtol=0, atol=1e-15)
    assert x.size * (x[1] - x[0]) * result.density.mean() == pytest.approx(1.0, abs=1e-12)
    assert result.attrs["density_boundary"] == "periodic" and result.attrs["scheme"] == "euler"
    # no closed form: the figures show the particles alone
    figs = cat.get_kind("particles").figures(cat.load_problem(raw), result, s)
    assert len(figs["moments"].axes[0].lines) == 1 and len(figs["density"].axes[0].lines) == 1
    assert (tmp_path / "solution.nc").is_file() and (tmp_path / "density.png").is_file()
    assert s["density_mass"] == pytest.approx(1.0, abs=1e-12)
    # uniform start, translation-invariant dynamics: the mean stays near 1/2
    assert abs(s["mean_T"] - 0.5) < 0.05 and s["mass"] == 1.0


# ---------------------------------------------------------------------------------------------
# outputs: solution.nc (ParticleResult) and figures
# ---------------------------------------------------------------------------------------------
M0, S0, MU, THETA, K, SIGMA = 1.5, 0.25, 0.5, 1.0, 2.0, 0.8


def test_run_with_out_writes_solution_and_figures(tmp_path):
    N, n = 4096, 40
    result, s = cat.run_problem(_small(record_every=10), out=tmp_path)
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == ["density.png", "moments.png", "problem.json", "solution.nc",
                       "summary.json"]
    assert isinstance(result, ParticleResult)
    # recording times 0, 10 dt, ..., T; moments (nt, 1), (nt, 1, 1)
    assert np.allclose(result.t, np.linspace(0.0, 1.0, 5), rtol=0, atol=1e-15)
    assert result.mean.shape == (5, 1) and result.cov.shape == (5, 1, 1)
    assert np.array_equal(result.mass, np.ones(5))
    # the start is sampled exactly: N(1.5, 0.25) within 4 standard errors at t = 0
    assert abs(result.mean[0, 0] - M0) < 4 * math.sqrt(S0 / N)
    # every recorded moment against the expected Euler iterates at that step (4 s.e.)
    a = THETA + K
    for j, t in enumerate(result.t):
        steps = round(t * n)
        m_e, v_e = _euler(M0, S0, MU, THETA, K, SIGMA, t, steps, N) if steps else (M0, S0)
        e = math.exp(-2 * THETA * t)
        se_mean = math.sqrt((S0 * e + SIGMA**2 * (1 - e) / (2 * THETA)) / N)
        se_var = _var_exact(S0, SIGMA, a, t, N) * math.sqrt(2 / N) if t > 0 else S0 * math.sqrt(
            2 / N)
        assert abs(result.mean[j, 0] - m_e) < 4 * se_mean + 1e-3, (t, result.mean[j, 0], m_e)
        assert abs(result.cov[j, 0, 0] - v_e) < 4 * se_var + 1e-3, (t, result.cov[j, 0, 0], v_e)
    # the saved final moments are the summary's, exactly
    saved = ParticleResult.load(tmp_path / "solution.nc")
    assert saved.mean[-1, 0] == s["mean_T"] and saved.var[-1, 0] == s["var_T"]
    assert saved.cov[-1].tolist() == s["cov"] and saved.mass[-1] == s["mass"]
    # the density on the box's grid, not renormalised: its trapezoidal integral = density_mass
    x = saved.density_axes[0]
    assert np.allclose(x, np.linspace(-2.0, 5.0, 141), rtol=0, atol=1e-14)
    assert np.trapezoid(saved.density, x) == pytest.approx(s["density_mass"], rel=1e-13)
    assert saved.density.max() == s["density_max"]
    attrs = saved.attrs
    assert attrs == {"problem": ENTRY, "kind": "particles", "n_particles": N, "dim": 1,
                     "seed": 7, "scheme": "euler", "ranks": 1, "T": 1.0, "n_steps": n,
                     "dt": 1.0 / n, "steps_done": n, "interrupted": 0, "density_method": "cic",
                     "density_boundary": "free"}
    written_summary = json.loads((tmp_path / "summary.json").read_text())
    assert written_summary["mean_T"] == saved.mean[-1, 0]


def test_netcdf_round_trip_is_exact(tmp_path):
    import xarray as xr

    result, _ = cat.run_problem(_small(n_particles=2048, n_steps=8, record_every=2))
    path = result.save(tmp_path / "particles.nc")
    _assert_same_result(result, ParticleResult.load(path))
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        assert ds["mean"].dims == ("t", "axis") and ds["cov"].dims == ("t", "axis", "axis2")
        assert ds["mass"].dims == ("t",) and ds["density"].dims == ("x",)
        assert list(ds["axis"].values) == ["x"]
        assert np.array_equal(ds["mean"].values, result.mean)
        assert np.array_equal(ds["density"].values, result.density)
        assert np.array_equal(ds["x"].values, result.density_axes[0])
        assert int(ds.attrs["seed"]) == 7 and ds.attrs["scheme"] == "euler"
    # without a density
    raw = _small(n_particles=2048, n_steps=4)
    del raw["parameters"]["density"]
    bare, _ = cat.run_problem(raw)
    assert bare.density is None and "density_method" not in bare.attrs
    _assert_same_result(bare, ParticleResult.load(bare.save(tmp_path / "bare.nc")))


def test_closed_form_paths_and_figures_match_the_formulas():
    raw = _small(n_particles=2048, n_steps=20, record_every=5)
    spec = cat.load_problem(raw)
    result, s = cat.run_problem(spec)
    N, a = 2048, THETA + K
    t = np.array([0.0, 0.3, 1.0])
    ref = closed_form_paths(spec.parameters, t)
    for j, tj in enumerate(t):
        assert ref["mean"][j, 0] == pytest.approx(_mean_exact(M0, MU, THETA, tj), rel=1e-13)
        assert ref["var"][j, 0] == pytest.approx(_var_exact(S0, SIGMA, a, tj, N), rel=1e-12)
        e = math.exp(-2 * THETA * tj)
        assert ref["mean_se"][j, 0] == pytest.approx(
            math.sqrt((S0 * e + SIGMA**2 * (1 - e) / (2 * THETA)) / N), rel=1e-12)
        assert ref["var_se"][j, 0] == pytest.approx(
            _var_exact(S0, SIGMA, a, tj, N) / (1 - 1 / N) * math.sqrt(2 / N), rel=1e-12)
    # the final-time values are the summary's closed form and standard errors
    end = closed_form_paths(spec.parameters, [1.0])
    assert end["mean"][0, 0] == pytest.approx(s["mean_T_exact"], rel=1e-14)
    assert end["var"][0, 0] == pytest.approx(s["var_T_exact"], rel=1e-14)
    assert closed_form_paths({**spec.parameters, "initial": {"kind": "uniform",
                                                            "bounds": [0.0, 1.0]}}, t) is None

    figs = cat.get_kind("particles").figures(spec, result, s)
    assert sorted(figs) == ["density", "moments"]
    ax_m, ax_v = figs["moments"].axes
    # particles' markers are the recorded moments; the dashed curve is the closed form
    marks, curve = ax_m.lines[0], ax_m.lines[1]
    assert np.array_equal(marks.get_ydata(), result.mean[:, 0])
    tc = np.asarray(curve.get_xdata())
    assert tc[0] == 0.0 and tc[-1] == 1.0 and np.all(np.isin(result.t, tc))
    assert np.allclose(curve.get_ydata(), [_mean_exact(M0, MU, THETA, v) for v in tc],
                       rtol=1e-13, atol=0)
    assert np.allclose(ax_v.lines[1].get_ydata(), [_var_exact(S0, SIGMA, a, v, N) for v in tc],
                       rtol=1e-12, atol=0)
    assert len(ax_m.collections) == 1  # the +-2 s.e. band
    (ax_d,) = figs["density"].axes
    x = result.density_axes[0]
    dens, gauss = ax_d.lines
    assert np.array_equal(dens.get_ydata(), result.density)
    var_mf = _var_exact(S0, SIGMA, a, 1.0, N) / (1 - 1 / N)
    m_T = _mean_exact(M0, MU, THETA, 1.0)
    pdf = np.exp(-0.5 * (x - m_T) ** 2 / var_mf) / math.sqrt(2 * math.pi * var_mf)
    assert np.allclose(gauss.get_ydata(), pdf, rtol=1e-10, atol=1e-15)
    # the deposited density approximates the law: L1 distance small at N = 2048, h = 0.05
    assert np.sum(np.abs(result.density - pdf)) * (x[1] - x[0]) < 0.1
    for fig in figs.values():
        fig.clear()


def test_absorbing_box_records_the_live_mass_and_draws_it(tmp_path):
    raw = _small(
        n_particles=2048, n_steps=20, record_every=5, drift={"kind": "ou", "theta": 0.0},
        initial={"kind": "uniform", "bounds": [0.0, 1.0]}, sigma=0.5, interaction=None,
        box={"bounds": [0.0, 1.0], "boundary": "absorbing"}, density={"shape": 21},
    )
    del raw["parameters"]["interaction"]
    result, s = cat.run_problem(raw, out=tmp_path)
    assert (tmp_path / "mass.png").is_file() and (tmp_path / "density.png").is_file()
    assert result.mass[0] == 1.0 and np.all(np.diff(result.mass) <= 0)
    assert result.mass[-1] == s["mass"] < 1.0
    # the live particles in the box: with the dual-cell volumes (h/2 at the two end nodes, the
    # trapezoidal rule) the deposited mass is the live fraction, and so is density_mass
    x, m = result.density_axes[0], result.density
    assert np.trapezoid(m, x) == pytest.approx(result.mass[-1], rel=1e-12)
    assert s["density_mass"] == pytest.approx(result.mass[-1], rel=1e-12)
    # Brownian motion from U(0, 1), absorbed at 0 and 1: survival
    # sum_k 8 / (pi^2 (2k+1)^2) exp(-(2k+1)^2 pi^2 sigma^2 t / 2) at t = 1
    surv = sum(8 / (math.pi**2 * (2 * k + 1) ** 2)
               * math.exp(-((2 * k + 1) ** 2) * math.pi**2 * 0.25 / 2) for k in range(50))
    assert abs(result.mass[-1] - surv) < 4 * math.sqrt(surv * (1 - surv) / 2048) + 0.02
    saved = ParticleResult.load(tmp_path / "solution.nc")
    assert saved.attrs["density_boundary"] == "absorbing"
    _assert_same_result(result, saved)


def test_particle_result_checks_its_arrays():
    t = np.array([0.0, 1.0])
    ok = dict(t=t, mean=np.zeros((2, 1)), cov=np.ones((2, 1, 1)), mass=np.ones(2))
    ParticleResult(**ok)
    with pytest.raises(ValueError, match=r"cov has shape \(2, 2, 2\); expected \(2, 1, 1\)"):
        ParticleResult(**{**ok, "cov": np.ones((2, 2, 2))})
    with pytest.raises(ValueError, match=r"mean has shape \(3, 1\)"):
        ParticleResult(**{**ok, "mean": np.zeros((3, 1))})
    with pytest.raises(ValueError, match="density and density_axes"):
        ParticleResult(**ok, density=np.ones(4))
    with pytest.raises(ValueError, match=r"density has shape \(4,\); expected the grid shape"):
        ParticleResult(**ok, density=np.ones(4), density_axes=(np.arange(5.0),))
    with pytest.raises(ValueError, match="result has no density"):
        plot_density(ParticleResult(**ok))
    fig = plot_moments(ParticleResult(**ok))  # no closed form: the recorded points only
    assert len(fig.axes[0].lines) == 1 and len(fig.axes[0].collections) == 0
    fig.clear()


# ---------------------------------------------------------------------------------------------
# validation: one-line messages naming the key
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "overrides, fragments",
    [
        ({"parameters.n_particles": 1}, ["parameters.n_particles", "bad value 1", "integer >= 2"]),
        ({"parameters.dim": 4}, ["parameters.dim", "1, 2 or 3"]),
        ({"parameters.scheme": "rk4"}, ["parameters.scheme", "euler, milstein, exact"]),
        ({"parameters.interaction.kind": "cubic"}, ["parameters.interaction.kind", "quadratic"]),
        ({"parameters.interaction.width": 1.0}, ["unknown key 'parameters.interaction.width'"]),
        ({"parameters.drift.theta": "fast"}, ["parameters.drift.theta", "finite real"]),
        ({"parameters.nu": 0.1}, ["parameters.nu", "either sigma or nu"]),
        ({"parameters.sigma": -0.5}, ["parameters.sigma", ">= 0"]),
        ({"parameters.box.boundary": "sticky"}, ["parameters.box.boundary", "periodic"]),
        ({"parameters.density.shape": 1}, ["parameters.density.shape", ">= 2"]),
        ({"parameters.colour": "red"}, ["unknown key 'parameters.colour'"]),
        ({"solver.method": "newton"}, ["unknown key 'solver.method'"]),
    ],
)
def test_bad_values_raise_one_line_errors(overrides, fragments):
    with pytest.raises(CatalogueError) as excinfo:
        cat.load_problem(ENTRY, overrides, directory=CATALOGUE)
    msg = str(excinfo.value)
    assert "\n" not in msg and "(set by an override)" in msg
    for f in fragments:
        assert f in msg, (f, msg)


def test_density_needs_a_box_and_engine_errors_name_the_file():
    raw = _small()
    del raw["parameters"]["box"]
    with pytest.raises(CatalogueError, match=r"parameters\.box"):
        cat.load_problem(raw)
    raw = _small(initial={"kind": "gaussian", "mean": [0.0, 0.0], "cov": 1.0}, dim=1)
    with pytest.raises(CatalogueError, match=r"<particles_mean_field>: parameters: "):
        cat.run_problem(raw)


# ---------------------------------------------------------------------------------------------
# CLI and MPI
# ---------------------------------------------------------------------------------------------
def test_nonzero_rank_neither_prints_nor_writes(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PMI_RANK", "1")  # a launcher rank, without PMI_SIZE: no communicator
    status = cli.main(["run", ENTRY, "--catalogue", str(CATALOGUE), "--json",
                       "--set", "parameters.n_particles=2048", "--set", "parameters.n_steps=5",
                       "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert status == 0 and captured.out == "" and captured.err == ""
    assert not (tmp_path / "out").exists()
    status = cli.main(["run", ENTRY, "--catalogue", str(CATALOGUE), "--set", "parameters.x=1"])
    assert status == 2 and capsys.readouterr().err == ""


def _console_script() -> Path:
    return Path(sys.executable).with_name("mfg-solvers")


def _clean_env() -> dict:
    return {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARIABLES}


def test_single_process_does_not_import_mpi4py():
    code = (
        "import sys, json, contextlib, io\n"
        "from mfg_solvers.cli import main\n"
        "buf = io.StringIO()\n"
        "with contextlib.redirect_stdout(buf):\n"
        f"    rc = main(['run', {ENTRY!r}, '--json', '--set', 'parameters.n_particles=2048',"
        " '--set', 'parameters.n_steps=5'])\n"
        "s = json.loads(buf.getvalue())\n"
        "print(rc, s['ranks'], 'mpi4py' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_clean_env(),
                          capture_output=True, text=True, timeout=300, check=True)
    assert proc.stdout.split() == ["0", "1", "False"], proc.stdout + proc.stderr


@pytest.mark.mpi
def test_two_ranks_give_the_statistics_of_one_rank(tmp_path):
    mpiexec = Path(sys.executable).with_name("mpiexec")
    if not mpiexec.exists():
        mpiexec = shutil.which("mpiexec")
    assert mpiexec is not None, "mpiexec not found next to the interpreter or on PATH"
    script = _console_script()
    args = [str(script), "run", ENTRY, "--ci", "--json", "--out", str(tmp_path / "two")]
    env = _clean_env()
    one = subprocess.run([*args[:-1], str(tmp_path / "one")], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300, check=True)
    two = subprocess.run([str(mpiexec), "-n", "2", *args], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300, check=True)
    s1, s2 = json.loads(one.stdout), json.loads(two.stdout)  # rank 0 alone printed
    assert s1["ranks"] == 1 and s2["ranks"] == 2
    # moment-coupled dynamics: the same trajectories, moments equal to round-off (bit-identical
    # by construction: block sums added in global order)
    for key in ("mean_T", "var_T", "mean_T_z", "var_T_z", "w2_to_meanfield", "mass"):
        assert s2[key] == pytest.approx(s1[key], rel=1e-13, abs=1e-15), key
    assert np.allclose(s2["mean"], s1["mean"], rtol=1e-13, atol=0)
    assert np.allclose(s2["cov"], s1["cov"], rtol=1e-13, atol=0)
    # deposited densities are summed with Allreduce: equal to round-off
    assert s2["density_mass"] == pytest.approx(s1["density_mass"], rel=1e-12)
    assert s2["density_max"] == pytest.approx(s1["density_max"], rel=1e-12)
    # the closed-form checks hold on both layouts
    assert abs(s1["mean_T"] - s1["mean_T_exact"]) < 0.0167
    # only rank 0 wrote its files
    written = json.loads((tmp_path / "two" / "summary.json").read_text())
    assert written["ranks"] == 2 and written["mean_T"] == s2["mean_T"]
    # the saved moments over time agree with one rank; the density to round-off
    r1 = ParticleResult.load(tmp_path / "one" / "solution.nc")
    r2 = ParticleResult.load(tmp_path / "two" / "solution.nc")
    assert r1.attrs["ranks"] == 1 and r2.attrs["ranks"] == 2
    assert {k: v for k, v in r2.attrs.items() if k != "ranks"} == {
        k: v for k, v in r1.attrs.items() if k != "ranks"}
    assert np.array_equal(r2.t, r1.t) and np.array_equal(r2.mass, r1.mass)
    assert np.allclose(r2.mean, r1.mean, rtol=1e-13, atol=0)
    assert np.allclose(r2.cov, r1.cov, rtol=1e-13, atol=0)
    assert np.allclose(r2.density, r1.density, rtol=1e-12, atol=1e-14)
    assert r2.mean[-1, 0] == s2["mean_T"] and r2.var[-1, 0] == s2["var_T"]
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(
        p.name for p in (tmp_path / "one").iterdir())
