"""Krylov solver of the time-dependent Newton system by elimination of the value function.

Ordered as ``[U; M]`` the space-time Jacobian of :class:`~mfg_solvers.fem.FEMDiscretisation` is

.. math::

    \\begin{pmatrix} L & B\\\\ E & K \\end{pmatrix}
    \\begin{pmatrix} \\delta U\\\\ \\delta M \\end{pmatrix}
    = \\begin{pmatrix} r_U\\\\ r_M \\end{pmatrix},

``L`` block upper-bidiagonal in time (diagonal blocks :math:`\\partial R_H^n/\\partial U^n`,
super-diagonal :math:`-\\mathcal M/\\Delta t`: the linearised HJB, solved *backward*), ``K``
block lower-bidiagonal (:math:`\\partial R_F^{n+1}/\\partial M^{n+1}` and
:math:`-\\mathcal M/\\Delta t`: the FP, solved *forward*; :math:`K = L^\\top` for an
m-independent Hamiltonian), ``B`` and ``E`` block diagonal (coupling :math:`\\partial R_H^n /
\\partial M^{n+1}`, transport derivative :math:`\\partial R_F^{n+1}/\\partial U^n`).

Eliminating :math:`\\delta U = L^{-1}(r_U - B\\,\\delta M)` leaves the Schur complement system

.. math::

    (K - E L^{-1} B)\\,\\delta M = r_M - E L^{-1} r_U,

solved by GMRES (PETSc) right-preconditioned by :math:`K^{-1}` (one forward sweep): the
preconditioned operator is :math:`I - E L^{-1} B K^{-1}`. Each sweep uses the sparse LU
factorisations (PETSc's own LU in serial, MUMPS under MPI) of the :math:`2 N_T` spatial blocks,
computed once per Newton step, so
the cost grows linearly with :math:`N_T` instead of the fill-in of a space-time factorisation.
Dirichlet dofs (exits) have identity rows in the diagonal blocks and zero rows and columns in
the others.
"""

from __future__ import annotations

import numpy as np

from ._backend import PETSc, fem
from .assembly import FormMatrix


#: Sparse LU packages of the spatial blocks (see :class:`SchurSolver`).
LU_PACKAGES = ("auto", "petsc", "mumps", "superlu_dist")
#: Serial blocks with at least this many unknowns are factorised by MUMPS (``lu="auto"``).
MUMPS_MIN_DOFS = 10_000


class _Operator:
    """Python context of the PETSc shell matrix ``S K^{-1}`` and of the sweeps."""

    def __init__(self, solver):
        self.s = solver

    def mult(self, mat, x, y):
        s = self.s
        w = s.solve_K(x.getArray(readonly=True).reshape(s.nt, s.n))
        out = s.apply_K(w) - s.apply_E(s.solve_L(s.apply_B(w)))
        y.setArray(out.reshape(-1))


