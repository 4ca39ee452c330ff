"""Newton's method on the whole coupled HJB–FP system.

The discrete system is :math:`F(X) = 0` with :math:`X = (U, M)` (finite horizon: the unknowns
:math:`U^0..U^{N_T-1}`, :math:`M^1..M^{N_T}`, plus :math:`U^{N_T}` when the terminal cost depends on
:math:`m(T)`) or :math:`X = (U, M, \\lambda)` (ergodic, with the normalisations
:math:`h^d\\sum M = 1`, :math:`h^d\\sum U = 0`: a bordered system). Each iteration solves the
linearised system for the correction,

.. math::

    F'(X_k)\\,\\delta_k = -F(X_k), \\qquad X_{k+1} = X_k + \\alpha_k\\,\\delta_k,

through ``disc.newton_direction`` (the discretisation owns the Jacobian and its linear algebra).
With the Godunov numerical Hamiltonian :math:`F` is only piecewise :math:`C^2`, so this is a
semismooth Newton method: locally quadratically convergent (superlinear at worst), with
mesh-independent iteration counts on the periodic benchmark (docs/theory.md: Newton's method
on the space–time system; The periodic benchmark).

Globalisation (``damping``):

* ``"none"`` (default): full steps :math:`\\alpha_k = 1`. On the periodic benchmark the residual
  *rises* after the first step and then converges quadratically, so plain steps are right there.
* ``"fixed"``: :math:`\\alpha_k = ` ``damping_factor`` for every step (linear convergence).
* ``"backtracking"``: a *watchdog* line search on the merit :math:`\\phi = \\|F\\|_\\infty`. Full
  steps are tried first; a non-finite trial is shrunk by ``damping_factor`` until finite. A step
  that reduces :math:`\\phi` below :math:`(1 - c\\,\\alpha)\\,\\phi_{\\rm ref}` (Armijo,
  :math:`c = 10^{-4}`) becomes the new reference point; up to ``watchdog`` consecutive steps are
  accepted *without* decrease (so a transient rise as on the benchmark goes through untouched);
  when that window is spent without decrease the iteration returns to the reference point and
  backtracks along its Newton direction (:math:`\\alpha = f, f^2, \\dots`) until the Armijo
  condition holds.

Continuation in :math:`\\nu` (``continuation_nu``): the system is solved in turn for each listed
viscosity (from large to small, to ``continuation_tol``), each solution starting the next, and
finally for the discretisation's own viscosity to ``tol``.
"""

from __future__ import annotations

import math
import numbers

from ._loop import (
    OuterLoop,
    check_choice,
    check_fraction,
    check_int,
    check_positive_float,
)
from ._state import axpy, nonfinite_names, state_names

DAMPING = ("none", "fixed", "backtracking")

#: Armijo constant of the backtracking line search.
ARMIJO_C = 1e-4

#: Newton stops (not converged) when a residual already near ``tol`` has not halved in this many
#: iterations: quadratic convergence would have gone far below, so it sits on its round-off floor.
STALL = 4


def _direction(disc, state, check):
    """``disc.newton_direction(state)``, stopped by ``check`` if it is not finite."""
    direction = tuple(disc.newton_direction(state))
    names = tuple("d" + n for n in state_names(state))
    check(names, direction)
    return direction


class FixedStep:
    """``X + factor * delta`` with ``delta = disc.newton_direction(X)``."""

    def __init__(self, disc, factor: float, check):
        self.disc = disc
        self.factor = factor
        self.check = check

    def __call__(self, state, residual):
        direction = _direction(self.disc, state, self.check)
        new = axpy(state, self.factor, direction)
        return new, self.disc.residual_norm(new)


class WatchdogLineSearch:
    """Non-monotone (watchdog) backtracking on ``||F||_inf``; see the module docstring.

    The loop calls it with the state it returned last, so after an accepted step the call is at
    the reference point, whose Newton direction is kept for a later backtrack.
    """

    def __init__(self, disc, factor: float, window: int, check, min_step: float = 2.0**-30):
        self.disc = disc
        self.check = check
        self.factor = factor
        self.window = window
        self.min_step = min_step
        self._ref = None  # (state, residual) of the reference point
        self._ref_direction = None
        self._relaxed = 0  # steps taken since the reference point without sufficient decrease
        self.backtracks = 0

    def _trial(self, state, alpha, direction):
        new = axpy(state, alpha, direction)
        if nonfinite_names(new):
            return new, math.inf
        r = float(self.disc.residual_norm(new))
        return new, (r if math.isfinite(r) else math.inf)

    def _accept(self, state, residual):
        self._ref = (state, residual)
        self._ref_direction = None
        self._relaxed = 0
        return state, residual

    def _sufficient(self, r, alpha):
        return r <= (1.0 - ARMIJO_C * alpha) * self._ref[1]

    def __call__(self, state, residual):
        if self._ref is None:
            self._accept(state, residual)
        direction = _direction(self.disc, state, self.check)
        if self._relaxed == 0:  # at the reference point
            self._ref_direction = direction

        # full step, shrunk only while it is not finite
        alpha = 1.0
        new, r = self._trial(state, alpha, direction)
        while not math.isfinite(r) and alpha > self.min_step:
            alpha *= self.factor
            self.backtracks += 1
            new, r = self._trial(state, alpha, direction)
        if not math.isfinite(r):
            return new, math.nan  # the loop reports it
        if self._sufficient(r, alpha):
            return self._accept(new, r)
        if self._relaxed < self.window:
            self._relaxed += 1
            return new, r

        # the window is spent without decrease: back to the reference point and backtrack there
        ref_state = self._ref[0]
        best = (new, r)
        alpha = self.factor
        while alpha > self.min_step:
            self.backtracks += 1
            trial, r = self._trial(ref_state, alpha, self._ref_direction)
            if self._sufficient(r, alpha):
                return self._accept(trial, r)
            if r < best[1]:
                best = (trial, r)
            alpha *= self.factor
        # no acceptable step: go on from the best point seen (the loop's max_iter decides)
        return self._accept(*best)


