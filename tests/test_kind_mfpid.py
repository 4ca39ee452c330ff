"""Catalogue kinds ``mfpid-lqg`` and ``mfpid-gm`` (mfg_solvers.kinds.mfpid): loading and
validation of the MF-PID entries, summaries against closed forms, overrides, sweeps, outputs
and ``verify``.

The LQG checks use the one-dimensional closed forms of the LQG benchmark (docs/mfpid.md, section
"Closed forms") written out here independently of the package (Riccati solution, variance, mean
paths, power); the Gaussian-mixture checks use the deterministic quadrature estimator and the
exact mean path of the start-shifted bridges as references for the
Monte-Carlo agents, with tolerances from the measured standard errors.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pytest
from scipy.integrate import quad

from mfg_solvers import catalogue as cat
from mfg_solvers.catalogue import CatalogueError

CATALOGUE = Path(__file__).resolve().parent.parent / "problems"
ENTRIES = ("mfpid_lqg", "mfpid_1d_a", "mfpid_1d_b", "mfpid_dsweep", "mfpid_ksweep", "mfpid_ar1")
REQUIRED_KEYS = (
    "energy_mf", "energy_ia_zero", "energy_ia_target", "saving_vs_zero", "saving_vs_target",
    "energy_per_zone_mf", "peak_power_mf", "peak_power_ia_zero", "energy_se_mf",
    "energy_se_ia_zero", "energy_se_ia_target", "saving_vs_zero_se", "saving_vs_target_se",
)


def _raw(name: str) -> dict:
    return tomllib.loads((CATALOGUE / f"{name}.toml").read_text(encoding="utf-8"))


def _one_line(excinfo, *fragments):
    msg = str(excinfo.value)
    assert "\n" not in msg
    for f in fragments:
        assert f in msg, (f, msg)
    return msg


# ---------------------------------------------------------------------------------------------
# loading and validation
# ---------------------------------------------------------------------------------------------
def test_entries_load_with_their_ci_overlay():
    specs = {s.name: s for s in cat.list_problems(CATALOGUE)}
    for name in ENTRIES:
        s = specs[name]
        assert s.kind == ("mfpid-lqg" if name == "mfpid_lqg" else "mfpid-gm")
        assert s.path.stem == name and s.reference
        assert s.source["arxiv"] == "2605.00007"
        ci = s.ci_spec()
        assert ci.parameters["samples"] <= s.parameters["samples"]
        assert ci.parameters["steps"] < s.parameters["steps"]
    # the studies as defined in the paper's demand-response experiments (data in docs/mfpid.md)
    p = specs["mfpid_dsweep"].parameters
    assert (p["scenario"], p["d"], p["K"], p["sweep"]) == ("d-sweep", 8, 2, [1, 2, 4, 8, 16, 32])
    assert (p["samples"], p["steps"], p["epsilon"], p["intervals"]) == (4000, 2500, 1e-3, 8)
    assert specs["mfpid_ksweep"].parameters["sweep"] == [2, 3, 4, 8]
    assert specs["mfpid_ksweep"].parameters["samples"] == 6000
    assert specs["mfpid_ar1"].parameters["sweep"] == [0.0, 0.5, 0.8]
    assert specs["mfpid_dsweep"].ci_spec().parameters["sweep"] == []
    lqg = specs["mfpid_lqg"].parameters
    assert (lqg["kappa"], lqg["q"], lqg["m_target"], lqg["sigma_target"]) == (0.6, 12.0, 2.0, 0.5)


def test_build_gives_the_laws_and_protocols_of_the_reference():
    built = cat.load_problem("mfpid_dsweep", {"parameters.d": 4}).build()
    p_in, p_tar, prot = built["p_in"], built["p_tar"], built["protocols"]
    z = np.sin(2 * np.pi * np.arange(4) / 4)
    np.testing.assert_allclose(p_tar.mean, 0.66 + 0.03 * z, atol=1e-14)
    np.testing.assert_allclose(p_in.mean, 3.16 + 0.03 * z, atol=1e-14)
    np.testing.assert_allclose(prot["mf"].beta, 12 * 0.65 ** np.arange(8), rtol=1e-14)
    tm = (np.arange(8) + 0.5) / 8
    line = (1 - tm)[:, None] * p_in.mean + tm[:, None] * p_tar.mean
    np.testing.assert_allclose(prot["mf"].nu, line)
    assert np.all(prot["ia_zero"].nu == 0) and np.allclose(prot["ia_target"].nu, p_tar.mean)
    bench = cat.load_problem("mfpid_lqg").build()
    assert (bench.kappa, bench.q, bench.m_tar, bench.sigma_tar) == (0.6, 12.0, 2.0, 0.5)


@pytest.mark.parametrize(
    "name, overrides, fragments",
    [
        ("mfpid_dsweep", {"parameters.zones": 3},
         ["unknown key 'parameters.zones'", "allowed:", "sweep"]),
        ("mfpid_dsweep", {"parameters.estimator": "mc"},
         ["parameters.estimator", '"mc"', "monte-carlo, quadrature"]),
        ("mfpid_dsweep", {"parameters.rho": 0.5},
         ["parameters.rho", "does not apply to scenario 'd-sweep'"]),
        ("mfpid_dsweep", {"parameters.K": 3}, ["parameters.K", "fixed by scenario 'd-sweep'"]),
        ("mfpid_dsweep", {"parameters.sweep": [1, 2.5]}, ["parameters.sweep", "integers >= 1"]),
        ("mfpid_dsweep", {"parameters.sweep": [2, 2]}, ["parameters.sweep", "distinct"]),
        ("mfpid_dsweep", {"parameters.estimator": "quadrature"},
         ["parameters.estimator", "d <= 2"]),
        ("mfpid_dsweep", {"parameters.quadrature_check": True}, ["parameters.quadrature_check"]),
        ("mfpid_dsweep", {"parameters.epsilon": 0.5}, ["parameters.epsilon", "(0, 0.5)"]),
        ("mfpid_dsweep", {"parameters.steps": 4}, ["parameters.steps", "intervals"]),
        ("mfpid_dsweep", {"parameters.samples": 1}, ["parameters.samples", "integer >= 2"]),
        ("mfpid_ar1", {"parameters.rho": 1.0}, ["parameters.rho", "(-1, 1)"]),
        ("mfpid_ar1", {"parameters.sweep": [0.0, 1.2]}, ["parameters.sweep", "(-1, 1)"]),
        ("mfpid_1d_a", {"parameters.d": 2}, ["parameters.d", "fixed by scenario '1d-A'"]),
        ("mfpid_1d_a", {"parameters.sweep": [1]}, ["parameters.sweep", "does not apply"]),
        ("mfpid_1d_a", {"parameters.scenario": "2d"}, ["parameters.scenario", "1d-A, 1d-B"]),
        ("mfpid_1d_a", {"solver.method": "newton"}, ["unknown key 'solver.method'"]),
        ("mfpid_lqg", {"parameters.sigma_target": 20.0}, ["parameters.sigma_target", "rho"]),
        ("mfpid_lqg", {"parameters.q": -1.0}, ["parameters.q", ">= 0"]),
        ("mfpid_lqg", {"parameters.estimator": "quadrature"}, ["closed-form, monte-carlo"]),
    ],
)
def test_bad_values_give_one_line_errors(name, overrides, fragments):
    with pytest.raises(CatalogueError) as excinfo:
        cat.load_problem(name, overrides)
    msg = _one_line(excinfo, *fragments)
    assert f"{name}.toml" in msg  # the file is named


def test_missing_parameter_and_bad_file(tmp_path):
    raw = _raw("mfpid_lqg")
    del raw["parameters"]["kappa"]
    with pytest.raises(CatalogueError) as excinfo:
        cat.load_problem(raw)
    _one_line(excinfo, "parameters.kappa", "missing required key")
    path = tmp_path / "mfpid_bad.toml"
    text = (CATALOGUE / "mfpid_1d_b.toml").read_text(encoding="utf-8")
    path.write_text(text.replace('scenario = "1d-B"', 'scenario = "1d-B"\ndrift = 0.1'),
                    encoding="utf-8")
    with pytest.raises(CatalogueError) as excinfo:
        cat.load_problem(path)
    _one_line(excinfo, str(path), "unknown key 'parameters.drift'", "scenario")


def _custom(start=None, target=None):
    raw = _raw("mfpid_1d_b")
    raw["name"] = "custom"
    raw["parameters"]["scenario"] = "custom"
    raw["parameters"]["start"] = start or {"weights": [0.6, 0.4], "means": [1.5, 5.5],
                                           "stds": [0.5, 0.7]}
    raw["parameters"]["target"] = target or {"weights": [0.6, 0.4], "means": [0.0, 1.5],
                                             "stds": [0.2, 0.3]}
    return raw


def test_custom_mixture_tables_are_checked():
    spec = cat.load_problem(_custom())
    assert spec.parameters["d"] == 1 and spec.parameters["K"] == 2
    bad = {"weights": [0.5, 0.4], "means": [0.0, 1.5], "stds": [0.2, 0.3]}
    with pytest.raises(CatalogueError) as excinfo:
        cat.load_problem(_custom(target=bad))
    _one_line(excinfo, "parameters.target", "sum to", "weights")
    both = {"weights": [1.0], "means": [0.0], "stds": [0.2], "covs": [0.04]}
    with pytest.raises(CatalogueError) as excinfo:
        cat.load_problem(_custom(target=both))
    _one_line(excinfo, "parameters.target", "exactly one of stds and covs")
    two_d = {"weights": [1.0], "means": [[0.0, 1.0]], "stds": [[0.2, 0.3]]}
    with pytest.raises(CatalogueError) as excinfo:
        cat.load_problem(_custom(target=two_d))
    _one_line(excinfo, "parameters.start", "dimension 1", "target has 2")


def test_custom_laws_reproduce_the_named_scenario():
    over = {"parameters.estimator": "quadrature", "parameters.quadrature_nodes": 8}
    _, named = cat.run_problem("mfpid_1d_b", over)
    _, custom = cat.run_problem(_custom(), over)
    for k in ("energy_mf", "energy_ia_zero", "energy_ia_target", "saving_vs_zero"):
        assert custom[k] == pytest.approx(named[k], rel=1e-13)


# ---------------------------------------------------------------------------------------------
# mfpid-lqg against the 1-D closed forms of the LQG benchmark (written out independently here)
# ---------------------------------------------------------------------------------------------
KAPPA, Q, M_TAR, SIG = 0.6, 12.0, 2.0, 0.5


def _lqg_exact():
    D = np.sqrt(KAPPA**2 + Q)
    e = np.exp(-2 * D)
    rho = (2 * D * SIG**2 + e - 1) / (2 * D * SIG**2 * e + e - 1)

    def S(t):
        E = rho * np.exp(2 * D * (t - 1))
        return -KAPPA + D * (1 + E) / (1 - E)

    def Sigma(t):
        return (1 - rho * np.exp(2 * D * (t - 1))) * (1 - np.exp(-2 * D * t)) / (
            2 * D * (1 - rho * e))

    def mean_and_rate(t, centre):
        if centre is None:  # mean field: m'' = kappa^2 m
            k = KAPPA
            return M_TAR * np.sinh(k * t) / np.sinh(k), M_TAR * k * np.cosh(k * t) / np.sinh(k)
        mp = Q * centre / D**2  # constant centre: m'' = D^2 m - q centre
        m = mp - mp * np.sinh(D * (1 - t)) / np.sinh(D) + (M_TAR - mp) * np.sinh(D * t) / np.sinh(D)
        dm = (mp * np.cosh(D * (1 - t)) + (M_TAR - mp) * np.cosh(D * t)) * D / np.sinh(D)
        return m, dm

    def power(t, centre):
        m, dm = mean_and_rate(t, centre)
        return S(t) ** 2 * Sigma(t) + (dm + KAPPA * m) ** 2  # E[u]= -(S m + s) = m' + kappa m

    centres = {"mf": None, "ia_zero": 0.0, "ia_target": M_TAR}
    energy = {g: quad(power, 0, 1, args=(c,), epsabs=1e-13, epsrel=1e-13, limit=200)[0]
              for g, c in centres.items()}
    s0 = {}
    for g, c in centres.items():
        m, dm = mean_and_rate(0.0, c)
        s0[g] = -(dm + KAPPA * m) - S(0.0) * m
    return {"Delta": D, "rho": rho, "S_0": S(0.0), "S_1": S(1.0), "Sigma_0_25": Sigma(0.25),
            "Sigma_0_5": Sigma(0.5), "energy": energy, "s0": s0, "mean": mean_and_rate,
            "Sigma": Sigma}


def test_lqg_closed_form_summary_matches_the_formulas():
    ex = _lqg_exact()
    _, s = cat.run_problem("mfpid_lqg", {"parameters.estimator": "closed-form"})
    for k in ("Delta", "rho", "S_0", "S_1", "Sigma_0_25", "Sigma_0_5"):
        assert s[k] == pytest.approx(ex[k], rel=1e-12), k
    # anchors: values printed by the paper's companion code and closed-form values
    assert s["Delta"] == pytest.approx(3.515679166249389, rel=1e-14)
    assert s["rho"] == pytest.approx(-0.7605769821241912, rel=1e-13)
    assert s["S_1"] == pytest.approx(-0.1218984887267145, rel=1e-12)
    assert s["s0_ia_zero"] == pytest.approx(-0.4184207, rel=1e-6)
    assert s["s0_ia_target"] == pytest.approx(-6.8508249, rel=1e-6)
    for g in ("mf", "ia_zero", "ia_target"):
        assert s[f"energy_{g}"] == pytest.approx(ex["energy"][g], rel=1e-11), g
        assert s[f"energy_{g}_exact"] == s[f"energy_{g}"] and s[f"energy_se_{g}"] == 0.0
        assert s[f"s0_{g}"] == pytest.approx(ex["s0"][g], rel=1e-12), g
    e = ex["energy"]
    assert s["saving_vs_zero"] == pytest.approx(1 - e["mf"] / e["ia_zero"], rel=1e-10)
    assert s["saving_vs_target"] == pytest.approx(1 - e["mf"] / e["ia_target"], rel=1e-10)
    # the mean field saves energy against both constant centres
    assert 0.25 < s["saving_vs_zero"] < 0.3 and 0.25 < s["saving_vs_target"] < 0.32
    for k in REQUIRED_KEYS:
        assert k in s, k


def test_lqg_agents_match_the_closed_form():
    """Euler-Maruyama agents (B = 3000, 500 steps): energies within 4 standard errors plus the
    O(dt) bias of the left Riemann sum (measured -0.5 % for IA(0) at 500 steps)."""
    ex = _lqg_exact()
    over = {"parameters.samples": 3000, "parameters.steps": 500, "parameters.seed": 3}
    study, s = cat.run_problem("mfpid_lqg", over)
    assert s["estimator"] == "monte-carlo" and s["samples"] == 3000
    for g in ("mf", "ia_zero", "ia_target"):
        tol = 4 * s[f"energy_se_{g}"] + 0.006 * ex["energy"][g]
        assert abs(s[f"energy_{g}"] - ex["energy"][g]) < tol, g
    assert abs(s["saving_vs_zero"] - s["saving_vs_zero_exact"]) < 4 * s["saving_vs_zero_se"] + 0.005
    # the mean path is the sinh profile, the variance the closed form (same for every run)
    t = study.t_mc
    m_exact, _ = ex["mean"](t, None)
    sd_mean = np.sqrt(ex["Sigma"](t) / 3000)  # Monte-Carlo noise; plus the O(dt) Euler bias
    assert np.all(np.abs(study.mean_mc["mf"] - m_exact) < 5 * sd_mean + 0.005)
    assert s["mean_path_error_mf"] < 0.03 and s["variance_path_error"] < 0.12
    # reproducible: the same seed gives the same numbers
    _, s2 = cat.run_problem("mfpid_lqg", over)
    assert s2["energy_mf"] == s["energy_mf"]


# ---------------------------------------------------------------------------------------------
# mfpid-gm
# ---------------------------------------------------------------------------------------------
def test_gm_quadrature_summary_1d():
    over = {"parameters.estimator": "quadrature", "parameters.quadrature_nodes": 16}
    study, s = cat.run_problem("mfpid_1d_b", over)
    for k in REQUIRED_KEYS:
        assert k in s, k
    assert s["energy_se_mf"] == 0.0 and s["saving_vs_zero_se"] == 0.0
    # deterministic values (Gauss-Hermite accuracy ~1e-5 relative: 12 vs 16 nodes)
    _, s12 = cat.run_problem("mfpid_1d_b", dict(over, **{"parameters.quadrature_nodes": 12}))
    assert s12["energy_mf"] == pytest.approx(s["energy_mf"], rel=2e-4)
    assert s12["saving_vs_zero"] == pytest.approx(s["saving_vs_zero"], abs=5e-5)
    assert s["saving_vs_zero"] == pytest.approx(1 - s["energy_mf"] / s["energy_ia_zero"], rel=1e-12)
    assert s["energy_mf_quadrature"] == s["energy_mf"]
    # E >= |E u|^2 integrated = |m_tar - m_in|^2 (1 - 2 eps) for the straight mean path
    assert s["energy_mf"] > s["displacement"] ** 2 * (1 - 2e-3)
    # the theorem: the MF mean path is the line up to the O(M^-2) error of the midpoint
    # guidance; the baselines are curved by about a third of the displacement
    assert s["mean_path_deviation_mf"] < 2e-3
    assert s["mean_path_deviation_ia_zero"] > 0.25 and s["mean_path_deviation_ia_target"] > 0.2
    np.testing.assert_allclose(study.progress("mf")[[0, -1]], [1e-3, 1 - 1e-3], atol=2e-3)
    assert 0.2 < s["saving_vs_zero"] < 0.25 and 0.1 < s["saving_vs_target"] < 0.2


def test_gm_monte_carlo_summary_against_quadrature_1d():
    """Agents (B = 3000, 500 steps) against the quadrature of the same entry: savings within 4
    paired standard errors plus the time-step bias (+0.004 measured at 500 steps)."""
    over = {"parameters.samples": 3000, "parameters.steps": 500, "parameters.quadrature_nodes": 8}
    study, s = cat.run_problem("mfpid_1d_b", over)
    for g in ("mf", "ia_zero", "ia_target"):
        q = s[f"energy_{g}_quadrature"]
        assert abs(s[f"energy_{g}"] - q) < 4 * s[f"energy_se_{g}"] + 0.01 * q, g
        assert s[f"energy_per_zone_{g}"] == s[f"energy_{g}"]
        assert sum(s[f"zone_energy_{g}"]) == pytest.approx(s[f"energy_{g}"], rel=1e-12)
    for nm in ("zero", "target"):
        diff = abs(s[f"saving_vs_{nm}"] - s[f"saving_vs_{nm}_quadrature"])
        assert diff < 4 * s[f"saving_vs_{nm}_se"] + 0.006, nm
    # MC mean path vs the line from the sample mean of the starts: a few sigma / sqrt(B)
    assert s["mean_path_deviation_mf"] < 0.02 < 0.25 < s["mean_path_deviation_ia_zero"]
    # redistribution: MF spends less than IA(0) on the far start mode
    far_mf, far_ia = s["energy_by_start_mode_mf"][1], s["energy_by_start_mode_ia_zero"][1]
    assert far_mf < 0.85 * far_ia
    assert study.t.size == 501 and study.power["mf"].size == 500


def test_gm_multizone_summary_and_overrides():
    over = {"parameters.d": 4, "parameters.samples": 600, "parameters.steps": 200}
    study, s = cat.run_problem("mfpid_dsweep", dict(over, **{"parameters.sweep": []}))
    assert s["d"] == 4 and s["K"] == 2 and s["samples"] == 600 and s["steps"] == 200
    for k in REQUIRED_KEYS:
        assert np.isfinite(s[k]), k
    assert "sweep_values" not in s and "energy_mf_quadrature" not in s
    for g in ("mf", "ia_zero", "ia_target"):
        assert len(s[f"zone_energy_{g}"]) == 4
        assert s[f"energy_per_zone_{g}"] == pytest.approx(s[f"energy_{g}"] / 4, rel=1e-14)
        assert s[f"peak_power_{g}"] >= s[f"energy_{g}"] / (1 - 2e-3) * 0.999
    assert s["saving_vs_zero"] == pytest.approx(1 - s["energy_mf"] / s["energy_ia_zero"], rel=1e-12)
    assert 0.15 < s["saving_vs_zero"] < 0.3 and s["saving_vs_target"] < s["saving_vs_zero"]
    assert s["displacement"] == pytest.approx(2.5 * 2, rel=1e-12)  # 2.5 in each of 4 zones
    assert s["mean_path_deviation_mf"] < 0.05 and s["mean_path_deviation_ia_zero"] > 0.25
    # the exact mean deviation depends on the protocol only (the same as in 1-D)
    assert s["mean_path_deviation_mf_exact"] == pytest.approx(0.0015187, rel=1e-3)
    # overrides change what they name, and nothing else
    _, s_seed = cat.run_problem("mfpid_dsweep", dict(over, **{"parameters.sweep": [],
                                                              "parameters.seed": 1}))
    assert s_seed["energy_mf"] != s["energy_mf"]
    assert abs(s_seed["saving_vs_zero"] - s["saving_vs_zero"]) < 5 * s["saving_vs_zero_se"]
    _, s_beta = cat.run_problem("mfpid_dsweep", dict(over, **{"parameters.sweep": [],
                                                              "parameters.beta0": 0.0}))
    # without stiffness there is no interaction: MF and both baselines are the same bridge
    assert s_beta["saving_vs_zero"] == pytest.approx(0.0, abs=1e-12)


def test_ar1_and_ksweep_points_run_small():
    _, s = cat.run_problem("mfpid_ar1", {"parameters.sweep": [], "parameters.samples": 300,
                                         "parameters.steps": 100, "parameters.d": 3})
    assert s["rho"] == 0.5 and s["d"] == 3 and np.isfinite(s["saving_vs_zero"])
    _, k = cat.run_problem("mfpid_ksweep", {"parameters.sweep": [], "parameters.samples": 300,
                                            "parameters.steps": 100, "parameters.K": 3})
    # the K-sweep target has mean 0: both baselines coincide
    assert k["K"] == 3 and k["energy_ia_zero"] == pytest.approx(k["energy_ia_target"], rel=1e-12)


def test_sweep_runs_every_point_and_writes_outputs(tmp_path):
    over = {"parameters.sweep": [1, 2], "parameters.d": 2, "parameters.samples": 400,
            "parameters.steps": 120}
    study, s = cat.run_problem("mfpid_dsweep", over, out=tmp_path)
    assert s["sweep_parameter"] == "d" and s["sweep_values"] == [1, 2]
    for k in ("sweep_energy_per_zone_mf", "sweep_saving_vs_zero", "sweep_saving_vs_target_se"):
        assert len(s[k]) == 2
    # the main point (d = 2) is not run twice: its sweep row is its summary
    assert s["sweep_energy_per_zone_mf"][1] == s["energy_per_zone_mf"]
    assert s["sweep_saving_vs_zero"][1] == s["saving_vs_zero"]
    _, point = cat.run_problem("mfpid_dsweep", dict(over, **{"parameters.sweep": [],
                                                             "parameters.d": 1}))
    assert s["sweep_energy_per_zone_mf"][0] == point["energy_per_zone_mf"]
    names = {p.name for p in tmp_path.iterdir()}
    assert {"summary.json", "problem.json", "solution.nc", "power.png", "mean_paths.png",
            "zone_effort.png", "sweep.png"} <= names
    written = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    assert written["saving_vs_zero"] == s["saving_vs_zero"]
    assert written["sweep_values"] == [1, 2]
    import xarray as xr

    with xr.open_dataset(tmp_path / "solution.nc", engine="h5netcdf") as ds:
        np.testing.assert_array_equal(ds["power_mf"].values, study.power["mf"])
        assert ds["mean_mf"].shape == (121, 2) and ds.attrs["sweep_parameter"] == "d"
        np.testing.assert_array_equal(ds["sweep"].values, [1.0, 2.0])


def test_lqg_outputs_and_cli_json(tmp_path, capsys):
    from mfg_solvers.cli import main

    assert main(["run", "mfpid_lqg", "--set", "parameters.estimator=closed-form", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for k in REQUIRED_KEYS:
        assert k in out, k
    assert out["Delta"] == pytest.approx(3.515679166249389, rel=1e-14)
    assert main(["run", "mfpid_lqg", "--ci", "--set", "parameters.samples=500",
                 "--set", "parameters.steps=100", "--out", str(tmp_path), "--no-progress"]) == 0
    names = {p.name for p in tmp_path.iterdir()}
    assert {"summary.json", "solution.nc", "power.png", "mean_paths.png", "variance.png",
            "energy.png"} <= names
    assert main(["run", "mfpid_lqg", "--set", "parameters.kappa=-1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "parameters.kappa" in err[0]


def test_verify_passes_on_the_mfpid_entries():
    rows = cat.verify(list(ENTRIES), directory=CATALOGUE)
    failed = [r for r in rows if not r.passed]
    assert not failed, failed
    checked = {(r.problem, r.quantity) for r in rows}
    assert ("mfpid_lqg", "s0_ia_zero") in checked
    assert ("mfpid_dsweep", "saving_vs_zero") in checked
    assert ("mfpid_1d_b", "saving_vs_zero") in checked
