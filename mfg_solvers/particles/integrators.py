"""Time stepping of interacting particle systems (McKean--Vlasov SDEs).

Each particle :math:`i = 1..N` follows

.. math::

    dX^i_t = \\Big[A(t)X^i_t + c(t) + B\\,\\bar S_t + b(t, X^i_t)
             - \\frac1N\\sum_j \\nabla W(X^i_t - X^j_t)\\Big]dt + \\sigma(t, X^i_t)\\,dW^i_t,
    \\qquad \\bar S_t = \\frac1N\\sum_j X^j_t,

with the affine part from :class:`~.drifts.AffineDrift` and the moment interactions
(:class:`~.interactions.QuadraticInteraction`, :class:`~.interactions.MeanFieldAffine`), the
array drifts :math:`b` of :mod:`.drifts`, and pairwise kernels from :mod:`.interactions`. The box
(:class:`~.boundaries.Box`) wraps, reflects or absorbs at its walls.

Schemes (:math:`\\Delta t = T / n_\\text{steps}`, :math:`z \\sim \\mathcal N(0, I)` from the
counter-based streams of :mod:`.rng`):

* ``"euler"`` -- Euler--Maruyama
  :math:`X_{n+1} = X_n + b_n\\Delta t + \\sigma_n\\sqrt{\\Delta t}\\,z`;
  weak order 1, strong order 1/2 (1 for additive noise).
* ``"milstein"`` -- adds
  :math:`\\tfrac12\\sigma_k\\partial_k\\sigma_k(\\Delta W_k^2 - \\Delta t)` for a
  :class:`~.drifts.StateDiffusion` (diagonal, commutative noise): strong order 1. With constant
  noise it coincides with Euler--Maruyama.
* ``"exact"`` -- for a linear system (constant affine drift, moment interactions, constant noise,
  free space) the exact transition of the :math:`N`-particle system: with
  :math:`A_\\mathrm{dev} = A` (deviations from the empirical mean) and
  :math:`A_\\mathrm{mean} = A + B` (the empirical mean),

  .. math::

      X^i_{n+1} = e^{A_\\mathrm{dev}\\Delta t}(X^i_n - \\bar X_n)
      + e^{A_\\mathrm{mean}\\Delta t}\\bar X_n
      + \\int_0^{\\Delta t}\\! e^{A_\\mathrm{mean}s}ds\\,c + L_\\mathrm{dev}(z_i - \\bar z)
      + L_\\mathrm{mean}\\bar z,

  :math:`L L^\\top = \\int_0^{\\Delta t} e^{As}\\sigma\\sigma^\\top e^{A^\\top s}ds` (Van Loan).
  It is exact
  in law for any :math:`\\Delta t` (the OU process when :math:`B = 0`).

Work is split into fixed blocks of :data:`BLOCK` particles (parallel ``prange`` over blocks);
block partial sums of positions feed the moment interactions of the next step and are added in
block order, so that a run is bit-identical for any thread count and any MPI rank layout.

Validation happens before the first step: array shapes, NaN positions, ``dt <= 0``, a drift or a
diffusion that is not finite (or has the wrong shape) on the initial cloud raise ValueError or
TypeError. A non-finite position during the run raises :class:`~mfg_solvers.errors.NaNError`.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg
from numba import njit, prange

from ..errors import NaNError
from ..grid import Grid
from ._threads import threads_for
from .boundaries import PERIODIC, Box, bridge_survival, fold, wrap
from .density import _check_positions, deposit
from .drifts import (
    ArrayDrift,
    StateDiffusion,
    as_drift_list,
    noise_matrix,
)
from .interactions import Interaction, PairwiseInteraction
from .mpi import allreduce_sum, local_layout, reduce_blocks
from .rng import (
    EXIT_SLOT,
    StreamKeys,
    check_seed,
    mix64,
    normal_from_bits,
    particle_key,
    psd_factor,
    uniform_from_bits,
)

#: Particles per parallel work block (fixed: results do not depend on the thread count).
BLOCK = 1024
SCHEMES = ("euler", "milstein", "exact")


# ---------------------------------------------------------------------------------------------
# kernels
# ---------------------------------------------------------------------------------------------
@njit(cache=True)
def _boundary(xo, xn, code, lo, hi):
    """Apply the wall rule of one axis: ``(new coordinate, killed)``."""
    if code == 1:
        return wrap(xn, lo, hi), False
    if code == 2:
        return fold(xn, lo, hi), False
    if code == 3 and (xn < lo or xn > hi):
        return min(max(xn, lo), hi), True
    return xn, False


@njit(cache=True, parallel=True)
def _sde_step_kernel(X, alive, exit_time, Barr, A, c, Ls, S, dS, milstein, dt, sqdt, t_next,
                     key_a, hashes, offset, codes, lo, hi, var_axis, bridge, sums, counts, bad):
    """One Euler--Maruyama / Milstein step of the live particles, in place.

    ``A`` (3x3), ``c`` (3) and ``Ls = L sqrt(dt)`` (3x3) are zero-padded to three axes. ``S``/``dS``
    (``(N, d)`` or empty) give a state-dependent diagonal diffusion. Writes block sums of the new
    positions (live particles), block counts of live particles and of non-finite updates.
    The per-particle work uses scalar locals (no scratch arrays) for speed. Non-finite updates are
    counted here only when a wall absorbs (it would clamp them); otherwise they reach the block
    sums, which the driver checks.
    """
    N, d = X.shape
    nb = sums.shape[0]
    has_arr = Barr.shape[0] == N
    state = S.shape[0] == N
    any_bc = False
    has_abs = False
    for k in range(d):
        if codes[k] != 0:
            any_bc = True
        if codes[k] == 3:
            has_abs = True
    h0 = hashes[0]
    h1 = hashes[1]
    h2 = hashes[2]
    hx = hashes[EXIT_SLOT]
    # coefficients as scalars: loaded once, not at every particle (X could alias them)
    a00, a01, a02 = A[0, 0], A[0, 1], A[0, 2]
    a10, a11, a12 = A[1, 0], A[1, 1], A[1, 2]
    a20, a21, a22 = A[2, 0], A[2, 1], A[2, 2]
    c0, c1, c2 = c[0], c[1], c[2]
    l00, l01, l02 = Ls[0, 0], Ls[0, 1], Ls[0, 2]
    l10, l11, l12 = Ls[1, 0], Ls[1, 1], Ls[1, 2]
    l20, l21, l22 = Ls[2, 0], Ls[2, 1], Ls[2, 2]
    for b in prange(nb):
        s0 = 0.0
        s1 = 0.0
        s2 = 0.0
        cnt = 0
        nbad = 0
        for i in range(b * BLOCK, min(N, (b + 1) * BLOCK)):
            if alive[i] == 0:
                continue
            key = particle_key(key_a, np.uint64(offset + i))
            z0 = normal_from_bits(mix64(key + h0))
            z1 = normal_from_bits(mix64(key + h1)) if d > 1 else 0.0
            z2 = normal_from_bits(mix64(key + h2)) if d > 2 else 0.0
            x0 = X[i, 0]
            x1 = X[i, 1] if d > 1 else 0.0
            x2 = X[i, 2] if d > 2 else 0.0
            b0 = c0 + a00 * x0 + a01 * x1 + a02 * x2
            b1 = c1 + a10 * x0 + a11 * x1 + a12 * x2
            b2 = c2 + a20 * x0 + a21 * x1 + a22 * x2 if d > 2 else 0.0
            if has_arr:
                b0 += Barr[i, 0]
                if d > 1:
                    b1 += Barr[i, 1]
                if d > 2:
                    b2 += Barr[i, 2]
            if state:
                dw0 = sqdt * z0
                n0 = x0 + b0 * dt + S[i, 0] * dw0
                if milstein:
                    n0 += 0.5 * S[i, 0] * dS[i, 0] * (dw0 * dw0 - dt)
                n1 = x1
                n2 = x2
                if d > 1:
                    dw1 = sqdt * z1
                    n1 = x1 + b1 * dt + S[i, 1] * dw1
                    if milstein:
                        n1 += 0.5 * S[i, 1] * dS[i, 1] * (dw1 * dw1 - dt)
                if d > 2:
                    dw2 = sqdt * z2
                    n2 = x2 + b2 * dt + S[i, 2] * dw2
                    if milstein:
                        n2 += 0.5 * S[i, 2] * dS[i, 2] * (dw2 * dw2 - dt)
            else:
                n0 = x0 + b0 * dt + l00 * z0 + l01 * z1 + l02 * z2
                n1 = x1 + b1 * dt + l10 * z0 + l11 * z1 + l12 * z2
                n2 = x2 + b2 * dt + l20 * z0 + l21 * z1 + l22 * z2 if d > 2 else 0.0
            if has_abs and not (math.isfinite(n0) and math.isfinite(n1) and math.isfinite(n2)):
                nbad += 1
                continue
            dead = False
            if any_bc:
                n0, k0 = _boundary(x0, n0, codes[0], lo[0], hi[0])
                dead = dead or k0
                if d > 1:
                    n1, k1 = _boundary(x1, n1, codes[1], lo[1], hi[1])
                    dead = dead or k1
                if d > 2:
                    n2, k2 = _boundary(x2, n2, codes[2], lo[2], hi[2])
                    dead = dead or k2
                if has_abs and bridge and not dead:
                    surv = 1.0
                    for k in range(d):
                        if codes[k] == 3:
                            v = S[i, k] * S[i, k] if state else var_axis[k]
                            xa = x0 if k == 0 else (x1 if k == 1 else x2)
                            xb = n0 if k == 0 else (n1 if k == 1 else n2)
                            surv *= bridge_survival(xa, xb, lo[k], hi[k], v * dt)
                    if surv < 1.0:
                        if uniform_from_bits(mix64(key + hx)) >= surv:
                            dead = True
            X[i, 0] = n0
            if d > 1:
                X[i, 1] = n1
            if d > 2:
                X[i, 2] = n2
            if dead:
                alive[i] = 0
                exit_time[i] = t_next
                continue
            cnt += 1
            s0 += n0
            s1 += n1
            s2 += n2
        sums[b, 0] = s0
        if d > 1:
            sums[b, 1] = s1
        if d > 2:
            sums[b, 2] = s2
        counts[b] = cnt
        bad[b] = nbad


@njit(cache=True, parallel=True)
def _euler_affine_free_kernel(X, A, c, Ls, dt, key_a, hashes, offset, sums, counts):
    """Euler--Maruyama step ``X <- X + (A X + c) dt + Ls z`` in free space, in place.

    The common case of the moment-coupled systems (affine drift and moment interactions,
    constant noise, no walls, every particle alive) without the branches of
    :func:`_sde_step_kernel`: one loop per dimension, the coefficients in scalar locals. It
    draws the same normals and gives the same positions and block sums bit for bit.
    """
    N, d = X.shape
    nb = sums.shape[0]
    h0 = hashes[0]
    h1 = hashes[1]
    h2 = hashes[2]
    a00, a01, a02 = A[0, 0], A[0, 1], A[0, 2]
    a10, a11, a12 = A[1, 0], A[1, 1], A[1, 2]
    a20, a21, a22 = A[2, 0], A[2, 1], A[2, 2]
    c0, c1, c2 = c[0], c[1], c[2]
    l00, l01, l02 = Ls[0, 0], Ls[0, 1], Ls[0, 2]
    l10, l11, l12 = Ls[1, 0], Ls[1, 1], Ls[1, 2]
    l20, l21, l22 = Ls[2, 0], Ls[2, 1], Ls[2, 2]
    for b in prange(nb):
        start = b * BLOCK
        stop = min(N, start + BLOCK)
        s0 = 0.0
        s1 = 0.0
        s2 = 0.0
        if d == 1:
            for i in range(start, stop):
                key = particle_key(key_a, np.uint64(offset + i))
                z0 = normal_from_bits(mix64(key + h0))
                x0 = X[i, 0]
                n0 = x0 + (c0 + a00 * x0) * dt + l00 * z0
                X[i, 0] = n0
                s0 += n0
        elif d == 2:
            for i in range(start, stop):
                key = particle_key(key_a, np.uint64(offset + i))
                z0 = normal_from_bits(mix64(key + h0))
                z1 = normal_from_bits(mix64(key + h1))
                x0 = X[i, 0]
                x1 = X[i, 1]
                n0 = x0 + (c0 + a00 * x0 + a01 * x1) * dt + l00 * z0 + l01 * z1
                n1 = x1 + (c1 + a10 * x0 + a11 * x1) * dt + l10 * z0 + l11 * z1
                X[i, 0] = n0
                X[i, 1] = n1
                s0 += n0
                s1 += n1
        else:
            for i in range(start, stop):
                key = particle_key(key_a, np.uint64(offset + i))
                z0 = normal_from_bits(mix64(key + h0))
                z1 = normal_from_bits(mix64(key + h1))
                z2 = normal_from_bits(mix64(key + h2))
                x0 = X[i, 0]
                x1 = X[i, 1]
                x2 = X[i, 2]
                n0 = x0 + (c0 + a00 * x0 + a01 * x1 + a02 * x2) * dt \
                    + l00 * z0 + l01 * z1 + l02 * z2
                n1 = x1 + (c1 + a10 * x0 + a11 * x1 + a12 * x2) * dt \
                    + l10 * z0 + l11 * z1 + l12 * z2
                n2 = x2 + (c2 + a20 * x0 + a21 * x1 + a22 * x2) * dt \
                    + l20 * z0 + l21 * z1 + l22 * z2
                X[i, 0] = n0
                X[i, 1] = n1
                X[i, 2] = n2
                s0 += n0
                s1 += n1
                s2 += n2
        sums[b, 0] = s0
        if d > 1:
            sums[b, 1] = s1
        if d > 2:
            sums[b, 2] = s2
        counts[b] = stop - start


@njit(cache=True, parallel=True)
def _noise_sum_kernel(N, d, key_a, hashes, offset, sums):
    """Block sums of the step's standard normals (for the exact linear step)."""
    nb = sums.shape[0]
    for b in prange(nb):
        s = np.zeros(3)
        for i in range(b * BLOCK, min(N, (b + 1) * BLOCK)):
            key = particle_key(key_a, np.uint64(offset + i))
            for j in range(d):
                s[j] += normal_from_bits(mix64(key + hashes[j]))
        for k in range(d):
            sums[b, k] = s[k]


