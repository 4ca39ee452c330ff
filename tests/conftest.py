"""Shared fixtures of the test suite."""

import numpy as np
import pytest

from mfg_solvers import Domain, LocalCoupling, MFGProblem


def periodic_benchmark_problem(T=1.0, nu=0.1, strength=1.0, ergodic=False):
    """The in-house periodic benchmark (periodic benchmark) on the unit torus:
    ``-u_t - nu u_xx + u_x^2/2 = -cos(2 pi x) + s m``, ``u(T) = 0``,
    ``m0 = 1 + cos(2 pi (x - 1/4))/2``. ``ergodic=True`` gives the stationary version."""
    extra = {} if ergodic else {"T": T, "m0": lambda x: 1 + 0.5 * np.cos(2 * np.pi * (x - 0.25))}
    return MFGProblem(
        Domain((0.0, 1.0), "periodic"),
        nu=nu,
        coupling=LocalCoupling("linear", strength),
        potential=lambda x: -np.cos(2 * np.pi * x),
        ergodic=ergodic,
        name="periodic benchmark" + (" (ergodic)" if ergodic else ""),
        **extra,
    )


@pytest.fixture(scope="session")
def periodic_benchmark():
    """Factory ``periodic_benchmark(T=1.0, nu=0.1, strength=1.0, ergodic=False)`` of the
    periodic benchmark problem."""
    return periodic_benchmark_problem
