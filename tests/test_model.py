"""The problem statement: validation, m0 normalisation, couplings."""

import warnings

import numpy as np
import pytest

from mfg_solvers import (
    Congestion,
    Domain,
    Grid,
    LocalCoupling,
    MassNormalisationWarning,
    MeanCoupling,
    MFGProblem,
    NonlocalCoupling,
    PowerLaw,
)

DOM = Domain((0.0, 1.0), "periodic")
GRID = Grid((0.0, 1.0), 16, "periodic")


def _problem(domain=DOM, **kw):
    args = dict(nu=0.1, T=1.0, m0=lambda x: np.ones_like(x))
    args.update(kw)
    return MFGProblem(domain, **args)


# -- validation ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(nu=-0.1), r"nu=-0\.1 must be >= 0"),
        (dict(nu=float("nan")), r"nu=nan must be finite"),
        (dict(nu="fast"), r"nu='fast' must be a real number"),
        (dict(T=0.0), r"T=0\.0 must be > 0"),
        (dict(T=-1), r"T=-1 must be > 0"),
        (dict(T=float("inf")), r"T=inf must be finite"),
        (dict(T=None), r"T=None: a finite-horizon problem needs a horizon"),
        (dict(m0=None), r"m0=None: a finite-horizon problem needs an initial density"),
        (dict(m0=-np.ones(16)), r"m0 has negative values \(min -1\)"),
        (dict(m0=np.array([1.0, np.nan] + [1.0] * 14)), r"m0 contains NaN"),
        (dict(m0=np.ones((4, 4))), r"m0 has shape \(4, 4\); expected a 1-D array"),
    ],
)
def test_problem_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _problem(**kwargs)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(domain=(0.0, 1.0)), r"domain=\(0\.0, 1\.0\) must be a mfg_solvers\.Domain"),
        (dict(hamiltonian="quadratic"), r"hamiltonian='quadratic' must be"),
        (dict(coupling=lambda m: m), r"coupling=.* must be a Coupling"),
        (dict(terminal_coupling=2.0), r"terminal_coupling=2\.0 must be a Coupling"),
        (dict(potential=3.0), r"potential=3\.0 must be a callable"),
        (dict(terminal_cost=np.zeros(16)), r"terminal_cost=.* must be a callable"),
    ],
)
def test_problem_rejects_bad_types(kwargs, match):
    with pytest.raises(TypeError, match=match):
        _problem(**kwargs)


def test_ergodic_problem_rules():
    with pytest.raises(ValueError, match=r"T=1\.0 must be None for an ergodic problem"):
        MFGProblem(DOM, 0.1, ergodic=True, T=1.0)
    with pytest.raises(ValueError, match="no terminal_cost"):
        MFGProblem(DOM, 0.1, ergodic=True, terminal_cost=lambda x: x)
    p = MFGProblem(DOM, 0.1, ergodic=True)  # m0 defaults to the uniform density
    np.testing.assert_allclose(p.initial_density(GRID), np.ones(16), rtol=1e-15)
    assert p.T is None and p.ergodic


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: Domain((0, 1), "dirichlet"), ValueError, r"boundary='dirichlet' is not a known"),
        (lambda: Domain([(0, 1), (0, 1)], ("periodic",)), ValueError, r"has 1 entries"),
        (lambda: Domain((1, 0)), ValueError, r"a < b"),
        (lambda: Grid((0, 1), 2), ValueError, r"shape=\(2,\)"),
        (lambda: PowerLaw(gamma=float("nan")), ValueError, r"gamma=nan"),
        (lambda: Congestion(c=-1.0), ValueError, r"c=-1\.0"),
        (lambda: LocalCoupling("cubic"), ValueError, r"kind='cubic'"),
        (lambda: LocalCoupling("power"), ValueError, r"exponent=None"),
        (lambda: LocalCoupling("linear", exponent=2.0), ValueError, r"exponent=2\.0"),
        (lambda: LocalCoupling("linear", strength=np.inf), ValueError, r"strength=inf"),
        (lambda: MeanCoupling(q=-1.0), ValueError, r"q=-1\.0"),
        (lambda: NonlocalCoupling(kernel=1.0), TypeError, r"kernel=1\.0 must be callable"),
    ],
)
def test_building_blocks_reject_bad_input(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_grid_must_match_the_problem_domain():
    p = _problem()
    other = Grid((0.0, 2.0), 16, "periodic")
    with pytest.raises(ValueError, match="does not discretise the problem's domain"):
        p.initial_density(other)
    arr = _problem(m0=np.ones(8))
    with pytest.raises(ValueError, match=r"m0 has shape \(8,\); the grid has shape \(16,\)"):
        arr.initial_density(GRID)


def test_sampled_m0_that_is_negative_somewhere_is_rejected_on_the_grid():
    p = _problem(m0=lambda x: np.sin(2 * np.pi * x))
    with pytest.raises(ValueError, match="m0 has negative values"):
        p.initial_density(GRID)


# -- mass normalisation -------------------------------------------------------------------------
def test_mass_normalisation_warns_and_rescales():
    p = _problem(m0=lambda x: 2.0 + np.cos(2 * np.pi * x))  # mass 2 on the torus
    with pytest.warns(MassNormalisationWarning, match="m0 has mass 2 "):
        m = p.initial_density(GRID)
    assert GRID.integrate(m) == pytest.approx(1.0, abs=1e-15)
    x = GRID.axes[0]
    np.testing.assert_allclose(m, (2.0 + np.cos(2 * np.pi * x)) / 2.0, rtol=1e-14)


def test_mass_close_to_one_is_normalised_silently():
    p = _problem(m0=lambda x: (1.0 + 1e-4) * np.ones_like(x))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = p.initial_density(GRID)
    assert GRID.integrate(m) == pytest.approx(1.0, abs=1e-15)


def test_array_m0_in_two_dimensions():
    dom = Domain([(0, 1), (0, 2)], ("periodic", "neumann"))
    grid = dom.grid((4, 5))
    m0 = np.arange(20.0).reshape(4, 5)
    p = MFGProblem(dom, 0.0, T=1.0, m0=m0)
    with pytest.warns(MassNormalisationWarning):
        m = p.initial_density(grid)
    np.testing.assert_allclose(m, m0 / (m0.sum() * 0.25 * 0.5), rtol=1e-15)


def test_potential_terminal_values_and_running_cost():
    p = _problem(
        potential=lambda x: np.cos(2 * np.pi * x),
        terminal_cost=lambda x: x**2,
        coupling=LocalCoupling("linear", 2.0),
        terminal_coupling=LocalCoupling("log", 0.5),
    )
    x = GRID.axes[0]
    V = p.potential_values(GRID)
    np.testing.assert_allclose(V, np.cos(2 * np.pi * x), rtol=1e-15)
    m = 1.0 + 0.5 * np.sin(2 * np.pi * x)
    np.testing.assert_allclose(p.terminal_values(GRID, m), x**2 + 0.5 * np.log(m), rtol=1e-15)
    with pytest.raises(ValueError, match="mT is required"):
        p.terminal_values(GRID)
    M = np.stack([m, 2 * m])
    np.testing.assert_allclose(p.running_cost(M, GRID), V + 2.0 * M, rtol=1e-15)
    np.testing.assert_array_equal(_problem().running_cost(M, GRID), np.zeros_like(M))


# -- couplings ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "coupling, f, df",
    [
        (LocalCoupling("linear", 1.5), lambda m: 1.5 * m, lambda m: 1.5 + 0 * m),
        (LocalCoupling("log", 0.7), lambda m: 0.7 * np.log(m), lambda m: 0.7 / m),
        (LocalCoupling("power", 2.0, exponent=1.5), lambda m: 2 * m**1.5,
         lambda m: 3 * m**0.5),
    ],
)
def test_local_coupling_values_and_derivatives(coupling, f, df):
    m = np.linspace(0.2, 3.0, 11)
    np.testing.assert_allclose(coupling.value(m), f(m), rtol=1e-15)
    np.testing.assert_allclose(coupling.derivative(m), df(m), rtol=1e-14)
    eps = 1e-6
    fd = (coupling.value(m + eps) - coupling.value(m - eps)) / (2 * eps)
    np.testing.assert_allclose(coupling.derivative(m), fd, rtol=1e-8)
    np.testing.assert_allclose(coupling.jacobian(m, None), np.diag(df(m)), rtol=1e-14)
    assert coupling.is_local


