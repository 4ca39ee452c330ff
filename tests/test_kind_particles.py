"""Catalogue kind ``particles`` (mfg_solvers.kinds.particles) and the MPI path of the CLI.

The closed forms are written out here independently of the package: for

    dX = [-theta (X - mu) - k (X - mean(X))] dt + sigma dW,   X0 ~ N(m0, S0),

the mean is ``mu + (m0 - mu) e^{-theta t}`` and the deviations from the empirical mean follow an
OU process of rate ``a = theta + k``, so the expected empirical variance is
``(1 - 1/N) [S0 e^{-2at} + sigma^2 (1 - e^{-2at}) / (2a)]``. The Euler--Maruyama iterates obey
the scalar recursions ``m <- m (1 - theta dt) + theta mu dt`` and
``v <- (1 - a dt)^2 v + sigma^2 dt``.
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


def test_two_dimensional_entry_has_per_axis_keys():
    raw = _small(
        initial={"kind": "gaussian", "mean": [1.0, -1.0], "cov": [0.3, 0.2]},
        drift={"kind": "ou", "theta": 1.0, "mu": [0.0, 0.5]},
        interaction={"kind": "quadratic", "k": 0.5},
        sigma=[0.4, 0.6],
        box={"bounds": [[-4.0, 4.0], [-4.0, 4.0]], "boundary": "free"},
        density={"shape": [33, 33]},
    )
    _, s = cat.run_problem(raw)
    assert s["dim"] == 2
    for ax, m0, mu, S0, sig in (("x", 1.0, 0.0, 0.3, 0.4), ("y", -1.0, 0.5, 0.2, 0.6)):
        assert s[f"mean_T_{ax}_exact"] == pytest.approx(_mean_exact(m0, mu, 1.0, 1.0), rel=1e-13)
        assert s[f"var_T_{ax}_exact"] == pytest.approx(_var_exact(S0, sig, 1.5, 1.0, 4096),
                                                       rel=1e-12)
        assert abs(s[f"mean_T_{ax}_z"]) < 4 and abs(s[f"var_T_{ax}_z"]) < 4
    assert "mean_T" not in s and s["density_mass"] == pytest.approx(1.0, abs=1e-9)


def test_pairwise_kernel_in_a_periodic_box_has_no_closed_form():
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
    _, s = cat.run_problem(raw)
    assert "mean_T_exact" not in s and "w2_to_meanfield" not in s
    assert s["density_mass"] == pytest.approx(1.0, abs=1e-12)
    # uniform start, translation-invariant dynamics: the mean stays near 1/2
    assert abs(s["mean_T"] - 0.5) < 0.05 and s["mass"] == 1.0


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
    one = subprocess.run(args[:-2], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300, check=True)
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
