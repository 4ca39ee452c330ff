"""A 2-D problem that separates into two 1-D ones is solved consistently with them.

``H = |p|^2/2``, no coupling, ``V(x, y) = V1(x) + V2(y)``, ``g = g1(x) + g2(y)``,
``m0 = m01(x) m02(y)`` on the unit square, periodic in x and reflecting in y. The Godunov
numerical Hamiltonian and the 5-point Laplacian are sums of per-axis terms, so the discrete
(ACD, implicit Euler) solution satisfies exactly, up to round-off:

* ``U(t, x, y) = U1(t, x) + U2(t, y)`` (the HJB does not see ``m``);
* the marginals of ``M`` are the 1-D densities, ``h_y sum_j M(t, x, y_j) = M1(t, x)`` (and in y),
  because the columns of each 1-D FP operator sum to zero.

The density itself is *not* the product ``M1(t, x) M2(t, y)`` exactly: one implicit Euler step of
the 2-D FP is ``(I/dt + L1 + L2)`` where the product of the 1-D steps is
``(I/dt + L1)(I/dt + L2) dt = I/dt + L1 + L2 + dt L1 L2``; the difference is O(dt) (checked).
"""

import numpy as np
import pytest

from mfg_solvers import Domain, Grid, MFGProblem, solve

pytestmark = pytest.mark.filterwarnings("ignore::mfg_solvers.model.MassNormalisationWarning")

T, NU = 0.5, 0.05
NX, NY = 24, 21


def V1(x):
    return -np.cos(2 * np.pi * x)


def V2(y):
    return 2.0 * (y - 0.3) ** 2


def g1(x):
    return 0.2 * np.sin(2 * np.pi * x)


def g2(y):
    return -0.3 * y


def m01(x):
    return 1 + 0.5 * np.cos(2 * np.pi * (x - 0.25))


def m02(y):
    return np.exp(-10 * (y - 0.6) ** 2)


def solutions(nt):
    """The 2-D Solution and the two 1-D ones, by Newton."""
    bc = ("periodic", "neumann")
    p2 = MFGProblem(
        Domain([(0, 1), (0, 1)], bc), nu=NU, T=T,
        potential=lambda x, y: V1(x) + V2(y),
        terminal_cost=lambda x, y: g1(x) + g2(y),
        m0=lambda x, y: m01(x) * m02(y), name="separable 2-D",
    )
    px = MFGProblem(Domain((0, 1), bc[0]), nu=NU, T=T, potential=V1, terminal_cost=g1, m0=m01)
    py = MFGProblem(Domain((0, 1), bc[1]), nu=NU, T=T, potential=V2, terminal_cost=g2, m0=m02)
    s2 = solve(p2, Grid([(0, 1), (0, 1)], (NX, NY), bc), nt, tol=1e-11, progress=False)
    sx = solve(px, Grid((0, 1), NX, bc[0]), nt, tol=1e-11, progress=False)
    sy = solve(py, Grid((0, 1), NY, bc[1]), nt, tol=1e-11, progress=False)
    assert s2.converged and sx.converged and sy.converged
    return s2, sx, sy


@pytest.fixture(scope="module")
def solved():
    return {nt: solutions(nt) for nt in (20, 40)}


def test_value_function_is_the_sum_of_the_1d_ones(solved):
    s2, sx, sy = solved[20]
    assert s2.u.shape == (21, NX, NY)
    np.testing.assert_allclose(s2.u, sx.u[:, :, None] + sy.u[:, None, :], rtol=0, atol=1e-11)


def test_marginals_are_the_1d_densities(solved):
    s2, sx, sy = solved[20]
    hx, hy = 1.0 / NX, 1.0 / (NY - 1)
    np.testing.assert_allclose(hy * s2.m.sum(axis=2), sx.m, rtol=0, atol=1e-12)
    np.testing.assert_allclose(hx * s2.m.sum(axis=1), sy.m, rtol=0, atol=1e-12)
    np.testing.assert_allclose(s2.mass(), 1.0, rtol=0, atol=1e-12)


def _product_error(s2, sx, sy):
    return np.abs(s2.m - sx.m[:, :, None] * sy.m[:, None, :]).max()


def test_density_is_the_product_up_to_a_time_step_error(solved):
    e20, e40 = (_product_error(*solved[nt]) for nt in (20, 40))
    assert e20 < 0.1  # the densities are of order 1
    assert e40 < 0.65 * e20  # it shrinks with dt


@pytest.mark.slow
def test_product_defect_is_first_order_in_dt():
    nts = np.array([40, 80, 160, 320])
    errors = [_product_error(*solutions(nt)) for nt in nts]
    order = np.polyfit(np.log(T / nts), np.log(errors), 1)[0]
    assert order == pytest.approx(1.0, abs=0.2)