def _check_viscosities(values):
    if isinstance(values, numbers.Real):
        values = [values]
    try:
        seq = list(values)
    except TypeError:
        raise TypeError(
            f"continuation_nu={values!r} must be a sequence of viscosities (large to small)"
        ) from None
    out = []
    for v in seq:
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) or v < 0:
            raise ValueError(
                f"continuation_nu={values!r}: every viscosity must be a finite number >= 0 "
                f"(got {v!r})"
            )
        out.append(float(v))
    return out


def solve_newton(
    disc,
    *,
    tol: float = 1e-10,
    max_iter: int = 30,
    damping: str = "none",
    damping_factor: float = 0.5,
    watchdog: int = 6,
    continuation_nu=None,
    continuation_tol: float = 1e-6,
    initial_state=None,
    progress: bool = True,
    raise_on_failure: bool = True,
):
    """Solve the discrete MFG system by Newton's method on the whole coupled system.

    Parameters
    ----------
    disc
        A discretisation offering the interface of ``docs/architecture.md`` (e.g.
        :class:`~mfg_solvers.fd.FDDiscretisation`).
    tol
        Stop when the max norm of the scaled full-system residual is below ``tol``.
    max_iter
        Most Newton iterations (per continuation stage).
    damping
        ``"none"`` (full steps), ``"fixed"`` (every step scaled by ``damping_factor``) or
        ``"backtracking"`` (watchdog line search, see the module docstring).
    damping_factor
        Step length for ``"fixed"``; contraction factor of the backtracking, in ``(0, 1]``
        (``(0, 1)`` for backtracking).
    watchdog
        Consecutive steps ``"backtracking"`` accepts without a residual decrease (``0``: a
        classical monotone Armijo backtracking).
    continuation_nu
        Viscosities to solve first (large to small), e.g. ``[1.0, 0.3]``; the target viscosity is
        the discretisation's. ``None``: no continuation.
    continuation_tol
        Tolerance of the intermediate continuation stages (``max(tol, continuation_tol)``).
    initial_state
        Starting state (default ``disc.initial_guess()``: the cold start).
    progress
        Show a tqdm bar (only when standard error is a terminal).
    raise_on_failure
        Raise :class:`~mfg_solvers.errors.ConvergenceError` if ``tol`` is not met (else return
        the last iterate with ``converged=False``).

    Returns
    -------
    Solution
        Attributes ``solver="newton"``, ``iterations``, ``converged``, timings; variable
        ``residual_history`` (entry 0: the starting residual; with continuation, each stage's
        starting residual followed by its iterations, stage lengths in ``stage_iterations``).

    Raises
    ------
    ConvergenceError
        No convergence within ``max_iter``, or a residual stagnating within a factor 1000 of
        ``tol`` for 4 iterations (its round-off floor lies above ``tol``); carries the last
        iterate and the history.
    NaNError
        A NaN/inf appeared in an iterate or its residual.
    """
    damping = check_choice("damping", damping, DAMPING)
    factor = check_fraction("damping_factor", damping_factor)
    if damping == "backtracking" and factor >= 1:
        raise ValueError(f"damping_factor={damping_factor!r} must lie in (0, 1) for backtracking")
    window = check_int("watchdog", watchdog, minimum=0) if damping == "backtracking" else watchdog
    nus = None if continuation_nu is None else _check_viscosities(continuation_nu)
    stage_tol = None
    if nus:
        stage_tol = max(check_positive_float("continuation_tol", continuation_tol),
                        check_positive_float("tol", tol))
    settings = {"damping": damping}
    if damping != "none":
        settings["damping_factor"] = factor
    if damping == "backtracking":
        settings["watchdog"] = window
    if nus:
        settings["continuation_nu"] = list(nus)
        settings["continuation_tol"] = stage_tol
    loop = OuterLoop(disc, "newton", tol=tol, max_iter=max_iter, progress=progress,
                     raise_on_failure=raise_on_failure, settings=settings,
                     initial_state=initial_state)

    def make_step(d):
        if damping == "backtracking":
            return WatchdogLineSearch(d, factor, window, loop.check)
        return FixedStep(d, factor if damping == "fixed" else 1.0, loop.check)

    target_nu = float(disc.problem.nu)
    stages = [nu for nu in (nus or []) if nu != target_nu]

    def start():
        return loop.state

    steps = []
    for nu in stages:
        stage_disc = disc.with_viscosity(nu)
        step = make_step(stage_disc)
        steps.append(step)
        loop.run(start, step, disc=stage_disc, tol=stage_tol, label=f"newton nu={nu:g}",
                 stall=STALL)
        if loop.interrupted or loop.failure:
            break
    if not (loop.interrupted or loop.failure):
        step = make_step(disc)
        steps.append(step)
        label = f"newton nu={target_nu:g}" if stages else "newton"
        loop.run(start, step, label=label, stall=STALL)
    if nus:
        loop.settings["stage_iterations"] = list(loop.stage_iterations)
    if damping == "backtracking":
        loop.settings["backtracks"] = sum(s.backtracks for s in steps)
    return loop.finish()