@njit(cache=True, parallel=True)
def _linear_step_kernel(X, E, L, shift, key_a, hashes, offset, sums, counts, bad):
    """``X_i <- E X_i + L z_i + shift`` (exact linear step), with block sums of the result."""
    N, d = X.shape
    nb = sums.shape[0]
    for b in prange(nb):
        xo = np.zeros(3)
        z = np.zeros(3)
        s = np.zeros(3)
        nbad = 0
        for i in range(b * BLOCK, min(N, (b + 1) * BLOCK)):
            key = particle_key(key_a, np.uint64(offset + i))
            for j in range(d):
                z[j] = normal_from_bits(mix64(key + hashes[j]))
            for k in range(d):
                xo[k] = X[i, k]
            for k in range(d):
                v = shift[k]
                for l in range(d):
                    v += E[k, l] * xo[l] + L[k, l] * z[l]
                X[i, k] = v
                s[k] += v
        for k in range(d):
            sums[b, k] = s[k]
        counts[b] = min(N, (b + 1) * BLOCK) - b * BLOCK
        bad[b] = nbad


@njit(cache=True, parallel=True)
def _moment_kernel(X, alive, shift, sums, counts, second):
    """Block sums of :math:`x - s` (live particles), their counts and, when ``second`` has one row
    per block, of :math:`(x - s)(x - s)^\\top` (flattened ``d*d``)."""
    N, d = X.shape
    nb = sums.shape[0]
    want2 = second.shape[0] == nb
    for b in prange(nb):
        s1 = np.zeros(3)
        s2 = np.zeros(9)
        cnt = 0
        for i in range(b * BLOCK, min(N, (b + 1) * BLOCK)):
            if alive[i] == 0:
                continue
            cnt += 1
            for k in range(d):
                dk = X[i, k] - shift[k]
                s1[k] += dk
                if want2:
                    for l in range(d):
                        s2[k * d + l] += dk * (X[i, l] - shift[l])
        for k in range(d):
            sums[b, k] = s1[k]
        counts[b] = cnt
        if want2:
            for q in range(d * d):
                second[b, q] = s2[q]


