"""Newton on the in-house periodic benchmark (periodic benchmark): mesh-independent
iteration counts, the residual history of the reference, exact mass, positive density.

The residual is the unscaled max norm of the discrete equations; its round-off floor grows like
``N^2`` (about 1e-12 at 50^2, 8e-11 at 400^2), and the iterate before the last one sits at about
1e-9 on every mesh, so the tolerance 3e-10 separates the two with a margin of 3 on each side.
"""

import numpy as np
import pytest

from mfg_solvers import ConvergenceError
from mfg_solvers.coupling import solve_newton
from mfg_solvers.fd import FDDiscretisation
from mfg_solvers.grid import Grid

TOL = 3e-10
#: periodic benchmark, residual history at 200^2
REFERENCE_HISTORY_200 = [2.1, 14.0, 6.3, 0.24, 1.5e-3, 9.2e-10]


@pytest.fixture(scope="module")
def newton(periodic_benchmark):
    """``newton(n)``: the Newton Solution at Nx = Nt = n (each mesh solved once)."""
    solutions = {}

    def get(n):
        if n not in solutions:
            disc = FDDiscretisation(periodic_benchmark(), Grid((0.0, 1.0), n, "periodic"), n)
            solutions[n] = solve_newton(disc, tol=TOL, progress=False)
        return solutions[n]

    return get


MESHES = [50, 100, 200, 400]


@pytest.mark.parametrize("n", MESHES)
def test_newton_iterations_do_not_depend_on_the_mesh(newton, n):
    sol = newton(n)
    assert sol.converged and sol.attrs["solver"] == "newton"
    assert sol.iterations == 6  # the same on every mesh (reference: about 5 at 1e-9)
    h = sol.residual_history
    assert h[1] > 5 * h[0]  # plain Newton: the residual rises after the first full step ...
    assert h[-2] > 3 * TOL and h[-1] < TOL / 3  # ... then converges fast
    assert np.all(h[3:-1] < h[2:-2] ** 1.5)  # superlinear tail


@pytest.mark.parametrize("n", MESHES)
def test_mass_and_positivity(newton, n):
    sol = newton(n)
    np.testing.assert_allclose(sol.mass(), 1.0, rtol=0, atol=1e-12)
    assert sol.m.min() >= 0
    assert sol.m.min() == pytest.approx(0.40, abs=0.01)  # reference: min m ~ 0.40


def test_residual_history_matches_the_reference_at_200(newton):
    h = newton(200).residual_history
    np.testing.assert_allclose(h[:6], REFERENCE_HISTORY_200, rtol=0.05)


def test_line_search_keeps_the_plain_newton_steps(newton, periodic_benchmark):
    """The residual rises after the first step; the watchdog line search must
    take the same full steps as plain Newton there."""
    plain = newton(100)
    disc = FDDiscretisation(periodic_benchmark(), Grid((0.0, 1.0), 100, "periodic"), 100)
    sol = solve_newton(disc, tol=TOL, damping="backtracking", progress=False)
    assert sol.attrs["backtracks"] == 0
    np.testing.assert_allclose(sol.residual_history, plain.residual_history, rtol=1e-6)
    np.testing.assert_allclose(sol.u, plain.u, rtol=0, atol=1e-12)


def test_globalisations_agree_at_small_viscosity(periodic_benchmark):
    """nu = 0.01: plain Newton (residual 2.1 -> 48 -> 209 -> 50 -> 8.7 -> 1.1 -> ...), the
    watchdog line search and continuation from nu = 0.1 all reach the same discrete solution."""
    grid = Grid((0.0, 1.0), 60, "periodic")
    problem = periodic_benchmark(nu=0.01)
    runs = {
        "plain": {},
        "backtracking": {"damping": "backtracking"},
        "continuation": {"continuation_nu": [0.1, 0.03]},
    }
    sols = {k: solve_newton(FDDiscretisation(problem, grid, 60), tol=1e-11, progress=False, **kw)
            for k, kw in runs.items()}
    assert max(sols["plain"].residual_history) > 50 * sols["plain"].residual_history[0]
    assert sols["continuation"].attrs["stage_iterations"].size == 3
    for key in ("backtracking", "continuation"):
        assert sols[key].converged
        np.testing.assert_allclose(sols[key].u, sols["plain"].u, rtol=0, atol=1e-10)
        np.testing.assert_allclose(sols[key].m, sols["plain"].m, rtol=0, atol=1e-10)


def test_a_tolerance_below_the_round_off_floor_is_reported_early(newton, periodic_benchmark):
    """At 100^2 the residual bottoms out near 4e-12; asking for 1e-13 stops 4 iterations after
    reaching it (not after max_iter) with an explanatory ConvergenceError."""
    disc = FDDiscretisation(periodic_benchmark(), Grid((0.0, 1.0), 100, "periodic"), 100)
    with pytest.raises(ConvergenceError, match="round-off floor") as info:
        solve_newton(disc, tol=1e-13, progress=False)
    sol = info.value.solution
    assert sol.iterations == newton(100).iterations + 4
    np.testing.assert_allclose(sol.u, newton(100).u, rtol=0, atol=1e-12)
