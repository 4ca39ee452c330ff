"""Closed-form ground truth for mean-field games.

Submodules
----------
:mod:`mfg_solvers.analytic.lq`
    Linear-quadratic MFGs: the finite-horizon LQ game with mean coupling (Riccati equation,
    mean/co-state two-point problem, covariance), the ergodic LQ game, the stationary Gaussian
    solution with logarithmic coupling and the harmonic ground state of the Hopf--Cole
    (Schrodinger) reduction.
:mod:`mfg_solvers.analytic.mfpid`
    Mean-Field Path-Integral Diffusion: Green-function coefficients of the guided harmonic
    problem (constant and piecewise-constant protocols), the Gaussian-mixture optimal drift and
    marginal, the linear-guidance theorem.
:mod:`mfg_solvers.analytic.mfpid_lqg`
    The MF-PID LQG benchmark (OU agents, Gaussian target): Riccati, variance, mean-field and
    independent-agent means, power and energy.

Nothing is imported eagerly: the names below are resolved from their submodule on first use.
"""

from __future__ import annotations

import importlib

# public name -> submodule that defines it
_EXPORTS = {
    "LQFiniteHorizon": "lq",
    "lq_finite_horizon": "lq",
    "StationaryGaussian": "lq",
    "ergodic_lq": "lq",
    "ergodic_log_gaussian": "lq",
    "harmonic_ground_state": "lq",
    "MFPID": "mfpid",
    "MFPIDProtocol": "mfpid",
    "GaussianMixture": "mfpid",
    "GreenCoefficients": "mfpid",
    "LQGBenchmark1D": "mfpid_lqg",
    "LQGBenchmark": "mfpid_lqg",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        module = importlib.import_module(f".{_EXPORTS[name]}", __name__)
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mfg_solvers.analytic' has no attribute {name!r}")


def __dir__():
    return __all__
