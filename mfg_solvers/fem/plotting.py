"""Figures of finite-element MFG solutions (matplotlib; no dolfinx needed).

They read the FEM variant of :class:`~mfg_solvers.results.Solution` (variables ``x``, ``y``
[, ``z``], ``cells``, ``m``, ``u``, ``exit_flux``, ``exited_mass``). Every function takes an
optional ``ax`` (or ``axes``), returns the figure and never calls ``plt.show()``.
"""

from __future__ import annotations

import numpy as np


def _triangulation(solution, z_slice=None):
    import matplotlib.tri as mtri

    ds = solution.dataset
    x, y = ds["x"].values, ds["y"].values
    if "z" not in ds:
        return mtri.Triangulation(x, y, ds["cells"].values), np.arange(len(x))
    z = ds["z"].values
    z0 = 0.5 * (z.min() + z.max()) if z_slice is None else float(z_slice)
    levels = np.unique(np.round(z, 10))
    nearest = levels[np.argmin(np.abs(levels - z0))]
    keep = np.flatnonzero(np.isclose(z, nearest, atol=1e-9))
    return mtri.Triangulation(x[keep], y[keep]), keep


def plot_field(solution, field: str = "m", *, t=None, ax=None, z_slice=None, cmap="viridis",
               colorbar: bool = True):
    """``tripcolor`` of ``field`` (``"m"`` or ``"u"``) at the time level nearest ``t``.

    3-D solutions are shown on the node layer nearest the plane ``z = z_slice`` (default: the
    middle of the box).
    """
    import matplotlib.pyplot as plt

    if field not in ("m", "u"):
        raise ValueError(f"field={field!r} must be 'm' or 'u'")
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 4))
    else:
        fig = ax.figure
    tri, keep = _triangulation(solution, z_slice)
    values = solution.dataset[field].values
    title = field
    if solution.t is not None:
        times = solution.t
        k = 0 if t is None else int(np.argmin(np.abs(times - float(t))))
        values = values[k]
        title = f"{field}(t = {times[k]:.3g})"
    pc = ax.tripcolor(tri, values[keep], shading="gouraud", cmap=cmap)
    ax.set_aspect("equal")
    ax.set_title(title)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    if colorbar:
        fig.colorbar(pc, ax=ax, shrink=0.8)
    return fig


def plot_density_snapshots(solution, times=None, *, axes=None, z_slice=None, cmap="viridis"):
    """Density snapshots (``tripcolor``) at several times on a shared colour scale."""
    import matplotlib.pyplot as plt

    if solution.t is None:
        raise ValueError("the solution is stationary: use plot_field")
    t = solution.t
    if times is None:
        times = t[np.linspace(0, len(t) - 1, 4).round().astype(int)]
    times = list(np.atleast_1d(times))
    if axes is None:
        fig, axes = plt.subplots(1, len(times), figsize=(4 * len(times), 3.2), squeeze=False)
        axes = axes[0]
    else:
        axes = np.atleast_1d(axes)
        fig = axes[0].figure
    if len(axes) != len(times):
        raise ValueError(f"{len(axes)} axes for {len(times)} times")
    tri, keep = _triangulation(solution, z_slice)
    m = solution.dataset["m"].values
    vmax = float(m[:, keep].max())
    pc = None
    for ax, tk in zip(axes, times, strict=True):
        k = int(np.argmin(np.abs(t - tk)))
        pc = ax.tripcolor(tri, m[k, keep], shading="gouraud", cmap=cmap, vmin=0.0, vmax=vmax)
        ax.set_aspect("equal")
        ax.set_title(f"m(t = {t[k]:.3g})")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(pc, ax=list(axes), shrink=0.8)
    return fig


def plot_exit_flux(solution, *, ax=None):
    """Outflow rate through each exit against time, with the cumulative exited mass."""
    import matplotlib.pyplot as plt

    ds = solution.dataset
    if "exit_flux" not in ds:
        raise ValueError("the solution has no exits (no 'exit_flux' variable)")
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 3.5))
    else:
        fig = ax.figure
    t = solution.t
    for k, name in enumerate(ds["exit"].values):
        ax.plot(t[1:], ds["exit_flux"].values[1:, k], label=f"flux through {name}")
    ax.set_xlabel("t")
    ax.set_ylabel("outflow rate")
    ax2 = ax.twinx()
    ax2.plot(t, ds["exited_mass"].values, "k--", label="exited mass")
    ax2.set_ylabel("exited mass")
    ax2.set_ylim(0.0, 1.05)
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="center right")
    return fig