class SchurSolver:
    """GMRES on the Schur complement in ``M`` (see the module docstring).

    Parameters
    ----------
    disc
        The :class:`~mfg_solvers.fem.FEMDiscretisation` (finite horizon, no terminal coupling,
        no mean coupling).
    rtol, max_it, restart
        GMRES settings (relative tolerance on the preconditioned residual).
    lu
        Sparse LU of the spatial blocks: ``"petsc"`` (PETSc's own, nested-dissection
        ordering), ``"mumps"``, ``"superlu_dist"`` or ``"auto"``: MUMPS in parallel, and in
        serial PETSc's LU for blocks below :data:`MUMPS_MIN_DOFS` unknowns (cheaper analysis
        and solves), MUMPS above (its factorisation grows more slowly with the size: measured
        for a 2-D P1 block with the CIP stencil, refactorisation 0.021 s / 0.016 s at 4 225
        dofs and 0.21-0.25 s / 0.05-0.08 s at 16 641 dofs, PETSc / MUMPS).
    """

    def __init__(self, disc, rtol: float = 1e-12, max_it: int = 400, restart: int = 100,
                 lu: str = "auto"):
        if lu not in LU_PACKAGES:
            raise ValueError(f"lu={lu!r} is not known; allowed: {list(LU_PACKAGES)}")
        self.disc = disc
        self.nt = disc.nt
        self.n = disc.size
        self.comm = disc.comm
        V = disc.V
        dofs = disc.constrained.astype(np.int32)
        zero = fem.Constant(disc.mesh.mesh, 0.0)
        self.bcs = [fem.dirichletbc(zero, dofs, V)] if len(dofs) else []
        forms = disc.forms.forms
        self.forms = forms
        # diagonal blocks keep 1 on the constrained diagonal, the coupling blocks 0
        self.form_mats = {
            key: [FormMatrix(forms[key], self.bcs, 1.0 if key in ("JHU", "JFM") else 0.0)
                  for _ in range(self.nt)]
            for key in ("JHU", "JHM", "JFU", "JFM")
        }
        self.mats = {key: [fm.mat for fm in fms] for key, fms in self.form_mats.items()}
        mass = fem.petsc.create_matrix(forms["mass"])
        fem.petsc.assemble_matrix(mass, forms["mass"], bcs=self.bcs, diag=0.0)
        mass.assemble()
        mass.scale(1.0 / disc.dt)
        self.mass_dt = mass  # M / dt with the Dirichlet rows and columns removed
        n_global = V.dofmap.index_map.size_global
        if lu == "auto":
            lu = "mumps" if self.comm.size > 1 or n_global >= MUMPS_MIN_DOFS else "petsc"
        if lu == "petsc" and self.comm.size > 1:
            raise ValueError("lu='petsc' is serial only; use 'mumps' or 'superlu_dist'")
        self.lu = lu
        self.ksp_L = [self._lu(A) for A in self.mats["JHU"]]
        self.ksp_K = [self._lu(A) for A in self.mats["JFM"]]
        self.x, self.y = mass.createVecRight(), mass.createVecLeft()
        self.rtol, self.max_it, self.restart = float(rtol), int(max_it), int(restart)
        self.iterations = []

    def _lu(self, A):
        ksp = PETSc.KSP().create(self.comm)
        ksp.setOperators(A)
        ksp.setType("preonly")
        pc = ksp.getPC()
        pc.setType("lu")
        pc.setFactorSolverType(self.lu)
        if self.lu == "petsc":
            pc.setFactorOrdering("nd")
        return ksp

    # -- assembly ---------------------------------------------------------------------------
    def assemble_step(self, n: int) -> None:
        """Assemble the four blocks of step ``n`` (the form slots hold step ``n``)."""
        for key in ("JHU", "JHM", "JFU", "JFM"):
            self.form_mats[key][n].assemble()

    def factorise(self) -> None:
        for ksp in self.ksp_L + self.ksp_K:
            ksp.setUp()

    # -- block operations on (nt, n) arrays -----------------------------------------------------
    def _mult(self, A, v):
        self.x.setArray(v)
        A.mult(self.x, self.y)
        return self.y.getArray().copy()

    def _solve(self, ksp, v):
        self.y.setArray(v)
        ksp.solve(self.y, self.x)
        return self.x.getArray().copy()

    def solve_L(self, r):
        """Backward sweep: ``J_HU^n x^n - (M/dt) x^{n+1} = r^n``, ``x^{nt} = 0``."""
        x = np.zeros_like(r)
        nxt = None
        for k in range(self.nt - 1, -1, -1):
            rhs = r[k] if nxt is None else r[k] + self._mult(self.mass_dt, nxt)
            x[k] = self._solve(self.ksp_L[k], rhs)
            nxt = x[k]
        return x

    def solve_K(self, r):
        """Forward sweep: ``J_FM^n x^n - (M/dt) x^{n-1} = r^n`` (index n = M^{n+1})."""
        x = np.zeros_like(r)
        prev = None
        for k in range(self.nt):
            rhs = r[k] if prev is None else r[k] + self._mult(self.mass_dt, prev)
            x[k] = self._solve(self.ksp_K[k], rhs)
            prev = x[k]
        return x

    def apply_K(self, x):
        out = np.empty_like(x)
        for k in range(self.nt):
            out[k] = self._mult(self.mats["JFM"][k], x[k])
            if k:
                out[k] -= self._mult(self.mass_dt, x[k - 1])
        return out

    def apply_B(self, x):
        return np.array([self._mult(self.mats["JHM"][k], x[k]) for k in range(self.nt)])

    def apply_E(self, x):
        return np.array([self._mult(self.mats["JFU"][k], x[k]) for k in range(self.nt)])

    # -- the solve -------------------------------------------------------------------------------
    def solve(self, rU, rM):
        """``(dU, dM, converged)`` for the right-hand sides ``rU``, ``rM`` of shape (nt, n)."""
        nt, n = self.nt, self.n
        b = rM - self.apply_E(self.solve_L(rU))
        size = nt * n
        S = PETSc.Mat().createPython(((size, None), (size, None)), _Operator(self),
                                     comm=self.comm)
        S.setUp()
        ksp = PETSc.KSP().create(self.comm)
        ksp.setOperators(S)
        ksp.setType("gmres")
        ksp.setGMRESRestart(self.restart)
        ksp.getPC().setType("none")
        ksp.setTolerances(rtol=self.rtol, atol=1e-300, max_it=self.max_it)
        bv = S.createVecLeft()
        bv.setArray(b.reshape(-1))
        yv = S.createVecRight()
        ksp.solve(bv, yv)
        converged = ksp.getConvergedReason() > 0
        self.iterations.append(ksp.getIterationNumber())
        y = yv.getArray().reshape(nt, n).copy()
        for obj in (ksp, S, bv, yv):
            obj.destroy()
        dM = self.solve_K(y)
        dU = self.solve_L(rU - self.apply_B(dM))
        return dU, dM, converged

    def destroy(self):
        for ksp in self.ksp_L + self.ksp_K:
            ksp.destroy()
        for fms in self.form_mats.values():
            for fm in fms:
                fm.destroy()
        self.mass_dt.destroy()
