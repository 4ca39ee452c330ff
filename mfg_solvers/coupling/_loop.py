"""The outer-iteration machinery shared by every coupling solver.

:class:`OuterLoop` runs ``state_{k+1}, r_{k+1} = step(state_k, r_k)`` from a starting state until
the full-system residual ``r_k = disc.residual_norm(state_k)`` (max norm of the scaled discrete
residuals) drops below ``tol``, and owns everything the four solvers have in common:

* the residual history (``history[0]`` is the residual of the starting state, ``history[k]``
  the residual after ``k`` iterations);
* the stopping rule ``r_k < tol`` within ``max_iter`` iterations;
* NaN/inf detection: a non-finite residual or state component stops the solve at once with
  :class:`~mfg_solvers.errors.NaNError` (naming the iteration and the variable, carrying the last
  finite iterate);
* ``KeyboardInterrupt``: the last *completed* iterate is kept and returned as a Solution marked
  ``interrupted`` (never lost);
* a tqdm progress bar (iteration and residual) on standard error, shown only when
  ``progress=True`` and standard error is a terminal;
* timings (total, per iteration, and the ``assembly`` / ``linear_solve`` seconds the
  discretisation records in ``disc.timings``) and the Solution's attributes;
* non-convergence: :class:`~mfg_solvers.errors.ConvergenceError` carrying the last iterate and the
  history, or, with ``raise_on_failure=False``, that Solution returned with ``converged=False``.

Steps never modify a state in place (see :mod:`._state`), so the kept iterate is always whole.
"""

from __future__ import annotations

import math
import numbers
import sys
import time
from collections.abc import Callable

import numpy as np

from ..errors import ConvergenceError, NaNError
from ._state import as_state, nonfinite_names

#: Scheme label used when the discretisation does not name its own (``disc.scheme``).
DEFAULT_SCHEME = "ACD upwind implicit Euler"

#: Stagnation is only diagnosed once the residual is below ``STALL_ZONE * tol``.
STALL_ZONE = 1e3

#: Keys of ``disc.timings`` reported as ``time_<key>``.
TIMING_KEYS = ("assembly", "linear_solve")


# ---------------------------------------------------------------------------------------------
# Argument checks
# ---------------------------------------------------------------------------------------------
def check_positive_float(name: str, value) -> float:
    """``value`` as a float > 0 and finite, else ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}={value!r} must be a real number")
    v = float(value)
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name}={value!r} must be a finite number > 0")
    return v


def check_fraction(name: str, value) -> float:
    """``value`` in ``(0, 1]``."""
    v = check_positive_float(name, value)
    if v > 1:
        raise ValueError(f"{name}={value!r} must lie in (0, 1]")
    return v


def check_int(name: str, value, minimum: int = 1) -> int:
    """``value`` as an int >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}={value!r} must be an integer >= {minimum}")
    if value < minimum:
        raise ValueError(f"{name}={value!r} must be an integer >= {minimum}")
    return int(value)


def check_choice(name: str, value, allowed) -> str:
    """``value`` one of the strings ``allowed``."""
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not allowed; choose one of {list(allowed)}")
    return value


# ---------------------------------------------------------------------------------------------
# Progress bar
# ---------------------------------------------------------------------------------------------
def _stderr_is_terminal() -> bool:
    stream = sys.stderr
    try:
        return stream is not None and bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or exotic streams
        return False


def progress_bar(enabled: bool, total: int, desc: str):
    """A tqdm bar on standard error; disabled unless ``enabled`` and stderr is a terminal."""
    from tqdm import tqdm

    show = bool(enabled) and _stderr_is_terminal()
    return tqdm(total=total, desc=desc, file=sys.stderr, disable=not show, leave=False,
                unit="it", dynamic_ncols=True)


