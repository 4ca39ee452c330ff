"""Policy iteration for the coupled system (Cacace–Camilli–Goffi; docs/theory.md).

Players use the feedback :math:`-q`; :math:`H(x, p) = \\sup_q\\{q\\cdot p - L(x, q)\\}`. Given a
policy :math:`q^{(k)}`, one sweep solves two *linear* problems and updates the policy:

1. FP with frozen policy:
   :math:`\\partial_t m - \\nu\\Delta m - \\operatorname{div}(m\\,q^{(k)}) = 0`, :math:`m(0) = m_0`;
2. linear HJB:
   :math:`-\\partial_t u - \\nu\\Delta u + q^{(k)}\\cdot Du - L(x, q^{(k)}) = f(x, m^{(k)})`,
   :math:`u(T) = u_T`;
3. :math:`q^{(k+1)} = D_pH(x, Du^{(k)})`.

Discretely the frozen policy is what ``disc.policy(U[, M])`` returns (for the Godunov numerical
Hamiltonian, a maximum of affine functions of the difference quotients: the active slot
gradient and its affine offset; ``M`` is passed when the discretisation accepts it, as a
density-dependent Hamiltonian needs it); step 2 is ``disc.solve_hjb_policy(P, M)`` with the
frozen upwind operator and step 1 ``disc.solve_fp_policy(P)`` with its transpose, so every iterate
keeps positivity and mass. The iteration is stopped on the full nonlinear residual at
:math:`(U^{(k)}, M^{(k)})`; its fixed points are exactly the discrete MFG solutions, the same as
Newton's.

The plain iteration converges linearly for short horizons or weak coupling; for strong coupling
it can oscillate and diverge (it does on the periodic benchmark of docs/theory.md at
``T = 1``). ``relaxation`` :math:`\\theta < 1` damps the density,
:math:`M^{(k)} = (1-\\theta)M^{(k-1)} + \\theta\\,\\mathrm{FP}(q^{(k)})`, which restores
convergence there (:math:`\\theta = 0.5`: about 35 sweeps to :math:`10^{-10}`); the fixed points
are unchanged.

Ergodic discretisations: the state is :math:`(U, M, \\lambda)` and ``solve_hjb_policy`` returns
:math:`(U, \\lambda)`.
"""

from __future__ import annotations

import inspect

from ._loop import OuterLoop, check_fraction
from ._state import mix, split_value_output


def _policy_takes_density(disc) -> bool:
    """Whether ``disc.policy`` accepts the density as a second argument."""
    try:
        params = list(inspect.signature(disc.policy).parameters.values())
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind is p.VAR_POSITIONAL for p in params)


def solve_policy_iteration(
    disc,
    *,
    relaxation: float = 1.0,
    tol: float = 1e-10,
    max_iter: int = 200,
    initial_state=None,
    progress: bool = True,
    raise_on_failure: bool = True,
):
    """Policy iteration: ``P = policy(U, M)``, ``M = FP(P)``, ``U = HJB(P, M)``, repeated.

    Parameters
    ----------
    disc
        A discretisation offering the interface of ``docs/architecture.md``.
    relaxation
        :math:`\\theta \\in (0, 1]`: weight of the new density, ``1`` for the plain iteration.
    tol, max_iter
        Stop when the full-system residual is below ``tol``; at most ``max_iter`` sweeps.
    initial_state
        Starting state (default ``disc.initial_guess()``); its ``U`` defines the first policy.
    progress, raise_on_failure
        As in :func:`~mfg_solvers.coupling.solve_newton`.

    Returns
    -------
    Solution
        ``solver="policy_iteration"``, with ``relaxation`` in the attributes.
    """
    theta = check_fraction("relaxation", relaxation)
    loop = OuterLoop(disc, "policy_iteration", tol=tol, max_iter=max_iter, progress=progress,
                     raise_on_failure=raise_on_failure, settings={"relaxation": theta},
                     initial_state=initial_state)
    ergodic = bool(disc.ergodic)
    with_density = _policy_takes_density(disc)

    def start():
        return loop.state

    def step(state, residual):
        U, M = state[0], state[1]
        policy = disc.policy(U, M) if with_density else disc.policy(U)
        M_new = loop.check("M", disc.solve_fp_policy(policy))
        if theta < 1.0:
            M_new = mix(M, M_new, theta)
        U_new, lam = split_value_output(disc.solve_hjb_policy(policy, M_new), ergodic,
                                        "solve_hjb_policy")
        loop.check("U", U_new)
        new = (U_new, M_new, lam) if ergodic else (U_new, M_new)
        return new, disc.residual_norm(new)

    loop.run(start, step)
    return loop.finish()
