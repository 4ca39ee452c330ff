"""Outer solvers of the coupled HJB–FP system, independent of the discretisation.

They call only the discretisation interface of ``docs/architecture.md`` (residual, Newton
direction, HJB / FP solves, frozen-policy solves, ``to_solution``) and know nothing of grids or
meshes:

* :func:`solve_newton` — Newton on the whole coupled system (optional line search, continuation
  in the viscosity);
* :func:`solve_fixed_point` — damped Picard iteration;
* :func:`solve_fictitious_play` — fictitious play / conditional gradient;
* :func:`solve_policy_iteration` — policy iteration (Cacace–Camilli–Goffi);
* :func:`solve` — build the finite-difference discretisation of a problem and dispatch.

All return a :class:`~mfg_solvers.results.Solution`; the shared loop machinery (history,
stopping, NaN detection, progress bar, Ctrl-C) lives in :mod:`._loop`.
"""

from .dispatch import METHODS, solve
from .fixed_point import solve_fictitious_play, solve_fixed_point
from .newton import solve_newton
from .policy_iteration import solve_policy_iteration

__all__ = [
    "METHODS",
    "solve",
    "solve_fictitious_play",
    "solve_fixed_point",
    "solve_newton",
    "solve_policy_iteration",
]