def test_nonlocal_coupling_is_a_periodic_discrete_convolution():
    grid = Grid((0.0, 1.0), 10, "periodic")
    x = grid.axes[0]
    c = NonlocalCoupling(lambda d: d**2, strength=3.0)
    m = 1 + 0.3 * np.cos(2 * np.pi * x)
    h = grid.spacing[0]
    expected = np.empty(10)
    for i in range(10):
        d = x[i] - x
        d = d - np.round(d)  # minimal image on the unit torus
        expected[i] = 3.0 * h * np.sum(d**2 * m)
    np.testing.assert_allclose(c.value(m, grid), expected, rtol=1e-14)
    np.testing.assert_allclose(c.jacobian(m, grid) @ m, expected, rtol=1e-14)
    M = np.stack([m, 2 * m])  # time-dependent input
    np.testing.assert_allclose(c.value(M, grid), np.stack([expected, 2 * expected]), rtol=1e-14)
    assert not c.is_local


def test_nonlocal_coupling_rejects_a_kernel_that_is_not_finite():
    c = NonlocalCoupling(lambda d: np.where(d == 0, np.inf, d))
    with pytest.raises(ValueError, match="kernel is not finite"):
        c.value(np.ones(8), Grid((0.0, 1.0), 8))


def test_mean_coupling_value_and_jacobian():
    grid = Grid((-4.0, 4.0), 81, "neumann")
    x = grid.axes[0]
    m = np.exp(-((x - 0.7) ** 2) / 0.4)
    m /= grid.integrate(m)
    c = MeanCoupling(q=2.0, kappa=0.6)
    xbar = grid.integrate(x * m)
    assert xbar == pytest.approx(0.7, abs=1e-9)
    np.testing.assert_allclose(c.value(m, grid), (x - 0.6 * xbar) ** 2, rtol=1e-14)
    J = c.jacobian(m, grid)
    eps = 1e-6
    fd = np.empty_like(J)
    for j in range(0, 81):
        e = np.zeros(81)
        e[j] = eps
        fd[:, j] = (c.value(m + e, grid) - c.value(m - e, grid)) / (2 * eps)
    np.testing.assert_allclose(J, fd, atol=1e-8)
    assert not c.is_local


def test_correct_density_on_reflecting_grid_does_not_warn():
    """A unit-mass density must not warn although the node sum over-counts the walls."""
    dom = Domain((0.0, 2.0), "neumann")
    grid = dom.grid(11)
    p = MFGProblem(dom, 0.1, T=1.0, m0=lambda x: np.full_like(x, 0.5))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = p.initial_density(grid)
    assert grid.integrate(m) == pytest.approx(1.0, abs=1e-15)
    ergodic = MFGProblem(dom, 0.1, ergodic=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_allclose(ergodic.initial_density(grid), m, rtol=1e-15)
