"""Couplings :math:`f(x, m)` on flattened grid fields, with their Jacobians as linear operators.

Fields here have shape ``(B, N)`` (``B`` time levels of the flattened grid). The Jacobian
:math:`\\partial f_i/\\partial m_j` of each level is kept in the cheapest exact form:

* ``"zero"``     -- no coupling;
* ``"diag"``     -- local couplings: :math:`\\mathrm{diag} f'(m)`;
* ``"shared"``   -- :class:`~mfg_solvers.model.NonlocalCoupling`: one dense matrix for every level;
* ``"lowrank"``  -- :class:`~mfg_solvers.model.MeanCoupling`: rank ``d``,
  :math:`J = -q\\kappa h^d\\sum_k (x_k - \\kappa\\bar x_k)\\,x_k^\\top`;
* ``"dense"``    -- any other non-local coupling: its ``jacobian(m, grid)`` per level.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..grid import Grid
from ..model import Coupling, MeanCoupling, NonlocalCoupling

#: Largest number of dense Jacobian entries stored for a generic non-local coupling.
MAX_DENSE_ENTRIES = 200_000_000


def coupling_value(coupling: Coupling | None, M: np.ndarray, grid: Grid) -> np.ndarray:
    """:math:`f(M)` for ``M`` of shape ``(B, N)`` (zeros when ``coupling`` is None)."""
    if coupling is None:
        return np.zeros_like(M)
    B = M.shape[0]
    val = coupling.value(M.reshape((B,) + grid.shape), grid)
    return np.ascontiguousarray(np.asarray(val, dtype=float).reshape(B, grid.size))


class CouplingJacobian:
    """:math:`\\partial f/\\partial m` at the levels ``M`` (B, N), applied level by level."""

    def __init__(self, coupling: Coupling | None, M: np.ndarray, grid: Grid):
        B, N = M.shape
        self.B, self.N = B, N
        if coupling is None:
            self.kind = "zero"
        elif coupling.is_local:
            self.kind = "diag"
            self.diag = np.ascontiguousarray(
                np.asarray(coupling.derivative(M), dtype=float).reshape(B, N)
            )
        elif type(coupling) is NonlocalCoupling:
            self.kind = "shared"
            self.matrix = np.asarray(coupling.matrix(grid), dtype=float)
        elif type(coupling) is MeanCoupling:
            self.kind = "lowrank"
            pts = grid.points()  # (N, d)
            xbar = np.asarray(coupling.mean(M.reshape((B,) + grid.shape), grid)).reshape(B, -1)
            self.left = (
                -coupling.q
                * coupling.kappa
                * grid.cell_volume
                * (pts[None, :, :] - coupling.kappa * xbar[:, None, :])
            )  # (B, N, d)
            self.right = pts  # (N, d)
        else:
            if B * N * N > MAX_DENSE_ENTRIES:
                raise ValueError(
                    f"coupling={coupling!r}: its dense Jacobian on {B} levels of {N} nodes is too "
                    f"large ({B * N * N} entries > {MAX_DENSE_ENTRIES})"
                )
            self.kind = "dense"
            self.dense = np.stack(
                [
                    np.asarray(coupling.jacobian(M[b].reshape(grid.shape), grid), dtype=float)
                    for b in range(B)
                ]
            )

    @property
    def is_zero(self) -> bool:
        return self.kind == "zero"

    def apply(self, v: np.ndarray) -> np.ndarray:
        """``J_b v_b`` for ``v`` of shape ``(B, N)``."""
        if self.kind == "zero":
            return np.zeros_like(v)
        if self.kind == "diag":
            return self.diag * v
        if self.kind == "shared":
            return v @ self.matrix.T
        if self.kind == "lowrank":
            return np.einsum("bnr,br->bn", self.left, v @ self.right)
        return np.einsum("bij,bj->bi", self.dense, v)

    def block(self, b: int):
        """Level ``b`` as a matrix (sparse diagonal or dense)."""
        if self.kind == "zero":
            return sp.csr_matrix((self.N, self.N))
        if self.kind == "diag":
            return sp.diags(self.diag[b])
        if self.kind == "shared":
            return self.matrix
        if self.kind == "lowrank":
            return self.left[b] @ self.right.T
        return self.dense[b]
