"""Figures of MFG solutions (matplotlib only).

Every function takes an optional ``ax`` (or ``axes``) to draw into and returns the
:class:`matplotlib.figure.Figure`; none calls ``plt.show()``. Without ``ax`` a new figure is
made with :class:`matplotlib.figure.Figure` directly (no pyplot state, no GUI backend), so the
functions are safe under the Agg backend, in scripts, tests and notebooks (Jupyter displays a
returned figure).

==============================  ===============================================================
:func:`plot_heatmap`            ``m`` or ``u`` over :math:`(t, x)` (1-D, finite horizon)
:func:`plot_snapshots`          profiles of ``m`` or ``u`` at a few times (or the ergodic one)
:func:`plot_moments`            mean and variance of ``m`` over time, optionally vs exact paths
:func:`plot_residual_history`   outer-solver residual per iteration (semilogy)
:func:`plot_small_multiples`    2-D ``m`` (or ``u``) at a few times, one panel per time
:func:`plot_convergence_order`  error vs ``h`` on log-log axes with the fitted order
:func:`fit_order`               least-squares slope of :math:`\\log e` vs :math:`\\log h`
==============================  ===============================================================
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "plot_heatmap",
    "plot_snapshots",
    "plot_moments",
    "plot_residual_history",
    "plot_small_multiples",
    "plot_convergence_order",
    "fit_order",
]

_LABELS = {"m": "density m", "u": "value u"}


def _new_figure(figsize=(6.0, 4.0), nrows: int = 1, ncols: int = 1):
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def _figure_and_ax(ax, figsize=(6.0, 4.0)):
    if ax is None:
        fig, axes = _new_figure(figsize)
        return fig, axes[0, 0]
    return ax.figure, ax


def _field(solution, variable: str) -> np.ndarray:
    if variable not in ("m", "u"):
        raise ValueError(f"variable={variable!r} is not known; allowed: 'm', 'u'")
    return np.asarray(getattr(solution, variable), dtype=float)


def _require_dim(solution, dim: int, func: str):
    got = len(solution.axes)
    if got != dim:
        raise ValueError(f"solution has {got} space dimension(s); {func} needs {dim}")


def _time_indices(t: np.ndarray, times, n: int) -> list[int]:
    """Indices of the time nodes nearest to ``times`` (default: ``n`` evenly spaced)."""
    if times is None:
        if n < 1:
            raise ValueError(f"n={n!r} must be a positive integer")
        return sorted({int(round(i)) for i in np.linspace(0, len(t) - 1, min(n, len(t)))})
    times = np.atleast_1d(np.asarray(times, dtype=float))
    if times.size == 0 or not np.all(np.isfinite(times)):
        raise ValueError(f"times={times!r} must be a non-empty list of finite times")
    if np.any(times < t[0] - 1e-12) or np.any(times > t[-1] + 1e-12):
        raise ValueError(f"times={times.tolist()!r} must lie in [{t[0]:g}, {t[-1]:g}]")
    return [int(np.argmin(np.abs(t - s))) for s in times]


def plot_heatmap(
    solution, variable: str = "m", ax=None, *, cmap: str = "viridis", colorbar: bool = True
):
    """Heat map of ``m`` (or ``u``) over :math:`(t, x)` for a 1-D finite-horizon solution."""
    _require_dim(solution, 1, "plot_heatmap")
    if solution.t is None:
        raise ValueError(
            "plot_heatmap needs a time-dependent solution; use plot_snapshots for ergodic ones"
        )
    data = _field(solution, variable)
    fig, ax = _figure_and_ax(ax)
    x, t = solution.axes[0], solution.t
    mesh = ax.pcolormesh(x, t, data, shading="nearest", cmap=cmap)
    if colorbar:
        fig.colorbar(mesh, ax=ax, label=_LABELS[variable])
    ax.set_xlabel(solution.axis_names[0])
    ax.set_ylabel("t")
    ax.set_title(f"{_LABELS[variable]}(t, {solution.axis_names[0]})")
    return fig


def plot_snapshots(solution, variable: str = "m", ax=None, *, times=None, n: int = 5, exact=None):
    """Profiles of ``m`` (or ``u``) at a few times (1-D).

    ``times`` picks the nearest time nodes (default ``n`` evenly spaced, ends included). For an
    ergodic solution the single profile is drawn. ``exact`` (optional) is a dict with ``x``,
    ``value`` (and ``label``) drawn dashed for comparison.
    """
    _require_dim(solution, 1, "plot_snapshots")
    data = _field(solution, variable)
    fig, ax = _figure_and_ax(ax)
    x = solution.axes[0]
    if solution.t is None:
        ax.plot(x, data, label="computed")
    else:
        from matplotlib import colormaps

        idx = _time_indices(solution.t, times, n)
        colours = colormaps["viridis"](np.linspace(0.0, 0.9, len(idx)))
        for c, i in zip(colours, idx, strict=True):
            ax.plot(x, data[i], color=c, label=f"t = {solution.t[i]:.3g}")
    if exact is not None:
        ax.plot(
            np.asarray(exact["x"]),
            np.asarray(exact["value"]),
            "k--",
            lw=1.2,
            label=exact.get("label", "exact"),
        )
    ax.set_xlabel(solution.axis_names[0])
    ax.set_ylabel(_LABELS[variable])
    ax.legend(fontsize="small")
    return fig


def plot_moments(solution, axes=None, *, exact=None):
    """Mean and variance of ``m(t, ·)`` over time (1-D, finite horizon), two panels.

    ``exact`` (optional): dict with arrays ``t``, ``mean``, ``var`` drawn dashed.
    """
    _require_dim(solution, 1, "plot_moments")
    if solution.t is None:
        raise ValueError("plot_moments needs a time-dependent solution")
    if axes is None:
        fig, grid = _new_figure((9.0, 3.6), 1, 2)
        axes = grid[0]
    else:
        if len(axes) != 2:
            raise ValueError(f"axes has {len(axes)} entries; plot_moments needs 2 (mean, variance)")
        fig = axes[0].figure
    x = solution.axes[0]
    h = float(x[1] - x[0])
    m = _field(solution, "m")
    mass = m.sum(axis=1) * h
    mean = (m * x).sum(axis=1) * h / mass
    var = (m * (x - mean[:, None]) ** 2).sum(axis=1) * h / mass
    for a, values, name in ((axes[0], mean, "mean"), (axes[1], var, "var")):
        a.plot(solution.t, values, label="computed")
        if exact is not None:
            a.plot(np.asarray(exact["t"]), np.asarray(exact[name]), "k--", lw=1.2, label="exact")
        a.set_xlabel("t")
        a.set_ylabel("mean of m" if name == "mean" else "variance of m")
        a.legend(fontsize="small")
    return fig


def plot_residual_history(solution_or_history, ax=None, *, label: str | None = None):
    """Residual of the outer solver per iteration on a log scale.

    Accepts a Solution (its ``residual_history``) or a sequence of residuals. Call it several
    times with the same ``ax`` to compare solvers.
    """
    hist = getattr(solution_or_history, "residual_history", solution_or_history)
    hist = np.asarray(hist, dtype=float).ravel()
    if hist.size == 0:
        raise ValueError("the residual history is empty")
    fig, ax = _figure_and_ax(ax)
    if label is None:
        attrs = getattr(solution_or_history, "attrs", {}) or {}
        label = str(attrs.get("solver", "residual"))
    ax.semilogy(np.arange(hist.size), hist, "o-", label=label)
    ax.set_xlabel("iteration")
    ax.set_ylabel("residual (max norm)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    return fig


def plot_small_multiples(
    solution,
    variable: str = "m",
    axes=None,
    *,
    times=None,
    n: int = 4,
    cmap: str = "viridis",
    shared_scale: bool = True,
):
    """2-D ``m`` (or ``u``) at a few times, one panel each.

    ``axes``: a sequence of as many Axes as panels (default: a new row of panels). An ergodic
    solution gives a single panel. ``shared_scale=True`` puts all panels on one colour scale
    (one colour bar); ``False`` scales each panel to its own range (a colour bar each), which
    shows the structure of a density that spreads out from a concentrated start.
    """
    _require_dim(solution, 2, "plot_small_multiples")
    data = _field(solution, variable)
    if solution.t is None:
        frames, titles = [data], ["stationary"]
    else:
        idx = _time_indices(solution.t, times, n)
        frames = [data[i] for i in idx]
        titles = [f"t = {solution.t[i]:.3g}" for i in idx]
    if axes is None:
        fig, grid = _new_figure((3.0 * len(frames) + 1.0, 3.2), 1, len(frames))
        axes = list(grid[0])
    else:
        axes = list(np.ravel(axes))
        if len(axes) != len(frames):
            raise ValueError(f"axes has {len(axes)} entries; {len(frames)} panels are needed")
        fig = axes[0].figure
    x, y = solution.axes
    vmin = min(float(f.min()) for f in frames)
    vmax = max(float(f.max()) for f in frames)
    image = None
    for a, frame, title in zip(axes, frames, titles, strict=True):
        limits = dict(vmin=vmin, vmax=vmax) if shared_scale else {}
        image = a.pcolormesh(x, y, frame.T, shading="nearest", cmap=cmap, **limits)
        a.set_title(title)
        a.set_aspect("equal")
        a.set_xlabel(solution.axis_names[0])
        a.set_ylabel(solution.axis_names[1])
        if not shared_scale:
            fig.colorbar(image, ax=a, shrink=0.8)
    if shared_scale:
        fig.colorbar(image, ax=axes, label=_LABELS[variable], shrink=0.9)
    return fig


def fit_order(h: Sequence[float], errors: Sequence[float]) -> tuple[float, float]:
    """Least-squares fit :math:`\\log e = p \\log h + \\log C`; returns ``(p, C)``."""
    h = np.asarray(h, dtype=float).ravel()
    e = np.asarray(errors, dtype=float).ravel()
    if h.size != e.size or h.size < 2:
        raise ValueError(f"h and errors need the same length >= 2 (got {h.size} and {e.size})")
    if np.any(~np.isfinite(h)) or np.any(h <= 0) or np.any(~np.isfinite(e)) or np.any(e <= 0):
        raise ValueError("h and errors must be finite and > 0 to fit log(error) vs log(h)")
    p, logc = np.polyfit(np.log(h), np.log(e), 1)
    return float(p), float(np.exp(logc))


def plot_convergence_order(
    h, errors, ax=None, *, label: str = "error", expected: float | None = None
):
    """Errors vs mesh size on log-log axes with the fitted order in the legend.

    ``expected`` adds a dashed reference slope through the coarsest point.
    """
    p, c = fit_order(h, errors)
    h = np.asarray(h, dtype=float)
    e = np.asarray(errors, dtype=float)
    fig, ax = _figure_and_ax(ax)
    line = ax.loglog(h, e, "o", label=f"{label} (fitted order {p:.2f})")[0]
    hh = np.geomspace(h.min(), h.max(), 50)
    ax.loglog(hh, c * hh**p, "-", color=line.get_color(), alpha=0.6)
    if expected is not None:
        i = int(np.argmax(h))
        ax.loglog(hh, e[i] * (hh / h[i]) ** expected, "k--", lw=1, label=f"order {expected:g}")
    ax.set_xlabel("h")
    ax.set_ylabel("error")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    return fig
