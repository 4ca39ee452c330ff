"""A 1-D grid solver for the McKean--Vlasov Fokker--Planck equation (the mean-field limit of
the particle systems of :mod:`.integrators`).

.. math::

    \\partial_t\\mu = -\\partial_x\\big(\\mu\\, b(t, x, \\mu)\\big)
    + \\tfrac{\\sigma^2}{2}\\partial_{xx}\\mu,
    \\qquad b(t, x, \\mu) = b_0(t, x) - (W' * \\mu)(x),

on a 1-D :class:`~mfg_solvers.grid.Grid` (periodic, or Neumann = zero flux).

Discretisation (finite volumes on the node cells :math:`[x_i - h/2, x_i + h/2]`, the package's
mass convention :math:`h\\sum_i m_i = 1`, conserved exactly):

* Scharfetter--Gummel flux at the face :math:`x_{i+1/2}`, with :math:`\\nu = \\sigma^2/2`,
  :math:`P = v_{i+1/2}h/\\nu` and :math:`B(z) = z/(e^z - 1)`:
  :math:`F_{i+1/2} = \\frac{\\nu}{h}\\big(B(-P)\\,m_i - B(P)\\,m_{i+1}\\big)` -- the central flux
  :math:`v\\,\\tfrac12(m_i + m_{i+1}) - \\nu(m_{i+1} - m_i)/h` up to :math:`O(P^2)`, hence second
  order, and monotone (positivity preserving) for every cell Péclet number :math:`P`; zero on the
  outer faces of a Neumann grid;
* face velocity :math:`v_{i+1/2} = b_0(t, x_{i+1/2}) - h\\sum_j W'(x_{i+1/2} - x_j)\\,m_j`, the
  convolution done by FFT (kernel sampled at half-integer displacements; circular on a periodic
  grid, zero-padded otherwise);
* :math:`\\dot m_i = -(F_{i+1/2} - F_{i-1/2})/h`, integrated by the three-stage strong-stability-
  preserving Runge--Kutta method with :math:`\\Delta t =` ``cfl`` :math:`\\times h^2 / (\\nu
  \\max_f (B(P_f) + B(-P_f)))` (positivity of the forward Euler stages).

Second order in :math:`h` for smooth solutions (the time error is :math:`O(\\Delta t^3) = O(h^6)`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import NaNError
from ..grid import Grid
from .interactions import Kernel


@dataclass
class MVFokkerPlanckResult:
    """Densities and drifts at the requested times.

    ``m``: ``(len(t), n)``, densities on the nodes; ``drift``: ``(len(t), n)``,
    :math:`b(t, x_i, \\mu_t)` on the nodes (node-centred convolution), ready for a
    :class:`~.drifts.GridDrift`; ``steps``: number of Runge--Kutta steps taken.
    """

    grid: Grid
    t: np.ndarray
    m: np.ndarray
    drift: np.ndarray
    steps: int

    def drift_field(self):
        """A :class:`~.drifts.GridDrift` interpolating :math:`b(t, x, \\mu_t)`."""
        from .drifts import GridDrift

        return GridDrift(self.grid, self.drift[..., None], self.t)


class _Convolver:
    """:math:`c_a = h\\sum_j K((a - j + s)h)\\,m_j` for a shift ``s`` (0 or 1/2) by FFT."""

    def __init__(self, grid: Grid, kernel_grad: Callable, shift: float):
        n, h = grid.shape[0], grid.spacing[0]
        self.n = n
        self.periodic = grid.periodic[0]
        if self.periodic:
            P = n
            j = np.arange(P)
            k = np.where(j <= P // 2, j, j - P).astype(float)
            disp = (k + shift) * h
            L = n * h
            disp = disp - L * np.round(disp / L)
            K = kernel_grad(disp)
            if shift == 0.0 and P % 2 == 0:
                K[P // 2] = 0.0
        else:
            P = 2 * n
            j = np.arange(P)
            k = np.where(j < n, j, j - P).astype(float)
            K = kernel_grad((k + shift) * h)
            if shift == 0.0:
                K[n] = 0.0
        self.P = P
        self.h = h
        self.K_hat = np.fft.rfft(h * np.asarray(K, dtype=float))

    def __call__(self, m):
        out = np.fft.irfft(np.fft.rfft(m, n=self.P) * self.K_hat, n=self.P)
        return out[: self.n]


def solve_mv_fokker_planck(
    grid: Grid,
    m0,
    T: float,
    sigma: float,
    kernel: Kernel | None = None,
    external_drift: Callable | None = None,
    n_out: int = 1,
    cfl: float = 0.4,
) -> MVFokkerPlanckResult:
    """Solve the 1-D McKean--Vlasov Fokker--Planck equation (module docstring) on ``[0, T]``.

    Parameters
    ----------
    grid
        A 1-D Grid (periodic or Neumann).
    m0
        Initial density: array of ``grid.shape`` or callable of ``x``; normalised to
        :math:`h\\sum m = 1`.
    T, sigma
        Horizon and (constant) noise level :math:`\\sigma` (:math:`\\nu = \\sigma^2/2`).
    kernel
        Interaction :class:`~.interactions.Kernel` (``None``: no interaction).
    external_drift
        :math:`b_0(t, x)`, vectorised in ``x`` (``None``: zero).
    n_out
        The result holds the solution at ``t = k T / n_out``, ``k = 0..n_out`` (the time steps
        are chosen to hit these times exactly).
    """
    if not isinstance(grid, Grid) or grid.dim != 1:
        raise ValueError(f"grid={grid!r} must be a 1-D mfg_solvers.Grid")
    if not np.isfinite(T) or T <= 0:
        raise ValueError(f"T={T!r} must be a positive finite number")
    if not np.isfinite(sigma) or sigma <= 0:
        raise ValueError(f"sigma={sigma!r} must be a positive finite number")
    if isinstance(n_out, bool) or not isinstance(n_out, int | np.integer) or n_out < 1:
        raise ValueError(f"n_out={n_out!r} must be a positive integer")
    if kernel is not None and not isinstance(kernel, Kernel):
        raise TypeError(f"kernel={kernel!r} must be an interactions.Kernel or None")
    x = grid.axes[0]
    h = grid.spacing[0]
    m = np.asarray(m0(x) if callable(m0) else m0, dtype=float).copy()
    if m.shape != grid.shape or not np.all(np.isfinite(m)) or np.any(m < 0):
        raise ValueError(f"m0 must be finite, >= 0 and of shape {grid.shape}")
    m /= h * m.sum()
    nu = 0.5 * sigma**2
    periodic = grid.periodic[0]
    xf = x + 0.5 * h  # faces i+1/2
    if kernel is not None:
        def grad(dx):
            return kernel.gradient(dx)[0]

        conv_face = _Convolver(grid, grad, 0.5)
        conv_node = _Convolver(grid, grad, 0.0)

    def b0(t, pts):
        if external_drift is None:
            return np.zeros_like(pts)
        v = np.asarray(external_drift(t, pts), dtype=float)
        return np.broadcast_to(v, pts.shape)

    def face_velocity(t, mm):
        v = b0(t, xf)
        if kernel is not None:
            v = v - conv_face(mm)
        return v

    def bern(z):
        out = np.ones_like(z)
        nz = np.abs(z) > 1e-8
        out[nz] = z[nz] / np.expm1(z[nz])
        out[~nz] = 1.0 - 0.5 * z[~nz]
        return out

    def rhs(t, mm):
        v = face_velocity(t, mm)
        pe = v * h / nu
        mp = np.roll(mm, -1)
        F = nu / h * (bern(-pe) * mm - bern(pe) * mp)
        if not periodic:
            F[-1] = 0.0  # outer face of the last node; the first node's left face is F[-1] too
        return -(F - np.roll(F, 1)) / h, v

    def node_drift(t, mm):
        v = b0(t, x).copy()
        if kernel is not None:
            v = v - conv_node(mm)
        return v

    t_out = np.linspace(0.0, T, n_out + 1)
    ms = [m.copy()]
    drifts = [node_drift(0.0, m)]
    t = 0.0
    steps = 0
    for k in range(n_out):
        t_end = t_out[k + 1]
        while t < t_end - 1e-14 * T:
            pe = face_velocity(t, m) * h / nu
            if not periodic:
                pe = pe[:-1]
            dt_max = cfl * h * h / (nu * float(np.max(bern(pe) + bern(-pe))))
            nsub = max(1, int(np.ceil((t_end - t) / dt_max - 1e-12)))
            dt = (t_end - t) / nsub
            for _ in range(nsub):
                k1, _ = rhs(t, m)
                m1 = m + dt * k1
                k2, _ = rhs(t + dt, m1)
                m2 = 0.75 * m + 0.25 * (m1 + dt * k2)
                k3, _ = rhs(t + 0.5 * dt, m2)
                m = m / 3.0 + 2.0 / 3.0 * (m2 + dt * k3)
                t += dt
                steps += 1
            if not np.all(np.isfinite(m)):
                raise NaNError(f"the Fokker-Planck density became non-finite at t={t:.4g}")
            t = t_end if abs(t - t_end) < 1e-12 * max(1.0, T) else t
        t = t_end
        ms.append(m.copy())
        drifts.append(node_drift(t, m))
    return MVFokkerPlanckResult(grid=grid, t=t_out, m=np.array(ms), drift=np.array(drifts),
                                steps=steps)
