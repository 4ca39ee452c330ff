"""Behaviour of the shared outer loop: failure, NaN, Ctrl-C, progress, attributes."""

import io

import numpy as np
import pytest

from mfg_solvers import ConvergenceError, NaNError, Solution
from mfg_solvers.coupling import (
    solve_fictitious_play,
    solve_fixed_point,
    solve_newton,
    solve_policy_iteration,
)

from .mock_discretisation import GraphMFG

SOLVERS = {
    "newton": solve_newton,
    "fixed_point": solve_fixed_point,
    "fictitious_play": solve_fictitious_play,
    "policy_iteration": solve_policy_iteration,
}


def _manual_newton(disc, steps):
    state = disc.initial_guess()
    history = [disc.residual_norm(state)]
    for _ in range(steps):
        d = disc.newton_direction(state)
        state = tuple(s + ds for s, ds in zip(state, d, strict=True))
        history.append(disc.residual_norm(state))
    return state, history


def test_convergence_error_carries_last_iterate_and_history():
    with pytest.raises(ConvergenceError, match="max_iter=2") as info:
        solve_newton(GraphMFG(), max_iter=2, progress=False)
    err = info.value
    state, history = _manual_newton(GraphMFG(), 2)
    np.testing.assert_allclose(err.history, history, rtol=1e-13)
    sol = err.solution
    assert isinstance(sol, Solution)
    assert not sol.converged and not sol.interrupted
    assert sol.iterations == 2
    np.testing.assert_allclose(sol.u, state[0], rtol=0, atol=1e-13)
    np.testing.assert_allclose(sol.m, state[1], rtol=0, atol=1e-13)
    np.testing.assert_allclose(sol.residual_history, history, rtol=1e-13)


@pytest.mark.parametrize("name", list(SOLVERS))
def test_raise_on_failure_false_returns_unconverged_solution(name):
    disc = GraphMFG()
    sol = SOLVERS[name](disc, max_iter=2, tol=1e-14, progress=False, raise_on_failure=False)
    assert not sol.converged
    assert sol.attrs["solver"] == name
    assert sol.iterations == 2 and len(sol.residual_history) == 3
    # the history is the residual of the returned iterate
    state = (sol.u, sol.m)
    assert sol.residual_history[-1] == pytest.approx(disc.residual_norm(state), rel=1e-12)


class NaNAt(GraphMFG):
    """Puts a NaN into the output of ``method`` at its ``call``-th call."""

    def __init__(self, method, call, **kw):
        super().__init__(**kw)
        original = getattr(self, method)

        def wrapped(*args):
            out = original(*args)
            if self.calls.get(method, 0) != call:
                return out
            parts = list(out) if isinstance(out, tuple) else [out]
            parts[0] = np.array(parts[0], dtype=float)
            parts[0][3] = np.nan
            return tuple(parts) if isinstance(out, tuple) else parts[0]

        setattr(self, method, wrapped)


@pytest.mark.parametrize(
    "solver, method, call, variable, iteration",
    [
        (solve_newton, "newton_direction", 3, "dU", 3),
        (solve_fixed_point, "solve_fp", 2, "M", 2),
        (solve_policy_iteration, "solve_hjb_policy", 1, "U", 1),
    ],
)
def test_nan_stops_immediately(solver, method, call, variable, iteration):
    disc = NaNAt(method, call)
    with pytest.raises(NaNError) as info:
        solver(disc, progress=False)
    msg = str(info.value)
    assert f"{variable} contains NaN" in msg and f"iteration {iteration}" in msg
    sol = info.value.solution
    assert sol is not None and not sol.converged
    assert sol.iterations == iteration - 1
    assert np.all(np.isfinite(sol.u)) and np.all(np.isfinite(sol.m))
    # stopped at once: no call after the one that produced the NaN
    assert disc.calls[method] == call


def test_nan_in_residual_is_reported():
    class BadResidual(GraphMFG):
        def residual_norm(self, state):
            return np.nan if self.calls.get("newton_direction", 0) >= 2 else super().residual_norm(
                state
            )

    with pytest.raises(NaNError, match="residual contains NaN or inf at iteration 2"):
        solve_newton(BadResidual(), progress=False)


