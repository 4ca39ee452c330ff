"""mfg_solvers: solvers for mean-field games and their closed-form ground truth.

The public API is re-exported here lazily: importing :mod:`mfg_solvers` loads nothing heavy
(no numba compilation, no dolfinx); each name is imported from its module on first use.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    # problem statement
    "Domain": "grid",
    "Grid": "grid",
    "TimeGrid": "grid",
    "MFGProblem": "model",
    "LocalCoupling": "model",
    "NonlocalCoupling": "model",
    "MeanCoupling": "model",
    "MassNormalisationWarning": "model",
    "Quadratic": "hamiltonians",
    "PowerLaw": "hamiltonians",
    "Congestion": "hamiltonians",
    # results and errors
    "Solution": "results",
    "ConvergenceError": "errors",
    "NaNError": "errors",
    # finite differences and coupling solvers
    "FDDiscretisation": "fd",
    "solve": "coupling",
    "solve_newton": "coupling",
    "solve_fixed_point": "coupling",
    "solve_fictitious_play": "coupling",
    "solve_policy_iteration": "coupling",
    # catalogue
    "load_problem": "catalogue",
    "run_problem": "catalogue",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str):
    if name in _EXPORTS:
        module = importlib.import_module(f".{_EXPORTS[name]}", __name__)
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mfg_solvers' has no attribute {name!r}")


def __dir__():
    return __all__
