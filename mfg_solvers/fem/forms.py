"""Weak forms (UFL) of the finite-element MFG scheme.

Notation: :math:`V_h` the Lagrange space of degree :math:`k`, :math:`(\\cdot,\\cdot)` the
:math:`L^2(\\Omega)` product, :math:`b(p, m) = \\partial_p H(p, m)`.

HJB operator (a form linear in the test function :math:`v`):

.. math::

    a_H(u, m; v) = (\\nu\\nabla u, \\nabla v) + (H(\\nabla u, m), v) - (V + f(x, m), v)
                   + s_h(u, m; v),

with the *continuous interior penalty* (CIP, edge) stabilisation

.. math::

    s_h(u, m; v) = \\sum_{F\\ \\text{interior}} \\int_F \\frac{\\gamma}{k^2} h_F^2\\,
        |\\{b(\\nabla u, m)\\}\\cdot n_F|_\\delta\\,[\\nabla u\\cdot n_F]\\,
        [\\nabla v\\cdot n_F]\\,ds,
    \\qquad |a|_\\delta = \\sqrt{a^2 + \\delta^2},

:math:`[\\cdot]` the jump and :math:`\\{\\cdot\\}` the mean across the facet. Time step
:math:`n` of the HJB (implicit Euler, backward, coupling at :math:`n+1`) and of the FP (forward):

.. math::

    R_H^n(v) &= \\big(\\tfrac{U^n - U^{n+1}}{\\Delta t}, v\\big) + a_H(U^n, M^{n+1}; v)
                 - (S_u, v),\\\\
    R_F^{n+1}(\\varphi) &= \\big(\\tfrac{M^{n+1} - M^n}{\\Delta t}, \\varphi\\big)
        + \\partial_u a_H(U^n, M^{n+1}; M^{n+1})[\\varphi] - (S_m, \\varphi).

The FP form is the derivative of the HJB operator in :math:`u` with the density put in the slot of
the test function: the discrete FP operator is the *transpose* of the linearised discrete HJB,
as in the Achdou--Capuzzo-Dolcetta finite-difference scheme. For the quadratic Hamiltonian it is
the Galerkin form of :math:`\\partial_t m - \\nu\\Delta m - \\operatorname{div}(m\\nabla u) = 0`
with zero normal flux on the walls, plus the adjoint of the stabilisation. Ergodic problem:
the time difference is replaced by :math:`(\\lambda, v)` in the HJB and dropped in the FP.
:math:`S_u, S_m` are optional forcing terms (manufactured solutions); in the ergodic case the
mean of :math:`S_m` is removed (the stationary FP is solvable only for a forcing of zero mean).

Mass conservation: :math:`a_H` depends on :math:`u` only through :math:`\\nabla u`, so
:math:`\\partial_u a_H[1] = 0` and testing the FP with :math:`\\varphi = 1` gives
:math:`\\int M^{n+1} = \\int M^n` exactly (to the accuracy of the linear solves) on domains with
reflecting walls. At exits :math:`U` is prescribed, the test functions of the HJB vanish there,
and so does :math:`M` (absorbing boundary); the same identity then yields the outflow.

Why CIP and not SUPG: SUPG multiplies the *whole* strong residual, the time difference included,
by the streamline test function :math:`\\tau\\, b\\cdot\\nabla v`; the adjoint FP would then
conserve :math:`\\int (m + \\tau\\, b\\cdot\\nabla m)` instead of :math:`\\int m`. CIP acts on
:math:`\\nabla u` alone, is symmetric (the FP receives the same edge term), is consistent (the
gradient jumps of a smooth solution vanish), so it keeps the optimal orders of P1 and P2
(:math:`O(h^{k+1})` in :math:`L^2`, :math:`O(h^k)` in :math:`H^1`), and its weight is a smooth
function of :math:`\\nabla u`, so Newton's Jacobian is exact. Like SUPG it is not monotone: the
density can undershoot where it is steep and small; the discretisation reports :math:`\\min m`.
A monotone edge-based scheme (artificial diffusion on acute meshes) would guarantee
:math:`m \\ge 0` but is first order and P1 only.
"""

