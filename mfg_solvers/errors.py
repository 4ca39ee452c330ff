"""Exceptions raised by the solvers."""

from __future__ import annotations


class ConvergenceError(RuntimeError):
    """An iterative solver stopped without meeting its tolerance.

    Attributes
    ----------
    solution : mfg_solvers.results.Solution or None
        The last iterate, marked ``converged=False``.
    history : list of float
        The residual history.
    """

    def __init__(self, message: str, solution=None, history=None):
        super().__init__(message)
        self.solution = solution
        self.history = list(history) if history is not None else []


class NaNError(FloatingPointError):
    """A NaN or infinity appeared in an iterate; the solve was stopped."""

    def __init__(self, message: str, solution=None):
        super().__init__(message)
        self.solution = solution
