"""The finite-difference (Achdou--Capuzzo-Dolcetta) discretisation :class:`FDDiscretisation`.

Scheme (first order in :math:`h` and :math:`\\Delta t`). On a uniform grid with :math:`N` nodes,
``nt`` implicit Euler steps :math:`\\Delta t = T/n_t`, the unknowns are :math:`U^0..U^{n_t-1}` and
:math:`M^1..M^{n_t}` (plus :math:`U^{n_t}` when the terminal cost depends on :math:`m(T)`), with
residuals, for :math:`n = 0..n_t-1`,

.. math::

    R_U^n &= \\frac{U^n - U^{n+1}}{\\Delta t} - \\nu\\Delta_h U^n + g(D_hU^n, M^{n+1})
            - V - f(M^{n+1}),\\\\
    R_M^{n+1} &= \\frac{M^{n+1} - M^n}{\\Delta t} - \\nu\\Delta_h M^{n+1}
            + A(U^n, M^{n+1})^{\\top} M^{n+1},\\\\
    R_T &= U^{n_t} - g_T - G(M^{n_t})\\quad(\\text{only with a terminal coupling}),

:math:`U^{n_t} = g_T` otherwise and :math:`M^0 = m_0`. :math:`g` is the Godunov numerical
Hamiltonian (:mod:`~mfg_solvers.fd.numerical_hamiltonians`), :math:`(A(U)W)_i =
\\sum_j \\partial_{q_j} g([D_hU]_i)\\,[D_hW]_{ij}` the Jacobian of :math:`U\\mapsto g(D_hU)`; the FP
operator is its exact transpose, so :math:`M\\ge0` and :math:`h^d\\sum M` is conserved.
Reflecting walls drop the one-sided differences that leave the box (zero flux).

Ergodic (:math:`n_t` = None): unknowns :math:`(U, M, \\lambda)` with
:math:`-\\nu\\Delta_hU + g(D_hU, M) + \\lambda = V + f(M)`,
:math:`-\\nu\\Delta_hM + A(U,M)^\\top M = 0`,
:math:`h^d\\sum M = 1`, :math:`h^d\\sum U = 0`.

Residual norms are max norms of these (unscaled) residuals. Their round-off floor at the discrete
solution is about :math:`\\varepsilon\\,\\nu h^{-2}\\max M` (observed 1e-12 at 50 x 50, 9e-11 at
400 x 400 on the periodic benchmark).

Linear algebra of a Newton step
-------------------------------
Ordered as ``[U; M]`` the Jacobian is ``[[L, J_UM], [E, K]]``: ``L`` block upper-bidiagonal
in time (blocks :math:`I/\\Delta t - \\nu\\Delta_h + A(U^n)`), ``K`` block lower-bidiagonal (the
transposed blocks, exactly ``L^T`` for an ``m``-independent ``H``), ``E`` the derivative of the
transport (a weighted :math:`D_h^\\top D_h`), ``J_UM`` the coupling (diagonal, dense or low rank).
``linear_solver="krylov"`` eliminates ``U`` with backward sweeps and runs GMRES on the Schur
complement :math:`K - E L^{-1}J_{UM}`, right-preconditioned by the forward sweep :math:`K^{-1}`
(the preconditioned operator is :math:`I + E L^{-1}C K^{-1}`, :math:`C = -J_{UM}`; its eigenvalues
are real and :math:`\\ge 1` for a non-decreasing local coupling and m-independent H; about
13 iterations at 1e-10, independent of the mesh). In 2-D/3-D with :math:`\\nu > 0` the per-step
factorisations are avoided: GMRES runs on the whole system with a block Gauss-Seidel heat
preconditioner solved by DCT/FFT (``preconditioner="heat"``). ``"direct"`` factorises the whole
system with SuperLU in a nested-dissection order of the space-time lattice.
"""

from __future__ import annotations

import copy
import time
import warnings

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from ..errors import ConvergenceError, NaNError
from ..grid import Grid
from ..model import MassNormalisationWarning, MFGProblem
from ..results import Solution
from . import kernels as K
from .coupling_terms import CouplingJacobian, coupling_value
from .linear_solvers import HeatSweeps, StepMatrices, gmres
from .numerical_hamiltonians import NumericalHamiltonian
from .orderings import nested_dissection
from .stencil import Stencil

LINEAR_SOLVERS = ("auto", "direct", "krylov")
PRECONDITIONERS = ("auto", "exact", "heat")

#: With ``preconditioner="auto"`` the heat preconditioner is used for a Newton step only while
#: the transport part of the Jacobian blocks is this small relative to their heat part
#: (max over nodes of ``sum_j |dg_j|/h_j`` over ``1/dt + 2 nu sum_k 1/h_k^2``).
HEAT_TRANSPORT_RATIO = 0.5



class FDPolicy:
    """Frozen discrete policy: slot weights ``b`` (``(nt, N, 2d)`` or ``(N, 2d)``) and offset ``c``.

    The frozen numerical Hamiltonian is :math:`b\\cdot q + c`. For a Hamiltonian that depends on
    ``m`` (congestion) the offset :math:`c = -L(b, m)` is re-evaluated at the density the linear
    HJB is solved with.
    """

    __slots__ = ("b", "c")

    def __init__(self, b: np.ndarray, c: np.ndarray):
        self.b = b
        self.c = c

    def __repr__(self):
        return f"FDPolicy(b.shape={self.b.shape}, c.shape={self.c.shape})"


