"""The finite-element discretisation of a mean-field game on a dolfinx mesh.

:class:`FEMDiscretisation` implements the Discretisation interface of ``docs/architecture.md``,
so the coupling solvers of :mod:`mfg_solvers.coupling` (Newton, fixed point, fictitious play,
policy iteration) drive it exactly as they drive the finite-difference scheme.

Scheme (details and the choice of stabilisation in :mod:`mfg_solvers.fem.forms`)

* space: continuous Lagrange elements P1 or P2 on simplices (intervals, triangles, tetrahedra);
  one space :math:`V_h` for :math:`u` and :math:`m`; Galerkin plus continuous interior penalty
  (CIP) stabilisation of the transport terms; data (:math:`V`, :math:`g`, :math:`m_0`) by nodal
  interpolation;
* time: implicit Euler, HJB backward with the coupling at :math:`t^{n+1}`, FP forward;
* FP: the transpose (adjoint) of the HJB linearised in :math:`u`, so that
  :math:`\\int_\\Omega M^n` is conserved to the accuracy of the linear solves on domains with
  reflecting walls;
* boundaries: walls are natural (Neumann for :math:`u`, zero normal flux for :math:`m`); exits
  are Dirichlet for :math:`u` (the exit cost) and :math:`m = 0` there (the adjoint of the
  Dirichlet condition: absorbing outflow); the outflow through each exit is reported;
* ergodic problems: unknowns :math:`(U, M, \\lambda)` with :math:`\\int M = 1`,
  :math:`\\int U = 0` (bordered system, see :meth:`FEMDiscretisation.newton_direction`);
* Newton: the Jacobian is assembled from the UFL derivatives of the weak forms (not by finite
  differences). Time-dependent systems are solved by GMRES on the Schur complement in ``M``
  with backward HJB / forward FP sweeps (:mod:`mfg_solvers.fem.schur`, cost linear in the
  number of steps), or by a sparse direct LU (MUMPS) of the whole space-time PETSc matrix
  (:mod:`mfg_solvers.fem.blocks`), which also solves the bordered ergodic systems; serial or
  under MPI.

Orders (verified in ``tests/fem``): :math:`O(h^{k+1})` in :math:`L^2` and :math:`O(h^k)` in
:math:`H^1` for :math:`P_k`, first order in :math:`\\Delta t`.

State layout (on each MPI rank, the *owned* dofs of :math:`V_h`; ``size`` = their number):
finite horizon ``(U, M)`` of shape ``(nt + 1, size)``, ``U[nt]`` the terminal value,
``M[0]`` the initial density; ergodic ``(U, M, lam)`` with ``U, M`` of shape ``(size,)``.
Residuals are scaled by the absolute row sums of the mass matrix (pointwise, "strong form"
scale, comparable to finite-difference residuals); the rows of Dirichlet dofs hold
:math:`U - u_{exit}` and :math:`M`.

The :class:`~mfg_solvers.results.Solution` (FEM variant, :meth:`FEMDiscretisation.to_solution`)
has dims ``("t", "node")`` (``("node",)`` if ergodic): ``u``, ``m`` are nodal values at the
dofs of :math:`V_h` sorted lexicographically by their coordinates (so that the order does not
depend on the MPI partition); variables ``x``, ``y``, ``z`` (node) hold the coordinates
(rounded to :math:`10^{-12}` times the mesh extent, for the same reason),
``weight`` (node) :math:`\\int\\varphi_i` (so that ``(m * weight).sum("node")`` is
:math:`\\int m_h` exactly), ``cells`` (cell, corner) a linear simplicial mesh on the nodes (P2
triangles split in four), ``mass`` (t) :math:`\\int m_h`, and with exits ``exit_flux``
(t, exit), the outflow rate through each exit, and ``exited_mass`` (t), the mass that has
left. The Solution is built on every rank (gathered).
"""

from __future__ import annotations

import copy
import time
import warnings

import numpy as np

from ..errors import ConvergenceError
from ..model import MASS_WARNING_TOLERANCE, LocalCoupling, MassNormalisationWarning, MFGProblem
from ..results import Solution
from ._backend import MPI, fem, la
from .assembly import FormMatrix
from .blocks import BlockLayout, BlockMatrix, CSRPattern
from .forms import STABILISATIONS, MFGForms
from .meshes import FEMMesh, mesh_for_domain
from .schur import LU_PACKAGES

DEGREES = (1, 2)
LINEAR_SOLVERS = ("auto", "direct", "schur")
#: Keys of ``krylov_options`` (GMRES on the Schur complement, :mod:`.schur`).
KRYLOV_OPTIONS = ("rtol", "max_it", "restart", "lu")


def _evaluate(func, V, name):
    """Nodal interpolant of the numpy callable ``func(x, y[, z])`` in ``V``."""
    dim = V.mesh.topology.dim
    out = fem.Function(V)

    def f(x):
        vals = np.asarray(func(*x[:dim]), dtype=float)
        return np.broadcast_to(vals, x.shape[1:]).copy()

    try:
        out.interpolate(f)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} could not be evaluated at the mesh nodes: {exc}") from exc
    return out


