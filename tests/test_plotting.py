"""Plotting: every function returns a Figure (no pyplot state) and draws the data it is given.

The solutions are built with ``Solution.from_arrays`` from fields known in closed form, and the
tests read the drawn data back from the artists.
"""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.collections import QuadMesh
from matplotlib.figure import Figure

from mfg_solvers import plotting
from mfg_solvers.results import Solution


def _gaussian(x, mean, var):
    return np.exp(-0.5 * (x - mean) ** 2 / var) / np.sqrt(2 * np.pi * var)


@pytest.fixture(scope="module")
def sol1d():
    """m(t) = N(1 - t/2, 0.1 + 0.05 t) on [-3, 3], u = (x - t)^2 / 2."""
    x = np.linspace(-3.0, 3.0, 241)
    t = np.linspace(0.0, 1.0, 11)
    m = np.stack([_gaussian(x, 1 - s / 2, 0.1 + 0.05 * s) for s in t])
    u = 0.5 * (x[None, :] - t[:, None]) ** 2
    return Solution.from_arrays(
        u=u,
        m=m,
        axes=(x,),
        t=t,
        residual_history=[2.0, 14.0, 0.3, 1e-4, 1e-10],
        attrs={"solver": "newton"},
    )


@pytest.fixture(scope="module")
def sol2d():
    x = np.linspace(0.0, 1.0, 9)
    y = np.linspace(0.0, 2.0, 13)
    t = np.linspace(0.0, 1.0, 5)
    X, Y = np.meshgrid(x, y, indexing="ij")
    m = np.stack([1.0 + s * X * Y for s in t])
    return Solution.from_arrays(u=-m, m=m, axes=(x, y), t=t)


def test_heatmap_draws_the_field_on_t_x(sol1d):
    fig = plotting.plot_heatmap(sol1d, "m")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    mesh = next(c for c in ax.collections if isinstance(c, QuadMesh))
    np.testing.assert_array_equal(np.asarray(mesh.get_array()).reshape(sol1d.m.shape), sol1d.m)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("x", "t")
    assert len(fig.axes) == 2  # the colour bar
    fig_u = plotting.plot_heatmap(sol1d, "u", colorbar=False)
    mesh = fig_u.axes[0].collections[0]
    np.testing.assert_array_equal(np.asarray(mesh.get_array()).reshape(sol1d.u.shape), sol1d.u)


def test_heatmap_into_a_given_ax(sol1d):
    fig = Figure()
    ax = fig.subplots()
    assert plotting.plot_heatmap(sol1d, ax=ax) is fig


def test_snapshots_pick_the_nearest_times(sol1d):
    fig = plotting.plot_snapshots(sol1d, "m", times=[0.0, 0.52, 1.0])
    lines = fig.axes[0].get_lines()
    assert [ln.get_label() for ln in lines] == ["t = 0", "t = 0.5", "t = 1"]
    np.testing.assert_array_equal(lines[1].get_ydata(), sol1d.m[5])
    default = plotting.plot_snapshots(sol1d, n=3)
    assert [ln.get_label() for ln in default.axes[0].get_lines()] == ["t = 0", "t = 0.5", "t = 1"]
    with pytest.raises(ValueError, match=r"times=\[2.0\] must lie in \[0, 1\]"):
        plotting.plot_snapshots(sol1d, times=[2.0])


def test_snapshots_of_an_ergodic_solution_with_exact_overlay():
    x = np.linspace(-2, 2, 81)
    m = _gaussian(x, 0.0, 0.3)
    sol = Solution.from_arrays(u=0.5 * x**2, m=m, axes=(x,), ergodic_constant=0.25)
    fig = plotting.plot_snapshots(sol, exact={"x": x, "value": m, "label": "N(0, 0.3)"})
    computed, exact = fig.axes[0].get_lines()
    np.testing.assert_array_equal(computed.get_ydata(), m)
    assert exact.get_label() == "N(0, 0.3)"


