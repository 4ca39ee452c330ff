"""Bad input is refused before the first step, with a message naming the argument; a non-finite
state during a run stops it with NaNError."""

import math

import numpy as np
import pytest
from numba import njit

from mfg_solvers.errors import NaNError
from mfg_solvers.particles import (
    AffineDrift,
    Box,
    CallableDrift,
    GaussianKernel,
    NumbaDrift,
    PairwiseInteraction,
    StateDiffusion,
    simulate,
)

X0 = np.linspace(-1, 1, 20).reshape(10, 2)


def _never(step, t, X, alive):
    if step > 0:
        raise AssertionError("the run should not have stepped")


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(X0=np.zeros(10)), ValueError, "X0 has shape"),
        (dict(X0=np.zeros((10, 4))), ValueError, "X0 has shape"),
        (dict(X0=np.array([[0.0, np.nan]] * 3)), ValueError, "NaN"),
        (dict(dt=-0.1), ValueError, "dt=-0.1"),
        (dict(dt=0.3), ValueError, "does not divide"),
        (dict(T=-1.0), ValueError, "T=-1.0"),
        (dict(T=np.inf), ValueError, "T=inf"),
        (dict(n_steps=0), ValueError, "n_steps=0"),
        (dict(n_steps=2.5), ValueError, "n_steps=2.5"),
        (dict(sigma=-1.0), ValueError, "sigma"),
        (dict(sigma=np.ones(3)), ValueError, "sigma"),
        (dict(sigma="big"), TypeError, "sigma"),
        (dict(scheme="rk4"), ValueError, "scheme='rk4'"),
        (dict(seed=-3), ValueError, "seed"),
        (dict(box=Box((0, 1), "periodic")), ValueError, "dimension"),
        (dict(box=Box([(0, 0.5), (0, 0.5)], "reflecting")), ValueError, "outside the box"),
        (dict(drift="fast"), TypeError, "drift="),
        (dict(interaction="strong"), TypeError, "interaction="),
        (dict(record_every=0), ValueError, "record_every"),
        (dict(callback=3), TypeError, "callback"),
        (dict(drift=AffineDrift(np.ones((3, 3)))), ValueError, "A has shape"),
    ],
)
def test_bad_arguments(kwargs, exc, match):
    args = dict(X0=X0, T=1.0, n_steps=5, sigma=0.1)
    args.update(kwargs)
    if "dt" in kwargs:
        args.pop("n_steps")
    X = args.pop("X0")
    with pytest.raises(exc, match=match):
        simulate(X, **args)


def test_non_finite_drift_is_caught_before_stepping():
    def bad(t, X):
        out = -X.copy()
        out[3, 1] = np.nan
        return out

    with pytest.raises(ValueError, match=r"drift is not finite at t0=0.0 for 1 particle"):
        simulate(X0, T=1.0, n_steps=5, sigma=0.1, drift=CallableDrift(bad), callback=_never)
    with pytest.raises(ValueError, match="returned shape"):
        simulate(X0, T=1.0, n_steps=5, drift=CallableDrift(lambda t, X: X[:, :1]),
                 callback=_never)


@njit(cache=True)
def _inf_drift(t, x, out):
    out[0] = math.exp(1000.0 + x[0])  # overflows to inf
    out[1] = 0.0


def test_non_finite_numba_drift_is_caught_before_stepping():
    with pytest.raises(ValueError, match="drift is not finite"):
        simulate(X0, T=1.0, n_steps=5, drift=NumbaDrift(_inf_drift), callback=_never)


@pytest.mark.parametrize("box", [None, Box([(-2, 2), (-2, 2)], "periodic"),
                                 Box([(-2, 2), (-2, 2)], "reflecting"),
                                 Box([(-2, 2), (-2, 2)], "absorbing")],
                         ids=["free", "periodic", "reflecting", "absorbing"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_state_during_the_run_raises_nan_error(box, bad):
    # an absorbing wall must not swallow an infinite position as an exit
    def late(t, X):
        return np.full_like(X, bad) if t > 0.45 else -X

    with pytest.raises(NaNError, match="non-finite position at step 5"):
        simulate(X0, T=1.0, n_steps=10, sigma=0.1, drift=late, box=box)


def test_scheme_restrictions_and_diffusion_checks():
    with pytest.raises(ValueError, match="exact"):
        simulate(X0, T=1.0, n_steps=5, scheme="exact", drift=CallableDrift(lambda t, X: -X))
    with pytest.raises(ValueError, match="free box"):
        simulate(X0, T=1.0, n_steps=5, scheme="exact", box=Box([(-2, 2), (-2, 2)]))
    with pytest.raises(ValueError, match="time-independent"):
        simulate(X0, T=1.0, n_steps=5, scheme="exact", drift=AffineDrift(lambda t: -t))
    with pytest.raises(ValueError, match="exact"):
        simulate(X0, T=1.0, n_steps=5, scheme="exact",
                 interaction=PairwiseInteraction(GaussianKernel(), "direct"))
    sig = StateDiffusion(lambda t, X: 0.1 + 0 * X)
    with pytest.raises(ValueError, match="dsigma"):
        simulate(X0, T=1.0, n_steps=5, sigma=sig, scheme="milstein")
    with pytest.raises(ValueError, match="diffusion sigma is not finite"):
        simulate(X0, T=1.0, n_steps=5, sigma=StateDiffusion(lambda t, X: np.log(X - 10)))
    with pytest.raises(ValueError, match="boundary='sticky'"):
        Box([(0, 1)], "sticky")
    with pytest.raises(ValueError, match="a < b"):
        Box([(1, 0)], "reflecting")
