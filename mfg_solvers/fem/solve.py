"""``solve(problem, mesh, ...)``: build the finite-element discretisation, run a coupling
solver."""

from __future__ import annotations

import inspect

#: keyword arguments that configure the discretisation (the rest go to the solver)
DISCRETISATION_OPTIONS = (
    "degree", "n", "exits", "exit_cost", "stabilisation", "cip_gamma", "cip_delta",
    "quadrature_degree", "forcing", "petsc_options", "inner_tol", "inner_max_iter", "initial",
    "linear_solver", "krylov_options",
)


def solve(problem, mesh=None, nt=None, method: str = "newton", **options):
    """Solve ``problem`` by finite elements on ``mesh`` with ``nt`` implicit Euler steps.

    Builds :class:`~mfg_solvers.fem.FEMDiscretisation` and runs a solver of
    :mod:`mfg_solvers.coupling` on it (``method``: ``"newton"``, ``"fixed_point"``,
    ``"fictitious_play"`` or ``"policy_iteration"``). ``options`` named in
    :data:`DISCRETISATION_OPTIONS` configure the discretisation, the others the solver
    (e.g. ``tol``, ``max_iter``, ``damping``, ``continuation_nu``, ``progress``).

    Returns
    -------
    Solution
        The FEM variant of :class:`~mfg_solvers.results.Solution` (see
        :mod:`mfg_solvers.fem.discretisation`).
    """
    from ..coupling import dispatch
    from .discretisation import FEMDiscretisation

    if method not in dispatch.METHODS:
        raise ValueError(f"method={method!r} is not known; allowed: {list(dispatch.METHODS)}")
    solver = dispatch.METHODS[method]
    allowed = [name for name, p in inspect.signature(solver).parameters.items()
               if p.kind is inspect.Parameter.KEYWORD_ONLY]
    disc_options = {k: options.pop(k) for k in DISCRETISATION_OPTIONS if k in options}
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise TypeError(f"option(s) {unknown} not accepted by method={method!r}; allowed: "
                        f"{allowed + list(DISCRETISATION_OPTIONS)}")
    disc = FEMDiscretisation(problem, mesh, nt, **disc_options)
    return solver(disc, **options)