class FEMDiscretisation:
    """Finite-element discretisation of ``problem`` on ``mesh`` (P1/P2, CIP, implicit Euler).

    Parameters
    ----------
    problem
        The :class:`~mfg_solvers.model.MFGProblem`. Its domain must have reflecting walls only
        and contain the mesh; its callables (potential, ``m0``, terminal cost) are evaluated at
        the mesh nodes. Supported: Hamiltonians ``Quadratic``, ``PowerLaw``, ``Congestion``;
        running couplings ``LocalCoupling`` and ``MeanCoupling``; terminal couplings
        ``LocalCoupling``.
    mesh
        A :class:`~mfg_solvers.fem.meshes.FEMMesh`; ``None`` builds the structured mesh of
        ``problem.domain`` with ``n`` cells per axis.
    nt
        Number of implicit Euler steps (finite horizon); ``None`` for an ergodic problem.
    degree
        Lagrange degree, 1 or 2.
    n
        Cells per axis when ``mesh`` is ``None``.
    exits
        Names of facet tags of the mesh that are exits (finite horizon only).
    exit_cost
        Value of :math:`u` on the exits: a number, or a mapping exit name -> number.
    stabilisation
        ``"cip"`` (default) or ``"none"`` (plain Galerkin).
    cip_gamma, cip_delta
        CIP coefficient :math:`\\gamma` and the smoothing :math:`\\delta` of :math:`|b\\cdot n|`.
    quadrature_degree
        Quadrature degree of the cell integrals (default :math:`2k`: exact for the mass
        matrix; the facet integrals of the stabilisation use :math:`2k - 1`).
    forcing
        Optional ``forcing(x, t_u, t_m) -> (S_u, S_m)`` returning UFL expressions added as
        right-hand sides of the HJB and FP (manufactured solutions); ``x`` is the UFL spatial
        coordinate, ``t_u``, ``t_m`` the UFL Constants :math:`t^n`, :math:`t^{n+1}` of the step
        (``None`` if ergodic).
    petsc_options
        Options of the PETSc KSP of the Newton systems (default: MUMPS LU).
    inner_tol, inner_max_iter
        Tolerance (scaled residual) and iteration limit of the Newton solves of the single
        steps in :meth:`solve_hjb` / :meth:`solve_fp` (with backtracking on the residual).
    initial
        Starting state returned by :meth:`initial_guess`: ``"data"`` (cold start) or
        ``"decoupled"`` (one decoupled HJB / FP sweep).
    linear_solver
        How :meth:`newton_direction` solves a time-dependent Newton system: ``"direct"`` (MUMPS
        LU of the whole space-time matrix), ``"schur"`` (GMRES on the Schur complement in ``M``
        with backward / forward sweeps, :mod:`mfg_solvers.fem.schur`) or ``"auto"`` (``"schur"``,
        falling back to ``"direct"`` if GMRES stalls; ``"direct"`` with a terminal or mean
        coupling). Ergodic systems are always solved directly.
    krylov_options
        ``rtol``, ``max_it``, ``restart`` of that GMRES and ``lu``, the sparse LU of its
        spatial blocks (``"auto"``, ``"petsc"``, ``"mumps"``, ``"superlu_dist"``; see
        :class:`~mfg_solvers.fem.schur.SchurSolver`).
    """

    def __init__(self, problem: MFGProblem, mesh: FEMMesh | None = None, nt: int | None = None,
                 *, degree: int = 1, n=None, exits=(), exit_cost=0.0,
                 stabilisation: str = "cip", cip_gamma: float = 0.05, cip_delta: float = 1e-3,
                 quadrature_degree: int | None = None, forcing=None, petsc_options=None,
                 inner_tol: float = 1e-11, inner_max_iter: int = 50, initial: str = "data",
                 linear_solver: str = "auto", krylov_options=None):
        if not isinstance(problem, MFGProblem):
            raise TypeError(f"problem={problem!r} must be a mfg_solvers.MFGProblem")
        self._kwargs = dict(degree=degree, n=n, exits=exits, exit_cost=exit_cost,
                            stabilisation=stabilisation, cip_gamma=cip_gamma,
                            cip_delta=cip_delta, quadrature_degree=quadrature_degree,
                            forcing=forcing, petsc_options=petsc_options, inner_tol=inner_tol,
                            inner_max_iter=inner_max_iter, initial=initial,
                            linear_solver=linear_solver, krylov_options=krylov_options)
        if linear_solver not in LINEAR_SOLVERS:
            raise ValueError(
                f"linear_solver={linear_solver!r} is not known; allowed: {list(LINEAR_SOLVERS)}"
            )
        self.linear_solver = linear_solver
        self.krylov_options = dict(krylov_options or {})
        unknown = sorted(set(self.krylov_options) - set(KRYLOV_OPTIONS))
        if unknown:
            raise ValueError(
                f"krylov_options has unknown key(s) {unknown}; allowed: {list(KRYLOV_OPTIONS)}"
            )
        lu = self.krylov_options.get("lu", "auto")
        if lu not in LU_PACKAGES:
            raise ValueError(f"krylov_options lu={lu!r} is not known; allowed: {list(LU_PACKAGES)}")
        self._schur = None
        self.krylov_iterations: list[int] = []
        self.direct_fallbacks = 0
        if initial not in ("data", "decoupled"):
            raise ValueError(f"initial={initial!r} is not known; allowed: ['data', 'decoupled']")
        self.initial = initial
        if mesh is None:
            if n is None:
                raise ValueError("mesh=None and n=None: give a FEMMesh or the cells per axis n")
            mesh = mesh_for_domain(problem.domain, n)
        if not isinstance(mesh, FEMMesh):
            raise TypeError(f"mesh={mesh!r} must be a mfg_solvers.fem.FEMMesh")
        if degree not in DEGREES:
            raise ValueError(f"degree={degree!r} is not supported; allowed: {list(DEGREES)}")
        if stabilisation not in STABILISATIONS:
            raise ValueError(
                f"stabilisation={stabilisation!r} is not known; allowed: {list(STABILISATIONS)}"
            )
        for label, val in (("cip_gamma", cip_gamma), ("cip_delta", cip_delta)):
            if not np.isfinite(val) or val < 0:
                raise ValueError(f"{label}={val!r} must be a finite number >= 0")
        if quadrature_degree is not None and (
            int(quadrature_degree) != quadrature_degree or quadrature_degree < 1
        ):
            raise ValueError(
                f"quadrature_degree={quadrature_degree!r} must be a positive integer or None"
            )
        if not np.isfinite(inner_tol) or inner_tol <= 0:
            raise ValueError(f"inner_tol={inner_tol!r} must be a positive number")
        if int(inner_max_iter) != inner_max_iter or inner_max_iter < 1:
            raise ValueError(f"inner_max_iter={inner_max_iter!r} must be a positive integer")
        self.problem = problem
        self.mesh = mesh
        self.grid = mesh
        self.degree = int(degree)
        self.ergodic = bool(problem.ergodic)
        self._check_domain()
        if self.ergodic:
            if nt is not None:
                raise ValueError(f"nt={nt!r} must be None for an ergodic problem")
            self.nt = self.dt = self.t = None
        else:
            if nt is None or int(nt) != nt or nt < 1:
                raise ValueError(f"nt={nt!r} must be a positive integer for a finite horizon")
            self.nt = int(nt)
            self.dt = problem.T / self.nt
            self.t = np.linspace(0.0, problem.T, self.nt + 1)
        tc = problem.terminal_coupling
        if tc is not None and not isinstance(tc, LocalCoupling):
            raise TypeError(
                f"terminal_coupling={tc!r} is not supported by the finite-element solver; "
                "allowed: LocalCoupling or None"
            )
        self._terminal_unknown = tc is not None
        self.inner_tol = float(inner_tol)
        self.inner_max_iter = int(inner_max_iter)
        self.petsc_options = dict(petsc_options or {})
        self.timings = {"assembly": 0.0, "linear_solve": 0.0}
        self.comm = mesh.comm

        self.V = fem.functionspace(mesh.mesh, ("Lagrange", self.degree))
        self.forms = MFGForms(self.V, problem, ergodic=self.ergodic,
                              stabilisation=stabilisation, cip_gamma=cip_gamma,
                              cip_delta=cip_delta, quadrature_degree=quadrature_degree,
                              forcing=forcing)
        if not self.ergodic:
            self.forms.dt.value = self.dt
        self.scheme = (f"Lagrange P{self.degree} Galerkin"
                       f"{' + CIP' if stabilisation == 'cip' else ''}, adjoint FP"
                       f"{', implicit Euler' if not self.ergodic else ', ergodic'}")
        imap = self.V.dofmap.index_map
        self.size = int(imap.size_local)
        self._nghost = int(imap.num_ghosts)

        self._setup_exits(exits, exit_cost)
        self._setup_constant_data()
        self._mats = {}
        self._patterns = {}
        self._systems = {}

    # -- set-up -----------------------------------------------------------------------------
    def _check_domain(self):
        dom = self.problem.domain
        if dom.dim != self.mesh.dim:
            raise ValueError(
                f"the problem is {dom.dim}-D but the mesh is {self.mesh.dim}-D"
            )
        if any(bc != "neumann" for bc in dom.boundary):
            raise ValueError(
                f"problem.domain has boundary={dom.boundary!r}; the finite-element solver "
                "supports reflecting ('neumann') walls and exits, not periodic axes"
            )
        for (a, b), (lo, hi) in zip(dom.bounds, self.mesh.bounds, strict=True):
            tol = 1e-9 * max(1.0, b - a)
            if lo < a - tol or hi > b + tol:
                raise ValueError(
                    f"the mesh (bounds {self.mesh.bounds}) is not contained in the problem's "
                    f"domain {dom.bounds}"
                )

    def _setup_exits(self, exits, exit_cost):
        if isinstance(exits, str):
            exits = (exits,)
        exits = tuple(exits or ())
        if exits and self.ergodic:
            raise ValueError(f"exits={exits!r}: an ergodic problem cannot have exits")
        for e in exits:
            if e == "walls" or e not in self.mesh.names:
                raise ValueError(
                    f"exit {e!r} is not a boundary part of the mesh; allowed: "
                    f"{sorted(k for k in self.mesh.names if k != 'walls')}"
                )
        if isinstance(exit_cost, dict):
            unknown = set(exit_cost) - set(exits)
            if unknown:
                raise ValueError(f"exit_cost names {sorted(unknown)} that are not exits {exits}")
            costs = {e: float(exit_cost.get(e, 0.0)) for e in exits}
        else:
            costs = {e: float(exit_cost) for e in exits}
        for e, c in costs.items():
            if not np.isfinite(c):
                raise ValueError(f"exit_cost of {e!r} is {c!r}; it must be finite")
        self.exits = exits
        self.exit_cost = costs
        fdim = self.mesh.dim - 1
        n = self.size
        self.u_exit = np.zeros(n)
        self.exit_dofs = {}
        all_dofs = []
        for e in exits:
            dofs = fem.locate_dofs_topological(self.V, fdim, self.mesh.facets(e))
            all_dofs.append(dofs)
            owned = dofs[dofs < n]
            self.exit_dofs[e] = owned
            self.u_exit[owned] = costs[e]
        self.constrained = (np.unique(np.concatenate(all_dofs)).astype(np.int64)
                            if all_dofs else np.zeros(0, dtype=np.int64))
        self.cons_owned = self.constrained[self.constrained < n]

    def _setup_constant_data(self):
        F = self.forms
        A = fem.petsc.create_matrix(F.forms["mass"])
        fem.petsc.assemble_matrix(A, F.forms["mass"])
        A.assemble()
        self._mass_pattern = CSRPattern(A)
        self._mass_values = A.getValuesCSR()[2].copy()
        pat = self._mass_pattern
        self.weights = np.bincount(pat.rows, weights=np.abs(self._mass_values),
                                   minlength=self.size)
        # c_i = int phi_i (row sums: the basis is a partition of unity)
        self.ones = np.bincount(pat.rows, weights=self._mass_values, minlength=self.size)
        self.volume = self._sum(self.ones)
        if F.coupling.is_mean:
            # int x_k phi_i = (M X_k)_i exactly: the coordinates lie in V_h
            X = self.V.tabulate_dof_coordinates()[: self.size]
            xk = []
            for k in range(self.mesh.dim):
                xv, yv = A.createVecRight(), A.createVecLeft()
                xv.setArray(np.ascontiguousarray(X[:, k]))
                A.mult(xv, yv)
                xk.append(yv.getArray().copy())
                xv.destroy()
                yv.destroy()
            self.xk = np.array(xk)
        A.destroy()
        problem = self.problem
        if problem.potential is not None:
            F.potential.x.array[:] = _evaluate(problem.potential, self.V, "potential").x.array
        self.m0 = self._initial_density()
        if not self.ergodic:
            g = (np.zeros(self.size) if problem.terminal_cost is None else
                 _evaluate(problem.terminal_cost, self.V, "terminal_cost").x.array[: self.size])
            self.terminal_cost = g.copy()

    def _initial_density(self):
        m0 = self.problem.m0
        if not callable(m0):
            raise ValueError(
                "problem.m0 is an array; the finite-element solver needs m0 as a callable of the "
                "coordinates (it is evaluated at the mesh nodes)"
            )
        m = _evaluate(m0, self.V, "m0").x.array[: self.size].copy()
        bad = self.comm.allreduce(int(not np.all(np.isfinite(m))), op=MPI.MAX)
        if bad:
            raise ValueError("m0 contains NaN or infinite values at the mesh nodes")
        mmin = self.comm.allreduce(float(m.min()) if m.size else np.inf, op=MPI.MIN)
        if mmin < 0:
            raise ValueError(f"m0 has negative values at the mesh nodes (min {mmin:.3g})")
        m[self.cons_owned] = 0.0
        mass = self._sum(self.ones * m)
        if mass <= 0:
            raise ValueError("m0 has zero mass on the mesh")
        # (for an ergodic problem m0 is only the starting guess: normalised silently)
        if abs(mass - 1.0) > MASS_WARNING_TOLERANCE and not self.ergodic:
            warnings.warn(f"m0 has mass {mass:.6g} on the mesh; normalised to 1",
                          MassNormalisationWarning, stacklevel=3)
        return m / mass

    # -- small utilities --------------------------------------------------------------------
    def _sum(self, arr) -> float:
        return float(self.comm.allreduce(float(np.sum(arr)), op=MPI.SUM))

    def _max_abs(self, arr) -> float:
        local = float(np.max(np.abs(arr))) if np.size(arr) else 0.0
        return float(self.comm.allreduce(local, op=MPI.MAX))

    def integrate(self, values) -> float | np.ndarray:
        """:math:`\\int_\\Omega v_h` for nodal values (owned dofs; leading dims kept)."""
        local = np.asarray(values, dtype=float) @ self.ones
        if np.ndim(local) == 0:
            return self._sum(local)
        out = np.ascontiguousarray(local, dtype=float)
        self.comm.Allreduce(MPI.IN_PLACE, out, op=MPI.SUM)
        return out

    def _set(self, func, values):
        func.x.array[: self.size] = values
        func.x.scatter_forward()

    def _vec(self, form) -> np.ndarray:
        b = fem.assemble_vector(form)
        b.scatter_reverse(la.InsertMode.add)
        return b.array[: self.size].copy()

    def _mat_values(self, key) -> np.ndarray:
        """Assemble the Jacobian block ``key`` and return its CSR values (fixed pattern)."""
        fm = self._mats.get(key)
        if fm is None:
            fm = FormMatrix(self.forms.forms[key])
            self._mats[key] = fm
        A = fm.assemble()
        if key not in self._patterns:
            self._patterns[key] = CSRPattern(A)
        return fm.values()

    def _pattern(self, key) -> CSRPattern:
        if key not in self._patterns:
            self._mat_values(key)
        return self._patterns[key]

    def _update_mean(self, M):
        F = self.forms
        if F.coupling.is_mean:
            local = self.xk @ M
            xbar = np.ascontiguousarray(local, dtype=float)
            self.comm.Allreduce(MPI.IN_PLACE, xbar, op=MPI.SUM)
            F.coupling.xbar.value[:] = xbar

    def _mean_values(self):
        """Values of the mean-coupling terms, for each axis k: the column
        :math:`\\partial R_H/\\partial\\bar x_k = q\\kappa\\,(x_k - \\kappa\\bar x_k, \\varphi_i)`,
        the row :math:`-\\int x_k\\varphi_j` and the diagonal 1 of the definition of
        :math:`\\bar x`."""
        consts = self.forms.coupling.consts
        q, kappa = float(consts["q"].value), float(consts["kappa"].value)
        xbar = self.forms.coupling.xbar.value
        out = []
        for k in range(self.mesh.dim):
            out += [q * kappa * (self.xk[k] - kappa * xbar[k] * self.ones), -self.xk[k], 1.0]
        return out

    def _set_step(self, n, U, M):
        """Load step ``n`` (HJB step n, FP step n+1) into the form slots."""
        F = self.forms
        self._set(F.u, U[n])
        self._set(F.u_next, U[n + 1])
        self._set(F.m, M[n + 1])
        self._set(F.m_prev, M[n])
        F.t_u.value = self.t[n]
        F.t_m.value = self.t[n + 1]
        self._update_mean(M[n + 1])

    def _set_ergodic(self, U, M, lam):
        F = self.forms
        self._set(F.u, U)
        self._set(F.m, M)
        F.lam.value = float(lam)
        self._update_mean(M)

    def _terminal(self, MT):
        g = self.terminal_cost
        tc = self.problem.terminal_coupling
        if tc is not None:
            g = g + tc.value(MT)
        return g

    def _check_state(self, state):
        expected = 3 if self.ergodic else 2
        if not isinstance(state, tuple | list) or len(state) != expected:
            raise ValueError(
                f"state must be a tuple of {expected} components "
                f"({'(U, M, lam)' if self.ergodic else '(U, M)'})"
            )
        shape = (self.size,) if self.ergodic else (self.nt + 1, self.size)
        for name, arr in zip(("U", "M"), state[:2], strict=True):
            if np.shape(arr) != shape:
                raise ValueError(f"{name} has shape {np.shape(arr)}; expected {shape}")
        return tuple(state)

    # -- the interface: data ----------------------------------------------------------------
    def initial_guess(self):
        """The starting state of the coupling solvers (argument ``initial``).

        ``"data"`` (cold start): ``U`` the terminal value (0 if ergodic) and ``M`` the initial
        density at every time. ``"decoupled"``: one sweep of the decoupled solves from that cold
        start, ``U = solve_hjb(M)`` then (finite horizon) ``M = solve_fp(U)`` -- a consistent
        pair that makes Newton robust for small viscosity, exits or logarithmic couplings.
        """
        if self.initial == "decoupled":
            if self.ergodic:
                U, lam = self.solve_hjb(self.m0)
                return U, self.m0.copy(), lam
            U0, M0 = self._data_guess()
            U = self.solve_hjb(M0)
            return U, self.solve_fp(U)
        return self._data_guess()

    def _data_guess(self):
        if self.ergodic:
            return np.zeros(self.size), self.m0.copy(), 0.0
        U = np.empty((self.nt + 1, self.size))
        U[:] = self._terminal(self.m0)
        U[: self.nt, self.cons_owned] = self.u_exit[self.cons_owned]
        M = np.empty((self.nt + 1, self.size))
        M[:] = self.m0
        return U, M

    # -- residuals --------------------------------------------------------------------------
    def _raw_residual(self, state):
        """Unscaled weak residuals (Dirichlet rows not yet replaced) and the extra entries."""
        F = self.forms
        t0 = time.perf_counter()
        if self.ergodic:
            U, M, lam = state
            self._set_ergodic(U, M, lam)
            RU, RM = self._vec(F.forms["RH"]), self._vec(F.forms["RF"])
        else:
            U, M = state
            RU = np.zeros((self.nt + 1, self.size))
            RM = np.zeros((self.nt + 1, self.size))
            for n in range(self.nt):
                self._set_step(n, U, M)
                RU[n] = self._vec(F.forms["RH"])
                RM[n + 1] = self._vec(F.forms["RF"])
        self.timings["assembly"] += time.perf_counter() - t0
        return RU, RM

    def _apply_dirichlet(self, state, RU, RM):
        c = self.cons_owned
        if not len(c) or self.ergodic:
            return
        U, M = state[0], state[1]
        RU[: self.nt, c] = U[: self.nt, c] - self.u_exit[c]
        RM[1:, c] = M[1:, c]

    def residual(self, state):
        """Scaled residuals: finite horizon ``(R_U, R_M)`` of shape ``(nt + 1, size)`` (zero in
        the slots of the data ``U[nt]`` -- unless the terminal cost depends on ``m(T)`` -- and
        ``M[0]``); ergodic ``(R_U, R_M, r)`` with ``r`` :math:`= \\int M - 1`."""
        state = self._check_state(state)
        RU, RM = self._raw_residual(state)
        w = self.weights
        RU = RU / w
        RM = RM / w
        if self.ergodic:
            return RU, RM, self.integrate(state[1]) - 1.0
        self._apply_dirichlet(state, RU, RM)
        if self._terminal_unknown:
            RU[self.nt] = state[0][self.nt] - self._terminal(state[1][self.nt])
        else:
            RU[self.nt] = 0.0
        RM[0] = 0.0
        return RU, RM

    def residual_norm(self, state) -> float:
        """Max norm of the scaled residuals (all ranks); ergodic: also
        :math:`|\\int U|/|\\Omega|`."""
        res = self.residual(state)
        r = max(self._max_abs(res[0]), self._max_abs(res[1]))
        if self.ergodic:
            r = max(r, abs(res[2]), abs(self.integrate(state[0])) / self.volume)
        return r

    # -- Newton on the coupled system ---------------------------------------------------------
    def _system(self, key):
        """The BlockMatrix ``key`` (built on first use)."""
        if key in self._systems:
            return self._systems[key]
        d = self.mesh.dim
        mean = self.forms.coupling.is_mean
        if key == "newton" and self.ergodic:
            lay = BlockLayout(self.V, 2, 2 + (d if mean else 0))
            S = BlockMatrix(lay, petsc_options=self.petsc_options)
            S.add_csr(0, 0, self._pattern("JHU"))
            S.add_csr(0, 1, self._pattern("JHM"))
            S.add_csr(1, 0, self._pattern("JFU"))
            S.add_csr(1, 1, self._pattern("JFM"))
            S.add_column(0, 0)   # lambda in the HJB
            S.add_column(1, 1)   # multiplier of the mass constraint in the FP
            S.add_row(0, 1)      # int M = 1
            S.add_row(1, 0)      # int U = 0
            if mean:
                for k in range(d):
                    S.add_column(0, 2 + k)
                    S.add_row(2 + k, 1)
                    S.add_scalar(2 + k, 2 + k)
        elif key == "newton":
            nt = self.nt
            nU = nt + (1 if self._terminal_unknown else 0)
            nblocks = nU + nt
            lay = BlockLayout(self.V, nblocks, (nt * d) if mean else 0)
            cblocks = [b for b in range(nblocks) if b != nt or not self._terminal_unknown]
            S = BlockMatrix(lay, self.constrained, cblocks, petsc_options=self.petsc_options)
            pats = {k: self._pattern(k) for k in ("JHU", "JHM", "JFU", "JFM")}
            for n in range(nt):
                bu, bm = n, nU + n  # U^n and M^{n+1}
                S.add_csr(bu, bu, pats["JHU"])
                S.add_csr(bu, bm, pats["JHM"])
                S.add_csr(bm, bu, pats["JFU"])
                S.add_csr(bm, bm, pats["JFM"])
                if n + 1 < nU:
                    S.add_csr(bu, bu + 1, self._mass_pattern)
                if n >= 1:
                    S.add_csr(bm, bm - 1, self._mass_pattern)
                if mean:
                    for k in range(d):
                        S.add_column(bu, n * d + k)
                        S.add_row(n * d + k, bm)
                        S.add_scalar(n * d + k, n * d + k)
            if self._terminal_unknown:
                S.add_diagonal(nt, nt)
                S.add_diagonal(nt, nU + nt - 1)
            self._nU = nU
        elif key in ("hjb_step", "fp_step"):
            lay = BlockLayout(self.V, 1, 0)
            S = BlockMatrix(lay, self.constrained, [0], petsc_options=self.petsc_options)
            S.add_csr(0, 0, self._pattern("JHU" if key == "hjb_step" else "JFM"))
        elif key in ("hjb_ergodic", "fp_ergodic"):
            lay = BlockLayout(self.V, 1, 1)
            S = BlockMatrix(lay, petsc_options=self.petsc_options)
            S.add_csr(0, 0, self._pattern("JHU" if key == "hjb_ergodic" else "JFM"))
            S.add_column(0, 0)
            S.add_row(0, 0)
        else:  # pragma: no cover - internal
            raise KeyError(key)
        S.finalize()
        self._systems[key] = S
        return S

    def _solve(self, S, values, rhs):
        t0 = time.perf_counter()
        S.assemble(values)
        t1 = time.perf_counter()
        x = S.solve(rhs)
        t2 = time.perf_counter()
        self.timings["assembly"] += t1 - t0
        self.timings["linear_solve"] += t2 - t1
        return x

    def newton_direction(self, state):
        """Newton correction of the whole coupled system (same layout as ``state``).

        Finite horizon: one space-time system in the unknowns :math:`U^0..U^{N_T-1}`,
        :math:`M^1..M^{N_T}` (plus :math:`U^{N_T}` with a terminal coupling), with blocks
        :math:`\\partial R_H^n/\\partial U^n`, :math:`\\partial R_H^n/\\partial U^{n+1}
        = -\\mathcal M/\\Delta t`, :math:`\\partial R_H^n/\\partial M^{n+1}`,
        :math:`\\partial R_F^{n+1}/\\partial M^{n+1}`, :math:`\\partial R_F^{n+1}/\\partial M^n
        = -\\mathcal M/\\Delta t`, :math:`\\partial R_F^{n+1}/\\partial U^n`, all from the UFL
        derivatives of the forms. A mean coupling adds the means :math:`\\bar x^{n+1}` as
        unknowns (:math:`\\bar x = \\int x M`), which keeps the matrix sparse.

        Ergodic: the bordered system

        .. math::

            \\begin{pmatrix} J_{HU} & J_{HM} & c & 0\\\\ J_{FU} & J_{FM} & 0 & c\\\\
            0 & c^\\top & 0 & 0\\\\ c^\\top & 0 & 0 & 0\\end{pmatrix}
            \\begin{pmatrix}\\delta U\\\\ \\delta M\\\\ \\delta\\lambda\\\\ \\mu\\end{pmatrix}
            = -\\begin{pmatrix} R_H\\\\ R_F\\\\ \\int M - 1\\\\ \\int U\\end{pmatrix},
            \\qquad c_i = \\int\\varphi_i,

        where :math:`\\mu` (zero at the solution) makes the system square: the FP operator has
        the constants in the kernel of its transpose.
        """
        state = self._check_state(state)
        if self._use_schur():
            out = self._newton_direction_schur(state)
            if out is not None:
                return out
        S = self._system("newton")
        F = self.forms
        t0 = time.perf_counter()
        if self.ergodic:
            U, M, lam = state
            self._set_ergodic(U, M, lam)
            RU, RM = self._vec(F.forms["RH"]), self._vec(F.forms["RF"])
            values = [self._mat_values(k) for k in ("JHU", "JHM", "JFU", "JFM")]
            values += [self.ones, self.ones, self.ones, self.ones]
            if F.coupling.is_mean:
                values += self._mean_values()
            rhs = S.layout.join(
                [-RU, -RM],
                [-(self.integrate(M) - 1.0), -self.integrate(U)]
                + [0.0] * (S.layout.n_scalars - 2),
            )
            self.timings["assembly"] += time.perf_counter() - t0
            x = self._solve(S, values, rhs)
            blocks, scalars = S.layout.split(x)
            return blocks[0].copy(), blocks[1].copy(), float(scalars[0])

        U, M = state
        nt, nU = self.nt, self._nU
        mass = -self._mass_values / self.dt
        values = []
        RU = np.zeros((nU, self.size))
        RM = np.zeros((nt, self.size))
        for n in range(nt):
            self._set_step(n, U, M)
            RU[n] = self._vec(F.forms["RH"])
            RM[n] = self._vec(F.forms["RF"])
            values += [self._mat_values(k) for k in ("JHU", "JHM", "JFU", "JFM")]
            if n + 1 < nU:
                values.append(mass)
            if n >= 1:
                values.append(mass)
            if F.coupling.is_mean:
                values += self._mean_values()
        if self._terminal_unknown:
            tc = self.problem.terminal_coupling
            RU[nt] = U[nt] - self._terminal(M[nt])
            values += [np.ones(self.size), -np.asarray(tc.derivative(M[nt]), dtype=float)]
        c = self.cons_owned
        if len(c):
            RU[:nt, c] = U[:nt, c] - self.u_exit[c]
            RM[:, c] = M[1:, c]
        rhs = S.layout.join(np.concatenate([-RU, -RM]), np.zeros(S.layout.n_scalars))
        self.timings["assembly"] += time.perf_counter() - t0
        x = self._solve(S, values, rhs)
        blocks, _ = S.layout.split(x)
        dU = np.zeros((nt + 1, self.size))
        dM = np.zeros((nt + 1, self.size))
        dU[:nU] = blocks[:nU]
        dM[1:] = blocks[nU:]
        return dU, dM

    def _use_schur(self) -> bool:
        if self.linear_solver == "direct" or self.ergodic:
            return False
        return not (self._terminal_unknown or self.forms.coupling.is_mean)

    def _newton_direction_schur(self, state):
        """The Newton direction by GMRES on the Schur complement (:mod:`.schur`); ``None`` if
        GMRES did not converge (then the direct solver takes over, unless
        ``linear_solver="schur"``)."""
        from .schur import SchurSolver

        U, M = state
        nt, F = self.nt, self.forms
        t0 = time.perf_counter()
        if self._schur is None:
            self._schur = SchurSolver(self, **self.krylov_options)
        sch = self._schur
        RU = np.zeros((nt, self.size))
        RM = np.zeros((nt, self.size))
        for n in range(nt):
            self._set_step(n, U, M)
            RU[n] = self._vec(F.forms["RH"])
            RM[n] = self._vec(F.forms["RF"])
            sch.assemble_step(n)
        c = self.cons_owned
        if len(c):
            RU[:, c] = U[:nt, c] - self.u_exit[c]
            RM[:, c] = M[1:, c]
        t1 = time.perf_counter()
        sch.factorise()
        dU_, dM_, converged = sch.solve(-RU, -RM)
        t2 = time.perf_counter()
        self.timings["assembly"] += t1 - t0
        self.timings["linear_solve"] += t2 - t1
        self.krylov_iterations.append(sch.iterations[-1])
        if not converged:
            if self.linear_solver == "schur":
                raise ConvergenceError(
                    f"GMRES on the Schur complement did not converge in {sch.iterations[-1]} "
                    "iterations; use linear_solver='direct' or 'auto'"
                )
            self.direct_fallbacks += 1
            return None
        dU = np.zeros((nt + 1, self.size))
        dM = np.zeros((nt + 1, self.size))
        dU[:nt] = dU_
        dM[1:] = dM_
        return dU, dM

    # -- decoupled solves -------------------------------------------------------------------
    def _inner_newton(self, key, residual, values, update, x0, label):
        """Newton for one step: ``residual(x)`` (raw, Dirichlet rows set), ``values()``."""
        S = self._system(key)

        def norm(r_blocks, r_scalars):
            scaled = np.concatenate([r_blocks / self.weights, np.atleast_1d(r_scalars)])
            if len(self.cons_owned):
                scaled[self.cons_owned] = r_blocks[self.cons_owned]
            value = self._max_abs(scaled)
            return value if np.isfinite(value) else np.inf

        x = x0
        r_blocks, r_scalars = residual(x)
        r = norm(r_blocks, r_scalars)
        for _ in range(self.inner_max_iter):
            if r < self.inner_tol:
                return x
            rhs = S.layout.join([-r_blocks], -np.atleast_1d(r_scalars))
            dx = self._solve(S, values(), rhs)
            blocks, scalars = S.layout.split(dx)
            # backtracking on the max norm of the scaled residual (full steps near the solution)
            alpha = 1.0
            while True:
                trial = update(x, alpha * blocks[0], alpha * scalars)
                t_blocks, t_scalars = residual(trial)
                rt = norm(t_blocks, t_scalars)
                if rt <= (1.0 - 1e-4 * alpha) * r or alpha < 2.0**-12:
                    break
                alpha *= 0.5
            if not np.isfinite(rt):
                break
            x, r_blocks, r_scalars, r = trial, t_blocks, t_scalars, rt
            step = alpha * self._max_abs(blocks[0])
            scale = 1.0 + self._max_abs(x[0] if isinstance(x, tuple) else x)
            if step < 1e-14 * scale:
                return x
        raise ConvergenceError(
            f"{label}: Newton did not converge in {self.inner_max_iter} iterations "
            f"(residual {r:.3e} >= {self.inner_tol:.1e})"
        )

    def solve_hjb(self, M):
        """``U`` solving the nonlinear HJB for the frozen density ``M`` (ergodic: ``(U, lam)``)."""
        F = self.forms
        c = self.cons_owned
        if self.ergodic:
            M = np.asarray(M, dtype=float)

            def residual(x):
                U, lam = x
                self._set_ergodic(U, M, lam)
                return self._vec(F.forms["RH"]), self.integrate(U)

            def update(x, dU, ds):
                return x[0] + dU, x[1] + float(ds[0])

            def values():
                return [self._mat_values("JHU"), self.ones, self.ones]

            return self._inner_newton("hjb_ergodic", residual, values, update,
                                      (np.zeros(self.size), 0.0), "solve_hjb")
        M = np.asarray(M, dtype=float)
        U = np.zeros((self.nt + 1, self.size))
        U[self.nt] = self._terminal(M[self.nt])
        for n in range(self.nt - 1, -1, -1):
            def residual(Un, n=n):
                U[n] = Un
                self._set_step(n, U, M)
                r = self._vec(F.forms["RH"])
                r[c] = Un[c] - self.u_exit[c]
                return r, np.zeros(0)

            x0 = U[n + 1].copy()
            x0[c] = self.u_exit[c]
            U[n] = self._inner_newton("hjb_step", residual, lambda: [self._mat_values("JHU")],
                                      lambda x, d, s: x + d, x0, f"solve_hjb step {n}")
        return U

    def solve_fp(self, U):
        """``M`` solving the FP (transpose of the linearised HJB) for the frozen ``U``."""
        F = self.forms
        c = self.cons_owned
        if self.ergodic:
            U = np.asarray(U, dtype=float)

            def residual(x):
                M, mu = x
                self._set_ergodic(U, M, 0.0)
                return self._vec(F.forms["RF"]) + mu * self.ones, self.integrate(M) - 1.0

            def update(x, dM, ds):
                return x[0] + dM, x[1] + float(ds[0])

            def values():
                return [self._mat_values("JFM"), self.ones, self.ones]

            M, _ = self._inner_newton("fp_ergodic", residual, values, update,
                                      (self.m0.copy(), 0.0), "solve_fp")
            return M
        U = np.asarray(U, dtype=float)
        M = np.zeros((self.nt + 1, self.size))
        M[0] = self.m0
        for n in range(self.nt):
            def residual(Mn, n=n):
                M[n + 1] = Mn
                self._set_step(n, U, M)
                r = self._vec(F.forms["RF"])
                r[c] = Mn[c]
                return r, np.zeros(0)

            M[n + 1] = self._inner_newton("fp_step", residual, lambda: [self._mat_values("JFM")],
                                          lambda x, d, s: x + d, M[n].copy(),
                                          f"solve_fp step {n + 1}")
        return M

    # -- policy iteration ---------------------------------------------------------------------
    def policy(self, U, M=None):
        """The frozen policy of ``U``: the feedback :math:`a = -\\partial_p H(\\nabla U, m)`.

        It is represented by its linearisation point ``U`` (a copy): the frozen-policy HJB is
        the HJB linearised at ``U``, which for :math:`H(p, m) = \\sup_a\\{-p\\cdot a - L(a, m)\\}`
        is :math:`-\\partial_t u - \\nu\\Delta u - a\\cdot\\nabla u - L(a, m) = V + f(m)` with the
        feedback :math:`a` of ``U`` (plus the linearised stabilisation); the frozen-policy FP is
        its transpose, i.e. :meth:`solve_fp` at ``U``. ``M`` is accepted for the common
        interface and not needed: with a congestion Hamiltonian the density enters where the
        frozen-policy problems are solved (:meth:`solve_hjb_policy` gets it).
        """
        U = np.array(U, dtype=float)
        shape = (self.size,) if self.ergodic else (self.nt + 1, self.size)
        if U.shape != shape:
            raise ValueError(f"U has shape {U.shape}; expected {shape}")
        return {"U": U}

    def solve_fp_policy(self, P):
        """``M`` solving the FP with the frozen policy ``P`` (see :meth:`policy`)."""
        return self.solve_fp(P["U"])

    def solve_hjb_policy(self, P, M):
        """``U`` (ergodic ``(U, lam)``) solving the linear HJB with the frozen policy ``P``."""
        F = self.forms
        c = self.cons_owned
        UP = P["U"]
        M = np.asarray(M, dtype=float)
        if self.ergodic:
            S = self._system("hjb_ergodic")
            self._set_ergodic(UP, M, 0.0)
            r0 = self._vec(F.forms["RH"])
            vals = [self._mat_values("JHU"), self.ones, self.ones]
            rhs = S.layout.join([-r0], [-self.integrate(UP)])
            blocks, scalars = S.layout.split(self._solve(S, vals, rhs))
            return UP + blocks[0], float(scalars[0])
        S = self._system("hjb_step")
        U = np.zeros((self.nt + 1, self.size))
        U[self.nt] = self._terminal(M[self.nt])
        for n in range(self.nt - 1, -1, -1):
            work = U.copy()
            work[n] = UP[n]
            self._set_step(n, work, M)
            r0 = self._vec(F.forms["RH"])
            r0[c] = UP[n][c] - self.u_exit[c]
            rhs = S.layout.join([-r0])
            blocks, _ = S.layout.split(self._solve(S, [self._mat_values("JHU")], rhs))
            U[n] = UP[n] + blocks[0]
        return U

    # -- continuation ---------------------------------------------------------------------------
    def with_viscosity(self, nu: float):
        """A copy of this discretisation (same mesh and options) with viscosity ``nu``."""
        problem = copy.copy(self.problem)
        from ..model import _check_number

        problem.nu = _check_number("nu", nu, nonneg=True)
        return FEMDiscretisation(problem, self.mesh, self.nt, **self._kwargs)

    # -- diagnostics ----------------------------------------------------------------------------
    def mass(self, M) -> np.ndarray | float:
        """:math:`\\int_\\Omega M` (per time level)."""
        return self.integrate(M)

    def exit_fluxes(self, state) -> dict:
        """Outflow rate through each exit per time level, ``{name: (nt + 1,) array}``.

        The discrete flux is the FP residual tested with the basis functions of the exit dofs:
        :math:`F_e^{n+1} = -\\sum_{i \\in e} R_{F,i}^{n+1}`, so that
        :math:`\\int M^{n+1} - \\int M^n = -\\Delta t\\sum_e F_e^{n+1}` exactly (entry 0 is 0).
        """
        if self.ergodic or not self.exits:
            return {}
        _, RM = self._raw_residual(self._check_state(state))
        out = {}
        for e in self.exits:
            local = -RM[:, self.exit_dofs[e]].sum(axis=1)
            flux = np.ascontiguousarray(local)
            self.comm.Allreduce(MPI.IN_PLACE, flux, op=MPI.SUM)
            flux[0] = 0.0
            out[e] = flux
        return out

    def min_density(self, M) -> float:
        """The smallest nodal value of ``M`` (all ranks): the size of any undershoot."""
        local = float(np.min(M)) if np.size(M) else np.inf
        return float(self.comm.allreduce(local, op=MPI.MIN))

    # -- functions and norms ------------------------------------------------------------------
    def function(self, values, name: str = "f"):
        """A dolfinx Function of :math:`V_h` with the owned nodal ``values`` (ghosts updated)."""
        f = fem.Function(self.V, name=name)
        self._set(f, np.asarray(values, dtype=float))
        return f

    def error_norms(self, values, exact, *, mean_zero: bool = False, weight=None) -> dict:
        """:math:`L^2` norm and :math:`H^1` seminorm of :math:`v_h - v` (all ranks).

        ``exact(x)`` returns a UFL expression of the spatial coordinate ``x``; with
        ``mean_zero`` both functions are compared up to their means (value functions of ergodic
        problems). ``weight(x)`` (UFL, e.g. an indicator) restricts the norms to a region.
        """
        from ._backend import ufl

        vh = self.function(values)
        x = ufl.SpatialCoordinate(self.mesh.mesh)
        ve = exact(x)
        w = 1.0 if weight is None else weight(x)
        q = self.forms.quadrature_degree + 2
        dx = ufl.Measure("dx", domain=self.mesh.mesh, metadata={"quadrature_degree": q})
        e = vh - ve
        if mean_zero:
            num = self._sum(fem.assemble_scalar(fem.form(w * e * dx)))
            den = self._sum(fem.assemble_scalar(fem.form(w * dx(domain=self.mesh.mesh))))
            e = e - fem.Constant(self.mesh.mesh, num / den)
        l2 = fem.assemble_scalar(fem.form(w * e * e * dx))
        h1 = fem.assemble_scalar(fem.form(w * ufl.inner(ufl.grad(e), ufl.grad(e)) * dx))
        return {"L2": float(np.sqrt(self._sum(l2))), "H1": float(np.sqrt(self._sum(h1)))}

    def from_solution(self, solution: Solution):
        """The state (owned dofs of this rank) stored in a Solution of this discretisation."""
        coords, order, _ = self._gather_layout()
        u = np.asarray(solution.u, dtype=float)
        if u.shape[-1] != len(order):
            raise ValueError(
                f"the solution has {u.shape[-1]} nodes; this discretisation has {len(order)}"
            )
        offset = int(self.comm.exscan(self.size) or 0) if self.comm.size > 1 else 0
        inverse = np.empty_like(order)
        inverse[order] = np.arange(len(order))
        mine = inverse[offset: offset + self.size]
        U = u[..., mine].copy()
        M = np.asarray(solution.m, dtype=float)[..., mine].copy()
        if self.ergodic:
            return U, M, float(solution.ergodic_constant)
        return U, M

    # -- output -------------------------------------------------------------------------------
    def _gather_layout(self):
        """Coordinates of all dofs in the sorted node order, and the map of owned dofs."""
        if hasattr(self, "_gathered"):
            return self._gathered
        n = self.size
        dim = self.mesh.dim
        coords = self.V.tabulate_dof_coordinates()[:n, :dim]
        l2g = self.V.dofmap.index_map.local_to_global(
            np.arange(n + self._nghost, dtype=np.int32)
        )
        all_coords = np.concatenate(self.comm.allgather(coords))
        all_global = np.concatenate(self.comm.allgather(l2g[:n]))
        # dof coordinates differ between partitions at round-off level: snap them to a grid
        # of 1e-12 times the mesh extent, so that order and values do not depend on the ranks
        extent = max(b - a for a, b in self.mesh.bounds)
        quantum = 1e-12 * extent
        rounded = np.round(all_coords / quantum) * quantum
        all_coords = rounded
        order = np.lexsort(tuple(rounded[:, k] for k in range(dim - 1, -1, -1)))
        # position in the sorted order of each global dof index
        pos = np.empty(len(all_global), dtype=np.int64)
        pos[all_global[order]] = np.arange(len(order))
        cells = self._local_cells(l2g, pos)
        cells = np.concatenate(self.comm.allgather(cells))
        self._gathered = (all_coords[order], order, cells)
        return self._gathered

    def _local_cells(self, l2g, pos):
        tdim = self.mesh.dim
        ncell = self.mesh.mesh.topology.index_map(tdim).size_local
        dofs = self.V.dofmap.list[:ncell]
        nodes = pos[l2g[dofs]]
        if self.degree == 1:
            return nodes
        if tdim == 1:
            return np.concatenate([nodes[:, [0, 2]], nodes[:, [2, 1]]])
        if tdim == 2:
            sub = [(0, 5, 4), (5, 1, 3), (4, 3, 2), (3, 4, 5)]
            return np.concatenate([nodes[:, list(s)] for s in sub])
        return nodes[:, :4]

    def _gather(self, values):
        """Nodal values (..., size) of all ranks in the sorted node order (on every rank)."""
        _, order, _ = self._gather_layout()
        values = np.asarray(values, dtype=float)
        parts = self.comm.allgather(values)
        return np.concatenate(parts, axis=-1)[..., order]

    def to_solution(self, state, **attrs) -> Solution:
        """The :class:`~mfg_solvers.results.Solution` (FEM variant, see the module docstring)."""
        state = self._check_state(state)
        coords, _, cells = self._gather_layout()
        u = self._gather(state[0])
        m = self._gather(state[1])
        weight = self._gather(self.ones)
        a = {
            "problem": self.problem.name,
            "scheme": self.scheme,
            "discretisation": "fem",
            "degree": self.degree,
            "mesh": self.mesh.description,
            "num_cells": self.mesh.num_cells,
            "num_dofs": int(self.V.dofmap.index_map.size_global),
            "hmax": self.mesh.hmax,
            "min_density": self.min_density(state[1]),
            "mpi_size": int(self.comm.size),
        }
        if not self.ergodic:
            a["nt"] = self.nt
        a.update(attrs)
        sol = Solution.from_arrays(
            u=u, m=m, axes=[np.arange(u.shape[-1])], t=None if self.ergodic else self.t,
            axis_names=("node",),
            ergodic_constant=float(state[2]) if self.ergodic else None, attrs=a,
        )
        ds = sol.dataset
        for k, name in enumerate(("x", "y", "z")[: self.mesh.dim]):
            ds[name] = (("node",), coords[:, k].copy())
        ds["weight"] = (("node",), weight)
        ds["weight"].attrs["long_name"] = "integral of the basis function of the node"
        ds["cells"] = (("cell", "corner"), cells.astype(np.int64))
        mass = self.integrate(state[1])
        ds["mass"] = ((() if self.ergodic else ("t",)), mass)
        if self.exits and not self.ergodic:
            fluxes = self.exit_fluxes(state)
            ds = ds.assign_coords(exit=list(self.exits))
            ds["exit_flux"] = (("t", "exit"), np.stack([fluxes[e] for e in self.exits], axis=1))
            ds["exited_mass"] = (("t",), mass[0] - mass)
        sol.dataset = ds
        return sol

    def __repr__(self):
        kind = "ergodic" if self.ergodic else f"nt={self.nt}"
        return (f"FEMDiscretisation({self.problem.name!r}, P{self.degree}, {self.mesh!r}, "
                f"{kind}, exits={list(self.exits)})")


__all__ = ["FEMDiscretisation"]
