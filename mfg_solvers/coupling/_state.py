"""Arithmetic on coupled states, independent of the discretisation.

A *state* is the tuple a discretisation hands out (see ``docs/architecture.md``):

* finite horizon: ``(U, M)``, two arrays of shape ``(nt + 1, N)``;
* ergodic: ``(U, M, lam)``, two arrays of shape ``(N,)`` and the ergodic constant (a float).

The coupling solvers only add, scale and check states; every operation returns new arrays and
never writes into its arguments, so a state kept by a solver loop stays valid whatever happens
afterwards (in particular on ``KeyboardInterrupt``).
"""

from __future__ import annotations

import numpy as np

#: Names of the state components, used in messages.
STATE_NAMES = ("U", "M", "lam")


def state_names(state) -> tuple[str, ...]:
    """``("U", "M")`` or ``("U", "M", "lam")``."""
    return STATE_NAMES[: len(state)]


def as_state(state, ergodic: bool) -> tuple:
    """Check that ``state`` has the layout of the contract and return it as a tuple."""
    expected = 3 if ergodic else 2
    if not isinstance(state, tuple | list) or len(state) != expected:
        layout = "(U, M, lam)" if ergodic else "(U, M)"
        raise ValueError(
            f"state={_short(state)} must be a tuple {layout} for "
            f"{'an ergodic' if ergodic else 'a finite-horizon'} discretisation"
        )
    return tuple(state)


def _short(x) -> str:
    text = repr(x)
    return text if len(text) <= 80 else text[:77] + "..."


def _combine(a, b, wa: float, wb: float):
    if np.ndim(a) == 0:
        return float(wa * a + wb * b)
    return wa * np.asarray(a, dtype=float) + wb * np.asarray(b, dtype=float)


def axpy(state, alpha: float, direction) -> tuple:
    """``state + alpha * direction``, component by component (new arrays)."""
    if len(direction) != len(state):
        raise ValueError(
            f"direction has {len(direction)} components; the state has {len(state)} "
            f"({', '.join(state_names(state))})"
        )
    return tuple(_combine(s, d, 1.0, alpha) for s, d in zip(state, direction, strict=True))


def mix(old, new, theta: float):
    """``(1 - theta) * old + theta * new`` for one component (array or float)."""
    return _combine(old, new, 1.0 - theta, theta)


def nonfinite_names(state, names=None) -> list[str]:
    """Names of the state components that contain NaN or inf (empty if none)."""
    names = state_names(state) if names is None else names
    return [n for n, v in zip(names, state, strict=False) if not np.all(np.isfinite(v))]


def split_value_output(result, ergodic: bool, method: str):
    """Normalise what an HJB solve returns: ``U`` (finite horizon) or ``(U, lam)`` (ergodic)."""
    if not ergodic:
        return result, None
    if isinstance(result, tuple | list) and len(result) == 2:
        return result[0], float(result[1])
    raise TypeError(
        f"{method} of an ergodic discretisation must return (U, lam); got {_short(result)}"
    )
