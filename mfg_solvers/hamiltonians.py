"""Hamiltonians :math:`H(x, p, m)` with their derivatives.

Agents control their drift: :math:`dX_t = \\alpha_t\\,dt + \\sqrt{2\\nu}\\,dW_t`, running cost
:math:`L(\\alpha, m) + f(x, m)`, and :math:`H(p, m) = \\sup_\\alpha\\{-p\\cdot\\alpha - L(\\alpha, m)\\}`.
The optimal feedback is :math:`\\alpha^* = -\\partial_p H(\\nabla u, m)`.

* :class:`Quadratic`: :math:`H = \\tfrac12 |p|^2`, Lagrangian :math:`\\tfrac12|\\alpha|^2`;
* :class:`PowerLaw`: :math:`H = |p|^\\gamma / \\gamma` (:math:`\\gamma > 1`), Lagrangian
  :math:`|\\alpha|^{\\gamma'}/\\gamma'` with :math:`1/\\gamma + 1/\\gamma' = 1`;
* :class:`Congestion`: :math:`H = |p|^2 / (2 (c + m)^\\alpha)`, Lagrangian
  :math:`\\tfrac12 (c+m)^\\alpha |\\alpha|^2` (moving is costlier in crowds).

Potentials :math:`V(x)` are not part of :math:`H`; they enter the running cost (see
:mod:`mfg_solvers.model`).

Each class exposes ``kind`` and ``params`` (plain floats) so that numba kernels in
:mod:`mfg_solvers.fd` can specialise on them, and vectorised NumPy methods
(:meth:`value`, :meth:`dp`, :meth:`dm`) with ``p`` of shape ``(..., d)``.
"""

from __future__ import annotations

import numpy as np


class Hamiltonian:
    """Base class. ``p`` has shape ``(..., d)``; ``m`` broadcasts against ``p[..., 0]``."""

    kind: str = ""
    depends_on_m: bool = False

    @property
    def params(self) -> tuple[float, ...]:
        return ()

    def value(self, p, m=None):
        """:math:`H(p, m)`, shape ``p.shape[:-1]``."""
        raise NotImplementedError

    def dp(self, p, m=None):
        """:math:`\\partial_p H(p, m)`, shape ``p.shape``."""
        raise NotImplementedError

    def dm(self, p, m=None):
        """:math:`\\partial_m H(p, m)` (zero unless ``depends_on_m``)."""
        p = np.asarray(p, dtype=float)
        return np.zeros(p.shape[:-1])

    def control(self, p, m=None):
        """Optimal feedback :math:`\\alpha^* = -\\partial_p H`."""
        return -self.dp(p, m)

    def lagrangian(self, alpha, m=None):
        """:math:`L(\\alpha, m)`, the Legendre dual used by policy iteration."""
        raise NotImplementedError

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in zip(self._param_names, self.params, strict=True))
        return f"{type(self).__name__}({args})"

    _param_names: tuple[str, ...] = ()

    def __eq__(self, other):
        return type(self) is type(other) and self.params == other.params

    def __hash__(self):
        return hash((type(self).__name__, self.params))


def _sq(p):
    p = np.asarray(p, dtype=float)
    return np.sum(p * p, axis=-1)


class Quadratic(Hamiltonian):
    """:math:`H(p) = \\tfrac12 |p|^2`, :math:`\\partial_p H = p`, :math:`L(\\alpha) = \\tfrac12|\\alpha|^2`."""

    kind = "quadratic"

    def value(self, p, m=None):
        return 0.5 * _sq(p)

    def dp(self, p, m=None):
        return np.array(p, dtype=float)

    def lagrangian(self, alpha, m=None):
        return 0.5 * _sq(alpha)


class PowerLaw(Hamiltonian):
    """:math:`H(p) = |p|^\\gamma/\\gamma` (:math:`\\gamma > 1`), :math:`\\partial_p H = |p|^{\\gamma-2} p`.

    The Lagrangian is :math:`|\\alpha|^{\\gamma'}/\\gamma'` with :math:`1/\\gamma + 1/\\gamma' = 1`.
    """

    kind = "power"
    _param_names = ("gamma",)

    def __init__(self, gamma: float = 2.0):
        if not np.isfinite(gamma) or gamma <= 1:
            raise ValueError(f"gamma={gamma!r} must be a finite number > 1")
        self.gamma = float(gamma)

    @property
    def params(self):
        return (self.gamma,)

    def value(self, p, m=None):
        return _sq(p) ** (0.5 * self.gamma) / self.gamma

    def dp(self, p, m=None):
        p = np.asarray(p, dtype=float)
        n2 = _sq(p)
        with np.errstate(divide="ignore", invalid="ignore"):
            fac = np.where(n2 > 0, n2 ** (0.5 * self.gamma - 1.0), 0.0)
        return fac[..., None] * p

    def lagrangian(self, alpha, m=None):
        gp = self.gamma / (self.gamma - 1.0)
        return _sq(alpha) ** (0.5 * gp) / gp


class Congestion(Hamiltonian):
    """:math:`H(p, m) = |p|^2 / (2 (c + m)^\\alpha)` with :math:`c > 0`, :math:`\\alpha \\ge 0`.

    Moving is costlier in crowds: :math:`L(a, m) = \\tfrac12 (c+m)^\\alpha |a|^2`,
    :math:`\\partial_p H = p / (c+m)^\\alpha`,
    :math:`\\partial_m H = -\\alpha |p|^2 / (2 (c+m)^{\\alpha+1})`.
    """

    kind = "congestion"
    depends_on_m = True
    _param_names = ("c", "alpha")

    def __init__(self, c: float = 1.0, alpha: float = 1.0):
        if not np.isfinite(c) or c <= 0:
            raise ValueError(f"c={c!r} must be a positive finite number")
        if not np.isfinite(alpha) or alpha < 0:
            raise ValueError(f"alpha={alpha!r} must be a finite number >= 0")
        self.c = float(c)
        self.alpha = float(alpha)

    @property
    def params(self):
        return (self.c, self.alpha)

    def _weight(self, m):
        if m is None:
            raise ValueError("m is required: the congestion Hamiltonian depends on the density")
        return (self.c + np.asarray(m, dtype=float)) ** (-self.alpha)

    def value(self, p, m=None):
        return 0.5 * _sq(p) * self._weight(m)

    def dp(self, p, m=None):
        return np.asarray(p, dtype=float) * self._weight(m)[..., None]

    def dm(self, p, m=None):
        m = np.asarray(m, dtype=float)
        return -0.5 * self.alpha * _sq(p) * (self.c + m) ** (-self.alpha - 1.0)

    def lagrangian(self, alpha, m=None):
        return 0.5 * _sq(alpha) / self._weight(m)


HAMILTONIANS = {"quadratic": Quadratic, "power": PowerLaw, "congestion": Congestion}


def make_hamiltonian(kind: str = "quadratic", **params) -> Hamiltonian:
    """Build a Hamiltonian from its name (``quadratic``, ``power``, ``congestion``) and parameters."""
    if kind not in HAMILTONIANS:
        raise ValueError(f"hamiltonian={kind!r} is not known; allowed: {sorted(HAMILTONIANS)}")
    try:
        return HAMILTONIANS[kind](**params)
    except TypeError as exc:
        raise ValueError(f"hamiltonian {kind!r}: bad parameters {params!r} ({exc})") from None
