"""Godunov (upwind) numerical Hamiltonians :math:`g(q[, m])` of the ACD scheme.

A node carries ``2d`` slots :math:`q = (D_1^+U, D_1^-U, \\dots, D_d^+U, D_d^-U)`. With
:math:`a^- = \\min(a, 0)`, :math:`a^+ = \\max(a, 0)` and the upwind parts
:math:`s_{2k} = q_{2k}^-`, :math:`s_{2k+1} = q_{2k+1}^+`, :math:`S = \\sum_j s_j^2`:

=====================  ===================================================
:class:`Quadratic`     :math:`g = \\tfrac12 S`
:class:`PowerLaw`      :math:`g = \\tfrac1\\gamma S^{\\gamma/2}`
:class:`Congestion`    :math:`g = \\tfrac12 S\\,(c + m)^{-\\alpha}`
=====================  ===================================================

Properties (tested): *consistent*, :math:`g(p_1, p_1, \\dots, p_d, p_d) = H(p)`; *monotone*,
non-increasing in the forward slots and non-decreasing in the backward slots; :math:`C^1` and
convex in :math:`q`, piecewise :math:`C^2` (Newton on it is semismooth). The slot gradient is
:math:`\\partial_{q_j} g = G'(S)\\,2 s_j` with :math:`g = G(S)`; the slot Hessian is
:math:`2G'(S)\\,\\mathrm{diag}(\\chi) + 4G''(S)\\,s s^\\top` with :math:`\\chi_j = 1` where
:math:`s_j \\ne 0`.

Since :math:`g` is convex and positively homogeneous in the upwind parts, it is the supremum of
the affine functions :math:`b\\cdot q + c(b)` over :math:`b = \\partial_q g(q^*)`, with offset
:math:`c = g(q^*) - b\\cdot q^* = -L(b[, m])` (the Lagrangian of ``H`` at the slot vector ``b``):
this is the frozen policy of policy iteration.
"""

from __future__ import annotations

import numpy as np

from ..hamiltonians import Congestion, Hamiltonian, PowerLaw, Quadratic
from . import kernels as K


class NumericalHamiltonian:
    """Vectorised access to the Godunov ``g`` of a :class:`~mfg_solvers.hamiltonians.Hamiltonian`.

    Arrays ``q`` have shape ``(..., 2d)``; ``m`` broadcasts against ``q[..., 0]``.
    """

    def __init__(self, hamiltonian: Hamiltonian):
        if isinstance(hamiltonian, Quadratic):
            self.kind, self.p0, self.p1 = K.QUADRATIC, 2.0, 0.0
        elif isinstance(hamiltonian, PowerLaw):
            self.kind, self.p0, self.p1 = K.POWER, float(hamiltonian.gamma), 0.0
        elif isinstance(hamiltonian, Congestion):
            self.kind = K.CONGESTION
            self.p0, self.p1 = float(hamiltonian.c), float(hamiltonian.alpha)
        else:
            raise TypeError(
                f"hamiltonian={hamiltonian!r} has no finite-difference numerical Hamiltonian; "
                "allowed: Quadratic, PowerLaw, Congestion"
            )
        self.hamiltonian = hamiltonian
        self.depends_on_m = self.kind == K.CONGESTION

    # -- helpers --------------------------------------------------------------------------------
    def _prep(self, q, m):
        q = np.ascontiguousarray(q, dtype=float)
        if q.ndim < 1 or q.shape[-1] % 2 or q.shape[-1] == 0:
            raise ValueError(f"q has shape {q.shape}; the last axis must hold 2d slots")
        lead = q.shape[:-1]
        q2 = q.reshape(-1, q.shape[-1])
        if m is None:
            if self.depends_on_m:
                raise ValueError("m is required: the congestion Hamiltonian depends on the density")
            m2 = np.zeros(q2.shape[0])
        else:
            m2 = np.ascontiguousarray(np.broadcast_to(np.asarray(m, dtype=float), lead)).ravel()
        return q2, m2, lead

    def value_and_gradient(self, q, m=None):
        """``(g, dg)``: values ``(...)`` and slot gradients ``(..., 2d)``."""
        q2, m2, lead = self._prep(q, m)
        g = np.empty(q2.shape[0])
        dg = np.empty_like(q2)
        K.ham_values(q2, m2, self.kind, self.p0, self.p1, g, dg)
        return g.reshape(lead), dg.reshape(lead + (q2.shape[1],))

    def value(self, q, m=None):
        """:math:`g(q[, m])`."""
        return self.value_and_gradient(q, m)[0]

    def gradient(self, q, m=None):
        """:math:`\\partial_q g` (shape of ``q``)."""
        return self.value_and_gradient(q, m)[1]

    def m_derivatives(self, q, m):
        """``(dg/dm, d(dg)/dm)`` (zero unless the Hamiltonian depends on ``m``)."""
        q2, m2, lead = self._prep(q, m)
        gm = np.empty(q2.shape[0])
        dgm = np.empty_like(q2)
        K.ham_m_derivatives(q2, m2, self.kind, self.p0, self.p1, gm, dgm)
        return gm.reshape(lead), dgm.reshape(lead + (q2.shape[1],))

    def hessian_apply(self, q, v, m=None, weight=None):
        """``weight * (d^2 g/dq^2) v`` slot-wise (``v`` has the shape of ``q``)."""
        q2, m2, lead = self._prep(q, m)
        v2 = np.ascontiguousarray(np.broadcast_to(v, q.shape), dtype=float).reshape(q2.shape)
        w = (
            np.ones(q2.shape[0])
            if weight is None
            else np.ascontiguousarray(np.broadcast_to(weight, lead), dtype=float).ravel()
        )
        out = np.empty_like(q2)
        K.ham_hessian_apply(q2, m2, self.kind, self.p0, self.p1, w, v2, out)
        return out.reshape(lead + (q2.shape[1],))

    def offset_from_policy(self, b, m=None):
        """Affine offset :math:`c = -L(b[, m])` of the frozen policy ``b`` (slot vectors)."""
        b = np.asarray(b, dtype=float)
        S = np.sum(b * b, axis=-1)
        if self.kind == K.QUADRATIC:
            return -0.5 * S
        if self.kind == K.POWER:
            gp = self.p0 / (self.p0 - 1.0)
            return -(S ** (0.5 * gp)) / gp
        if m is None:
            raise ValueError("m is required: the congestion Lagrangian depends on the density")
        return -0.5 * S * (self.p0 + np.asarray(m, dtype=float)) ** self.p1
