"""Meshes, argument validation, the FEM Solution, exports and figures."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from mfg_solvers import (  # noqa: E402
    Congestion,
    Domain,
    LocalCoupling,
    MFGProblem,
    NonlocalCoupling,
)
from mfg_solvers.coupling import solve_newton  # noqa: E402

ROOM = dict(
    obstacles=[{"type": "rectangle", "x": (3, 4), "y": (2, 4)},
               {"type": "disc", "center": (7, 3), "radius": 0.8}],
    exits=[{"name": "west", "wall": "xmin", "interval": (2.5, 3.5)},
           {"name": "east", "wall": "xmax", "interval": (0.0, 1.0)}],
)


def small_problem(**kw):
    args = dict(hamiltonian=Congestion(1.0, 0.5), coupling=LocalCoupling("linear", 1.0),
                potential=lambda x, y: np.sin(np.pi * x) * y, m0=lambda x, y: 1 + x * y,
                T=0.5, terminal_cost=lambda x, y: x**2, name="small")
    args.update(kw)
    return MFGProblem(Domain([(0, 1), (0, 1)], "neumann"), 0.1, **args)


# -- meshes ---------------------------------------------------------------------------------------
def test_structured_meshes_and_tags():
    from mfg_solvers.fem import box_mesh, mesh_for_domain, rectangle_mesh

    msh = rectangle_mesh([(0, 2), (0, 1)], (8, 4),
                         exits={"door": {"face": "xmax", "interval": (0.25, 0.75)}})
    assert msh.names == {"walls": 1, "door": 2}
    assert msh.boundary_measure("door") == pytest.approx(0.5, abs=1e-14)
    assert msh.boundary_measure("walls") == pytest.approx(5.5, abs=1e-14)
    assert msh.area() == pytest.approx(2.0, abs=1e-14)
    assert msh.bounds == ((0.0, 2.0), (0.0, 1.0))
    assert msh.num_cells == 64
    box = box_mesh([(0, 1)] * 3, 4, exits={"d": {"face": "xmin",
                                                 "intervals": [(0.25, 0.75), (0, 0.5)]}})
    assert box.boundary_measure("d") == pytest.approx(0.25, abs=1e-14)
    assert box.boundary_measure("walls") == pytest.approx(5.75, abs=1e-14)
    dom = mesh_for_domain(Domain([(0, 1), (0, 3)], "neumann"), 3)
    assert dom.area() == pytest.approx(3.0, abs=1e-14)
    with pytest.raises(ValueError, match="periodic"):
        mesh_for_domain(Domain([(0, 1), (0, 1)], "periodic"), 3)
    with pytest.raises(ValueError, match="selects no boundary facet"):
        rectangle_mesh([(0, 1), (0, 1)], 4, exits={"x": {"face": "xmax", "interval": (2, 3)}})
    with pytest.raises(ValueError, match="face="):
        rectangle_mesh([(0, 1), (0, 1)], 4, exits={"x": {"face": "top"}})
    with pytest.raises(ValueError, match="n="):
        rectangle_mesh([(0, 1), (0, 1)], 0)


def test_room_mesh_physical_groups():
    from mfg_solvers.fem import room_mesh

    room = room_mesh(10, 6, h=0.5, **ROOM)
    assert set(room.names) == {"walls", "west", "east"}
    assert room.boundary_measure("west") == pytest.approx(1.0, abs=1e-12)
    assert room.boundary_measure("east") == pytest.approx(1.0, abs=1e-12)
    # outer walls 32 - 2 (doors) + rectangle 6 + polygonal circle ~ 2 pi 0.8
    assert room.boundary_measure("walls") == pytest.approx(36 + 2 * np.pi * 0.8, rel=2e-3)
    assert room.area() == pytest.approx(60 - 2 - np.pi * 0.64, rel=2e-3)
    with pytest.raises(ValueError, match="overlap"):
        room_mesh(10, 6, obstacles=[{"type": "rectangle", "x": (3, 5), "y": (2, 4)},
                                    {"type": "disc", "center": (4, 3), "radius": 0.5}])
    with pytest.raises(ValueError, match="interval"):
        room_mesh(10, 6, exits=[{"wall": "xmin", "interval": (5, 7)}])
    with pytest.raises(ValueError, match="inside the room"):
        room_mesh(10, 6, obstacles=[{"type": "disc", "center": (0.2, 3), "radius": 0.5}])


# -- validation ---------------------------------------------------------------------------------
def test_discretisation_validation(quiet_mass_warning):
    from mfg_solvers.fem import FEMDiscretisation, rectangle_mesh

    msh = rectangle_mesh([(0, 1), (0, 1)], 3, exits={"door": "xmax"})
    with pytest.raises(ValueError, match="degree=3"):
        FEMDiscretisation(small_problem(), msh, 2, degree=3)
    with pytest.raises(ValueError, match="nt=None"):
        FEMDiscretisation(small_problem(), msh, None)
    with pytest.raises(ValueError, match="exit 'roof'"):
        FEMDiscretisation(small_problem(), msh, 2, exits=("roof",))
    with pytest.raises(ValueError, match="stabilisation="):
        FEMDiscretisation(small_problem(), msh, 2, stabilisation="supg")
    with pytest.raises(TypeError, match="coupling="):
        FEMDiscretisation(small_problem(coupling=NonlocalCoupling(lambda dx, dy: dx * 0)),
                          msh, 2)
    with pytest.raises(ValueError, match="not contained"):
        FEMDiscretisation(small_problem(), rectangle_mesh([(0, 2), (0, 1)], 3), 2)
    with pytest.raises(ValueError, match="callable"):
        FEMDiscretisation(small_problem(m0=np.ones((4, 4))), msh, 2)
    ergodic = MFGProblem(Domain([(0, 1), (0, 1)], "neumann"), 0.1, ergodic=True)
    with pytest.raises(ValueError, match="ergodic problem cannot have exits"):
        FEMDiscretisation(ergodic, msh, exits=("door",))
    with pytest.raises(TypeError, match="mesh="):
        FEMDiscretisation(small_problem(), "mesh", 2)
    with pytest.raises(ValueError, match="unknown key"):
        FEMDiscretisation(small_problem(), msh, 2, krylov_options={"tolerance": 1e-8})
    with pytest.raises(ValueError, match="lu='umfpack'"):
        FEMDiscretisation(small_problem(), msh, 2, krylov_options={"lu": "umfpack"})
    disc = FEMDiscretisation(small_problem(), msh, 2)
    with pytest.raises(ValueError, match="U has shape"):
        disc.residual((np.zeros(3), np.zeros(3)))


# -- solution, exports, figures -----------------------------------------------------------------
def test_solution_round_trip_and_exports(tmp_path, quiet_mass_warning):
    from mfg_solvers.fem import FEMDiscretisation, export_vtx, export_xdmf, rectangle_mesh
    from mfg_solvers.fem.plotting import plot_density_snapshots, plot_exit_flux, plot_field
    from mfg_solvers.results import Solution

    msh = rectangle_mesh([(0, 1), (0, 1)], 4, exits={"door": {"face": "xmax",
                                                              "interval": (0.5, 1.0)}})
    disc = FEMDiscretisation(small_problem(), msh, 3, degree=2, exits=("door",))
    sol = solve_newton(disc, tol=1e-10, progress=False)
    ds = sol.dataset
    assert ds.sizes == {"t": 4, "node": 81, "cell": 128, "corner": 3, "iteration": len(
        sol.residual_history), "exit": 1}
    # nodes are sorted by (x, y) and the P2 sub-triangles use every node
    order = np.lexsort((ds["y"].values, ds["x"].values))
    assert np.array_equal(order, np.arange(81))
    assert set(np.unique(ds["cells"].values)) == set(range(81))
    assert ds["weight"].values.sum() == pytest.approx(1.0, abs=1e-14)
    # state <-> Solution
    U, M = disc.from_solution(sol)
    assert np.array_equal(disc.to_solution((U, M)).u, sol.u)
    assert disc.residual_norm((U, M)) < 1e-10
    # NetCDF round trip
    path = sol.save(tmp_path / "fem.nc")
    again = Solution.load(path)
    assert again.equals(sol)
    # ParaView exports
    bp = export_vtx(disc, (U, M), tmp_path / "fem.bp")
    assert bp.is_dir() and any(bp.iterdir())
    xdmf = export_xdmf(disc, (U, M), tmp_path / "fem.xdmf")
    assert xdmf.exists() and xdmf.with_suffix(".h5").exists()
    with pytest.raises(ValueError, match=".bp"):
        export_vtx(disc, (U, M), tmp_path / "fem.vtx")
    # figures
    fig = plot_field(sol, "u", t=0.0)
    assert fig.axes
    fig = plot_density_snapshots(sol, [0.0, 0.5])
    assert len(fig.axes) == 3
    fig = plot_exit_flux(sol)
    assert len(fig.axes[0].lines) == 1
