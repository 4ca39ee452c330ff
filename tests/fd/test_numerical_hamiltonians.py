"""Godunov numerical Hamiltonians: consistency, monotonicity, derivatives, policy offsets."""

import numpy as np
import pytest

from mfg_solvers import Congestion, PowerLaw, Quadratic
from mfg_solvers.fd import NumericalHamiltonian

HAMILTONIANS = [Quadratic(), PowerLaw(1.5), PowerLaw(3.0), Congestion(0.5, 0.7)]


def _random_slots(rng, n, d):
    return rng.standard_normal((n, 2 * d))


@pytest.mark.parametrize("H", HAMILTONIANS, ids=repr)
@pytest.mark.parametrize("d", [1, 2, 3])
def test_consistency(H, d):
    rng = np.random.default_rng(1)
    p = rng.standard_normal((50, d))
    m = rng.uniform(0.1, 2.0, 50)
    q = np.repeat(p, 2, axis=1)  # (p1, p1, p2, p2, ...)
    g = NumericalHamiltonian(H).value(q, m)
    np.testing.assert_allclose(g, H.value(p, m), rtol=1e-13, atol=1e-15)
    # the slot gradient summed per axis is dH/dp (consistency of the flux)
    dg = NumericalHamiltonian(H).gradient(q, m)
    np.testing.assert_allclose(dg[:, 0::2] + dg[:, 1::2], H.dp(p, m), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("H", HAMILTONIANS, ids=repr)
def test_monotone_and_gradient_matches_finite_differences(H):
    rng = np.random.default_rng(2)
    d = 2
    q = _random_slots(rng, 200, d)
    m = rng.uniform(0.1, 2.0, 200)
    nh = NumericalHamiltonian(H)
    g, dg = nh.value_and_gradient(q, m)
    eps = 1e-6
    for j in range(2 * d):
        dq = np.zeros_like(q)
        dq[:, j] = eps
        fd = (nh.value(q + dq, m) - nh.value(q - dq, m)) / (2 * eps)
        np.testing.assert_allclose(dg[:, j], fd, rtol=1e-6, atol=1e-7)
        # forward slots: non-increasing; backward slots: non-decreasing
        if j % 2 == 0:
            assert np.all(fd <= 1e-9)
            assert np.all(dg[:, j] <= 0.0)
        else:
            assert np.all(fd >= -1e-9)
            assert np.all(dg[:, j] >= 0.0)
    assert np.all(g >= 0.0)


@pytest.mark.parametrize("H", HAMILTONIANS, ids=repr)
def test_hessian_and_m_derivatives_match_finite_differences(H):
    rng = np.random.default_rng(3)
    d = 2
    q = _random_slots(rng, 100, d)
    q[np.abs(q) < 0.05] = 0.3  # keep away from the kinks of the upwind parts
    m = rng.uniform(0.2, 2.0, 100)
    v = rng.standard_normal(q.shape)
    w = rng.uniform(0.5, 1.5, 100)
    nh = NumericalHamiltonian(H)
    eps = 1e-6
    fd = (nh.gradient(q + eps * v, m) - nh.gradient(q - eps * v, m)) / (2 * eps)
    np.testing.assert_allclose(nh.hessian_apply(q, v, m, w), w[:, None] * fd, rtol=1e-5, atol=1e-6)
    gm, dgm = nh.m_derivatives(q, m)
    fd_g = (nh.value(q, m + eps) - nh.value(q, m - eps)) / (2 * eps)
    fd_dg = (nh.gradient(q, m + eps) - nh.gradient(q, m - eps)) / (2 * eps)
    np.testing.assert_allclose(gm, fd_g, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(dgm, fd_dg, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("H", HAMILTONIANS, ids=repr)
def test_policy_offset_is_minus_lagrangian(H):
    """g(q*) = b.q* + c with b = dg(q*) and c = -L(b): g is the max of its affine minorants."""
    rng = np.random.default_rng(4)
    q = _random_slots(rng, 100, 2)
    m = rng.uniform(0.2, 2.0, 100)
    nh = NumericalHamiltonian(H)
    g, b = nh.value_and_gradient(q, m)
    c = nh.offset_from_policy(b, m)
    np.testing.assert_allclose(g, np.sum(b * q, axis=-1) + c, rtol=1e-12, atol=1e-13)
    # convexity: the affine function of the policy lies below g everywhere
    q2 = _random_slots(rng, 100, 2)
    assert np.all(np.sum(b * q2, axis=-1) + c <= nh.value(q2, m) + 1e-12)


def test_congestion_needs_m():
    with pytest.raises(ValueError, match="m is required"):
        NumericalHamiltonian(Congestion()).value(np.zeros((3, 2)))


def test_unknown_hamiltonian_raises():
    with pytest.raises(TypeError, match="hamiltonian"):
        NumericalHamiltonian(object())
