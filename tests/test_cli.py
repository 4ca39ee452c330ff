"""The ``mfg-solvers`` command line, called through ``main([...])`` and once as the installed
console script."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mfg_solvers import catalogue as cat
from mfg_solvers.cli import main
from mfg_solvers.results import Solution

CATALOGUE = Path(__file__).resolve().parent.parent / "problems"
SMALL = ["--set", "parameters.nx=40", "--set", "parameters.nt=40"]


def _small_catalogue(folder: Path, *, fail: bool = False) -> Path:
    """Copies of periodic_benchmark and lq_mfg at small sizes (optionally a failing reference)."""
    folder.mkdir(parents=True, exist_ok=True)
    text = (CATALOGUE / "periodic_benchmark.toml").read_text(encoding="utf-8")
    text = (
        text.replace("nx = 200", "nx = 40")
        .replace("nt = 200", "nt = 40")
        .replace("parameters.nx = 100", "parameters.nx = 50")
        .replace("parameters.nt = 100", "parameters.nt = 50")
    )
    if fail:
        text = text.replace(
            "min_m = { value = 0.40, atol = 0.01", "min_m = { value = 0.90, atol = 0.01"
        )
    (folder / "periodic_benchmark.toml").write_text(text, encoding="utf-8")
    text = (CATALOGUE / "lq_mfg.toml").read_text(encoding="utf-8")
    text = (
        text.replace("nx = 401", "nx = 101")
        .replace("nt = 100", "nt = 25")
        .replace("parameters.nx = 201", "parameters.nx = 101")
        .replace("parameters.nt = 50", "parameters.nt = 25")
        # tolerances of the 101 x 25 row of LQ check case table (errors 2.32e-2 and 2.18e-2)
        .replace("rtol = 0.035", "rtol = 0.06")
        .replace("rtol = 0.085", "rtol = 0.15")
    )
    (folder / "lq_mfg.toml").write_text(text, encoding="utf-8")
    return folder


def _error_line(capsys):
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in captured.err
    return lines[0], captured.out


def test_list_prints_every_entry(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["name", "kind", "description"]
    names = {line.split()[0] for line in out[2:]}
    assert {
        "periodic_benchmark",
        "lq_mfg",
        "ergodic_lq",
        "ergodic_log_gaussian",
        "crowd_aversion_2d",
    } <= names
    kinds = {spec.name: spec.kind for spec in cat.list_problems()}
    assert len(out[2:]) == len(kinds)
    for line in out[2:]:
        name, kind = line.split()[:2]
        assert kind == kinds[name] and kind in cat.known_kinds()


def test_run_json_prints_only_the_summary(capsys):
    assert main(["run", "periodic_benchmark", *SMALL, "--json"]) == 0
    out = capsys.readouterr().out
    summary = json.loads(out)  # nothing but JSON on stdout
    assert (
        summary["problem"] == "periodic_benchmark" and summary["nx"] == 40 and summary["nt"] == 40
    )
    assert summary["converged"] is True and summary["iterations"] <= 6  # periodic benchmark
    assert summary["mass_error"] < 1e-12
    assert summary["min_m"] == pytest.approx(0.40, abs=0.02)


def test_run_with_out_writes_solution_summary_and_figures(tmp_path, capsys):
    out = tmp_path / "run"
    assert (
        main(
            [
                "run",
                str(CATALOGUE / "lq_mfg.toml"),
                "--set",
                "parameters.nx=101",
                "--set",
                "parameters.nt=25",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "mean_T_exact" in printed and str(out.resolve()) in printed
    summary = json.loads((out / "summary.json").read_text())
    # LQ check case table, 101 x 25: errors 2.32e-2 (mean) and 2.18e-2 (variance)
    assert abs(summary["mean_T"] - 0.5476579284) == pytest.approx(2.32e-2, rel=0.02)
    assert abs(summary["var_T"] - 0.1965042738) == pytest.approx(2.18e-2, rel=0.02)
    sol = Solution.load(out / "solution.nc")
    x = sol.axes[0]
    mean_T = float((sol.m[-1] * x).sum() * (x[1] - x[0]))
    assert mean_T == pytest.approx(summary["mean_T"], rel=1e-12)
    for name in ("density", "value", "snapshots", "moments", "residuals"):
        assert (out / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    doc = json.loads((out / "problem.json").read_text())
    assert doc["parameters"]["nx"] == 101 and doc["model"] == "lq"


def test_run_accepts_bare_word_overrides(capsys):
    args = [
        "run",
        "periodic_benchmark",
        "--set",
        "parameters.nx=24",
        "--set",
        "parameters.nt=12",
        "--set",
        "parameters.T=0.25",
        "--set",
        "solver.method=policy_iteration",
        "--json",
    ]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["method"] == "policy_iteration" and summary["converged"]
    assert summary["residual"] < 1e-9 and summary["mass_error"] < 1e-12


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["run", "no_such_problem"], ["no_such_problem", "periodic_benchmark"]),
        (
            ["run", "periodic_benchmark", "--set", "parameters.nxx=3"],
            ["unknown key 'parameters.nxx'", "allowed:"],
        ),
        (
            ["run", "periodic_benchmark", "--set", "parameters.nx=two"],
            ["parameters.nx", '"two"', "integer >= 3"],
        ),
        (["run", "periodic_benchmark", "--set", "parameters.nx"], ["not of the form key=value"]),
        (
            ["run", "periodic_benchmark", "--set", "solver.method=bfgs"],
            ["solver.method", "bfgs", "newton"],
        ),
        (
            ["run", "periodic_benchmark", "--set", "solver.options.damping=sideways"],
            ["solver.options.damping", "sideways", "backtracking"],
        ),
        (["verify", "--problems", "nope"], ["nope", "lq_mfg"]),
        (["frobnicate"], ["invalid choice", "frobnicate"]),
        (["run"], ["PROBLEM"]),
    ],
)
def test_user_errors_are_one_line_with_exit_status_2(capsys, args, fragments):
    assert main(args) == 2
    line, out = _error_line(capsys)
    assert out == ""
    for f in fragments:
        assert f in line, (f, line)


def test_solver_failure_exits_1_and_keeps_the_last_iterate(tmp_path, capsys):
    out = tmp_path / "failed"
    args = ["run", "periodic_benchmark", *SMALL, "--set", "solver.max_iter=2", "--out", str(out)]
    assert main(args) == 1
    line, _ = _error_line(capsys)
    assert "ConvergenceError" in line
    summary = json.loads((out / "summary.json").read_text())
    assert summary["converged"] is False
    last = Solution.load(out / "solution.nc")
    assert not last.converged and last.iterations == 2
    # periodic benchmark: the residual after two full Newton steps is ~6 (2.1 -> 14 -> 6.3 at 200^2)
    assert 1.0 < last.residual_history[-1] < 20.0


def test_malformed_toml_names_file_and_line(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('kind = "fd-mfg"\nname = "bad"\n[parameters]\nnx = [1, 2\n', encoding="utf-8")
    assert main(["run", str(bad)]) == 2
    line, _ = _error_line(capsys)
    assert str(bad) in line and "line 4" in line


def test_verify_passes_and_fails_with_exit_codes(tmp_path, capsys):
    good = _small_catalogue(tmp_path / "good")
    assert main(["verify", "--catalogue", str(good)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == [
        "problem",
        "quantity",
        "computed",
        "reference",
        "tolerance",
        "rel.",
        "error",
        "status",
    ]
    rows = [
        line.split() for line in out.splitlines()[2:] if line.startswith(("periodic", "lq_mfg"))
    ]
    assert len(rows) == 8 and all(r[-1] == "pass" for r in rows)
    mean_row = next(r for r in rows if r[1] == "mean_T")
    assert float(mean_row[2]) == pytest.approx(0.5476579284 + 2.32e-2, abs=3e-4)  # LQ, 101 x 25
    assert "8/8 checks passed" in out

    bad = _small_catalogue(tmp_path / "bad", fail=True)
    assert main(["verify", "--catalogue", str(bad), "--problems", "periodic_benchmark"]) == 1
    out = capsys.readouterr().out
    row = next(
        line.split() for line in out.splitlines() if line.startswith("periodic_benchmark  min_m")
    )
    assert row[-1] == "FAIL" and float(row[3]) == 0.9
    assert float(row[2]) == pytest.approx(0.41, abs=0.02)
    assert "2/3 checks passed" in out


def test_demo_writes_figures_and_summary(tmp_path, capsys):
    cat_dir = _small_catalogue(tmp_path / "catalogue")
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--catalogue", str(cat_dir)]) == 0
    printed = capsys.readouterr().out
    assert str(out.resolve()) in printed
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) == {"periodic_benchmark", "lq_mfg"}
    assert summary["periodic_benchmark"]["iterations"] <= 6
    lq = summary["lq_mfg"]
    assert lq["mean_T_exact"] == pytest.approx(0.5476579284, abs=1e-10)
    assert abs(lq["mean_T"] - lq["mean_T_exact"]) == pytest.approx(2.32e-2, rel=0.02)
    assert (out / "demo.png").read_bytes()[:4] == b"\x89PNG"
    for name in ("periodic_benchmark", "lq_mfg"):
        assert (out / name / "solution.nc").exists() and (out / name / "density.png").exists()


def test_console_script_runs_as_a_subprocess(tmp_path):
    script = Path(sys.executable).parent / "mfg-solvers"
    if not script.exists():
        pytest.skip(f"console script not installed next to {sys.executable}")
    proc = subprocess.run(
        [str(script), "run", "ergodic_log_gaussian", "--set", "parameters.nx=101", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["nx"] == 101 and summary["converged"] is True
    # first order in h = 8/100: relative error of lambda ~2.8e-2 at 101 nodes (1.4e-2 at 201)
    assert summary["lambda"] == pytest.approx(summary["lambda_exact"], rel=0.045)
    assert math.isfinite(summary["time_total"])
    assert np.isclose(summary["var_exact"], 0.6405124837953327, rtol=1e-12)
