"""Newton's method, its globalisation and the continuation in the viscosity (on small mocks)."""

import math

import numpy as np
import pytest

from mfg_solvers import ConvergenceError, NaNError
from mfg_solvers.coupling import solve_newton

from .mock_discretisation import GraphMFG, ScalarSystem


@pytest.mark.parametrize("ergodic", [False, True])
def test_newton_converges_quadratically_on_graph_mfg(ergodic):
    disc = GraphMFG(ergodic=ergodic)
    sol = solve_newton(disc, progress=False)
    h = sol.residual_history
    assert sol.converged and sol.iterations <= 6 and h[-1] < 1e-10
    # quadratic tail: r_{k+1} <= C r_k^2 once r_k is small (above the round-off floor)
    tail = [(a, b) for a, b in zip(h[:-1], h[1:], strict=True) if a < 1e-2 and b > 1e-12]
    assert tail and all(b <= 10 * a**2 for a, b in tail)
    # the returned Solution is a zero of the system
    state = (sol.u, sol.m, sol.ergodic_constant) if ergodic else (sol.u, sol.m)
    assert disc.residual_norm(state) < 1e-10


def _parabola():
    # F(x) = x^2 - 1 from x0 = 0.1: |F| rises 0.99 -> 24.5 -> 5.9 -> 1.3, then falls quadratically
    return ScalarSystem(lambda x: x * x - 1.0, lambda x: 2.0 * x, 0.1)


def test_plain_newton_follows_a_residual_rise():
    sol = solve_newton(_parabola(), tol=1e-12, progress=False)
    h = sol.residual_history
    assert h[1] > 20 * h[0]  # the rise of the first step
    assert sol.u[0] == pytest.approx(1.0, abs=1e-12)
    assert sol.iterations == 8


def test_backtracking_keeps_full_steps_through_a_transient_rise():
    plain = _parabola()
    sol_plain = solve_newton(plain, tol=1e-12, progress=False)
    watched = _parabola()
    sol = solve_newton(watched, tol=1e-12, damping="backtracking", progress=False)
    assert sol.attrs["backtracks"] == 0
    assert sol.iterations == sol_plain.iterations
    np.testing.assert_array_equal(watched.iterates, plain.iterates)
    np.testing.assert_array_equal(sol.residual_history, sol_plain.residual_history)


def test_monotone_line_search_rejects_the_rise_that_newton_handles():
    """``watchdog=0`` is the classical monotone Armijo backtracking: it refuses the residual rise
    of the full step and pays for it with extra residual evaluations."""
    plain = solve_newton(_parabola(), tol=1e-12, progress=False)
    sol = solve_newton(_parabola(), tol=1e-12, damping="backtracking", watchdog=0,
                       progress=False)
    assert sol.converged and sol.u[0] == pytest.approx(1.0, abs=1e-12)
    assert sol.attrs["backtracks"] > 0
    assert np.all(np.diff(sol.residual_history) < 0)  # monotone
    assert np.any(np.diff(plain.residual_history) > 0)  # plain Newton is not


def _arctan():
    # Newton on arctan diverges (|x_k| grows) from |x0| > 1.3918
    return ScalarSystem(math.atan, lambda x: 1.0 / (1.0 + x * x), 2.0)


def test_backtracking_rescues_a_divergent_newton():
    with pytest.raises(ConvergenceError) as info:
        solve_newton(_arctan(), max_iter=6, progress=False)
    assert abs(info.value.solution.u[0]) > 1e3  # plain Newton runs away
    sol = solve_newton(_arctan(), damping="backtracking", watchdog=1, progress=False)
    assert sol.converged and abs(sol.u[0]) < 1e-10
    assert sol.attrs["backtracks"] > 0


def test_backtracking_shrinks_a_step_that_produces_nan():
    # F(x) = log(x) - log(2): a full step from x0 = 8 lands at x < 0, where F is NaN
    disc = ScalarSystem(lambda x: math.log(x) - math.log(2.0) if x > 0 else math.nan,
                        lambda x: 1.0 / x, 8.0)
    sol = solve_newton(disc, damping="backtracking", progress=False)
    assert sol.converged and sol.u[0] == pytest.approx(2.0, abs=1e-10)
    with pytest.raises(NaNError, match="residual contains NaN or inf at iteration 1"):
        solve_newton(ScalarSystem(disc.F, disc.dF, 8.0), progress=False)


def test_fixed_damping_converges_linearly_at_the_damping_rate():
    sol = solve_newton(GraphMFG(), damping="fixed", damping_factor=0.5, max_iter=80,
                       progress=False)
    h = sol.residual_history
    assert sol.converged
    # R(X + a d) ~ (1 - a) R(X) near the solution: contraction 1/2 per step
    ratios = h[-6:] / h[-7:-1]
    np.testing.assert_allclose(ratios, 0.5, rtol=0.05)


def test_continuation_in_viscosity_reaches_the_same_solution():
    ref = solve_newton(GraphMFG(nu=0.05), progress=False)
    sol = solve_newton(GraphMFG(nu=0.05), continuation_nu=[1.0, 0.3, 0.1, 0.05], progress=False)
    # the listed target viscosity is not solved twice
    assert len(sol.attrs["stage_iterations"]) == 4
    assert sol.converged
    np.testing.assert_allclose(sol.u, ref.u, atol=1e-11)
    np.testing.assert_allclose(sol.m, ref.m, atol=1e-11)
    # the stages end at the continuation tolerance, the last one at tol
    stages = np.cumsum([n + 1 for n in sol.attrs["stage_iterations"]]) - 1
    assert all(sol.residual_history[i] < 1e-6 for i in stages[:-1])
    assert sol.residual_history[-1] < 1e-10


def test_newton_stops_early_on_a_round_off_floor_above_tol():
    class Floored(ScalarSystem):
        def residual_norm(self, state):
            return max(super().residual_norm(state), 3e-9)

    disc = Floored(lambda x: x * x - 1.0, lambda x: 2.0 * x, 0.1)
    with pytest.raises(ConvergenceError, match="stagnates at 3.000e-09 above tol=1.0e-10") as info:
        solve_newton(disc, progress=False)
    sol = info.value.solution
    # Newton reaches the floor after 7 steps (|F| < 3e-9), then 4 more steps without halving
    assert sol.iterations == 11 < sol.attrs["max_iter"]
    assert sol.u[0] == pytest.approx(1.0, abs=1e-14)
