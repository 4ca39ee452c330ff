"""Catalogue kind ``fem-crowd`` (problems/crowd_room.toml): validation, the CI-size run against
its references, the written outputs (NetCDF, XDMF, figures), a 3-D box, and ``mpiexec -n 2``
against the serial run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("dolfinx_solver")

from mfg_solvers.catalogue import (  # noqa: E402
    CatalogueError,
    check_references,
    load_problem,
    run_problem,
)

ROOT = Path(__file__).resolve().parent.parent

#: summary quantities that must agree between 1 and 2 MPI ranks (solver tolerance 1e-8)
COMPARED = ("evacuated_fraction", "time_to_half", "peak_outflow", "share_east", "share_west",
            "exited_mass", "mass_inside_T", "min_density", "max_density")


@pytest.fixture(scope="module")
def ci_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("crowd_room")
    spec = load_problem("crowd_room", ci=True)
    solution, summary = run_problem(spec, out=out)
    return spec, solution, summary, out


def test_ci_run_passes_references(ci_run):
    spec, solution, summary, _ = ci_run
    rows = check_references(spec, summary)
    assert {r.quantity for r in rows} >= {"conservation_error", "time_to_half", "share_east",
                                          "undershoot"}
    failed = [(r.quantity, r.computed, r.reference) for r in rows if not r.passed]
    assert not failed
    assert summary["mpi_size"] == 1 and summary["nt"] == 16


def test_mass_inside_plus_outflow_is_one(ci_run):
    _, solution, summary, _ = ci_run
    ds = solution.dataset
    t = solution.t
    # recompute from the Solution: int m_h(t_n) + sum_k dt F_k = 1 at every time level
    mass = (ds["m"].values * ds["weight"].values).sum(axis=1)
    out = np.concatenate([[0.0], np.cumsum(np.diff(t) * ds["exit_flux"].values[1:].sum(1))])
    assert np.abs(mass + out - 1.0).max() < 1e-10
    assert summary["conservation_error"] == pytest.approx(np.abs(mass + out - 1).max(), abs=1e-13)
    assert summary["exited_mass"] + summary["mass_inside_T"] == pytest.approx(1.0, abs=1e-10)
    assert summary["share_east"] + summary["share_west"] == pytest.approx(1.0, abs=1e-12)
    assert summary["min_density"] == pytest.approx(ds["m"].values.min(), abs=1e-15)


def test_outputs_written(ci_run):
    import h5py

    from mfg_solvers.results import Solution

    _, solution, summary, out = ci_run
    names = {p.name for p in out.iterdir()}
    assert {"solution.nc", "solution.xdmf", "solution.h5", "summary.json", "problem.json",
            "density_snapshots.png", "exit_flux.png", "value.png"} <= names
    saved = json.loads((out / "summary.json").read_text())
    assert saved["time_to_half"] == pytest.approx(summary["time_to_half"], rel=1e-15)
    assert Solution.load(out / "solution.nc").dataset["m"].equals(solution.dataset["m"])
    # the XDMF time series holds the gathered nodal values at every time level
    text = (out / "solution.xdmf").read_text()
    assert text.count("<Time Value=") == len(solution.t)
    with h5py.File(out / "solution.h5", "r") as f:
        assert np.array_equal(f["m/5"][()], solution.m[5])
        assert np.array_equal(f["u/0"][()], solution.u[0])
        assert np.array_equal(f["topology"][()], solution.dataset["cells"].values)
        x = f["geometry"][()]
    assert np.array_equal(x[:, 0], solution.dataset["x"].values)


def test_xdmf_mesh_reads_back(ci_run):
    from mpi4py import MPI

    import mfg_solvers.fem._backend  # noqa: F401  (orders the dolfinx imports)
    from dolfinx.io import XDMFFile

    _, solution, _, out = ci_run
    with XDMFFile(MPI.COMM_SELF, str(out / "solution.xdmf"), "r") as f:
        msh = f.read_mesh(name="mesh")
    assert msh.topology.index_map(2).size_local == solution.dataset.sizes["cell"]
    # the area of the mesh read back equals int 1 dx of the Solution's weights
    x = msh.geometry.x[:, :2]
    tri = x[msh.geometry.dofmaps[0]]
    e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    area = 0.5 * np.abs(e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]).sum()
    assert area == pytest.approx(solution.dataset["weight"].values.sum(), rel=1e-12)
    # room 60 minus the pillar (2) minus the table: a polygon inscribed in the disc of radius
    # 0.6 with at least 8 sides (area between 2 sqrt(2) r^2 and pi r^2)
    r2 = 0.6**2
    assert 58 - np.pi * r2 < area <= 58 - 2 * np.sqrt(2) * r2 + 1e-9


@pytest.mark.parametrize(
    "key, value, match",
    [
        ("parameters.nu", -1.0, r"parameters\.nu: bad value -1\.0"),
        ("parameters.room.exits", [], r"parameters\.room\.exits: bad value \[\]"),
        ("parameters.room.exits", [{"name": "d", "wall": "left", "interval": [0, 1]}],
         r"parameters\.room\.exits\[0\]\.wall: bad value \"left\"; allowed: xmin"),
        ("parameters.room.exits", [{"name": "d", "wall": "xmin", "interval": [5, 7]}],
         r"exits\[0\]\.interval: bad value \[5\.0, 7\.0\]; allowed: 0 <= lo < hi <= 6"),
        ("parameters.room.obstacles", [{"type": "disc", "center": [9.8, 3], "radius": 0.5}],
         r"parameters\.room\.obstacles\[0\]: bad value .*strictly inside"),
        ("parameters.room.h", 4.0, r"parameters\.room\.h: bad value 4\.0; allowed: .* <= 3"),
        ("parameters.crowd.center", [1.0, 2.0, 3.0], r"parameters\.crowd\.center: bad value"),
        ("parameters.degree", 3, r"parameters\.degree: bad value 3; allowed: 1, 2"),
        ("parameters.box", {"n": [2, 2, 2]}, r"parameters\.box: not used with dim = 2"),
        ("parameters.colour", 1, r"unknown key 'parameters\.colour'"),
        ("solver.damping", "wild", r"solver\.damping: bad value \"wild\""),
    ],
)
def test_bad_input_one_line_error(key, value, match):
    with pytest.raises(CatalogueError, match=match) as info:
        load_problem("crowd_room", {key: value})
    assert "\n" not in str(info.value) and "crowd_room.toml" in str(info.value)


def test_box_3d_from_dict():
    raw = load_problem("crowd_room").to_dict()
    raw["parameters"].pop("room")
    raw["parameters"].update(
        dim=3, T=6.0, nt=6, crowd={"center": [2.5, 1.5, 1.0], "width": 1.0},
        box={"bounds": [[0, 4], [0, 3], [0, 2]], "n": [4, 3, 2],
             "exits": [{"name": "door", "face": "xmin", "intervals": [[1, 2], [0, 1.5]]}]},
    )
    raw["reference"] = {}
    raw["ci"] = {}
    solution, s = run_problem(raw)
    assert s["converged"] and s["dim"] == 3 and "z" in solution.dataset
    assert s["share_door"] == pytest.approx(1.0, abs=1e-9)
    assert s["conservation_error"] < 1e-10
    assert s["evacuated_fraction"] > 0.8


def _mpiexec():
    local = Path(sys.executable).parent / "mpiexec"
    return str(local) if local.exists() else shutil.which("mpiexec")


@pytest.mark.mpi
def test_two_ranks_match_serial(ci_run, tmp_path):
    """``mpiexec -n 2 mfg-solvers run crowd_room --ci`` reproduces the serial summary."""
    _, _, serial, _ = ci_run
    mpiexec = _mpiexec()
    if mpiexec is None:
        pytest.skip("mpiexec not found")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    out = tmp_path / "parallel"
    proc = subprocess.run(
        [mpiexec, "-n", "2", sys.executable, "-m", "mfg_solvers.cli", "run",
         str(ROOT / "problems" / "crowd_room.toml"), "--ci", "--json", "--out", str(out)],
        capture_output=True, text=True, timeout=600, env=env, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    par = json.loads(proc.stdout)  # rank 0 alone prints
    assert par["mpi_size"] == 2 and serial["mpi_size"] == 1
    assert par["newton_iterations"] == serial["newton_iterations"]
    assert par["num_dofs"] == serial["num_dofs"] and par["num_cells"] == serial["num_cells"]
    for q in COMPARED:
        assert par[q] == pytest.approx(serial[q], rel=1e-9, abs=1e-11), q
    assert par["conservation_error"] < 1e-10
    # rank 0 wrote the gathered solution and the XDMF series
    assert json.loads((out / "summary.json").read_text())["mpi_size"] == 2
    assert {"solution.nc", "solution.xdmf", "solution.h5", "exit_flux.png"} <= {
        p.name for p in out.iterdir()}
