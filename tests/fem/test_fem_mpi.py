"""``mpiexec -n 2`` gives the serial solution to solver tolerance (time-dependent problem with
exits, and an ergodic problem with the bordered Newton system)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).parent


def _mpiexec():
    local = Path(sys.executable).parent / "mpiexec"
    return str(local) if local.exists() else shutil.which("mpiexec")


@pytest.mark.mpi
def test_two_ranks_match_serial(tmp_path):
    from .mpi_solve import arrays, solve_both

    serial = arrays(*solve_both())
    mpiexec = _mpiexec()
    if mpiexec is None:
        pytest.skip("mpiexec not found")
    out = tmp_path / "parallel.npz"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    root = str(HERE.parent.parent)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [mpiexec, "-n", "2", sys.executable, str(HERE / "mpi_solve.py"), str(out)],
        capture_output=True, text=True, timeout=600, env=env, cwd=root,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    par = np.load(out)
    assert int(par["mpi_size"]) == 2 and int(serial["mpi_size"]) == 1
    # same nodes in the same (coordinate-sorted) order
    assert np.array_equal(par["td_x"], serial["td_x"])
    assert np.array_equal(par["td_y"], serial["td_y"])
    assert int(par["td_iterations"]) == serial["td_iterations"]
    for key in ("td_u", "td_m", "td_mass", "td_flux", "erg_u", "erg_m", "erg_lam"):
        scale = max(1.0, np.abs(serial[key]).max())
        assert np.abs(par[key] - serial[key]).max() < 1e-9 * scale, key
    assert np.abs(par["td_mass"][0] - 1.0) < 1e-14
