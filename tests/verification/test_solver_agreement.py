"""Newton, damped fixed point and policy iteration reach the same discrete solution
(docs/theory.md): the periodic benchmark at Nx = Nt = 40 and its ergodic
version at Nx = 60, each solved by the three outer iterations on the same FDDiscretisation.

The plain iterations (relaxation 1) oscillate and diverge on the benchmark with T = 1; with the
density relaxed by one half both converge linearly (about 35 iterations). Plain policy iteration
is checked on the shorter horizon T = 1/4, where it converges."""

import numpy as np
import pytest

from mfg_solvers import Grid, solve
from mfg_solvers.coupling import solve_fixed_point, solve_newton, solve_policy_iteration
from mfg_solvers.fd import FDDiscretisation

AGREE = 1e-8


def _assert_same(sol, ref):
    assert sol.converged
    np.testing.assert_allclose(sol.u, ref.u, rtol=0, atol=AGREE)
    np.testing.assert_allclose(sol.m, ref.m, rtol=0, atol=AGREE)
    if ref.ergodic_constant is not None:
        assert sol.ergodic_constant == pytest.approx(ref.ergodic_constant, abs=AGREE)


@pytest.fixture(scope="module", params=["finite horizon", "ergodic"])
def case(request, periodic_benchmark):
    ergodic = request.param == "ergodic"
    problem = periodic_benchmark(ergodic=ergodic)
    n = 60 if ergodic else 40
    grid = Grid((0.0, 1.0), n, "periodic")
    nt = None if ergodic else n
    ref = solve_newton(FDDiscretisation(problem, grid, nt), tol=1e-12, progress=False)
    assert ref.converged and ref.residual_history[-1] < 1e-12
    return problem, grid, nt, ref


def test_fixed_point_agrees_with_newton(case):
    problem, grid, nt, ref = case
    sol = solve_fixed_point(FDDiscretisation(problem, grid, nt), relaxation=0.5, tol=1e-10,
                            progress=False)
    assert sol.iterations < 60
    _assert_same(sol, ref)


def test_policy_iteration_agrees_with_newton(case):
    problem, grid, nt, ref = case
    sol = solve(problem, grid, nt, method="policy_iteration", relaxation=0.5, tol=1e-10,
                progress=False)
    assert sol.attrs["solver"] == "policy_iteration" and sol.iterations < 60
    _assert_same(sol, ref)


def test_plain_policy_iteration_on_a_short_horizon(periodic_benchmark):
    problem = periodic_benchmark(T=0.25)
    grid = Grid((0.0, 1.0), 40, "periodic")
    ref = solve_newton(FDDiscretisation(problem, grid, 40), tol=1e-12, progress=False)
    sol = solve_policy_iteration(FDDiscretisation(problem, grid, 40), tol=1e-10, progress=False)
    # linear convergence: each sweep contracts the residual by a steady factor < 1
    h = sol.residual_history
    assert (h[-1] / h[-11]) ** 0.1 < 0.8
    _assert_same(sol, ref)


@pytest.mark.slow
def test_fictitious_play_approaches_the_newton_solution(case):
    """Sublinear: about 900 (ergodic) to 1800 (finite horizon) best responses to 1e-6."""
    problem, grid, nt, ref = case
    sol = solve(problem, grid, nt, method="fictitious_play", schedule="2/(k+2)", tol=1e-6,
                max_iter=3000, progress=False)
    assert sol.converged
    np.testing.assert_allclose(sol.u, ref.u, rtol=0, atol=1e-7)
    np.testing.assert_allclose(sol.m, ref.m, rtol=0, atol=1e-7)