class FDDiscretisation:
    """Monotone finite-difference discretisation of an :class:`~mfg_solvers.model.MFGProblem`.

    Parameters
    ----------
    problem
        The MFG (1-D, 2-D or 3-D; periodic or reflecting per axis; ``nu >= 0``).
    grid
        A :class:`~mfg_solvers.grid.Grid` of ``problem.domain``.
    nt
        Number of time steps (finite horizon); must be ``None`` iff ``problem.ergodic``.
    linear_solver
        How :meth:`newton_direction` solves the space-time Newton system: ``"direct"``
        (SuperLU on the whole system, nested-dissection order), ``"krylov"`` (GMRES on the
        Schur complement in ``M``, preconditioned by the forward FP sweep; ``U`` eliminated by
        backward HJB sweeps) or
        ``"auto"`` (``"krylov"``, falling back to ``"direct"`` if GMRES stalls). Ergodic systems
        are always solved directly.
    krylov_rtol
        Relative tolerance of GMRES (2-norm of the residual of the system it iterates on).
    preconditioner
        Krylov variant. ``"exact"``: GMRES on the Schur complement in ``M``; every time step's
        block is factorised (tridiagonal elimination in 1-D, SuperLU otherwise) and the
        backward/forward sweeps are exact. ``"heat"``: GMRES on the whole system, right-
        preconditioned by a block Gauss-Seidel sweep (backward HJB, then forward FP) whose
        blocks are the heat operators :math:`I/\\Delta t - \\nu\\Delta_h`, solved by DCT/FFT (no
        factorisation; needs ``nu > 0``); falls back to ``"exact"`` if GMRES stalls.
        ``"auto"``: ``"heat"`` in 2-D/3-D with ``nu > 0`` for the Newton steps where the
        transport is small next to the diffusion (``HEAT_TRANSPORT_RATIO``), else ``"exact"``.

    Attributes
    ----------
    timings : dict
        Accumulated seconds: ``'assembly'`` and ``'linear_solve'``.
    stats : dict
        Counters: ``'newton_directions'``, ``'krylov_iterations'`` (list, one entry per
        direction), ``'direct_fallbacks'``.
    """

    scheme = "ACD upwind finite differences (Godunov), implicit Euler"

    def __init__(
        self,
        problem: MFGProblem,
        grid: Grid,
        nt: int | None = None,
        *,
        linear_solver: str = "auto",
        krylov_rtol: float = 1e-10,
        preconditioner: str = "auto",
    ):
        if not isinstance(problem, MFGProblem):
            raise TypeError(f"problem={problem!r} must be a mfg_solvers.MFGProblem")
        if not isinstance(grid, Grid):
            raise TypeError(f"grid={grid!r} must be a mfg_solvers.Grid")
        if grid.domain != problem.domain:
            raise ValueError(
                f"grid={grid!r} does not discretise the problem's domain {problem.domain}"
            )
        if problem.ergodic:
            if nt is not None:
                raise ValueError(f"nt={nt!r} must be None for an ergodic problem")
        else:
            if nt is None:
                raise ValueError("nt=None: a finite-horizon problem needs a number of time steps")
            if isinstance(nt, bool) or not isinstance(nt, int | np.integer) or nt < 1:
                raise ValueError(f"nt={nt!r} must be a positive integer")
            nt = int(nt)
        if linear_solver not in LINEAR_SOLVERS:
            raise ValueError(
                f"linear_solver={linear_solver!r} is not known; allowed: {list(LINEAR_SOLVERS)}"
            )
        if preconditioner not in PRECONDITIONERS:
            raise ValueError(
                f"preconditioner={preconditioner!r} is not known; allowed: {list(PRECONDITIONERS)}"
            )
        if preconditioner == "heat" and float(problem.nu) <= 0.0:
            raise ValueError("preconditioner='heat' needs a viscosity nu > 0")
        krylov_rtol = float(krylov_rtol)
        if not 0.0 < krylov_rtol < 1.0:
            raise ValueError(f"krylov_rtol={krylov_rtol!r} must lie in (0, 1)")
        self.problem = problem
        self.grid = grid
        self.ergodic = problem.ergodic
        self.linear_solver = linear_solver
        self.krylov_rtol = krylov_rtol
        self._preconditioner_arg = preconditioner
        if preconditioner == "auto":
            preconditioner = "heat" if (grid.dim >= 2 and problem.nu > 0) else "exact"
        self.preconditioner = preconditioner
        self.nu = float(problem.nu)
        self.size = grid.size
        self.dim = grid.dim
        self.stencil = Stencil(grid)
        self.ham = NumericalHamiltonian(problem.hamiltonian)
        self.V = problem.potential_values(grid).ravel()
        if self.ergodic:
            # for an ergodic problem m0 is only the starting guess: rescaling it is expected
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", MassNormalisationWarning)
                self.m0 = problem.initial_density(grid).ravel()
        else:
            self.m0 = problem.initial_density(grid).ravel()
        if self.ergodic:
            self.nt = self.dt = self.t = None
            self.g_terminal = None
        else:
            self.nt = nt
            self.dt = problem.T / nt
            self.t = np.linspace(0.0, problem.T, nt + 1)
            self.g_terminal = (
                np.zeros(self.size)
                if problem.terminal_cost is None
                else grid.evaluate(problem.terminal_cost, "terminal_cost").ravel()
            )
        self.terminal_unknown = (not self.ergodic) and problem.terminal_coupling is not None
        #: tolerance of the per-step Newton solves of :meth:`solve_hjb` / :meth:`solve_fp`
        self.step_tol = 1e-12
        self.timings = {"assembly": 0.0, "linear_solve": 0.0}
        self.stats = {
            "newton_directions": 0,
            "krylov_iterations": [],
            "direct_fallbacks": 0,
            "heat_fallbacks": 0,
        }

    # =========================================================================================
    # small helpers
    # =========================================================================================
    def __repr__(self):
        kind = "ergodic" if self.ergodic else f"nt={self.nt}"
        return f"FDDiscretisation({self.grid!r}, {kind}, nu={self.nu}, H={self.ham.hamiltonian})"

    @property
    def _inv_dt(self) -> float:
        return 1.0 / self.dt

    def _tick(self, key: str, t0: float) -> float:
        t1 = time.perf_counter()
        self.timings[key] += t1 - t0
        return t1

    def _as_field(self, name, arr, lead):
        a = np.asarray(arr, dtype=float)
        shape_flat = lead + (self.size,)
        shape_grid = lead + self.grid.shape
        if a.shape == shape_grid and shape_grid != shape_flat:
            a = a.reshape(shape_flat)
        if a.shape != shape_flat:
            raise ValueError(
                f"{name} has shape {a.shape}; expected {shape_flat} (or {shape_grid})"
            )
        return np.ascontiguousarray(a)

    def _split(self, state):
        """Validate a state; return flattened float arrays."""
        if self.ergodic:
            if not isinstance(state, tuple | list) or len(state) != 3:
                raise ValueError("state must be a tuple (U, M, lam) for an ergodic discretisation")
            U = self._as_field("U", state[0], ())
            M = self._as_field("M", state[1], ())
            lam = float(state[2])
            return U, M, lam
        if not isinstance(state, tuple | list) or len(state) != 2:
            raise ValueError("state must be a tuple (U, M) for a finite-horizon discretisation")
        U = self._as_field("U", state[0], (self.nt + 1,))
        M = self._as_field("M", state[1], (self.nt + 1,))
        return U, M

    def _slots(self, U2):
        """Slots of a batch ``U2`` (B, N) -> (B, N, 2d)."""
        q = np.empty(U2.shape + (2 * self.dim,))
        K.compute_slots(U2, self.stencil.nbp, self.stencil.nbm, self.stencil.inv_h, q)
        return q

    def _ham(self, q, m):
        """``g`` (B, N) and ``dg`` (B, N, 2d) of the slots ``q`` (B, N, 2d) at densities ``m``."""
        B, N, s = q.shape
        g = np.empty(B * N)
        dg = np.empty((B * N, s))
        mm = np.ascontiguousarray(m, dtype=float).reshape(B * N)
        K.ham_values(q.reshape(B * N, s), mm, self.ham.kind, self.ham.p0, self.ham.p1, g, dg)
        return g.reshape(B, N), dg.reshape(B, N, s)

    def _ham_m(self, q, m):
        B, N, s = q.shape
        gm = np.empty(B * N)
        dgm = np.empty((B * N, s))
        mm = np.ascontiguousarray(m, dtype=float).reshape(B * N)
        K.ham_m_derivatives(
            q.reshape(B * N, s), mm, self.ham.kind, self.ham.p0, self.ham.p1, gm, dgm
        )
        return gm.reshape(B, N), dgm.reshape(B, N, s)

    def _laplacian(self, X2):
        out = np.empty_like(X2)
        K.laplacian_apply(X2, self.stencil.nbp, self.stencil.nbm, self.stencil.inv_h, out)
        return out

    def _adjoint(self, W):
        out = np.empty(W.shape[:2])
        K.slot_adjoint(W, self.stencil.nbp, self.stencil.nbm, self.stencil.inv_h, out)
        return out

    def _coef(self, dg, shift):
        coef = np.empty(dg.shape[:2] + (self.stencil.n_entries,))
        K.stencil_coefficients(
            dg, float(shift), self.nu, self.stencil.nbp, self.stencil.nbm, self.stencil.inv_h, coef
        )
        return coef

    def _running(self, M2):
        """``V + f(M2)`` for a batch of densities (B, N)."""
        return self.V[None, :] + coupling_value(self.problem.coupling, M2, self.grid)

    def _terminal_value(self, MT):
        val = self.g_terminal.copy()
        if self.problem.terminal_coupling is not None:
            val += coupling_value(self.problem.terminal_coupling, MT[None, :], self.grid)[0]
        return val

    def _check_finite(self, name, arr):
        if not np.all(np.isfinite(arr)):
            raise NaNError(f"{name} contains NaN or infinite values")

    # =========================================================================================
    # the interface
    # =========================================================================================
    def initial_guess(self):
        """Cold start: ``U`` = terminal value at every level, ``M`` = ``m0`` at every level.

        Ergodic: ``U = 0``, ``M = m0`` (normalised), ``lam`` = mean of :math:`V + f(m_0)`.
        """
        if self.ergodic:
            U = np.zeros(self.size)
            M = self.m0.copy()
            lam = float(np.mean(self._running(M[None])[0]))
            return U, M, lam
        M = np.tile(self.m0, (self.nt + 1, 1))
        uT = self._terminal_value(self.m0)
        U = np.tile(uT, (self.nt + 1, 1))
        return U, M

    # -- residuals ------------------------------------------------------------------------------
    def residual(self, state):
        """Residuals, in the layout of the unknowns.

        Finite horizon: ``(R_U, R_M)`` with ``R_U`` of shape ``(nt, N)`` (``(nt+1, N)`` with a
        terminal coupling, last row :math:`R_T`) and ``R_M`` of shape ``(nt, N)`` (row ``n`` is
        the FP residual of :math:`M^{n+1}`). Ergodic: ``(R_U, R_M, R_c)`` with
        ``R_c = [h^d sum M - 1, h^d sum U]``.
        """
        if self.ergodic:
            return self._residual_ergodic(*self._split(state))
        U, M = self._split(state)
        t0 = time.perf_counter()
        nt, dt = self.nt, self.dt
        Mh = M[1:]
        q = self._slots(U[:nt])
        g, dg = self._ham(q, Mh)
        RU = (U[:nt] - U[1:]) / dt - self.nu * self._laplacian(U[:nt]) + g - self._running(Mh)
        RM = (
            (M[1:] - M[:nt]) / dt
            - self.nu * self._laplacian(np.ascontiguousarray(Mh))
            + self._adjoint(Mh[:, :, None] * dg)
        )
        if self.terminal_unknown:
            RT = U[nt] - self._terminal_value(M[nt])
            RU = np.vstack([RU, RT[None]])
        self._tick("assembly", t0)
        return RU, RM

    def residual_norm(self, state) -> float:
        """Max norm of :meth:`residual`."""
        return float(max(np.max(np.abs(r)) for r in self.residual(state)))

    # -- Newton ----------------------------------------------------------------------------------
    def _linearise(self, U, M):
        """Everything the Newton system needs at (U, M) (finite horizon)."""
        nt = self.nt
        Mh = np.ascontiguousarray(M[1:])
        q = self._slots(U[:nt])
        g, dg = self._ham(q, Mh)
        lin = {"q": q, "Mh": Mh, "dg": dg}
        lin["coefL"] = self._coef(dg, self._inv_dt)
        if self.ham.depends_on_m:
            gm, dgm = self._ham_m(q, Mh)
            lin["gm"] = gm
            lin["dgK"] = dg + Mh[:, :, None] * dgm
            lin["coefK"] = self._coef(lin["dgK"], self._inv_dt)
        else:
            lin["gm"] = None
            lin["coefK"] = lin["coefL"]
        hw = np.empty_like(q)
        hb = np.empty(Mh.shape)
        sl = np.empty_like(q)
        K.hessian_weights(q, Mh, self.ham.kind, self.ham.p0, self.ham.p1, Mh, hw, hb, sl)
        lin["hess"] = (hw, hb, sl)
        lin["Jf"] = CouplingJacobian(self.problem.coupling, Mh, self.grid)
        if self.terminal_unknown:
            lin["JG"] = CouplingJacobian(self.problem.terminal_coupling, M[nt][None], self.grid)
        return lin

    def _apply_JUM(self, lin, v):
        """``J_UM v``: derivative of ``R_U`` w.r.t. ``M^{1..nt}`` applied to ``v`` (nt, N)."""
        out = -lin["Jf"].apply(v)
        if lin["gm"] is not None:
            out += lin["gm"] * v
        if self.terminal_unknown:
            last = -lin["JG"].apply(v[-1:])
            out = np.vstack([out, last])
        return out

    def _JUM_is_zero(self, lin):
        return (
            lin["Jf"].is_zero
            and lin["gm"] is None
            and (not self.terminal_unknown or lin["JG"].is_zero)
        )

    def _apply_E(self, lin, u):
        """``E u``: derivative of ``R_M`` w.r.t. ``U^{0..nt-1}`` applied to ``u`` (nt, N)."""
        hw, hb, sl = lin["hess"]
        out = np.empty(lin["Mh"].shape)
        st = self.stencil
        K.hessian_weights_apply(
            hw, hb, sl, self.ham.kind == K.POWER, np.ascontiguousarray(u[: self.nt]),
            st.nbp, st.nbm, st.inv_h, out,
        )
        return out

    def jacobian(self, state) -> sp.csr_matrix:
        """The Newton matrix as a sparse matrix, unknowns ordered ``[U-unknowns, M^1..M^nt]``.

        Rows follow :meth:`residual` (``R_U`` then ``R_M``, each flattened in C order).
        Non-local couplings contribute dense blocks (only sensible for small grids).
        """
        U, M = self._split(state)
        t0 = time.perf_counter()
        lin = self._linearise(U, M)
        J = self._assemble(lin)
        self._tick("assembly", t0)
        return J

    def _assemble(self, lin) -> sp.csr_matrix:
        nt, N, st = self.nt, self.size, self.stencil
        nU = nt + 1 if self.terminal_unknown else nt
        offM = nU * N
        rows_p, cols_p, valid = st.coo_pattern()
        rr, cc = rows_p[valid], cols_p[valid]
        off = (np.arange(nt) * N)[:, None]
        R, C, D = [], [], []
        # L blocks (U^n, U^n)
        R.append((off + rr[None]).ravel())
        C.append((off + cc[None]).ravel())
        D.append(lin["coefL"][:, valid].ravel())
        # K blocks (M^{n+1}, M^{n+1}) = coefK^T
        R.append((offM + off + cc[None]).ravel())
        C.append((offM + off + rr[None]).ravel())
        D.append(lin["coefK"][:, valid].ravel())
        idx = np.arange(N)
        inv_dt = self._inv_dt
        # -I/dt: (U^n, U^{n+1})
        nlinks = nt if self.terminal_unknown else nt - 1
        if nlinks > 0:
            o = (np.arange(nlinks) * N)[:, None]
            R.append((o + idx).ravel())
            C.append((o + N + idx).ravel())
            D.append(np.full(nlinks * N, -inv_dt))
        # -I/dt: (M^{n+1}, M^n), n >= 1
        if nt > 1:
            o = (np.arange(1, nt) * N)[:, None]
            R.append((offM + o + idx).ravel())
            C.append((offM + o - N + idx).ravel())
            D.append(np.full((nt - 1) * N, -inv_dt))
        # E blocks (M^{n+1}, U^n)
        s = 2 * self.dim
        npair = s * s if self.ham.kind == K.POWER else s
        L4 = N * 4 * npair
        er = np.empty(L4, np.int64)
        ec = np.empty(L4, np.int64)
        ev = np.empty(L4)
        for n in range(nt):
            K.transport_jacobian_coo(
                lin["q"][n], lin["Mh"][n], lin["Mh"][n], self.ham.kind, self.ham.p0, self.ham.p1,
                st.nbp, st.nbm, st.inv_h, er, ec, ev,
            )
            keep = ev != 0.0
            R.append(offM + n * N + er[keep])
            C.append(n * N + ec[keep])
            D.append(ev[keep].copy())
        # J_UM blocks (U^n, M^{n+1}) and the terminal row
        for n in range(nt):
            blk = -lin["Jf"].block(n) if not lin["Jf"].is_zero else None
            if lin["gm"] is not None:
                gmb = sp.diags(lin["gm"][n])
                blk = gmb if blk is None else blk + gmb
            if blk is not None:
                cb = sp.coo_matrix(blk)
                R.append(n * N + cb.row)
                C.append(offM + n * N + cb.col)
                D.append(cb.data)
        if self.terminal_unknown:
            R.append(nt * N + idx)
            C.append(nt * N + idx)
            D.append(np.ones(N))
            if not lin["JG"].is_zero:
                cb = sp.coo_matrix(-lin["JG"].block(0))
                R.append(nt * N + cb.row)
                C.append(offM + (nt - 1) * N + cb.col)
                D.append(cb.data)
        size = offM + nt * N
        J = sp.coo_matrix(
            (np.concatenate(D), (np.concatenate(R), np.concatenate(C))), shape=(size, size)
        )
        return J.tocsr()

    def _direct_ordering(self):
        """Nested-dissection order of the space-time unknowns (pairs ``U^n_i, M^{n+1}_i``)."""
        if getattr(self, "_nd_perm", None) is None:
            nt, N = self.nt, self.size
            nU = nt + 1 if self.terminal_unknown else nt
            nodes = nested_dissection((nt,) + self.grid.shape, (False,) + self.grid.periodic)
            perm = np.stack([nodes, nU * N + nodes], axis=1).ravel()
            if self.terminal_unknown:
                perm = np.concatenate([perm, np.arange(nt * N, (nt + 1) * N)])
            self._nd_perm = perm
        return self._nd_perm

    def newton_direction(self, state):
        """Newton correction ``(dU, dM)`` of the whole coupled system (layout of ``state``).

        ``dU[nt] = 0`` unless the terminal value is an unknown; ``dM[0] = 0``.
        """
        if self.ergodic:
            return self._newton_direction_ergodic(*self._split(state))
        U, M = self._split(state)
        nt, N = self.nt, self.size
        RU, RM = self.residual((U, M))
        t0 = time.perf_counter()
        lin = self._linearise(U, M)
        t0 = self._tick("assembly", t0)
        self.stats["newton_directions"] += 1
        method = self.linear_solver
        if method == "auto":
            method = "krylov"
        dU = dM = None
        if method == "krylov":
            info = None
            use_heat = self.preconditioner == "heat" and (
                self._preconditioner_arg == "heat"
                or self._transport_ratio(lin) <= HEAT_TRANSPORT_RATIO
            )
            if use_heat:
                dU, dM, info = self._solve_krylov_heat(lin, -RU, -RM)
                if not info.converged:
                    self.stats["heat_fallbacks"] += 1
                    self.stats["krylov_iterations"].append(info.iterations)
            if info is None or not info.converged:
                dU, dM, info = self._solve_krylov(lin, -RU, -RM)
            if info is not None:
                self.stats["krylov_iterations"].append(info.iterations)
            if info is not None and not info.converged:
                if self.linear_solver == "krylov":
                    self._tick("linear_solve", t0)
                    raise ConvergenceError(
                        f"GMRES did not reach rtol={self.krylov_rtol:g} in {info.iterations} "
                        f"iterations (residual {info.residual:.3e}, target {info.target:.3e}); "
                        "use linear_solver='direct' or 'auto'"
                    )
                self.stats["direct_fallbacks"] += 1
                dU = None
        self._tick("linear_solve", t0)
        if dU is None:
            t0 = time.perf_counter()
            J = self._assemble(lin)
            t0 = self._tick("assembly", t0)
            p = self._direct_ordering()
            rhs = -np.concatenate([RU.ravel(), RM.ravel()])
            Jp = J[p][:, p].tocsc()
            lu = spla.splu(
                Jp, permc_spec="NATURAL", diag_pivot_thresh=0.01,
                options={"SymmetricMode": True},
            )
            x = np.empty_like(rhs)
            x[p] = lu.solve(rhs[p])
            self._tick("linear_solve", t0)
            nU = nt + 1 if self.terminal_unknown else nt
            dU = x[: nU * N].reshape(nU, N)
            dM = x[nU * N :].reshape(nt, N)
        dUf = np.zeros((nt + 1, N))
        dUf[: dU.shape[0]] = dU
        dMf = np.zeros((nt + 1, N))
        dMf[1:] = dM
        self._check_finite("the Newton direction", dUf)
        self._check_finite("the Newton direction", dMf)
        return dUf, dMf

    def _solve_krylov(self, lin, rU, rM):
        """Schur complement in ``M``: ``(K - E L^{-1} J_UM) dM = rM - E L^{-1} rU``.

        Right-preconditioned by ``K^{-1}`` (forward FP sweep); ``L^{-1}`` is the backward HJB
        sweep. Then ``dU = L^{-1}(rU - J_UM dM)``.
        """
        inv_dt, term = self._inv_dt, self.terminal_unknown
        Lm = StepMatrices(self.stencil, lin["coefL"])
        Km = Lm if lin["coefK"] is lin["coefL"] else StepMatrices(self.stencil, lin["coefK"])
        shape = rM.shape
        y = Lm.backward(rU, inv_dt, term)
        b = rM - self._apply_E(lin, y)
        if self._JUM_is_zero(lin):
            return y, Km.forward(b, inv_dt), None

        def op(w):
            w2 = w.reshape(shape)
            z = Km.forward(w2, inv_dt)
            u = Lm.backward(self._apply_JUM(lin, z), inv_dt, term)
            return (w2 - self._apply_E(lin, u)).ravel()

        w, info = gmres(op, b.ravel(), rtol=self.krylov_rtol, restart=200, maxiter=600)
        dM = Km.forward(w.reshape(shape), inv_dt)
        dU = Lm.backward(rU - self._apply_JUM(lin, dM), inv_dt, term)
        return dU, dM, info

    def _apply_L(self, lin, u):
        """HJB Jacobian block ``L`` (backward block bidiagonal) applied to ``u`` (nU, N)."""
        nt, st = self.nt, self.stencil
        out = np.empty_like(u)
        K.stencil_apply(lin["coefL"], st.nbp, st.nbm, np.ascontiguousarray(u[:nt]), out[:nt])
        out[: nt - 1] -= self._inv_dt * u[1:nt]
        if self.terminal_unknown:
            out[nt - 1] -= self._inv_dt * u[nt]
            out[nt] = u[nt]
        return out

    def _apply_K(self, lin, m):
        """FP Jacobian block ``K`` (forward block bidiagonal, transposed blocks) times ``m``."""
        st = self.stencil
        out = np.empty_like(m)
        K.stencil_apply_transpose(lin["coefK"], st.nbp, st.nbm, m, out)
        out[1:] -= self._inv_dt * m[:-1]
        return out

    def _transport_ratio(self, lin) -> float:
        """Size of the transport part of the Jacobian blocks relative to their heat part."""
        ih = np.repeat(self.stencil.inv_h, 2)
        transport = float(np.max(np.abs(lin["dg"]) @ ih)) if lin["dg"].size else 0.0
        if lin["coefK"] is not lin["coefL"]:
            transport = max(transport, float(np.max(np.abs(lin["dgK"]) @ ih)))
        heat = self._inv_dt + 2.0 * self.nu * float(np.sum(self.stencil.inv_h**2))
        return transport / heat

    def _solve_krylov_heat(self, lin, rU, rM):
        """GMRES on the whole system, right-preconditioned by a heat block Gauss-Seidel sweep.

        ``P = [[H_b, 0], [E, H_f]]`` with ``H_b``/``H_f`` the backward/forward block-bidiagonal
        heat operators (spectral solves, :class:`~mfg_solvers.fd.linear_solvers.HeatSweeps`)
        and ``E`` the exact transport derivative; ``P^{-1}`` = backward heat sweep for ``U``,
        then forward heat sweep for ``M``.
        """
        if getattr(self, "_heat", None) is None:
            self._heat = HeatSweeps(self.grid, self.nu, self._inv_dt)
        heat, term = self._heat, self.terminal_unknown
        su, sm = rU.shape, rM.shape
        nu_ = rU.size

        def pinv(x):
            u = heat.backward(x[:nu_].reshape(su), term)
            m = heat.forward(x[nu_:].reshape(sm) - self._apply_E(lin, u))
            return u, m

        def op(y):
            u, m = pinv(y)
            a = self._apply_L(lin, u) + self._apply_JUM(lin, m)
            b = self._apply_E(lin, u) + self._apply_K(lin, m)
            return np.concatenate([a.ravel(), b.ravel()])

        rhs = np.concatenate([rU.ravel(), rM.ravel()])
        restart = int(np.clip(1e9 / (8.0 * rhs.size), 30, 200))
        y, info = gmres(op, rhs, rtol=self.krylov_rtol, restart=restart, maxiter=100)
        dU, dM = pinv(y)
        return dU, dM, info

    # -- decoupled solves ------------------------------------------------------------------------
    def _step_newton(self, x, residual_fn, coef_fn, transpose, what, damped=False):
        """Newton for one implicit step: ``residual_fn(x) -> (R, scale)``; Jacobian ``coef_fn(x)``.

        Undamped it is Howard's policy iteration for the HJB step (globally convergent, the
        Jacobian being an M-matrix). ``damped`` adds a backtracking line search on the max-norm
        of the residual (used for the nonlinear congestion FP step, whose flux ``m w(m)`` must
        stay finite).
        """
        R, scale = residual_fn(x)
        rn = float(np.max(np.abs(R)))
        polish = False
        for _ in range(100):
            if rn <= self.step_tol * (1.0 + scale):
                # The test is relative to the size of the right-hand side; one more (quadratically
                # convergent) step takes the absolute residual to round-off, so that outer solvers
                # with absolute tolerances are not left above them (a stalled fixed point).
                if polish or damped or rn == 0.0:
                    return x
                polish = True
            coef = coef_fn(x)
            dx = StepMatrices(self.stencil, coef[None]).solve(0, R, transpose=transpose)
            if not np.all(np.isfinite(dx)):
                raise NaNError(f"{what}: the Newton correction became non-finite")
            theta = 1.0
            while True:
                xn = x - theta * dx
                with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
                    Rn, scale_n = residual_fn(xn)
                rnn = float(np.max(np.abs(Rn)))
                ok = np.isfinite(rnn)
                if ok and (not damped or rnn <= (1.0 - 1e-4 * theta) * rn or theta < 1e-12):
                    break
                if not damped and not ok:
                    raise NaNError(f"{what}: the Newton iterate became non-finite")
                theta *= 0.5
                if theta < 1e-12:
                    raise ConvergenceError(f"{what}: the line search failed (residual {rn:.3e})")
            small = float(np.max(np.abs(theta * dx))) <= 1e-15 * (1.0 + float(np.max(np.abs(xn))))
            x, R, rn, scale = xn, Rn, rnn, scale_n
            if polish or (small and rn <= 1e-9 * (1.0 + scale)):
                return x
        raise ConvergenceError(
            f"{what}: Newton on the implicit step did not converge (residual {rn:.3e})"
        )

    def solve_hjb(self, M):
        """``U`` solving the discrete HJB backward for the frozen density path ``M`` (nt+1, N).

        Each implicit step
        :math:`U^n/\\Delta t - \\nu\\Delta_hU^n + g(D_hU^n, M^{n+1}) = U^{n+1}/\\Delta t
        + V + f(M^{n+1})` is solved by (semismooth) Newton to ``step_tol``; its Jacobian is an
        M-matrix. Ergodic: returns ``(U, lam)`` for the stationary HJB with ``h^d sum U = 0``.
        """
        if self.ergodic:
            return self._solve_hjb_ergodic(self._as_field("M", M, ()))
        M = self._as_field("M", M, (self.nt + 1,))
        nt = self.nt
        t0 = time.perf_counter()
        F = self._running(np.ascontiguousarray(M[1:]))
        U = np.empty((nt + 1, self.size))
        U[nt] = self._terminal_value(M[nt])
        inv_dt = self._inv_dt
        nu = self.nu
        if self.dim == 1:
            st = self.stencil
            failed = K.hjb_backward_1d(
                U, F, np.ascontiguousarray(M[1:]), st.nbp, st.nbm, st.inv_h, nu, inv_dt,
                bool(self.grid.periodic[0]), self.ham.kind, self.ham.p0, self.ham.p1,
                self.step_tol, 100,
            )
            self._tick("linear_solve", t0)
            if failed >= 0:
                raise ConvergenceError(
                    f"solve_hjb step {failed}: Newton on the implicit step did not converge"
                )
            self._check_finite("solve_hjb", U)
            return U
        for n in range(nt - 1, -1, -1):
            rhs = U[n + 1] * inv_dt + F[n]
            scale = float(np.max(np.abs(rhs)))
            mrow = M[n + 1][None]

            def res(x, rhs=rhs, scale=scale, mrow=mrow):
                q = self._slots(x[None])
                g, _ = self._ham(q, mrow)
                return x * inv_dt - nu * self._laplacian(x[None])[0] + g[0] - rhs, scale

            def jac(x, mrow=mrow):
                q = self._slots(x[None])
                _, dg = self._ham(q, mrow)
                return self._coef(dg, inv_dt)[0]

            U[n] = self._step_newton(U[n + 1].copy(), res, jac, False, f"solve_hjb step {n}")
        self._tick("linear_solve", t0)
        return U

    def solve_fp(self, U):
        """``M`` (nt+1, N) solving the discrete FP forward for the frozen value function ``U``.

        :math:`(I/\\Delta t - \\nu\\Delta_h + A(U^n)^\\top) M^{n+1} = M^n/\\Delta t`, ``M[0] = m0``
        (nonlinear per step for the congestion Hamiltonian: Newton). Ergodic: the normalised
        stationary density.
        """
        if self.ergodic:
            return self._solve_fp_ergodic(self._as_field("U", U, ()))
        U = self._as_field("U", U, (self.nt + 1,))
        nt, N = self.nt, self.size
        t0 = time.perf_counter()
        inv_dt = self._inv_dt
        q = self._slots(U[:nt])
        M = np.empty((nt + 1, N))
        M[0] = self.m0
        if not self.ham.depends_on_m:
            _, dg = self._ham(q, np.zeros((nt, N)))
            sm = StepMatrices(self.stencil, self._coef(dg, inv_dt))
            rhs = np.zeros((nt, N))
            rhs[0] = self.m0 * inv_dt
            M[1:] = sm.forward(rhs, inv_dt)
        else:
            nu = self.nu
            for n in range(nt):
                qn = q[n : n + 1]
                prev = M[n]

                def res(x, qn=qn, prev=prev):
                    _, dg = self._ham(qn, x[None])
                    R = (
                        (x - prev) * inv_dt
                        - nu * self._laplacian(x[None])[0]
                        + self._adjoint(x[None, :, None] * dg)[0]
                    )
                    return R, float(np.max(np.abs(prev))) * inv_dt

                def jac(x, qn=qn):
                    _, dg = self._ham(qn, x[None])
                    _, dgm = self._ham_m(qn, x[None])
                    return self._coef(dg + x[None, :, None] * dgm, inv_dt)[0]

                M[n + 1] = self._step_newton(
                    prev.copy(), res, jac, True, f"solve_fp step {n}", damped=True
                )
        self._tick("linear_solve", t0)
        self._check_finite("solve_fp", M)
        return M

    # -- policy iteration --------------------------------------------------------------------------
    def policy(self, U, M=None) -> FDPolicy:
        """Frozen policy of ``U``: ``b = d_q g(D_h U^n[, M^{n+1}])``, ``c = g - b.q``.

        ``M`` is required when the Hamiltonian depends on the density (congestion).
        """
        if self.ham.depends_on_m and M is None:
            raise ValueError(
                "M=None: the congestion Hamiltonian depends on the density; pass policy(U, M)"
            )
        if self.ergodic:
            U = self._as_field("U", U, ())[None]
            Mh = np.zeros_like(U) if M is None else self._as_field("M", M, ())[None]
        else:
            U = self._as_field("U", U, (self.nt + 1,))[: self.nt]
            Mh = (
                np.zeros_like(U)
                if M is None
                else np.ascontiguousarray(self._as_field("M", M, (self.nt + 1,))[1:])
            )
        q = self._slots(np.ascontiguousarray(U))
        g, dg = self._ham(q, Mh)
        c = g - np.sum(dg * q, axis=-1)
        if self.ergodic:
            return FDPolicy(dg[0], c[0])
        return FDPolicy(dg, c)

    def _policy_offset(self, P, Mh):
        if self.ham.depends_on_m:
            return self.ham.offset_from_policy(P.b, Mh)
        return P.c

    def _check_policy(self, P):
        if not isinstance(P, FDPolicy):
            raise TypeError(f"P={P!r} must be an FDPolicy (from policy())")
        expect = (
            (self.size, 2 * self.dim) if self.ergodic else (self.nt, self.size, 2 * self.dim)
        )
        if P.b.shape != expect:
            raise ValueError(f"policy b has shape {P.b.shape}; expected {expect}")

    def solve_hjb_policy(self, P: FDPolicy, M):
        """``U`` solving the linear HJB
        :math:`(U^n-U^{n+1})/\\Delta t - \\nu\\Delta_hU^n + b\\cdot D_hU^n + c
        = V + f(M^{n+1})` (one backward sweep). Ergodic: ``(U, lam)``."""
        self._check_policy(P)
        if self.ergodic:
            return self._solve_hjb_policy_ergodic(P, self._as_field("M", M, ()))
        M = self._as_field("M", M, (self.nt + 1,))
        nt = self.nt
        t0 = time.perf_counter()
        Mh = np.ascontiguousarray(M[1:])
        c = self._policy_offset(P, Mh)
        rhs = np.empty((nt + 1, self.size))
        rhs[:nt] = self._running(Mh) - c
        rhs[nt] = self._terminal_value(M[nt])
        sm = StepMatrices(self.stencil, self._coef(np.ascontiguousarray(P.b), self._inv_dt))
        U = sm.backward(rhs, self._inv_dt, True)
        self._tick("linear_solve", t0)
        self._check_finite("solve_hjb_policy", U)
        return U

    def solve_fp_policy(self, P: FDPolicy):
        """``M`` solving the FP with the frozen policy:
        :math:`(I/\\Delta t - \\nu\\Delta_h + B_n^\\top)
        M^{n+1} = M^n/\\Delta t` (one forward sweep). Ergodic: the stationary density."""
        self._check_policy(P)
        if self.ergodic:
            return self._solve_fp_policy_ergodic(P)
        nt, N = self.nt, self.size
        t0 = time.perf_counter()
        sm = StepMatrices(self.stencil, self._coef(np.ascontiguousarray(P.b), self._inv_dt))
        rhs = np.zeros((nt, N))
        rhs[0] = self.m0 * self._inv_dt
        M = np.empty((nt + 1, N))
        M[0] = self.m0
        M[1:] = sm.forward(rhs, self._inv_dt)
        self._tick("linear_solve", t0)
        return M

    # -- ergodic ----------------------------------------------------------------------------------
    def _residual_ergodic(self, U, M, lam):
        t0 = time.perf_counter()
        q = self._slots(U[None])
        g, dg = self._ham(q, M[None])
        RU = -self.nu * self._laplacian(U[None])[0] + g[0] + lam - self._running(M[None])[0]
        RM = -self.nu * self._laplacian(M[None])[0] + self._adjoint(M[None, :, None] * dg)[0]
        h = self.grid.cell_volume
        Rc = np.array([h * M.sum() - 1.0, h * U.sum()])
        self._tick("assembly", t0)
        return RU, RM, Rc

    def _bordered(self, A, col, row):
        """``[[A, col], [row, 0]]`` (sparse) for one extra unknown / equation."""
        n = A.shape[0]
        return sp.bmat(
            [[A, sp.csr_matrix(col.reshape(n, 1))], [sp.csr_matrix(row.reshape(1, n)), None]],
            format="csc",
        )

    def _newton_direction_ergodic(self, U, M, lam):
        RU, RM, Rc = self._residual_ergodic(U, M, lam)
        t0 = time.perf_counter()
        N, st, h = self.size, self.stencil, self.grid.cell_volume
        q = self._slots(U[None])
        _, dg = self._ham(q, M[None])
        L = st.csr(self._coef(dg, 0.0)[0])
        if self.ham.depends_on_m:
            gm, dgm = self._ham_m(q, M[None])
            Kt = st.csr(self._coef(dg + M[None, :, None] * dgm, 0.0)[0]).T
            JUM = sp.diags(gm[0])
        else:
            Kt = L.T
            JUM = sp.csr_matrix((N, N))
        Jf = CouplingJacobian(self.problem.coupling, M[None], self.grid)
        if not Jf.is_zero:
            JUM = JUM - sp.csr_matrix(Jf.block(0))
        s = 2 * self.dim
        npair = s * s if self.ham.kind == K.POWER else s
        er = np.empty(N * 4 * npair, np.int64)
        ec = np.empty_like(er)
        ev = np.empty(N * 4 * npair)
        K.transport_jacobian_coo(
            q[0], M, M, self.ham.kind, self.ham.p0, self.ham.p1, st.nbp, st.nbm, st.inv_h,
            er, ec, ev,
        )
        E = sp.csr_matrix((ev, (er, ec)), shape=(N, N))
        one = np.ones((N, 1))
        zN = sp.csr_matrix((N, 1))
        z1 = sp.csr_matrix((1, N))
        A = sp.bmat(
            [
                [L, JUM, sp.csr_matrix(one), zN],
                [E, Kt, zN, sp.csr_matrix(one)],
                [z1, sp.csr_matrix(h * one.T), None, None],
                [sp.csr_matrix(h * one.T), z1, None, None],
            ],
            format="csc",
        )
        rhs = -np.concatenate([RU, RM, Rc])
        t0 = self._tick("assembly", t0)
        x = spla.splu(A).solve(rhs)
        self._tick("linear_solve", t0)
        self.stats["newton_directions"] += 1
        dU, dM, dlam = x[:N], x[N : 2 * N], float(x[2 * N])
        self._check_finite("the Newton direction", x)
        return dU, dM, dlam

    def _solve_hjb_ergodic(self, M):
        """Stationary HJB for frozen ``M``: Newton on ``(U, lam)`` with ``h^d sum U = 0``."""
        t0 = time.perf_counter()
        N, h = self.size, self.grid.cell_volume
        F = self._running(M[None])[0]
        U = np.zeros(N)
        lam = float(np.mean(F))
        ones = np.ones(N)
        scale = float(np.max(np.abs(F)))
        for _ in range(100):
            q = self._slots(U[None])
            g, dg = self._ham(q, M[None])
            R = -self.nu * self._laplacian(U[None])[0] + g[0] + lam - F
            rc = h * U.sum()
            rn = max(float(np.max(np.abs(R))), abs(rc))
            if rn <= self.step_tol * (1.0 + scale):
                break
            A = self._bordered(self.stencil.csr(self._coef(dg, 0.0)[0]), ones, h * ones)
            x = spla.splu(A).solve(np.concatenate([R, [rc]]))
            U = U - x[:N]
            lam = lam - float(x[N])
            if not np.all(np.isfinite(U)):
                raise NaNError("solve_hjb (ergodic): the Newton iterate became non-finite")
            if float(np.max(np.abs(x))) <= 1e-14 * (1.0 + float(np.max(np.abs(U)))):
                break
        else:
            raise ConvergenceError(
                f"solve_hjb (ergodic): Newton did not converge (residual {rn:.3e})"
            )
        self._tick("linear_solve", t0)
        return U, lam

    def _solve_fp_ergodic(self, U):
        """Stationary FP for frozen ``U``: ``-nu Delta M + A(U, M)^T M = 0``, ``h^d sum M = 1``."""
        t0 = time.perf_counter()
        q = self._slots(U[None])
        if not self.ham.depends_on_m:
            _, dg = self._ham(q, np.zeros((1, self.size)))
            M = self._stationary_density(dg[0])
        else:
            M = self.m0.copy()
            N, h = self.size, self.grid.cell_volume
            ones = np.ones(N)
            for _ in range(100):
                _, dg = self._ham(q, M[None])
                _, dgm = self._ham_m(q, M[None])
                R = -self.nu * self._laplacian(M[None])[0] + self._adjoint(M[None, :, None] * dg)[0]
                rc = h * M.sum() - 1.0
                rn = max(float(np.max(np.abs(R))), abs(rc))
                if rn <= self.step_tol * (1.0 + float(np.max(np.abs(M)))):
                    break
                Kt = self.stencil.csr(self._coef(dg + M[None, :, None] * dgm, 0.0)[0]).T
                A = self._bordered(Kt.tocsr(), ones, h * ones)
                x = spla.splu(A).solve(np.concatenate([R, [rc]]))
                M = M - x[:N]
                if not np.all(np.isfinite(M)):
                    raise NaNError("solve_fp (ergodic): the Newton iterate became non-finite")
            else:
                raise ConvergenceError(
                    f"solve_fp (ergodic): Newton did not converge (residual {rn:.3e})"
                )
        self._tick("linear_solve", t0)
        return M

    def _stationary_density(self, b):
        """Normalised ``M`` with ``(-nu Delta + A_b^T) M = 0`` (bordered: ``[C^T 1; h 1^T 0]``)."""
        N, h = self.size, self.grid.cell_volume
        C = self.stencil.csr(self._coef(b[None], 0.0)[0])
        ones = np.ones(N)
        A = self._bordered(C.T.tocsr(), ones, h * ones)
        rhs = np.zeros(N + 1)
        rhs[N] = 1.0
        x = spla.splu(A).solve(rhs)
        return x[:N]

    def _solve_hjb_policy_ergodic(self, P, M):
        t0 = time.perf_counter()
        N, h = self.size, self.grid.cell_volume
        c = self._policy_offset(P, M)
        F = self._running(M[None])[0]
        ones = np.ones(N)
        A = self._bordered(self.stencil.csr(self._coef(P.b[None], 0.0)[0]), ones, h * ones)
        x = spla.splu(A).solve(np.concatenate([F - c, [0.0]]))
        self._tick("linear_solve", t0)
        return x[:N], float(x[N])

    def _solve_fp_policy_ergodic(self, P):
        t0 = time.perf_counter()
        M = self._stationary_density(np.ascontiguousarray(P.b))
        self._tick("linear_solve", t0)
        return M

    # -- copies and output ----------------------------------------------------------------------
    def with_viscosity(self, nu: float) -> FDDiscretisation:
        """The same discretisation for the problem with viscosity ``nu`` (continuation in nu)."""
        try:
            v = float(nu)
        except (TypeError, ValueError):
            raise ValueError(f"nu={nu!r} must be a real number >= 0") from None
        if not np.isfinite(v) or v < 0:
            raise ValueError(f"nu={nu!r} must be a finite number >= 0")
        prob = copy.copy(self.problem)
        prob.nu = v
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return FDDiscretisation(
                prob, self.grid, self.nt, linear_solver=self.linear_solver,
                krylov_rtol=self.krylov_rtol,
                preconditioner=(
                    "auto" if (self._preconditioner_arg == "heat" and v == 0.0)
                    else self._preconditioner_arg
                ),
            )

    def control(self, state) -> np.ndarray:
        """Upwind feedback :math:`\\alpha_k = -(\\partial_{q_{2k}}g + \\partial_{q_{2k+1}}g)`.

        This is the drift the discrete FP transports ``M`` with (consistent with
        :math:`-\\partial_pH(\\nabla u)`). Time-dependent: level ``n < nt`` uses
        :math:`(U^n, M^{n+1})`, level ``nt`` uses :math:`(U^{n_t}, M^{n_t})`. Shape
        ``(nt+1, N, d)`` or ``(N, d)``.
        """
        if self.ergodic:
            U, M, _ = self._split(state)
            U2, M2 = U[None], M[None]
        else:
            U, M = self._split(state)
            U2 = U
            M2 = np.vstack([M[1:], M[-1:]])
        q = self._slots(np.ascontiguousarray(U2))
        _, dg = self._ham(q, M2)
        ctrl = -(dg[..., 0::2] + dg[..., 1::2])
        return ctrl[0] if self.ergodic else ctrl

    def to_solution(self, state, **attrs) -> Solution:
        """A :class:`~mfg_solvers.results.Solution` (``u``, ``m`` in grid shape, ``control``).

        ``control`` is the upwind feedback of :meth:`control`. ``attrs`` are stored as dataset
        attributes (``residual_history`` is stored as a variable).
        """
        history = attrs.pop("residual_history", ())
        base = {
            "problem": self.problem.name,
            "scheme": self.scheme,
            "nu": self.nu,
            "grid_shape": list(self.grid.shape),
            "boundary": ",".join(self.grid.boundary),
            "linear_solver": self.linear_solver,
            "control_gradient": "upwind (slot derivatives of the Godunov Hamiltonian)",
        }
        if not self.ergodic:
            base.update({"nt": self.nt, "dt": self.dt, "T": self.problem.T})
        for k, v in self.timings.items():
            base[f"time_{k}"] = v
        base.update(attrs)
        ctrl = self.control(state)
        shape = self.grid.shape
        if self.ergodic:
            U, M, lam = self._split(state)
            return Solution.from_arrays(
                u=U.reshape(shape), m=M.reshape(shape), axes=self.grid.axes,
                control=ctrl.reshape(shape + (self.dim,)), residual_history=history,
                ergodic_constant=lam, attrs=base, axis_names=self.grid.axis_names,
            )
        U, M = self._split(state)
        lead = (self.nt + 1,)
        return Solution.from_arrays(
            u=U.reshape(lead + shape), m=M.reshape(lead + shape), axes=self.grid.axes, t=self.t,
            control=ctrl.reshape(lead + shape + (self.dim,)), residual_history=history,
            attrs=base, axis_names=self.grid.axis_names,
        )