def _pad3(a: np.ndarray) -> np.ndarray:
    """``a`` (``(d,)`` or ``(d, d)``) zero-padded to three axes."""
    if a.ndim == 1:
        out = np.zeros(3)
        out[: a.shape[0]] = a
    else:
        out = np.zeros((3, 3))
        out[: a.shape[0], : a.shape[1]] = a
    return out


def _nblocks(n):
    return max(1, -(-int(n) // BLOCK))


def cloud_moments(X, alive=None, comm=None):
    """``(mean, cov, n_alive)`` of the live particles (covariance with :math:`1/n`), deterministic
    and summed over the ranks of ``comm`` in global block order."""
    X = _check_positions(X)
    n, d = X.shape
    al = np.ones(n, dtype=np.uint8) if alive is None else np.ascontiguousarray(alive, np.uint8)
    nb = _nblocks(n)
    sums = np.zeros((nb, d))
    counts = np.zeros(nb, dtype=np.int64)
    with threads_for(n):
        _moment_kernel(X, al, np.zeros(d), sums, counts, np.zeros((0, d * d)))
    S, M = reduce_blocks(comm, sums, counts)
    if M == 0:
        return np.full(d, np.nan), np.full((d, d), np.nan), 0
    mean = S / M
    out = np.zeros((nb, d * d))
    with threads_for(n):  # second pass centred on the mean (no cancellation)
        _moment_kernel(X, al, mean, sums, counts, out)
    C, _ = reduce_blocks(comm, out, counts)
    return mean, C.reshape(d, d) / M, M


# ---------------------------------------------------------------------------------------------
# linear algebra for the exact step
# ---------------------------------------------------------------------------------------------
def ou_transition(A: np.ndarray, c: np.ndarray, LLt: np.ndarray, dt: float):
    """``(E, f, Q)`` of :math:`dX = (AX + c)dt + L\\,dW` over ``dt``: :math:`X' = EX + f + \\xi`,
    :math:`\\xi\\sim\\mathcal N(0, Q)` (Van Loan's block exponentials)."""
    d = A.shape[0]
    E = scipy.linalg.expm(A * dt)
    blk = np.zeros((2 * d, 2 * d))
    blk[:d, :d] = A
    blk[:d, d:] = np.eye(d)
    phi = scipy.linalg.expm(blk * dt)[:d, d:]
    blk = np.zeros((2 * d, 2 * d))
    blk[:d, :d] = -A
    blk[:d, d:] = LLt
    blk[d:, d:] = A.T
    F = scipy.linalg.expm(blk * dt)
    Q = F[d:, d:].T @ F[:d, d:]
    Q = 0.5 * (Q + Q.T)
    return E, phi @ c, Q


# ---------------------------------------------------------------------------------------------
# result
# ---------------------------------------------------------------------------------------------
@dataclass
class ParticleRun:
    """Result of :func:`simulate` (this rank's particles; statistics are global).

    Attributes
    ----------
    X : (n, d) array
        Final positions (dead particles stay where they exited).
    alive : (n,) bool array
    exit_time : (n,) array
        Exit time of dead particles, NaN for the living.
    t, mean, cov, mass
        Recorded times, mean and covariance (:math:`1/n` normalisation) of the live particles, and
        the live fraction, at steps ``0, record_every, ...`` and the last step.
    """

    X: np.ndarray
    alive: np.ndarray
    exit_time: np.ndarray
    t: np.ndarray
    mean: np.ndarray
    cov: np.ndarray
    mass: np.ndarray
    dt: float
    n_steps: int
    steps_done: int
    scheme: str
    seed: int
    offset: int
    n_total: int
    interrupted: bool = False
    timings: dict = field(default_factory=dict)

    @property
    def t_final(self) -> float:
        return float(self.t[-1])

    @property
    def particle_steps_per_second(self) -> float:
        el = self.timings.get("steps", 0.0)
        return self.n_total * self.steps_done / el if el > 0 else float("nan")

    def deposit(self, grid: Grid, method="cic", normalise=True, comm=None) -> np.ndarray:
        """Density of the live particles on ``grid`` (see :func:`.density.deposit`)."""
        return deposit(self.X, grid, method=method, alive=self.alive, normalise=normalise,
                       n_total=self.n_total, comm=comm)

    def summary(self) -> dict:
        """Named scalars (JSON-ready)."""
        return {
            "n_particles": int(self.n_total),
            "dim": int(self.X.shape[1]),
            "scheme": self.scheme,
            "dt": float(self.dt),
            "n_steps": int(self.n_steps),
            "steps_done": int(self.steps_done),
            "t_final": self.t_final,
            "mean": [float(v) for v in self.mean[-1]],
            "cov": [[float(v) for v in row] for row in self.cov[-1]],
            "mass": float(self.mass[-1]),
            "interrupted": bool(self.interrupted),
            "time_steps_s": float(self.timings.get("steps", 0.0)),
            "particle_steps_per_s": float(self.particle_steps_per_second),
        }


# ---------------------------------------------------------------------------------------------
# the driver
# ---------------------------------------------------------------------------------------------
def _check_time(T, n_steps, dt):
    try:
        T = float(T)
    except (TypeError, ValueError):
        raise TypeError(f"T={T!r} must be a positive number") from None
    if not np.isfinite(T) or T <= 0:
        raise ValueError(f"T={T!r} must be a positive finite number")
    if dt is not None:
        dt = float(dt)
        if not np.isfinite(dt) or dt <= 0:
            raise ValueError(f"dt={dt!r} must be a positive finite number")
        n = int(round(T / dt))
        if n < 1 or abs(n * dt - T) > 1e-9 * T:
            raise ValueError(f"dt={dt!r} does not divide T={T!r} into whole steps")
        if n_steps is not None and int(n_steps) != n:
            raise ValueError(f"n_steps={n_steps!r} and dt={dt!r} disagree for T={T!r}")
        n_steps = n
    if n_steps is None:
        raise ValueError("give n_steps (or dt)")
    if isinstance(n_steps, bool) or not isinstance(n_steps, int | np.integer) or n_steps < 1:
        raise ValueError(f"n_steps={n_steps!r} must be a positive integer")
    return T, int(n_steps), T / int(n_steps)


def _as_box(box, d):
    if box is None:
        return Box.free(d)
    if isinstance(box, Grid):
        box = Box.from_grid(box)
    if not isinstance(box, Box):
        raise TypeError(f"box={box!r} must be a Box, a Grid or None (free space)")
    if box.dim != d:
        raise ValueError(f"box has dimension {box.dim}; the particles have {d}")
    return box


def _as_interactions(interaction, d, box):
    if interaction is None:
        return [], []
    items = list(interaction) if isinstance(interaction, list | tuple) else [interaction]
    affine, pairwise = [], []
    for it in items:
        if not isinstance(it, Interaction):
            raise TypeError(
                f"interaction={it!r} must be a QuadraticInteraction, MeanFieldAffine or "
                "PairwiseInteraction"
            )
        it.check_dim(d)
        if it.affine:
            affine.append(it)
        else:
            pairwise.append(it.with_box(box) if isinstance(it, PairwiseInteraction) else it)
    return affine, pairwise


def simulate(
    X0,
    *,
    T,
    n_steps=None,
    dt=None,
    sigma=0.0,
    drift=None,
    interaction=None,
    scheme="euler",
    box=None,
    seed=0,
    t0=0.0,
    record_every=None,
    callback=None,
    exit_bridge=True,
    comm=None,
    progress=None,
) -> ParticleRun:
    """Integrate the particle system from ``X0`` over ``[t0, t0 + T]``.

    Parameters
    ----------
    X0
        Initial positions ``(n, d)``, ``1 <= d <= 3`` (this rank's particles with ``comm``; ranks
        hold consecutive global indices in rank order). Not modified.
    T, n_steps, dt
        Horizon and number of steps (or the step ``dt``, which must divide ``T``).
    sigma
        Scalar, vector (diagonal), ``(d, d)`` matrix, or :class:`~.drifts.StateDiffusion`.
    drift
        A drift of :mod:`.drifts`, a numba function ``f(t, x, out)``, a callable
        ``f(t, X) -> (n, d)``, or a list of these (summed).
    interaction
        A :class:`~.interactions.QuadraticInteraction`, :class:`~.interactions.MeanFieldAffine`,
        :class:`~.interactions.PairwiseInteraction` or a list of these.
    scheme
        ``"euler"``, ``"milstein"`` or ``"exact"`` (module docstring).
    box
        :class:`~.boundaries.Box`, a :class:`~mfg_solvers.grid.Grid` (its boundary conditions) or
        ``None`` (free space). Particles must start inside a reflecting/absorbing box.
    seed
        Seed of the counter-based streams; the noise of particle ``i`` at step ``n`` depends on
        ``(seed, i, n)`` only.
    record_every
        Record moments every so many steps (and at the end); default: only start and end.
    callback
        ``callback(step, t, X, alive)`` after the initial state and after each step.
    exit_bridge
        Brownian-bridge exit test on absorbing walls (weak order 1 for exits).
    comm
        An mpi4py communicator to shard the particles over (``None``: no MPI).
    progress
        Show a tqdm bar (``None``: only on a terminal).
    """
    n_local = np.shape(X0)[0] if np.ndim(X0) == 2 else 0
    work = float(n_local)
    items = interaction if isinstance(interaction, list | tuple) else [interaction]
    for it in items:
        if isinstance(it, PairwiseInteraction) and it.method == "direct":
            work = max(work, n_local * float(n_local) / 16.0)
    with threads_for(work):
        return _simulate(X0, T, n_steps, dt, sigma, drift, interaction, scheme, box, seed, t0,
                         record_every, callback, exit_bridge, comm, progress)


def _simulate(X0, T, n_steps, dt, sigma, drift, interaction, scheme, box, seed, t0,
              record_every, callback, exit_bridge, comm, progress) -> ParticleRun:
    if scheme not in SCHEMES:
        raise ValueError(f"scheme={scheme!r} is not known; allowed: {list(SCHEMES)}")
    X = _check_positions(X0, name="X0").copy()
    n, d = X.shape
    T, n_steps, dt = _check_time(T, n_steps, dt)
    t0 = float(t0)
    if not np.isfinite(t0):
        raise ValueError(f"t0={t0!r} must be finite")
    seed = check_seed(seed)
    if record_every is not None and (
        isinstance(record_every, bool) or not isinstance(record_every, int | np.integer)
        or record_every < 1
    ):
        raise ValueError(f"record_every={record_every!r} must be a positive integer or None")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback={callback!r} must be callable(step, t, X, alive)")
    box = _as_box(box, d)
    drifts = as_drift_list(drift)
    for dr in drifts:
        dr.check_dim(d)
        dr.check_times(t0, t0 + T)
    affine_drifts = [dr for dr in drifts if dr.affine]
    array_drifts = [dr for dr in drifts if isinstance(dr, ArrayDrift)]
    affine_int, pairwise = _as_interactions(interaction, d, box)
    state_noise = isinstance(sigma, StateDiffusion)
    L = np.zeros((d, d)) if state_noise else noise_matrix(sigma, d)
    milstein = scheme == "milstein"

    # particles start inside the box
    if not box.is_free:
        Xw = X.copy()
        for k in range(d):
            if box.codes[k] == PERIODIC:
                Xw[:, k] = box.lo[k] + np.mod(X[:, k] - box.lo[k], box.hi[k] - box.lo[k])
        inside = box.contains(Xw)
        if not np.all(inside):
            raise ValueError(
                f"X0 has {int(np.count_nonzero(~inside))} particle(s) outside the box {box}"
            )
        X = Xw

    if scheme == "exact":
        problems = []
        if not box.is_free:
            problems.append("a free box")
        if state_noise:
            problems.append("constant noise")
        if array_drifts or pairwise:
            problems.append("only affine drifts and moment interactions")
        if any(not dr.is_constant for dr in affine_drifts):
            problems.append("time-independent affine coefficients")
        if problems:
            raise ValueError("scheme='exact' needs " + ", ".join(problems))

    offset, n_total = local_layout(comm, n)
    keys = StreamKeys(seed)
    alive = np.ones(n, dtype=np.uint8)
    exit_time = np.full(n, np.nan)
    nb = _nblocks(n)
    sums = np.zeros((nb, d))
    counts = np.zeros(nb, dtype=np.int64)
    bad = np.zeros(nb, dtype=np.int64)

    # -- affine coefficients (drifts + moment interactions) -------------------------------------
    dA_int = np.zeros((d, d))
    B_int = np.zeros((d, d))
    for it in affine_int:
        a, b = it.affine_terms(d)
        dA_int += a
        B_int += b

    def affine_at(t):
        A = np.zeros((d, d))
        c = np.zeros(d)
        for dr in affine_drifts:
            a, cc = dr.coefficients(t)
            A += a
            c += cc
        return A, c

    def array_drift(t, Xc, al):
        if not array_drifts and not pairwise:
            return np.zeros((0, d))
        out = np.zeros((n, d))
        for dr in array_drifts:
            dr.add_to(t, Xc, al, out)
        for it in pairwise:
            it.add_drift(Xc, al, out, float(n_total), comm)
        return out

    def noise_at(t, Xc, al):
        if state_noise:
            return sigma.evaluate(t, Xc, al, milstein)
        return np.zeros((0, d)), np.zeros((0, d))

    _moment_kernel(X, alive, np.zeros(d), sums, counts, np.zeros((0, d * d)))
    S_sum, M_alive = reduce_blocks(comm, sums, counts)

    # -- validation of the drift and the diffusion on the initial cloud ------------------------
    with np.errstate(over="ignore", invalid="ignore"):
        A0, c0 = affine_at(t0)
        A0 = A0 + dA_int
        c0 = c0 + B_int @ (S_sum / n_total)
        Barr0 = array_drift(t0, X, alive)
        # the affine part A x + c is finite (A, c, X are) unless it overflows
        xmax = float(np.max(np.abs(X))) if n else 0.0
        if d * float(np.max(np.abs(A0))) * xmax + float(np.max(np.abs(c0))) > 1e300:
            raise ValueError(f"the affine drift overflows at t0={t0} (|X0| up to {xmax:.3g})")
        if Barr0.shape[0] == n:
            badrows = ~np.all(np.isfinite(Barr0), axis=1)
        else:
            badrows = np.zeros(n, dtype=bool)
        if np.any(badrows):
            raise ValueError(
                f"the drift is not finite at t0={t0} for {int(badrows.sum())} particle(s) "
                f"(first at X0[{int(np.argmax(badrows))}] = {X[np.argmax(badrows)].tolist()})"
            )
        S0, dS0 = noise_at(t0, X, alive)
        for name, arr in (("sigma", S0), ("dsigma", dS0)):
            if arr.size and not np.all(np.isfinite(arr)):
                raise ValueError(f"the diffusion {name} is not finite at t0={t0}")
    var_axis = np.diag(L @ L.T).copy()
    codes = box.codes
    lo = np.where(np.isfinite(box.lo), box.lo, 0.0)
    hi = np.where(np.isfinite(box.hi), box.hi, 0.0)

    # -- exact linear step: constant matrices --------------------------------------------------
    if scheme == "exact":
        A_c, c_c = affine_at(t0)
        A_dev = A_c + dA_int
        A_mean = A_dev + B_int
        LLt = L @ L.T
        E_dev, _, Q_dev = ou_transition(A_dev, c_c, LLt, dt)
        E_mean, f_mean, Q_mean = ou_transition(A_mean, c_c, LLt, dt)
        L_dev = psd_factor(Q_dev, "step covariance")
        L_mean = psd_factor(Q_mean, "step covariance")
        coupled = bool(np.any(B_int != 0.0))

    # Euler in free space with constant noise and affine terms only: the branch-free kernel
    # (every particle stays alive, no per-particle drift or diffusion arrays)
    fast_affine = (scheme == "euler" and box.is_free and not state_noise and not array_drifts
                   and not pairwise)

    # -- recording ---------------------------------------------------------------------------
    rec_t, rec_mean, rec_cov, rec_mass = [], [], [], []

    def record(step):
        mean, cov, m_alive = cloud_moments(X, alive, comm)
        rec_t.append(t0 + step * dt)
        rec_mean.append(mean)
        rec_cov.append(cov)
        rec_mass.append(m_alive / n_total)

    record(0)
    if callback is not None:
        callback(0, t0, X, alive.astype(bool))

    use_bar = progress if progress is not None else sys.stderr.isatty()
    bar = None
    if use_bar:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_steps, desc="particles", leave=False)

    steps_done = 0
    interrupted = False
    t_start = time.perf_counter()
    try:
        with np.errstate(over="ignore"):
            for step in range(n_steps):
                t = t0 + step * dt
                t_next = t0 + (step + 1) * dt
                hashes = keys.step_hashes(step)
                if scheme == "exact":
                    xbar = S_sum / n_total
                    shift = (E_mean - E_dev) @ xbar + f_mean
                    if coupled:
                        _noise_sum_kernel(n, d, keys.a, hashes, np.int64(offset), sums)
                        zs, _ = reduce_blocks(comm, sums, counts)
                        shift = shift + (L_mean - L_dev) @ (zs / n_total)
                    _linear_step_kernel(X, E_dev, L_dev, np.ascontiguousarray(shift), keys.a,
                                        hashes, np.int64(offset), sums, counts, bad)
                else:
                    A, c = affine_at(t)
                    mass = M_alive / n_total
                    A = np.ascontiguousarray(A + mass * dA_int)
                    c = np.ascontiguousarray(c + B_int @ (S_sum / n_total))
                    if fast_affine:
                        _euler_affine_free_kernel(X, _pad3(A), _pad3(c),
                                                  _pad3(L * math.sqrt(dt)), dt, keys.a, hashes,
                                                  np.int64(offset), sums, counts)
                    else:
                        Barr = array_drift(t, X, alive)
                        S_arr, dS_arr = noise_at(t, X, alive)
                        _sde_step_kernel(X, alive, exit_time, Barr, _pad3(A), _pad3(c),
                                         _pad3(L * math.sqrt(dt)), S_arr, dS_arr, milstein, dt,
                                         math.sqrt(dt), t_next, keys.a, hashes,
                                         np.int64(offset), codes, lo, hi, var_axis,
                                         exit_bridge, sums, counts, bad)
                steps_done = step + 1
                S_sum, M_alive = reduce_blocks(comm, sums, counts)
                nbad, _ = reduce_blocks(comm, bad.reshape(-1, 1).astype(float), counts)
                if nbad[0] > 0 or not np.all(np.isfinite(S_sum)):
                    n_bad = int(nbad[0]) + int(np.count_nonzero(~np.all(np.isfinite(X), axis=1)))
                    n_bad = int(allreduce_sum(comm, np.array([n_bad]))[0])
                    raise NaNError(
                        f"{n_bad} particle(s) got a non-finite position at step {step} "
                        f"(t={t:.6g} -> {t_next:.6g}): the drift or the diffusion blew up"
                    )
                if (record_every is not None and steps_done % record_every == 0) or \
                        steps_done == n_steps:
                    record(steps_done)
                if callback is not None:
                    callback(steps_done, t_next, X, alive.astype(bool))
                if bar is not None:
                    bar.update(1)
    except KeyboardInterrupt:
        interrupted = True
        if rec_t[-1] != t0 + steps_done * dt:
            record(steps_done)
    finally:
        if bar is not None:
            bar.close()
    elapsed = time.perf_counter() - t_start
    return ParticleRun(
        X=X,
        alive=alive.astype(bool),
        exit_time=exit_time,
        t=np.array(rec_t),
        mean=np.array(rec_mean),
        cov=np.array(rec_cov),
        mass=np.array(rec_mass),
        dt=dt,
        n_steps=n_steps,
        steps_done=steps_done,
        scheme=scheme,
        seed=seed,
        offset=offset,
        n_total=n_total,
        interrupted=interrupted,
        timings={"steps": elapsed},
    )


__all__ = [
    "BLOCK",
    "SCHEMES",
    "ParticleRun",
    "cloud_moments",
    "ou_transition",
    "simulate",
]
