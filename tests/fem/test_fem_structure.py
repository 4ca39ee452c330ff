"""Structural properties of the finite-element scheme: adjointness of the FP operator, mass
conservation with reflecting walls, the mass balance with exits, positivity (undershoot size)."""

from __future__ import annotations

import numpy as np
import pytest

from mfg_solvers import Congestion, Domain, LocalCoupling, MFGProblem, PowerLaw
from mfg_solvers.coupling import solve_newton

PI = np.pi


def blob_problem(alpha=0.5, T=0.5, nu=0.1, name="blob"):
    return MFGProblem(
        Domain([(0, 1), (0, 1)], "neumann"), nu, hamiltonian=Congestion(1.0, alpha),
        coupling=LocalCoupling("linear", 1.0),
        potential=lambda x, y: -np.cos(2 * PI * x) * np.cos(PI * y),
        m0=lambda x, y: np.exp(-20 * ((x - 0.3) ** 2 + (y - 0.6) ** 2)), T=T,
        terminal_cost=lambda x, y: 0.5 * (x - 0.8) ** 2, name=name,
    )


def _csr(values, pattern, n):
    import scipy.sparse as sp

    return sp.csr_matrix((values, (pattern.rows, pattern.cols)), shape=(n, n))


def test_fp_operator_is_transpose_of_linearised_hjb(quiet_mass_warning):
    """With H independent of m (congestion exponent 0, i.e. H = |p|^2/2) the FP Jacobian in M is
    exactly the transpose of the HJB Jacobian in U (both contain the mass matrix / dt)."""
    from mfg_solvers.fem import FEMDiscretisation, rectangle_mesh

    disc = FEMDiscretisation(blob_problem(alpha=0.0), rectangle_mesh([(0, 1), (0, 1)], 6), 3)
    U, M = disc.initial_guess()
    rng = np.random.default_rng(1)
    U = U + 0.3 * rng.standard_normal(U.shape)
    disc._set_step(1, U, M)
    n = disc.size
    JHU = _csr(disc._mat_values("JHU"), disc._pattern("JHU"), n).toarray()
    JFM = _csr(disc._mat_values("JFM"), disc._pattern("JFM"), n).toarray()
    assert np.abs(JHU).max() > 1.0
    assert np.abs(JFM - JHU.T).max() < 1e-13 * np.abs(JHU).max()
    # and the linearised HJB annihilates constants: the FP conserves mass
    assert np.abs((JHU - _csr(disc._mass_values, disc._mass_pattern, n).toarray() / disc.dt)
                  .sum(axis=1)).max() < 1e-12


def test_mass_conservation_and_positivity(quiet_mass_warning):
    """Reflecting walls: the mass stays 1 to round-off at every time level; the density of the
    (non-monotone) CIP scheme stays positive on this resolved case."""
    from mfg_solvers.fem import FEMDiscretisation, rectangle_mesh

    disc = FEMDiscretisation(blob_problem(), rectangle_mesh([(0, 1), (0, 1)], 12), 8)
    sol = solve_newton(disc, tol=1e-11, progress=False)
    assert sol.converged and sol.iterations <= 6
    mass = sol.dataset["mass"].values
    assert np.abs(mass - 1.0).max() < 1e-13
    assert sol.attrs["min_density"] > 0.0
    # the Solution's weights integrate exactly
    weighted = (sol.dataset["m"] * sol.dataset["weight"]).sum("node").values
    assert np.abs(weighted - mass).max() < 1e-13
    # decoupled solves conserve mass too
    M = disc.solve_fp(disc.from_solution(sol)[0])
    assert np.abs(disc.integrate(M) - 1.0).max() < 1e-13


def test_exit_mass_balance(quiet_mass_warning):
    """Exits: u = exit cost and m = 0 on the door; the mass that leaves through each door is the
    FP residual tested with the door's basis functions, so mass(t) + exited(t) = 1 exactly."""
    from mfg_solvers.fem import FEMDiscretisation, rectangle_mesh

    msh = rectangle_mesh([(0, 2), (0, 1)], (16, 8), exits={
        "door": {"face": "xmax", "interval": (0.25, 0.75)},
        "back": {"face": "xmin", "interval": (0.0, 0.25)},
    })
    problem = MFGProblem(
        Domain([(0, 2), (0, 1)], "neumann"), 0.1, hamiltonian=Congestion(1.0, 0.5),
        coupling=LocalCoupling("linear", 0.5), potential=lambda x, y: 1.0 + 0 * x,
        m0=lambda x, y: np.exp(-8 * ((x - 1.2) ** 2 + (y - 0.5) ** 2)), T=2.0,
        terminal_cost=lambda x, y: np.hypot(2 - x, np.clip(y, 0.25, 0.75) - y), name="door",
    )
    disc = FEMDiscretisation(problem, msh, 10, exits=("door", "back"),
                             exit_cost={"door": 0.0, "back": 0.5}, initial="decoupled")
    sol = solve_newton(disc, tol=1e-10, progress=False, damping="backtracking")
    assert sol.converged
    U, M = disc.from_solution(sol)
    door = disc.exit_dofs["door"]
    back = disc.exit_dofs["back"]
    assert np.abs(U[:-1, door]).max() == 0.0
    assert np.abs(U[:-1, back] - 0.5).max() == 0.0
    assert np.abs(M[1:, door]).max() == 0.0
    ds = sol.dataset
    mass, flux, exited = ds["mass"].values, ds["exit_flux"].values, ds["exited_mass"].values
    assert np.abs(mass[:-1] - mass[1:] - disc.dt * flux[1:].sum(axis=1)).max() < 1e-13
    assert np.abs(mass + exited - 1.0).max() < 1e-14
    assert np.all(np.diff(exited) > 0)
    assert exited[-1] > 0.3
    # the near door (cheaper) takes most of the crowd
    total = disc.dt * flux[1:].sum(axis=0)
    assert total[0] > 5 * total[1] > 0
    # size of the undershoot of the density (reported, small against the peak)
    assert sol.attrs["min_density"] > -0.05 * M.max()


