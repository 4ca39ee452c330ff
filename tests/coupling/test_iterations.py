"""Fixed point, fictitious play and policy iteration against Newton on the dense graph MFG."""

import numpy as np
import pytest

from mfg_solvers.coupling import (
    solve_fictitious_play,
    solve_fixed_point,
    solve_newton,
    solve_policy_iteration,
)

from .mock_discretisation import GraphMFG


@pytest.fixture(scope="module", params=[False, True], ids=["discounted", "ergodic"])
def reference(request):
    disc = GraphMFG(ergodic=request.param)
    sol = solve_newton(disc, tol=1e-12, progress=False)
    return request.param, sol


def _assert_same(sol, ref, atol):
    np.testing.assert_allclose(sol.u, ref.u, rtol=0, atol=atol)
    np.testing.assert_allclose(sol.m, ref.m, rtol=0, atol=atol)
    if ref.ergodic_constant is not None:
        assert sol.ergodic_constant == pytest.approx(ref.ergodic_constant, abs=atol)


@pytest.mark.parametrize("relax", ["m", "u"])
def test_fixed_point_reaches_the_newton_solution(reference, relax):
    ergodic, ref = reference
    sol = solve_fixed_point(GraphMFG(ergodic=ergodic), relax=relax, tol=1e-11, progress=False)
    assert sol.converged and sol.attrs["relax"] == relax and sol.attrs["relaxation"] == 0.5
    _assert_same(sol, ref, 1e-9)
    # linear convergence: a steady contraction factor < 1
    h = sol.residual_history
    rate = (h[-1] / h[-11]) ** 0.1
    assert rate < 0.7


def test_undamped_fixed_point_diverges_where_damping_converges():
    disc = GraphMFG(kappa=2.0, nu=0.1)
    undamped = solve_fixed_point(disc, relaxation=1.0, max_iter=40, progress=False,
                                 raise_on_failure=False)
    damped = solve_fixed_point(GraphMFG(kappa=2.0, nu=0.1), relaxation=0.3, progress=False)
    assert not undamped.converged and undamped.residual_history[-1] > 1.0
    assert damped.converged
    ref = solve_newton(GraphMFG(kappa=2.0, nu=0.1), tol=1e-12, progress=False)
    _assert_same(damped, ref, 1e-9)


def test_policy_iteration_reaches_the_newton_solution(reference):
    ergodic, ref = reference
    disc = GraphMFG(ergodic=ergodic)
    sol = solve_policy_iteration(disc, tol=1e-11, progress=False)
    assert sol.converged
    _assert_same(sol, ref, 1e-9)
    # each sweep used one policy, one FP solve and one linear HJB solve, nothing nonlinear
    assert disc.calls["policy"] == disc.calls["solve_fp_policy"] == sol.iterations
    assert "solve_hjb" not in disc.calls and "newton_direction" not in disc.calls


def test_fictitious_play_residual_decays_sublinearly_about_one_over_k(reference):
    ergodic, ref = reference
    sol = solve_fictitious_play(GraphMFG(ergodic=ergodic), tol=1e-12, max_iter=800,
                                progress=False, raise_on_failure=False)
    h = sol.residual_history
    k = np.array([50, 100, 200, 400, 800])
    slope = np.polyfit(np.log(k), np.log(h[k]), 1)[0]
    assert -1.3 < slope < -0.9  # O(1/k), pre-asymptotically a little faster
    _assert_same(sol, ref, 5 * h[-1])


def test_fictitious_play_conditional_gradient_schedule(reference):
    ergodic, ref = reference
    sol = solve_fictitious_play(GraphMFG(ergodic=ergodic), schedule="2/(k+2)", tol=1e-5,
                                max_iter=1000, progress=False)
    assert sol.converged and sol.attrs["schedule"] == "2/(k+2)"
    _assert_same(sol, ref, 1e-4)
    plain = solve_fictitious_play(GraphMFG(ergodic=ergodic), tol=1e-5, max_iter=sol.iterations,
                                  progress=False, raise_on_failure=False)
    assert not plain.converged  # the running average is slower on this problem


def test_relaxed_policy_iteration_and_the_density_argument_of_policy(reference):
    ergodic, ref = reference

    class PolicyWithDensity(GraphMFG):
        seen = []

        def policy(self, U, M=None):
            self.seen.append(M)
            return super().policy(U)

    disc = PolicyWithDensity(ergodic=ergodic)
    sol = solve_policy_iteration(disc, relaxation=0.6, tol=1e-11, progress=False)
    assert sol.converged and sol.attrs["relaxation"] == 0.6
    _assert_same(sol, ref, 1e-9)
    # policy(U, M) received the density of the current iterate
    assert len(disc.seen) == sol.iterations and all(m is not None for m in disc.seen)
    np.testing.assert_array_equal(disc.seen[0], disc.m0)
