import numpy as np
import pytest

from mfg_solvers import Congestion, PowerLaw, Quadratic
from mfg_solvers.hamiltonians import make_hamiltonian

rng = np.random.default_rng(0)
P = rng.normal(size=(7, 2))
M = rng.uniform(0.1, 2.0, size=7)


def _fd_grad(fun, p, eps=1e-6):
    g = np.zeros_like(p)
    for k in range(p.shape[-1]):
        e = np.zeros(p.shape[-1])
        e[k] = eps
        g[..., k] = (fun(p + e) - fun(p - e)) / (2 * eps)
    return g


@pytest.mark.parametrize("H", [Quadratic(), PowerLaw(1.5), PowerLaw(3.0), Congestion(0.5, 0.75)])
def test_dp_matches_finite_differences(H):
    np.testing.assert_allclose(H.dp(P, M), _fd_grad(lambda p: H.value(p, M), P), rtol=1e-6)


def test_congestion_dm_matches_finite_differences():
    H = Congestion(0.5, 0.75)
    eps = 1e-6
    fd = (H.value(P, M + eps) - H.value(P, M - eps)) / (2 * eps)
    np.testing.assert_allclose(H.dm(P, M), fd, rtol=1e-6)


@pytest.mark.parametrize("H", [Quadratic(), PowerLaw(1.5), PowerLaw(3.0), Congestion(0.5, 0.75)])
def test_legendre_duality(H):
    """H(p) = -p.a* - L(a*) at the optimal control a* = -dH/dp."""
    a = H.control(P, M)
    lhs = H.value(P, M)
    rhs = -np.sum(P * a, axis=-1) - H.lagrangian(a, M)
    np.testing.assert_allclose(lhs, rhs, rtol=1e-12, atol=1e-14)


def test_quadratic_is_powerlaw_two():
    np.testing.assert_allclose(Quadratic().value(P), PowerLaw(2.0).value(P), rtol=1e-14)


@pytest.mark.parametrize(
    "ctor, match",
    [(lambda: PowerLaw(1.0), "gamma=1.0"), (lambda: Congestion(c=0), "c=0"),
     (lambda: Congestion(alpha=-1), "alpha=-1"), (lambda: make_hamiltonian("cubic"), "cubic"),
     (lambda: make_hamiltonian("power", beta=2), "bad parameters")],
)
def test_bad_parameters(ctor, match):
    with pytest.raises(ValueError, match=match):
        ctor()


def test_congestion_needs_m():
    with pytest.raises(ValueError, match="m is required"):
        Congestion().value(P)