def test_moments_recover_the_mean_and_variance_paths(sol1d):
    t = sol1d.t
    exact = {"t": t, "mean": 1 - t / 2, "var": 0.1 + 0.05 * t}
    fig = plotting.plot_moments(sol1d, exact=exact)
    mean_line = fig.axes[0].get_lines()[0]
    var_line = fig.axes[1].get_lines()[0]
    # Gaussians well inside [-3, 3] on a fine grid: the discrete moments are exact to ~1e-10
    np.testing.assert_allclose(mean_line.get_ydata(), exact["mean"], atol=1e-10)
    np.testing.assert_allclose(var_line.get_ydata(), exact["var"], atol=1e-10)
    assert len(fig.axes[0].get_lines()) == 2
    with pytest.raises(ValueError, match="needs 2"):
        plotting.plot_moments(sol1d, axes=[Figure().subplots()])


def test_residual_history_is_semilogy(sol1d):
    fig = plotting.plot_residual_history(sol1d)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    line = ax.get_lines()[0]
    np.testing.assert_array_equal(line.get_ydata(), sol1d.residual_history)
    assert line.get_label() == "newton"
    fig2 = plotting.plot_residual_history([1.0, 0.5, 0.25], ax=ax, label="fixed point")
    assert fig2 is fig and len(ax.get_lines()) == 2
    with pytest.raises(ValueError, match="empty"):
        plotting.plot_residual_history([])


def test_small_multiples_show_the_chosen_times(sol2d):
    fig = plotting.plot_small_multiples(sol2d, times=[0.0, 0.5, 1.0])
    panels = [a for a in fig.axes if a.get_title()]
    assert [a.get_title() for a in panels] == ["t = 0", "t = 0.5", "t = 1"]
    mesh = panels[2].collections[0]
    np.testing.assert_array_equal(
        np.asarray(mesh.get_array()).reshape(9 * 13), sol2d.m[4].T.ravel()
    )
    assert mesh.get_clim() == (1.0, 3.0)  # shared colour scale over the panels
    assert len(fig.axes) == 4  # three panels and one colour bar
    own = plotting.plot_small_multiples(sol2d, n=2, shared_scale=False)
    assert len(own.axes) == 4  # two panels, a colour bar each
    assert own.axes[1].get_title() == "t = 1" and own.axes[1].collections[0].get_clim() == (
        1.0,
        3.0,
    )
    lo, hi = own.axes[0].collections[0].get_clim()  # t = 0: m = 1 everywhere, its own scale
    assert lo < 1.0 < hi < 3.0
    with pytest.raises(ValueError, match="3 entries; 2 panels"):
        plotting.plot_small_multiples(sol2d, n=2, axes=Figure().subplots(1, 3))


def test_dimension_and_variable_checks(sol1d, sol2d):
    with pytest.raises(ValueError, match="2 space dimension"):
        plotting.plot_heatmap(sol2d)
    with pytest.raises(ValueError, match="needs 2"):
        plotting.plot_small_multiples(sol1d)
    with pytest.raises(ValueError, match="variable='rho'"):
        plotting.plot_heatmap(sol1d, "rho")


def test_fit_order_and_convergence_plot():
    h = np.array([0.1, 0.05, 0.025, 0.0125])
    errors = 3.0 * h**1.5
    p, c = plotting.fit_order(h, errors)
    assert p == pytest.approx(1.5, abs=1e-12) and c == pytest.approx(3.0, rel=1e-12)
    fig = plotting.plot_convergence_order(h, errors, label="mean error", expected=1.0)
    ax = fig.axes[0]
    assert ax.get_xscale() == ax.get_yscale() == "log"
    labels = [ln.get_label() for ln in ax.get_lines()]
    assert labels[0] == "mean error (fitted order 1.50)" and labels[-1] == "order 1"
    np.testing.assert_array_equal(ax.get_lines()[0].get_ydata(), errors)
    with pytest.raises(ValueError, match="finite and > 0"):
        plotting.fit_order(h, [1.0, 0.0, 1.0, 1.0])


def test_figures_save_as_png_without_pyplot(sol1d, tmp_path):
    fig = plotting.plot_heatmap(sol1d)
    path = tmp_path / "m.png"
    fig.savefig(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
