"""The crowd-evacuation application (``run_crowd_room``): 2-D gmsh room and 3-D box."""

from __future__ import annotations

import json

import numpy as np
import pytest


def test_crowd_room_2d(tmp_path):
    from mfg_solvers.fem import run_crowd_room

    spec = {"room": {"h": 0.8}, "nt": 8, "output": {"dir": str(tmp_path), "vtx": False}}
    sol, summary = run_crowd_room(spec)
    assert summary["converged"] and summary["newton_iterations"] <= 10
    # the outflow through the doors accounts for the mass lost, to solver tolerance (1e-8)
    assert summary["mass_balance_error"] < 1e-9
    ds = sol.dataset
    assert np.abs(ds["mass"].values + ds["exited_mass"].values - 1.0).max() < 1e-13
    assert np.all(np.diff(ds["exited_mass"].values) > 0)
    assert summary["evacuated_fraction"] > 0.9
    assert 0 < summary["time_to_half"] < sol.t[-1]
    assert summary["share_west"] + summary["share_east"] == pytest.approx(1.0, abs=1e-9)
    # the crowd starts nearer the east door: most of it leaves there
    assert summary["share_east"] > 0.7
    # undershoot of the non-monotone scheme on this coarse mesh (cell Peclet number ~ 5):
    # reported, and bounded against the peak density
    assert summary["min_density"] == pytest.approx(ds["m"].values.min(), abs=1e-15)
    assert -0.25 * ds["m"].values.max() < summary["min_density"] < 0
    written = {p.name for p in tmp_path.iterdir()}
    assert {"solution.nc", "summary.json", "density_snapshots.png", "exit_flux.png"} <= written
    assert json.loads((tmp_path / "summary.json").read_text())["converged"] is True
    with pytest.raises(ValueError, match="not known"):
        run_crowd_room({"rooms": {}})


def test_crowd_box_3d():
    from mfg_solvers.fem import run_crowd_room

    spec = {"dim": 3, "box": {"n": [4, 3, 2]}, "crowd": {"center": [2.5, 1.5, 1.0]},
            "T": 6.0, "nt": 6}
    sol, summary = run_crowd_room(spec)
    assert summary["converged"] and summary["dim"] == 3
    assert summary["mass_balance_error"] < 1e-9
    assert summary["evacuated_fraction"] > 0.8
    assert summary["share_door"] == pytest.approx(1.0, abs=1e-9)
    assert "z" in sol.dataset