# ---------------------------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------------------------
class OuterLoop:
    """Runs an outer iteration and turns its outcome into a Solution (see the module docstring).

    Parameters
    ----------
    disc
        The discretisation (``docs/architecture.md``); its ``to_solution`` builds the result.
    solver
        Solver name stored in the Solution (``"newton"``, ``"fixed_point"``, ...).
    tol, max_iter, progress, raise_on_failure
        Stopping rule and behaviour, validated here.
    settings
        Solver options recorded in the Solution's attributes (numbers, strings, lists of numbers;
        ``None`` values are dropped).
    initial_state
        The starting state (default ``disc.initial_guess()``); it is :attr:`state` until the first
        iterate completes, so an interrupt before that returns it.
    """

    def __init__(self, disc, solver: str, *, tol, max_iter, progress, raise_on_failure,
                 settings=None, initial_state=None):
        self.disc = disc
        self.solver = solver
        self.tol = check_positive_float("tol", tol)
        self.max_iter = check_int("max_iter", max_iter)
        self.progress = bool(progress)
        self.raise_on_failure = bool(raise_on_failure)
        self.settings = dict(settings or {})
        self.ergodic = bool(disc.ergodic)
        self.history: list[float] = []
        self.iterations = 0
        self.state = as_state(
            disc.initial_guess() if initial_state is None else initial_state, self.ergodic
        )
        self.converged = False
        self.interrupted = False
        self.failure: str | None = None
        self.stage_iterations: list[int] = []
        self._t0 = time.perf_counter()
        self._tracked: list = []
        self._timing0: list[dict] = []

    # -- bookkeeping ------------------------------------------------------------------------
    def _track(self, disc):
        """Count the ``disc.timings`` of ``disc`` from now on (once per object)."""
        if any(d is disc for d in self._tracked):
            return
        self._tracked.append(disc)
        self._timing0.append(dict(getattr(disc, "timings", None) or {}))

    def timings(self) -> dict:
        """``time_total``, ``time_assembly``, ``time_linear_solve``, ``time_per_iteration``."""
        total = time.perf_counter() - self._t0
        out = {"time_total": total}
        for key in TIMING_KEYS:
            spent = 0.0
            for disc, t0 in zip(self._tracked, self._timing0, strict=True):
                now = (getattr(disc, "timings", None) or {}).get(key, 0.0)
                spent += float(now) - float(t0.get(key, 0.0))
            out[f"time_{key}"] = spent
        out["time_per_iteration"] = total / max(self.iterations, 1)
        return out

    def _raise_nonfinite(self, names, iteration: int):
        verb = "contains" if len(names) == 1 else "contain"
        last = self.history[-1] if self.history else float("nan")
        message = (
            f"{self.solver}: {', '.join(names)} {verb} NaN or inf at iteration {iteration}; "
            f"the solve was stopped (last finite iterate: iteration {self.iterations}, "
            f"residual {last:.3e}, in the error's .solution)"
        )
        raise NaNError(message, solution=self.solution(converged=False))

    def _check_state(self, state, residual, iteration: int):
        names = nonfinite_names(state)
        if not names and not math.isfinite(residual):
            names = ["residual"]
        if names:
            self._raise_nonfinite(names, iteration)

    def check(self, name: str, value):
        """Stop with NaNError if an intermediate quantity of the running iteration is not finite.

        ``value`` is an array, a float, or a tuple of them (then ``name`` is a tuple of names).
        """
        if isinstance(name, tuple):
            names = nonfinite_names(value, name)
        else:
            names = [] if np.all(np.isfinite(value)) else [name]
        if names:
            self._raise_nonfinite(names, self.iterations + 1)
        return value

    # -- running ----------------------------------------------------------------------------
    def run(self, start: Callable, step: Callable, *, disc=None, tol=None, max_iter=None,
            label: str | None = None, stall: int | None = None) -> bool:
        """Iterate from ``start()`` with ``step(state, residual) -> (state, residual)``.

        ``start`` builds the first iterate (typically from :attr:`state`: the initial state, or
        the previous run's last iterate).
        ``disc`` (default: the loop's) evaluates the starting residual; ``tol`` and ``max_iter``
        default to the loop's. Several calls (continuation stages) extend one history. Returns
        whether this run converged; on ``KeyboardInterrupt`` sets :attr:`interrupted` and
        returns ``False``.

        ``stall``: stop early (not converged, :attr:`failure` set) when the residual, already
        within ``STALL_ZONE * tol``, has not halved in ``stall`` iterations -- typically the
        round-off floor of the residual lies above ``tol``.
        """
        disc = self.disc if disc is None else disc
        tol = self.tol if tol is None else tol
        max_iter = self.max_iter if max_iter is None else max_iter
        self._track(disc)
        bar = progress_bar(self.progress, max_iter, label or self.solver)
        done = 0
        converged = False
        best, since_best = math.inf, 0
        try:
            state = as_state(start(), self.ergodic)
            residual = float(disc.residual_norm(state))
            self._check_state(state, residual, self.iterations)
            self.state, converged = state, residual < tol
            self.history.append(residual)
            bar.set_postfix_str(f"residual={residual:.3e}")
            while not converged and done < max_iter:
                state, residual = step(state, residual)
                state = as_state(state, self.ergodic)
                residual = float(residual)
                self._check_state(state, residual, self.iterations + 1)
                self.state = state
                self.iterations += 1
                done += 1
                self.history.append(residual)
                converged = residual < tol
                bar.update(1)
                bar.set_postfix_str(f"residual={residual:.3e}")
                if residual < 0.5 * best:
                    best, since_best = residual, 0
                else:
                    since_best += 1
                if (stall is not None and not converged and since_best >= stall
                        and best < STALL_ZONE * tol):
                    self.failure = (
                        f"the residual stagnates at {best:.3e} above tol={tol:.1e} (not halved "
                        f"in {stall} iterations): its round-off floor is probably above tol"
                    )
                    break
        except KeyboardInterrupt:
            self.interrupted = True
            converged = False
        except NaNError as exc:
            if exc.solution is not None:  # raised by this loop
                raise
            # raised inside the discretisation: name the iteration, keep the last iterate
            iteration = self.iterations + (1 if self.history else 0)
            raise NaNError(
                f"{self.solver}: at iteration {iteration} the discretisation reported: {exc} "
                f"(last finite iterate: iteration {self.iterations}, in the error's .solution)",
                solution=self.solution(converged=False),
            ) from exc
        except ConvergenceError as exc:
            if exc.solution is not None:
                raise
            # an inner solve of the discretisation failed: the outer iteration stops here
            self.failure = f"an inner solve failed at iteration {self.iterations + 1}: {exc}"
            converged = False
        finally:
            bar.close()
            self.stage_iterations.append(done)
        self.converged = converged
        return converged

    # -- results ----------------------------------------------------------------------------
    def attrs(self, converged: bool) -> dict:
        """Attributes of the Solution: provenance, outcome, timings and the solver settings."""
        disc = self.disc
        attrs = {
            "problem": str(getattr(disc.problem, "name", "")),
            "scheme": str(getattr(disc, "scheme", None) or DEFAULT_SCHEME),
            "solver": self.solver,
            "iterations": int(self.iterations),
            "converged": bool(converged),
            "interrupted": bool(self.interrupted),
            "tol": self.tol,
            "max_iter": self.max_iter,
            "final_residual": float(self.history[-1]) if self.history else float("nan"),
            "failure": self.failure,
        }
        attrs.update(self.timings())
        attrs.update(self.settings)
        return attrs

    def solution(self, converged: bool):
        """The Solution of the last completed iterate, with history and attributes."""
        attrs = {k: v for k, v in self.attrs(converged).items() if v is not None}
        sol = self.disc.to_solution(self.state, **attrs)
        ds = sol.dataset
        if "residual_history" in ds:
            ds = ds.drop_vars("residual_history")
        ds["residual_history"] = (("iteration",), np.asarray(self.history, dtype=float))
        ds["residual_history"].attrs["long_name"] = (
            "max norm of the full-system residual; entry 0 is the starting state"
        )
        sol.dataset = ds
        return sol

    def finish(self):
        """The Solution; raises ConvergenceError when not converged (unless told not to).

        An interrupted solve always returns its Solution (``interrupted=True``).
        """
        converged = self.converged and not self.interrupted
        sol = self.solution(converged)
        if converged or self.interrupted:
            return sol
        last = self.history[-1] if self.history else float("nan")
        if self.failure is not None:
            message = (
                f"{self.solver} stopped after {self.iterations} iterations: {self.failure}; "
                f"last residual {last:.3e}; the last iterate is in the error's .solution"
            )
        else:
            message = (
                f"{self.solver} did not converge: residual {last:.3e} >= tol={self.tol:.1e} "
                f"after {self.iterations} iterations (max_iter={self.max_iter}); the last "
                f"iterate is in the error's .solution"
            )
        if self.raise_on_failure:
            raise ConvergenceError(message, solution=sol, history=self.history)
        return sol
