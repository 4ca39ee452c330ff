import numpy as np
import pytest

from mfg_solvers import Domain, Grid, TimeGrid


def test_periodic_nodes_and_spacing():
    g = Grid((0.0, 1.0), 4, "periodic")
    np.testing.assert_allclose(g.axes[0], [0.0, 0.25, 0.5, 0.75])
    assert g.spacing == (0.25,)
    assert g.cell_volume == 0.25


def test_neumann_nodes_include_walls():
    g = Grid((-4.0, 4.0), 5, "reflecting")
    np.testing.assert_allclose(g.axes[0], [-4, -2, 0, 2, 4])
    assert g.boundary == ("neumann",)


def test_mixed_3d_grid_coordinates_and_integrate():
    g = Grid([(0, 1), (0, 2), (-1, 1)], (4, 5, 6), ("periodic", "neumann", "periodic"))
    assert g.dim == 3 and g.size == 120
    X, Y, Z = g.coordinates()
    assert X.shape == (4, 5, 6)
    np.testing.assert_allclose(g.points()[7], [X.ravel()[7], Y.ravel()[7], Z.ravel()[7]])
    ones = np.ones(g.shape)
    assert g.integrate(ones) == pytest.approx(g.size * g.cell_volume)
    assert g.integrate(np.stack([ones, 2 * ones])).shape == (2,)


def test_evaluate_broadcasts_scalars_and_rejects_nan():
    g = Grid([(0, 1), (0, 1)], (3, 4))
    assert g.evaluate(lambda x, y: 2.0).shape == (3, 4)
    with pytest.raises(ValueError, match="potential"):
        g.evaluate(lambda x, y: np.nan * x, "potential")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(bounds=(1, 0), shape=5), "a < b"),
        (dict(bounds=(0, 1), shape=2), ">= 3"),
        (dict(bounds=(0, 1), shape=(5, 5)), "one entry per axis"),
        (dict(bounds=(0, 1), shape=5, boundary="dirichlet"), "dirichlet"),
        (dict(bounds=[(0, 1)] * 4, shape=(3,) * 4), "1 to 3 axes"),
    ],
)
def test_bad_grid_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Grid(**kwargs)


def test_domain_equality_and_grid():
    d = Domain([(0, 1), (0, 1)], "periodic")
    assert d.grid((4, 4)) == Grid([(0, 1), (0, 1)], (4, 4))
    assert d.dim == 2 and d.volume == 1.0


def test_time_grid():
    tg = TimeGrid(2.0, 4)
    np.testing.assert_allclose(tg.t, [0, 0.5, 1, 1.5, 2])
    assert tg.dt == 0.5
    with pytest.raises(ValueError, match="T=-1"):
        TimeGrid(-1, 3)
    with pytest.raises(ValueError, match="nt=0"):
        TimeGrid(1, 0)
