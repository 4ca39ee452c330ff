"""Small dense discretisations with the members of the Discretisation interface.

:class:`GraphMFG` is a genuine (stationary) discrete MFG on a periodic 1-D graph of ``n`` nodes,
upwind (Godunov) quadratic Hamiltonian ``g = ((D+U)^-)^2/2 + ((D-U)^+)^2/2``:

* discounted (``ergodic=False``), unknowns ``(U, M)``:
  ``rho U - nu Lap U + g(DU) = V + kappa M`` and ``rho M - nu Lap M + A(U)^T M = rho m0``;
* ergodic, unknowns ``(U, M, lam)``:
  ``-nu Lap U + g(DU) + lam = V + kappa M``, ``-nu Lap M + A(U)^T M = 0``,
  ``h sum M = 1``, ``h sum U = 0``.

``A(U)`` is the Jacobian of ``U -> g(DU)``, so FP is the transpose of the linearised HJB as in
the ACD scheme; every solve is dense (numpy), which keeps the coupling solvers' tests independent
of ``mfg_solvers.fd``.

:class:`ScalarSystem` is ``F(x) = 0`` for a scalar function, dressed as a discretisation, to test
the Newton globalisation on known sequences.
"""

from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np

from mfg_solvers.results import Solution


class GraphMFG:
    def __init__(self, n=16, nu=0.2, kappa=1.0, rho=1.0, ergodic=False, amplitude=1.0):
        self.n = n
        self.h = 1.0 / n
        self.nu = float(nu)
        self.kappa = float(kappa)
        self.rho = float(rho)
        self.amplitude = float(amplitude)
        self.ergodic = bool(ergodic)
        self.problem = SimpleNamespace(name="graph-mfg", nu=self.nu, ergodic=self.ergodic)
        self.grid = None
        self.nt = self.dt = self.t = None
        self.size = n
        self.timings = {"assembly": 0.0, "linear_solve": 0.0}
        self.calls = {}
        x = self.h * np.arange(n)
        self.x = x
        shift = np.roll(np.eye(n), 1, axis=1)  # (S U)_i = U_{i+1}
        eye = np.eye(n)
        self.D1 = (shift - eye) / self.h
        self.D2 = (eye - shift.T) / self.h
        self.lap = (shift - 2 * eye + shift.T) / self.h**2
        self.V = -self.amplitude * np.cos(2 * np.pi * x)
        m0 = 1 + 0.5 * np.cos(2 * np.pi * (x - 0.25))
        self.m0 = m0 / (self.h * m0.sum())
        self.base = (0.0 if self.ergodic else self.rho) * eye - self.nu * self.lap

    # -- bookkeeping --------------------------------------------------------------------------
    def _count(self, name):
        self.calls[name] = self.calls.get(name, 0) + 1
        return self.calls[name]

    def _solve(self, A, b, lstsq=False):
        t0 = time.perf_counter()
        x = np.linalg.lstsq(A, b, rcond=None)[0] if lstsq else np.linalg.solve(A, b)
        self.timings["linear_solve"] += time.perf_counter() - t0
        return x

    # -- the scheme ---------------------------------------------------------------------------
    def slopes(self, U):
        return np.minimum(self.D1 @ U, 0.0), np.maximum(self.D2 @ U, 0.0)

    def transport(self, policy):
        b1, b2 = policy
        return b1[:, None] * self.D1 + b2[:, None] * self.D2

    def residual(self, state):
        self._count("residual")
        U, M = state[0], state[1]
        b1, b2 = self.slopes(U)
        A = self.transport((b1, b2))
        RU = self.base @ U + 0.5 * (b1**2 + b2**2) - self.V - self.kappa * M
        RM = self.base @ M + A.T @ M
        if self.ergodic:
            RU = RU + state[2]
            return RU, RM, np.array([self.h * M.sum() - 1.0, self.h * U.sum()])
        return RU, RM - self.rho * self.m0

    def residual_norm(self, state):
        return float(max(np.max(np.abs(r)) for r in self.residual(state)))

    def initial_guess(self):
        U, M = np.zeros(self.n), self.m0.copy()
        return (U, M, 0.0) if self.ergodic else (U, M)

    def jacobian(self, state):
        t0 = time.perf_counter()
        U, M = state[0], state[1]
        n = self.n
        q1, q2 = self.D1 @ U, self.D2 @ U
        A = self.transport(self.slopes(U))
        JMU = self.D1.T @ ((M * (q1 < 0))[:, None] * self.D1) + self.D2.T @ (
            (M * (q2 > 0))[:, None] * self.D2
        )
        top = np.hstack([self.base + A, -self.kappa * np.eye(n)])
        bottom = np.hstack([JMU, self.base + A.T])
        J = np.vstack([top, bottom])
        if self.ergodic:
            col = np.concatenate([np.ones(n), np.zeros(n)])[:, None]
            rows = np.zeros((2, 2 * n + 1))
            rows[0, n : 2 * n] = self.h
            rows[1, :n] = self.h
            J = np.vstack([np.hstack([J, col]), rows])
        self.timings["assembly"] += time.perf_counter() - t0
        return J

    def newton_direction(self, state):
        self._count("newton_direction")
        rhs = -np.concatenate([np.atleast_1d(r) for r in self.residual(state)])
        d = self._solve(self.jacobian(state), rhs, lstsq=self.ergodic)
        n = self.n
        if self.ergodic:
            return d[:n], d[n : 2 * n], float(d[2 * n])
        return d[:n], d[n:]

    # -- decoupled solves ---------------------------------------------------------------------
    def _hjb_linear(self, policy, M):
        b1, b2 = policy
        rhs = self.V + self.kappa * M + 0.5 * (b1**2 + b2**2)
        K = self.base + self.transport(policy)
        if self.ergodic:
            n = self.n
            B = np.zeros((n + 1, n + 1))
            B[:n, :n] = K
            B[:n, n] = 1.0
            B[n, :n] = self.h
            sol = self._solve(B, np.concatenate([rhs, [0.0]]))
            return sol[:n], float(sol[n])
        return self._solve(K, rhs)

    def solve_hjb(self, M):
        """Howard's policy iteration on the HJB alone (finite for the upwind g)."""
        self._count("solve_hjb")
        U = np.zeros(self.n)
        for _ in range(100):
            out = self._hjb_linear(self.slopes(U), M)
            U_new = out[0] if self.ergodic else out
            if np.max(np.abs(U_new - U)) < 1e-14 * (1 + np.max(np.abs(U))):
                U = U_new
                break
            U = U_new
        return out

    def _fp_linear(self, policy):
        K = self.base + self.transport(policy).T
        if self.ergodic:
            B = np.vstack([K, self.h * np.ones((1, self.n))])
            rhs = np.concatenate([np.zeros(self.n), [1.0]])
            return self._solve(B, rhs, lstsq=True)
        return self._solve(K, self.rho * self.m0)

    def solve_fp(self, U):
        self._count("solve_fp")
        return self._fp_linear(self.slopes(U))

    def policy(self, U):
        self._count("policy")
        return self.slopes(U)

    def solve_hjb_policy(self, P, M):
        self._count("solve_hjb_policy")
        return self._hjb_linear(P, M)

    def solve_fp_policy(self, P):
        self._count("solve_fp_policy")
        return self._fp_linear(P)

    def with_viscosity(self, nu):
        return type(self)(self.n, nu, self.kappa, self.rho, self.ergodic, self.amplitude)

    def to_solution(self, state, **attrs):
        lam = state[2] if self.ergodic else None
        return Solution.from_arrays(u=state[0], m=state[1], axes=[self.x], attrs=attrs,
                                    ergodic_constant=lam)


class ScalarSystem:
    """``F(x) = 0`` for a scalar function with derivative ``dF``; state ``(U, M)`` with
    ``U = [x]`` and a passive ``M = [1]``."""

    def __init__(self, F, dF, x0):
        self.F, self.dF, self.x0 = F, dF, float(x0)
        self.problem = SimpleNamespace(name="scalar", nu=0.0, ergodic=False)
        self.ergodic = False
        self.nt = self.dt = self.t = self.grid = None
        self.size = 1
        self.timings = {}
        self.iterates = []

    def initial_guess(self):
        return np.array([self.x0]), np.array([1.0])

    def residual(self, state):
        return np.array([self.F(state[0][0])]), state[1] - 1.0

    def residual_norm(self, state):
        return float(max(abs(self.F(state[0][0])), abs(state[1][0] - 1.0)))

    def newton_direction(self, state):
        x = state[0][0]
        self.iterates.append(x)
        return np.array([-self.F(x) / self.dF(x)]), 1.0 - state[1]

    def with_viscosity(self, nu):
        return self

    def to_solution(self, state, **attrs):
        return Solution.from_arrays(u=state[0], m=state[1], axes=[np.zeros(1)], attrs=attrs)