from __future__ import annotations

import numpy as np

from ..hamiltonians import Congestion, Hamiltonian, PowerLaw, Quadratic
from ..model import LocalCoupling, MeanCoupling
from ._backend import fem, ufl

STABILISATIONS = ("cip", "none")


class UFLHamiltonian:
    """:math:`H(p, m)`, :math:`\\partial_p H` and the Lagrangian :math:`L(a, m)` in UFL.

    Parameters are dolfinx Constants, so that one compiled form serves every parameter value.
    :class:`~mfg_solvers.hamiltonians.PowerLaw` is regularised as
    :math:`((|p|^2+\\epsilon^2)^{\\gamma/2} - \\epsilon^\\gamma)/\\gamma` (``power_eps``
    :math:`=\\epsilon`) so that its derivatives exist at :math:`p = 0`.
    """

    def __init__(self, ham: Hamiltonian, msh, power_eps: float = 1e-6):
        if not isinstance(ham, Hamiltonian):
            raise TypeError(f"hamiltonian={ham!r} must be a mfg_solvers Hamiltonian")
        self.ham = ham
        self.kind = ham.kind
        if isinstance(ham, Quadratic):
            self.consts = {}
        elif isinstance(ham, PowerLaw):
            self.consts = {"gamma": fem.Constant(msh, ham.gamma),
                           "eps": fem.Constant(msh, float(power_eps))}
        elif isinstance(ham, Congestion):
            self.consts = {"c": fem.Constant(msh, ham.c), "alpha": fem.Constant(msh, ham.alpha)}
        else:
            raise TypeError(
                f"hamiltonian={ham!r} is not supported by the finite-element solver; allowed: "
                "Quadratic, PowerLaw, Congestion"
            )

    def value(self, p, m):
        k = self.consts
        if self.kind == "quadratic":
            return 0.5 * ufl.dot(p, p)
        if self.kind == "power":
            g, e = k["gamma"], k["eps"]
            return ((ufl.dot(p, p) + e**2) ** (g / 2) - e**g) / g
        return 0.5 * ufl.dot(p, p) * (k["c"] + m) ** (-k["alpha"])

    def dp(self, p, m):
        k = self.consts
        if self.kind == "quadratic":
            return p
        if self.kind == "power":
            g, e = k["gamma"], k["eps"]
            return (ufl.dot(p, p) + e**2) ** (g / 2 - 1) * p
        return p * (k["c"] + m) ** (-k["alpha"])

    def lagrangian(self, a, m):
        """:math:`L(a, m)`, with :math:`H(p, m) = \\sup_a\\{-p\\cdot a - L(a, m)\\}`."""
        k = self.consts
        if self.kind == "quadratic":
            return 0.5 * ufl.dot(a, a)
        if self.kind == "power":
            g, e = k["gamma"], k["eps"]
            gp = g / (g - 1)
            return ((ufl.dot(a, a) + e**2) ** (gp / 2) - e**gp) / gp
        return 0.5 * ufl.dot(a, a) * (k["c"] + m) ** k["alpha"]

    def update(self, ham: Hamiltonian):
        """Copy the parameters of ``ham`` (same class) into the Constants."""
        if type(ham) is not type(self.ham):
            raise TypeError(f"hamiltonian {ham!r} is not a {type(self.ham).__name__}")
        self.ham = ham
        if isinstance(ham, PowerLaw):
            self.consts["gamma"].value = ham.gamma
        elif isinstance(ham, Congestion):
            self.consts["c"].value = ham.c
            self.consts["alpha"].value = ham.alpha