class InterruptAt(GraphMFG):
    def __init__(self, method, call, **kw):
        super().__init__(**kw)
        self.stop_method, self.stop_call = method, call

    def _maybe_stop(self, name):
        if name == self.stop_method and self.calls.get(name, 0) + 1 == self.stop_call:
            raise KeyboardInterrupt

    def newton_direction(self, state):
        self._maybe_stop("newton_direction")
        return super().newton_direction(state)

    def solve_hjb(self, M):
        self._maybe_stop("solve_hjb")
        return super().solve_hjb(M)


def test_keyboard_interrupt_returns_last_completed_iterate():
    sol = solve_newton(InterruptAt("newton_direction", 3), progress=False)
    state, history = _manual_newton(GraphMFG(), 2)
    assert sol.interrupted and not sol.converged
    assert sol.iterations == 2
    np.testing.assert_allclose(sol.u, state[0], rtol=0, atol=1e-13)
    np.testing.assert_allclose(sol.m, state[1], rtol=0, atol=1e-13)
    np.testing.assert_allclose(sol.residual_history, history, rtol=1e-13)
    assert "interrupted" in repr(sol)


def test_keyboard_interrupt_during_fixed_point():
    # solve_hjb call 1 is the start, call 4 is inside the third iteration
    sol = solve_fixed_point(InterruptAt("solve_hjb", 4), progress=False)
    ref = solve_fixed_point(GraphMFG(), max_iter=2, progress=False, raise_on_failure=False)
    assert sol.interrupted and sol.iterations == 2
    np.testing.assert_array_equal(sol.m, ref.m)
    np.testing.assert_array_equal(sol.u, ref.u)


def test_keyboard_interrupt_before_first_iterate_returns_initial_guess():
    disc = InterruptAt("solve_hjb", 1)
    sol = solve_fixed_point(disc, progress=False)
    assert sol.interrupted and sol.iterations == 0
    np.testing.assert_array_equal(sol.m, disc.m0)
    np.testing.assert_array_equal(sol.u, np.zeros(disc.n))


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_only_on_a_terminal(capsys, monkeypatch):
    solve_newton(GraphMFG(), progress=True)  # pytest's captured stderr is not a terminal
    solve_newton(GraphMFG(), progress=False)
    assert capsys.readouterr().err == ""
    fake = FakeTerminal()
    monkeypatch.setattr("sys.stderr", fake)
    sol = solve_newton(GraphMFG(), progress=False)
    assert fake.getvalue() == ""
    sol = solve_newton(GraphMFG(), progress=True)
    text = fake.getvalue()
    assert "newton" in text and f"residual={sol.residual_history[-1]:.3e}" in text


@pytest.mark.parametrize("ergodic", [False, True])
def test_attributes_timings_and_save_round_trip(tmp_path, ergodic):
    disc = GraphMFG(ergodic=ergodic)
    sol = solve_newton(disc, continuation_nu=[1.0, 0.5], damping="backtracking", progress=False)
    a = sol.attrs
    assert a["problem"] == "graph-mfg" and a["solver"] == "newton"
    assert a["scheme"] == "ACD upwind implicit Euler"
    assert a["converged"] is True and a["interrupted"] is False
    assert a["iterations"] == sol.iterations == sum(a["stage_iterations"])
    assert len(sol.residual_history) == sol.iterations + 3  # one starting residual per stage
    assert 0 < a["time_linear_solve"] < a["time_total"]
    assert 0 < a["time_assembly"] < a["time_total"]
    assert a["time_per_iteration"] == pytest.approx(a["time_total"] / sol.iterations)
    assert a["final_residual"] == sol.residual_history[-1] < 1e-10
    path = sol.save(tmp_path / "sol.nc")
    back = Solution.load(path)
    assert back.equals(sol)
    np.testing.assert_array_equal(back.attrs["continuation_nu"], [1.0, 0.5])
    if ergodic:
        assert back.ergodic_constant == sol.ergodic_constant


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(tol=0.0), ValueError, "tol=0.0"),
        (dict(tol=float("nan")), ValueError, "tol=nan"),
        (dict(tol="1e-8"), TypeError, "tol='1e-8'"),
        (dict(max_iter=0), ValueError, "max_iter=0"),
        (dict(max_iter=2.5), TypeError, "max_iter=2.5"),
        (dict(damping="armijo"), ValueError, "damping='armijo'"),
        (dict(damping="fixed", damping_factor=1.5), ValueError, "damping_factor=1.5"),
        (dict(damping="backtracking", damping_factor=1.0), ValueError, "damping_factor=1.0"),
        (dict(damping="backtracking", watchdog=-1), ValueError, "watchdog=-1 must be .* >= 0"),
        (dict(continuation_nu=[0.5, -1.0]), ValueError, "continuation_nu"),
        (dict(continuation_nu="big"), ValueError, "continuation_nu"),
    ],
)
def test_newton_rejects_bad_options(kwargs, error, match):
    with pytest.raises(error, match=match):
        solve_newton(GraphMFG(), progress=False, **kwargs)