@pytest.mark.parametrize("kind", ["interval", "box"])
def test_mass_conservation_1d_3d(kind, quiet_mass_warning):
    """The same conservation on an interval (P2, power-law Hamiltonian |p|^1.5 / 1.5) and a box
    (P1, congestion)."""
    from mfg_solvers.fem import FEMDiscretisation, box_mesh, interval_mesh

    if kind == "interval":
        problem = MFGProblem(Domain((0, 1), "neumann"), 0.05, hamiltonian=PowerLaw(1.5),
                             coupling=LocalCoupling("linear", 1),
                             potential=lambda x: np.cos(2 * PI * x),
                             m0=lambda x: 1 + 0.5 * np.cos(PI * x), T=1.0, name="1d")
        disc = FEMDiscretisation(problem, interval_mesh((0, 1), 20), 10, degree=2)
    else:
        problem = MFGProblem(Domain([(0, 1)] * 3, "neumann"), 0.1,
                             hamiltonian=Congestion(1.0, 0.5), coupling=LocalCoupling("linear", 1),
                             potential=lambda x, y, z: x * y + z,
                             m0=lambda x, y, z: 1 + 0 * x, T=0.5, name="3d")
        disc = FEMDiscretisation(problem, box_mesh([(0, 1)] * 3, 3), 3)
    # (the regularised |p|^1.5 has a large second derivative near p = 0: residual floor ~2e-11)
    sol = solve_newton(disc, tol=1e-10, progress=False)
    assert sol.converged
    assert np.abs(sol.dataset["mass"].values - 1.0).max() < 1e-13


def test_native_reassembly_matches_petsc_assembly(quiet_mass_warning):
    """The serial fast path (dolfinx's CSR storage shared with the PETSc matrix) gives the same
    matrix as PETSc's own assembly, Dirichlet rows included, and a reassembly after the
    coefficients change is seen by a factorisation attached to the matrix."""
    from mfg_solvers.fem import FEMDiscretisation, rectangle_mesh
    from mfg_solvers.fem._backend import PETSc, fem
    from mfg_solvers.fem.assembly import FormMatrix

    msh = rectangle_mesh([(0, 1), (0, 1)], 5, exits={"door": "xmax"})
    disc = FEMDiscretisation(blob_problem(), msh, 2, exits=("door",))
    U, M = disc.initial_guess()
    U = U + 0.2 * np.random.default_rng(3).standard_normal(U.shape)
    disc._set_step(0, U, M)
    dofs = disc.constrained.astype(np.int32)
    bcs = [fem.dirichletbc(fem.Constant(msh.mesh, 0.0), dofs, disc.V)]
    form = disc.forms.forms["JFM"]
    fm = FormMatrix(form, bcs, 1.0)
    assert fm.native
    A = fm.assemble()
    B = fem.petsc.create_matrix(form)
    fem.petsc.assemble_matrix(B, form, bcs=bcs, diag=1.0)
    B.assemble()
    dense = lambda mat: mat.convert("dense").getDenseArray()  # noqa: E731
    assert np.abs(dense(A) - dense(B)).max() < 1e-14 * np.abs(dense(B)).max()
    ksp = PETSc.KSP().create(PETSc.COMM_SELF)
    ksp.setOperators(A)
    ksp.setType("preonly")
    ksp.getPC().setType("lu")
    b, x = A.createVecLeft(), A.createVecRight()
    b.set(1.0)
    ksp.solve(b, x)
    disc._set_step(1, 2.0 * U, M)  # new coefficients: the same form gives another matrix
    fm.assemble()
    ksp.solve(b, x)
    r = b.duplicate()
    A.mult(x, r)
    assert abs((r - b).norm()) < 1e-10 * b.norm()
    for obj in (ksp, B, b, x, r):
        obj.destroy()
    fm.destroy()


@pytest.mark.parametrize("lu", ["mumps", "superlu_dist"])
def test_lu_packages_give_the_same_newton_direction(lu, quiet_mass_warning):
    from mfg_solvers.fem import FEMDiscretisation, rectangle_mesh

    msh = rectangle_mesh([(0, 1), (0, 1)], 6)
    ref = FEMDiscretisation(blob_problem(), msh, 3, linear_solver="schur")
    other = FEMDiscretisation(blob_problem(), msh, 3, linear_solver="schur",
                              krylov_options={"lu": lu})
    state = ref.initial_guess()
    dU, dM = ref.newton_direction(state)
    dU2, dM2 = other.newton_direction(state)
    assert ref._schur.lu == "petsc" and other._schur.lu == lu
    assert np.abs(dU).max() > 1e-2
    assert np.abs(dU2 - dU).max() < 1e-10 * np.abs(dU).max()
    assert np.abs(dM2 - dM).max() < 1e-10 * max(np.abs(dM).max(), 1.0)