class UFLCoupling:
    """Running coupling :math:`f(x, m)` in UFL (local couplings and the mean coupling).

    The logarithmic coupling is evaluated as :math:`s\\log\\max(m, \\epsilon)` (``log_floor``
    :math:`=\\epsilon`, default :math:`10^{-12}`): the density of the (non-monotone) Galerkin
    scheme can undershoot zero in far tails, where :math:`\\log m` would be undefined. Nothing
    changes where :math:`m_h \\ge \\epsilon`.
    """

    def __init__(self, coupling, msh, x, dim: int, log_floor: float = 1e-12):
        self.coupling = coupling
        self.consts = {}
        self.xbar = None
        self.dim = dim
        if coupling is None:
            self.kind = "none"
        elif isinstance(coupling, LocalCoupling):
            self.kind = coupling.kind
            self.consts["s"] = fem.Constant(msh, coupling.strength)
            if coupling.kind == "power":
                self.consts["e"] = fem.Constant(msh, coupling.exponent)
            if coupling.kind == "log":
                self.consts["eps"] = fem.Constant(msh, float(log_floor))
        elif isinstance(coupling, MeanCoupling):
            self.kind = "mean"
            self.consts["q"] = fem.Constant(msh, coupling.q)
            self.consts["kappa"] = fem.Constant(msh, coupling.kappa)
            self.xbar = fem.Constant(msh, np.zeros(dim))
        else:
            raise TypeError(
                f"coupling={coupling!r} is not supported by the finite-element solver; allowed: "
                "LocalCoupling, MeanCoupling or None"
            )
        self.x = x

    @property
    def is_mean(self) -> bool:
        return self.kind == "mean"

    def value(self, m):
        c = self.consts
        if self.kind == "none":
            return 0
        if self.kind == "linear":
            return c["s"] * m
        if self.kind == "log":
            # s log max(m, eps): the Galerkin density may undershoot zero in far tails, where
            # the log would be undefined
            return c["s"] * ufl.ln(ufl.max_value(m, c["eps"]))
        if self.kind == "power":
            return c["s"] * m ** c["e"]
        d = self.x - c["kappa"] * self.xbar
        return 0.5 * c["q"] * ufl.dot(d, d)