@pytest.mark.parametrize(
    "solver, kwargs, match",
    [
        (solve_fixed_point, dict(relaxation=0.0), "relaxation=0.0"),
        (solve_fixed_point, dict(relaxation=1.2), "relaxation=1.2"),
        (solve_fixed_point, dict(relax="mean"), "relax='mean'"),
        (solve_fictitious_play, dict(schedule="1/k"), "schedule='1/k'"),
        (solve_policy_iteration, dict(max_iter=-3), "max_iter=-3"),
    ],
)
def test_iterations_reject_bad_options(solver, kwargs, match):
    with pytest.raises(ValueError, match=match):
        solver(GraphMFG(), progress=False, **kwargs)


def test_bad_initial_state_layout():
    disc = GraphMFG(ergodic=True)
    with pytest.raises(ValueError, match=r"\(U, M, lam\)"):
        solve_newton(disc, initial_state=(np.zeros(16), np.ones(16)), progress=False)


class FailingInnerSolve(GraphMFG):
    """``solve_hjb`` raises the discretisation's own error at its ``call``-th call."""

    def __init__(self, error, call, **kw):
        super().__init__(**kw)
        self.error, self.fail_call = error, call

    def solve_hjb(self, M):
        if self._count("solve_hjb_attempt") == self.fail_call:
            raise self.error("solve_hjb step 7: Newton on the implicit step did not converge")
        return super().solve_hjb(M)


def test_inner_convergence_failure_stops_with_the_last_iterate():
    with pytest.raises(ConvergenceError,
                       match="stopped after 2 iterations: an inner solve failed at iteration 3"
                       ) as info:
        solve_fixed_point(FailingInnerSolve(ConvergenceError, 4), progress=False)
    ref = solve_fixed_point(GraphMFG(), max_iter=2, progress=False, raise_on_failure=False)
    sol = info.value.solution
    assert sol.iterations == 2 and not sol.converged
    assert "step 7" in sol.attrs["failure"]
    np.testing.assert_array_equal(sol.m, ref.m)
    np.testing.assert_array_equal(info.value.history, ref.residual_history)
    # the same, returned instead of raised
    sol = solve_fixed_point(FailingInnerSolve(ConvergenceError, 4), progress=False,
                            raise_on_failure=False)
    assert not sol.converged and sol.iterations == 2
    np.testing.assert_array_equal(sol.m, ref.m)


def test_inner_nan_error_names_the_iteration_and_keeps_the_last_iterate():
    with pytest.raises(NaNError, match="at iteration 3 the discretisation reported") as info:
        solve_fixed_point(FailingInnerSolve(NaNError, 4), progress=False)
    assert info.value.solution.iterations == 2


def test_solve_rejects_unknown_methods_and_options():
    from mfg_solvers import solve

    with pytest.raises(ValueError, match="method='bfgs' is not known"):
        solve(None, None, method="bfgs")
    with pytest.raises(TypeError, match=r"\['relaxation'\] not accepted by method='newton'"):
        solve(None, None, method="newton", relaxation=0.5)
