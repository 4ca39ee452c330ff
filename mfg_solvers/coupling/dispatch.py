"""``solve(problem, grid, nt, method=...)``: build the finite-difference discretisation and run a
coupling solver on it."""

from __future__ import annotations

import inspect

from .fixed_point import solve_fictitious_play, solve_fixed_point
from .newton import solve_newton
from .policy_iteration import solve_policy_iteration

#: method name -> solver
METHODS = {
    "newton": solve_newton,
    "fixed_point": solve_fixed_point,
    "fictitious_play": solve_fictitious_play,
    "policy_iteration": solve_policy_iteration,
}

#: options that configure the discretisation rather than the solver
DISCRETISATION_OPTIONS = ("linear_solver",)


def solve(problem, grid, nt=None, method: str = "newton", **options):
    """Solve ``problem`` on ``grid`` with ``nt`` implicit time steps (``None`` if ergodic).

    Builds :class:`~mfg_solvers.fd.FDDiscretisation` (the ACD upwind scheme with implicit Euler)
    and runs the chosen coupling solver on it.

    Parameters
    ----------
    problem
        An :class:`~mfg_solvers.model.MFGProblem`.
    grid
        A :class:`~mfg_solvers.grid.Grid` of the problem's domain.
    nt
        Number of time steps (finite horizon); ``None`` for an ergodic problem.
    method
        ``"newton"``, ``"fixed_point"``, ``"fictitious_play"`` or ``"policy_iteration"``.
    **options
        ``linear_solver`` goes to the discretisation; everything else to the solver (see
        :func:`solve_newton`, :func:`solve_fixed_point`, :func:`solve_fictitious_play`,
        :func:`solve_policy_iteration`).

    Returns
    -------
    Solution
    """
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not known; allowed: {list(METHODS)}")
    solver = METHODS[method]
    allowed = [
        name for name, p in inspect.signature(solver).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    disc_options = {k: options.pop(k) for k in DISCRETISATION_OPTIONS if k in options}
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise TypeError(
            f"option(s) {unknown} not accepted by method={method!r}; allowed: "
            f"{allowed + list(DISCRETISATION_OPTIONS)}"
        )
    from ..fd import FDDiscretisation

    disc = FDDiscretisation(problem, grid, nt, **disc_options)
    return solver(disc, **options)