class MFGForms:
    """All UFL forms of one discretisation; the slots are dolfinx Functions/Constants.

    Slots: ``u`` (:math:`U^n`, ergodic :math:`U`), ``m`` (:math:`M^{n+1}`, ergodic :math:`M`),
    ``u_next`` (:math:`U^{n+1}`), ``m_prev`` (:math:`M^n`), ``potential``, Constants ``nu``,
    ``dt``, ``lam``, ``t_u`` (:math:`t^n`), ``t_m`` (:math:`t^{n+1}`), the mean ``xbar``.
    Compiled forms (``dolfinx.fem.Form``): ``RH``, ``RF`` (residuals), ``JHU``, ``JHM``,
    ``JFU``, ``JFM`` (Jacobian blocks) and ``mass``.
    """

    def __init__(self, V, problem, *, ergodic: bool, stabilisation: str = "cip",
                 cip_gamma: float = 0.05, cip_delta: float = 1e-3, quadrature_degree=None,
                 forcing=None, power_eps: float = 1e-6, log_floor: float = 1e-12):
        if stabilisation not in STABILISATIONS:
            raise ValueError(
                f"stabilisation={stabilisation!r} is not known; allowed: {list(STABILISATIONS)}"
            )
        msh = V.mesh
        self.V = V
        self.msh = msh
        self.ergodic = bool(ergodic)
        self.dim = msh.topology.dim
        k = V.ufl_element().embedded_superdegree
        self.degree = k
        q = 2 * k if quadrature_degree is None else int(quadrature_degree)
        self.quadrature_degree = q
        dx = ufl.Measure("dx", domain=msh, metadata={"quadrature_degree": q})
        # the CIP integrand is a product of two gradient jumps (degree k - 1 each) and a smooth
        # weight: degree 2k - 1 integrates it exactly where the weight is affine along the
        # facet (one point per facet for P1); the facet kernels dominate the assembly, and a
        # higher degree only refines an O(h^(k+1)) stabilisation term
        self.facet_quadrature_degree = 2 * k - 1
        dS = ufl.Measure("dS", domain=msh,
                         metadata={"quadrature_degree": self.facet_quadrature_degree})
        self.dx = dx
        x = ufl.SpatialCoordinate(msh)
        self.x = x

        self.u = fem.Function(V, name="u")
        self.m = fem.Function(V, name="m")
        self.potential = fem.Function(V, name="potential")
        self.nu = fem.Constant(msh, float(problem.nu))
        self.ham = UFLHamiltonian(problem.hamiltonian, msh, power_eps)
        self.coupling = UFLCoupling(problem.coupling, msh, x, self.dim, log_floor)
        self.gamma = fem.Constant(msh, float(cip_gamma))
        self.delta = fem.Constant(msh, float(cip_delta))
        self.stabilisation = stabilisation
        if self.ergodic:
            self.lam = fem.Constant(msh, 0.0)
            self.t_u = self.t_m = None
        else:
            self.u_next = fem.Function(V, name="u_next")
            self.m_prev = fem.Function(V, name="m_prev")
            self.dt = fem.Constant(msh, 1.0)
            self.t_u = fem.Constant(msh, 0.0)
            self.t_m = fem.Constant(msh, 0.0)

        v = ufl.TestFunction(V)
        w = ufl.TrialFunction(V)
        self.v, self.w = v, w
        u, m = self.u, self.m

        if forcing is not None:
            S_u, S_m = forcing(x, self.t_u, self.t_m)
        else:
            S_u = S_m = None

        a_H = self.hjb_operator(u, m, v, dx, dS, k)
        if self.ergodic:
            RH = self.lam * v * dx + a_H
        else:
            RH = (u - self.u_next) / self.dt * v * dx + a_H
        lagr = ufl.replace(a_H, {v: m})
        RF = ufl.derivative(lagr, u, v)
        if not self.ergodic:
            RF = RF + (m - self.m_prev) / self.dt * v * dx
        if S_u is not None:
            RH = RH - S_u * v * dx
        if S_m is not None:
            if self.ergodic:
                # the stationary FP is solvable only for a forcing of zero mean: remove the
                # quadrature error of its mean
                from ._backend import MPI

                local = fem.assemble_scalar(fem.form(S_m * dx))
                vol = fem.assemble_scalar(fem.form(fem.Constant(msh, 1.0) * dx))
                mean = msh.comm.allreduce(local, op=MPI.SUM) / msh.comm.allreduce(vol, op=MPI.SUM)
                S_m = S_m - fem.Constant(msh, float(mean))
            RF = RF - S_m * v * dx
        self.ufl_forms = {
            "RH": RH,
            "RF": RF,
            "JHU": ufl.derivative(RH, u, w),
            "JHM": ufl.derivative(RH, m, w),
            "JFU": ufl.derivative(RF, u, w),
            "JFM": ufl.derivative(RF, m, w),
            "mass": w * v * dx,
        }
        self.forms = {key: fem.form(f) for key, f in self.ufl_forms.items()}

    # -- the HJB operator -------------------------------------------------------------------
    def hjb_operator(self, u, m, v, dx, dS, k):
        """:math:`a_H(u, m; v)` (see the module docstring)."""
        p = ufl.grad(u)
        form = (self.nu * ufl.inner(p, ufl.grad(v)) + self.ham.value(p, m) * v
                - (self.potential + self.coupling.value(m)) * v) * dx
        if self.stabilisation == "cip":
            form = form + self.cip(self.ham.dp(p, m), u, v, dS, k)
        return form

    def cip(self, b, u, v, dS, k):
        """The edge term :math:`s_h` for the velocity field ``b``."""
        n = ufl.FacetNormal(self.msh)
        h = ufl.CellDiameter(self.msh)
        bn = ufl.dot(ufl.avg(b), n("+"))
        weight = self.gamma / k**2 * ufl.avg(h) ** 2 * ufl.sqrt(bn * bn + self.delta**2)
        return weight * ufl.jump(ufl.grad(u), n) * ufl.jump(ufl.grad(v), n) * dS
