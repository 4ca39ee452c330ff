r"""MF-PID agents as particles: Euler--Maruyama with the closed-form drift.

Every agent :math:`i` draws a start :math:`z_i\sim p_{\rm in}` and follows

.. math::

    x_{n+1} = x_n + u^*(t_n^+, x_n; z_i)\,\Delta t_n + \sqrt{\Delta t_n}\,\xi_{i,n},\qquad
    x_0 = z_i \text{ at } t_0 = \varepsilon,

with the exact Gaussian-mixture drift of :class:`mfg_solvers.analytic.mfpid.MFPID` (shifted
bridge to the whole target). The scheme is Euler--Maruyama (weak order 1, strong order 1/2) on a
grid of :math:`[\varepsilon, 1-\varepsilon]` aligned with the protocol breakpoints
(:func:`aligned_time_grid`). Several guidances -- the mean-field one and the independent-agent
baselines -- are advanced together with **common random numbers**: the same starts and the same
Gaussian increments.

Energies (the convention of the MF-PID paper, M. Chertkov, arXiv:2605.00007; see also the package
documentation, docs/mfpid.md, section "The demand-response study"): the cumulative control energy
with no factor 1/2,
:math:`\mathcal E = \sum_n \Delta t_n\,\tfrac1B\sum_i\|u(t_n, x^i_n)\|^2` (left Riemann sum
along the paths), per zone, the power :math:`P(t_n)`, its peak and the Monte-Carlo standard error
(standard deviation of the per-agent path energies over :math:`\sqrt B`).

Random numbers: the increments are the counter-based normals of
:mod:`mfg_solvers.particles.rng` -- coordinate ``j`` of agent ``i`` at step ``n`` is slot
``j mod 8`` of the virtual step ``n*ceil(d/8) + j // 8`` of agent ``i``'s stream -- so a run is
bit-identical for any number of numba threads. Sums over agents are taken over fixed blocks of
agents in a fixed order for the same reason. The starts come from ``numpy.random.Generator``
seeded from the same seed.

The numba kernel (:func:`_advance`) factorises nothing per agent: the per-time factors
(:math:`(I+K_t\Sigma_k)^{-1}`, log-determinants, scalar coefficients) are computed once per
step by :meth:`MFPID.drift_factors` and shared by all agents and guidances; the per-agent cost is
:math:`O(K d^2)` (:math:`O(K d)` with diagonal target covariances).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from numba import njit, prange

from ..analytic.mfpid import (
    MFPID,
    GaussianMixture,
    MFPIDProtocol,
    _float_array,
    _int,
    _real,
    geometric_beta,
    linear_guidance,
)
from ..errors import ConvergenceError, NaNError
from .rng import SLOTS, StreamKeys, check_seed, mix64, normal_from_bits, particle_key

__all__ = [
    "aligned_time_grid",
    "AgentRuns",
    "simulate_agents",
    "agent_noise",
    "FixedPointResult",
    "fixed_point_guidance",
    "ScenarioResult",
    "run_scenario",
    "scenario_from_spec",
    "simulate_lqg_agents",
]

#: Agents per block of the reductions of the linear-feedback kernel (fixed, independent of the
#: thread count).
BLOCK = 32
#: Floating-point flags of the kernels: reassociation (vectorised dot products) and FMA
#: contraction only; NaN and infinity semantics are kept. The order of every sum is fixed at
#: compile time, so results do not depend on the number of threads.
_FASTMATH = {"reassoc", "contract"}
#: Up to this dimension the dense products are written out as loops; above it a block product
#: is one BLAS matrix product.
SMALL_DENSE = 8


# ---------------------------------------------------------------------------------------------
# time grid
# ---------------------------------------------------------------------------------------------
def aligned_time_grid(breaks, n_steps: int = 2500, eps: float = 1e-3) -> np.ndarray:
    r"""Grid of ``n_steps`` steps on :math:`[\varepsilon, 1-\varepsilon]` aligned with ``breaks``.

    The breakpoints are clamped to the window; each piece gets a number of uniform steps
    proportional to its length (floor, at least one; the remaining steps go to the largest
    fractional parts), so :math:`\Delta t\approx(1-2\varepsilon)/N` throughout.
    Returns the ``N + 1`` grid times.
    """
    br = _float_array("breaks", breaks)
    n_steps = _int("n_steps", n_steps)
    eps = _real("eps", eps, positive=True)
    if eps >= 0.5:
        raise ValueError(f"eps={eps!r} must be < 0.5")
    edges = np.unique(np.clip(br, eps, 1.0 - eps))
    lengths = np.diff(edges)
    if n_steps < lengths.size:
        raise ValueError(
            f"n_steps={n_steps} is smaller than the number of pieces ({lengths.size})"
        )
    raw = n_steps * lengths / lengths.sum()
    counts = np.maximum(np.floor(raw).astype(np.int64), 1)
    frac = raw - np.floor(raw)
    deficit = n_steps - int(counts.sum())
    order = np.argsort(-frac, kind="stable")
    k = 0
    while deficit > 0:
        counts[order[k % order.size]] += 1
        deficit -= 1
        k += 1
    k = 0
    while deficit < 0:  # the "at least one" rule overshot: take from the smallest fractions
        j = order[::-1][k % order.size]
        if counts[j] > 1:
            counts[j] -= 1
            deficit += 1
        k += 1
    pieces = [np.linspace(a, b, c + 1)[:-1] for a, b, c in zip(edges[:-1], edges[1:], counts,
                                                               strict=True)]
    return np.concatenate(pieces + [np.array([edges[-1]])])


# ---------------------------------------------------------------------------------------------
# noise
# ---------------------------------------------------------------------------------------------
def _virtual_steps(d: int) -> int:
    return -(-d // SLOTS)


def _noise_hashes(seed: int, steps: np.ndarray, d: int) -> np.ndarray:
    """Per-step stream hashes, shape (len(steps), d), uint64."""
    keys = StreamKeys(seed)
    nv = _virtual_steps(d)
    out = np.empty((steps.size, nv * SLOTS), dtype=np.uint64)
    for n, s in enumerate(steps):
        for q in range(nv):
            out[n, q * SLOTS:(q + 1) * SLOTS] = keys.step_hashes(int(s) * nv + q)
    return np.ascontiguousarray(out[:, :d])


def agent_noise(seed: int, n_agents: int, d: int, step: int) -> np.ndarray:
    r"""The standard normals :math:`\xi_{i,n}` (shape (B, d)) used at step ``step`` by every run.

    Coordinate ``j`` is slot ``j mod 8`` of virtual step ``step * ceil(d/8) + j // 8`` of the
    agent's stream in :mod:`mfg_solvers.particles.rng` (so the first eight coordinates equal
    ``rng.standard_normals(seed, B, 8, step * ceil(d/8))``)."""
    seed = check_seed(seed)
    keys = _agent_keys(seed, _int("n_agents", n_agents))
    hashes = _noise_hashes(seed, np.array([_int("step", step, minimum=0)]), _int("d", d))
    out = np.empty((keys.size, d))
    with np.errstate(over="ignore"):
        _normals_serial(keys, hashes[0], out)
    return out


@njit(cache=True)
def _normals_serial(keys, hashes, out):
    for i in range(keys.shape[0]):
        for j in range(hashes.shape[0]):
            out[i, j] = normal_from_bits(mix64(keys[i] + hashes[j]))


def _agent_keys(seed: int, n_agents: int) -> np.ndarray:
    keys = StreamKeys(seed)
    return _keys_kernel(keys.a, n_agents)


@njit(cache=True)
def _keys_kernel(seed_a, n):
    out = np.empty(n, dtype=np.uint64)
    for i in range(n):
        out[i] = particle_key(seed_a, np.uint64(i))
    return out


# ---------------------------------------------------------------------------------------------
# the kernel
# ---------------------------------------------------------------------------------------------
@njit(cache=True, parallel=True, fastmath=_FASTMATH)
def _advance(xs, z, keys, hashes, dts, sc, thx, dbar, P, logw0, means, zone_e, pow_part,
             mean_part, block):
    """Advance ``R`` guidances of ``B`` agents by ``len(dts)`` Euler--Maruyama steps, in place.

    xs (R, B, d): shifted positions x - z; z (B, d) starts; keys (B,) agent stream keys;
    hashes (nc, d) step hashes; dts (nc,); sc (nc, 6) = a, b, alpha, K, lam_x, kz;
    thx, dbar (R, nc, d); P (nc, K, d, d) or diagonals (nc, K, 1, d); logw0 (nc, K);
    means (K, d). Accumulates zone_e (R, B, d) += dt u^2; writes per-block sums of |u|^2
    (pow_part (R, nc, nblk)) and of the positions at the start of each step
    (mean_part (R, nc, nblk, d)).

    Blocks of ``block`` agents are independent and run in parallel (one parallel region per
    call, the steps inside); inside a block the data are held coordinate-major (d, nb) so that
    every loop runs over agents (SIMD). With dense covariances the products :math:`P_k v_k` of a
    block are one (d x d) @ (d x nb) matrix product (BLAS) when d > ``SMALL_DENSE``, loops
    otherwise; with diagonal ones the whole weight computation is one sweep over coordinates.
    """
    R, B, d = xs.shape
    nc = dts.shape[0]
    Kc = means.shape[0]
    diag = P.shape[2] == 1
    nblk = (B + block - 1) // block
    for ib in prange(nblk):
        i0 = ib * block
        nb = min(B, i0 + block) - i0
        X = np.empty((R, d, nb))
        Zs = np.empty((d, nb))
        E = np.zeros((R, d, nb))
        xi = np.empty((d, nb))
        mu = np.empty((d, nb))
        v = np.empty((Kc, d, nb))
        g = np.empty((Kc, d, nb))
        w = np.empty((Kc, nb))
        usq = np.empty(nb)
        acc = np.empty(nb)
        for a in range(nb):
            for j in range(d):
                Zs[j, a] = z[i0 + a, j]
                for r in range(R):
                    X[r, j, a] = xs[r, i0 + a, j]
        for n in range(nc):
            dt = dts[n]
            sq = math.sqrt(dt)
            ca = sc[n, 0]
            cb = sc[n, 1]
            al = sc[n, 2]
            Kt = sc[n, 3]
            lx = sc[n, 4]
            kz = sc[n, 5]
            for a in range(nb):
                key = keys[i0 + a]
                for j in range(d):
                    xi[j, a] = normal_from_bits(mix64(key + hashes[n, j]))
            for r in range(R):
                # mu = alpha x~ + dbar + kz z; v_k = mu - m_k + z; g_k = P_k v_k; w_k = v_k . g_k
                # (diagonal P_k: all in one sweep over the coordinates)
                for k in range(Kc):
                    for a in range(nb):
                        w[k, a] = 0.0
                for j in range(d):
                    dj = dbar[r, n, j]
                    sm = 0.0
                    for a in range(nb):
                        xa = X[r, j, a]
                        za = Zs[j, a]
                        sm += xa + za
                        mu[j, a] = al * xa + dj + kz * za
                    mean_part[r, n, ib, j] = sm
                    if diag:
                        for k in range(Kc):
                            mk = means[k, j]
                            p = P[n, k, 0, j]
                            for a in range(nb):
                                vv = mu[j, a] - mk + Zs[j, a]
                                gg = p * vv
                                g[k, j, a] = gg
                                w[k, a] += vv * gg
                    else:
                        for k in range(Kc):
                            mk = means[k, j]
                            for a in range(nb):
                                v[k, j, a] = mu[j, a] - mk + Zs[j, a]
                if diag:
                    for k in range(Kc):
                        lw0 = logw0[n, k]
                        for a in range(nb):
                            w[k, a] = lw0 - 0.5 * Kt * w[k, a]
                else:
                    if d > SMALL_DENSE:
                        for k in range(Kc):
                            np.dot(P[n, k], v[k], g[k])
                    else:
                        for k in range(Kc):
                            for j in range(d):
                                for a in range(nb):
                                    acc[a] = 0.0
                                for jj in range(d):
                                    p = P[n, k, j, jj]
                                    for a in range(nb):
                                        acc[a] += p * v[k, jj, a]
                                for a in range(nb):
                                    g[k, j, a] = acc[a]
                    for j in range(d):
                        for k in range(Kc):
                            for a in range(nb):
                                w[k, a] += v[k, j, a] * g[k, j, a]
                    for k in range(Kc):
                        lw0 = logw0[n, k]
                        for a in range(nb):
                            w[k, a] = lw0 - 0.5 * Kt * w[k, a]
                # max-shift softmax over the components (w holds the normalised weights)
                for a in range(nb):
                    mx = w[0, a]
                    for k in range(1, Kc):
                        mx = max(mx, w[k, a])
                    s = 0.0
                    for k in range(Kc):
                        e = math.exp(w[k, a] - mx)
                        w[k, a] = e
                        s += e
                    for k in range(Kc):
                        w[k, a] /= s
                    usq[a] = 0.0
                for j in range(d):
                    for a in range(nb):
                        acc[a] = mu[j, a]
                    for k in range(Kc):
                        for a in range(nb):
                            acc[a] -= w[k, a] * g[k, j, a]
                    tj = thx[r, n, j]
                    for a in range(nb):
                        u = -ca * X[r, j, a] + tj - lx * Zs[j, a] + cb * acc[a]
                        uu = u * u
                        usq[a] += uu
                        E[r, j, a] += dt * uu
                        X[r, j, a] += u * dt + sq * xi[j, a]
                ps = 0.0
                for a in range(nb):
                    ps += usq[a]
                pow_part[r, n, ib] = ps
        for a in range(nb):
            for j in range(d):
                for r in range(R):
                    xs[r, i0 + a, j] = X[r, j, a]
                    zone_e[r, i0 + a, j] += E[r, j, a]


def _block_size(d: int) -> int:
    """Agents per block: 128, fewer for large d so that a block product (d x d) @ (d x block)
    stays below OpenBLAS's threading threshold (one BLAS thread per numba thread). A function of
    d only, so the reductions never depend on the thread count."""
    return int(max(8, min(128, 262144 // (d * d))))


# ---------------------------------------------------------------------------------------------
# simulation driver
# ---------------------------------------------------------------------------------------------
@dataclass
class AgentRuns:
    """Result of :func:`simulate_agents`; every dict is keyed by guidance name.

    Attributes
    ----------
    t : (N+1,) grid times.
    starts : (B, d) the common starts.
    energy, energy_se : cumulative energy (no 1/2) and its Monte-Carlo standard error.
    agent_energy : (B,) per-agent path energies.
    zone_energy : (d,) per-coordinate energies.
    power : (N,) :math:`\\tfrac1B\\sum_i\\|u(t_n,x^i_n)\\|^2` at ``t[:-1]``.
    peak_power : largest value of ``power``.
    mean_path : (N+1, d) sample mean of the positions on the grid.
    final : (B, d) positions at ``t[-1]``.
    snapshots : (n_snap, B, d) positions at the grid indices ``snapshot_index``.
    """

    t: np.ndarray
    starts: np.ndarray
    names: list
    energy: dict = field(default_factory=dict)
    energy_se: dict = field(default_factory=dict)
    agent_energy: dict = field(default_factory=dict)
    zone_energy: dict = field(default_factory=dict)
    power: dict = field(default_factory=dict)
    peak_power: dict = field(default_factory=dict)
    mean_path: dict = field(default_factory=dict)
    final: dict = field(default_factory=dict)
    snapshots: dict = field(default_factory=dict)
    snapshot_index: np.ndarray | None = None
    wall_time: float = 0.0

    def saving(self, run: str = "mf", reference: str = "ia_zero") -> tuple[float, float]:
        r"""Saving :math:`1-\mathcal E_{\rm run}/\mathcal E_{\rm ref}` and its standard error.

        The error uses the paired per-agent energies (common random numbers, delta method)."""
        for nm in (run, reference):
            if nm not in self.energy:
                raise ValueError(f"run {nm!r} not simulated; available: {self.names}")
        e1, e0 = self.agent_energy[run], self.agent_energy[reference]
        ratio = e1.mean() / e0.mean()
        se = np.std(e1 - ratio * e0, ddof=1) / (np.sqrt(e1.size) * e0.mean())
        return float(1.0 - ratio), float(se)

    def energy_by_label(self, labels, run: str = "mf") -> np.ndarray:
        """Mean path energy of the agents with each start label (e.g. the start component)."""
        lab = np.asarray(labels)
        e = self.agent_energy[run]
        return np.array([e[lab == k].mean() if np.any(lab == k) else np.nan
                         for k in range(int(lab.max()) + 1)])


def _check_engines(target, protocols):
    if isinstance(protocols, MFPIDProtocol):
        protocols = {"mf": protocols}
    if not isinstance(protocols, Mapping) or len(protocols) == 0:
        raise TypeError(
            f"protocols={protocols!r} must be an MFPIDProtocol or a non-empty dict of them")
    if not isinstance(target, GaussianMixture):
        raise TypeError(f"target={target!r} must be a GaussianMixture")
    names = list(protocols)
    p0 = protocols[names[0]]
    engines = {}
    for nm in names:
        p = protocols[nm]
        if not isinstance(p, MFPIDProtocol):
            raise TypeError(f"protocols[{nm!r}]={p!r} must be an MFPIDProtocol")
        if p.breaks.shape != p0.breaks.shape or np.any(p.breaks != p0.breaks) or np.any(
                p.beta != p0.beta):
            raise ValueError(
                f"protocols[{nm!r}] has other breaks or beta than protocols[{names[0]!r}]; "
                "runs with common random numbers must share the stiffness"
            )
        engines[nm] = MFPID(target, p)
    return names, engines


def _use_progress(progress) -> bool:
    if progress is None:
        return bool(getattr(sys.stderr, "isatty", lambda: False)())
    return bool(progress)


def simulate_agents(target: GaussianMixture, protocols, starts, t_grid, *, seed: int,
                    snapshot_index: Sequence[int] | None = None, backend: str = "numba",
                    covariance: str = "auto", chunk_steps: int = 64,
                    progress: bool | None = None) -> AgentRuns:
    r"""Simulate MF-PID agents for one or several guidances with common random numbers.

    Parameters
    ----------
    target
        :math:`p_{\rm tar}`.
    protocols
        An :class:`MFPIDProtocol` or a dict ``name -> MFPIDProtocol`` (same breaks and stiffness,
        different guidances), e.g. ``{"mf": ..., "ia_zero": ..., "ia_target": ...}``.
    starts
        (B, d) agent starts :math:`z_i` (zeros for a Dirac start at the origin).
    t_grid
        (N+1,) increasing times inside (0, 1), usually :func:`aligned_time_grid`.
    seed
        Seed of the Brownian increments (non-negative integer).
    snapshot_index
        Grid indices at which the whole cloud is stored.
    backend
        ``"numba"`` (parallel kernel) or ``"numpy"`` (vectorised :meth:`MFPID.drift`, the plain
        reference implementation; same random numbers, same results to round-off).
    covariance
        ``"auto"`` (diagonal kernel when every target covariance is diagonal), ``"dense"`` or
        ``"diagonal"``.
    chunk_steps
        Steps per kernel call (per-time factors are computed for a chunk at once).
    progress
        tqdm progress bar (default: only on a terminal).
    """
    names, engines = _check_engines(target, protocols)
    seed = check_seed(seed)
    d = target.dim
    Z = _float_array("starts", starts)
    if d == 1 and Z.ndim == 1:
        Z = Z[:, None]
    if Z.ndim != 2 or Z.shape[1] != d or Z.shape[0] < 1:
        raise ValueError(f"starts has shape {Z.shape}; expected (B, {d}) with B >= 1")
    Z = np.ascontiguousarray(Z)
    t = _float_array("t_grid", t_grid)
    if t.ndim != 1 or t.size < 2 or np.any(np.diff(t) <= 0) or t[0] <= 0 or t[-1] >= 1:
        raise ValueError("t_grid must be an increasing 1-D array of at least 2 times in (0, 1)")
    if backend not in ("numba", "numpy"):
        raise ValueError(f"backend={backend!r}; allowed: 'numba', 'numpy'")
    if covariance not in ("auto", "dense", "diagonal"):
        raise ValueError(f"covariance={covariance!r}; allowed: 'auto', 'dense', 'diagonal'")
    diag = {"auto": None, "dense": False, "diagonal": True}[covariance]
    chunk_steps = _int("chunk_steps", chunk_steps)
    N = t.size - 1
    B = Z.shape[0]
    R = len(names)
    snaps = np.array([], dtype=np.int64) if snapshot_index is None else np.unique(
        np.asarray(snapshot_index, dtype=np.int64))
    if snaps.size and (snaps.min() < 0 or snaps.max() > N):
        raise ValueError(f"snapshot_index must lie in [0, {N}]")
    # chunk boundaries include the snapshot indices
    bounds = np.unique(np.concatenate([np.arange(0, N, chunk_steps), snaps[snaps < N], [N]]))

    e0 = engines[names[0]]
    xs = np.zeros((R, B, d))
    zone_e = np.zeros((R, B, d))
    power = np.empty((R, N))
    mean_path = np.empty((R, N + 1, d))
    snap_store = np.empty((R, snaps.size, B, d))
    block = _block_size(d)
    nblk = (B + block - 1) // block
    keys = _agent_keys(seed, B)
    means = np.ascontiguousarray(target.means)
    use_bar = _use_progress(progress)
    bar = None
    if use_bar:
        from tqdm.auto import tqdm

        bar = tqdm(total=N, desc="agents", unit="step")
    t_start = time.perf_counter()
    try:
        for c0, c1 in zip(bounds[:-1], bounds[1:], strict=True):
            for s_i in np.nonzero(snaps == c0)[0]:
                snap_store[:, s_i] = xs + Z[None]
            tn = t[c0:c1]
            dts = np.diff(t[c0:c1 + 1])
            f = e0.drift_factors(tn, diagonal=diag)
            terms = [engines[nm].guidance_terms(tn) for nm in names]
            thx = np.ascontiguousarray(np.stack([tr[0] for tr in terms]))
            dbar = np.ascontiguousarray(np.stack([tr[1] for tr in terms]))
            if backend == "numba":
                hashes = _noise_hashes(seed, np.arange(c0, c1), d)
                P = f.P[:, :, None, :] if f.diagonal else f.P
                pow_part = np.empty((R, c1 - c0, nblk))
                mean_part = np.empty((R, c1 - c0, nblk, d))
                with np.errstate(over="ignore"):
                    _advance(xs, Z, keys, hashes, dts, f.scalars(), thx, dbar,
                             np.ascontiguousarray(P), f.logw0, means, zone_e, pow_part,
                             mean_part, block)
                power[:, c0:c1] = pow_part.sum(axis=2) / B
                mean_path[:, c0:c1] = mean_part.sum(axis=2) / B
            else:
                hashes = _noise_hashes(seed, np.arange(c0, c1), d)
                xi = np.empty((B, d))
                for m in range(c1 - c0):
                    with np.errstate(over="ignore"):
                        _normals_serial(keys, hashes[m], xi)
                    for r in range(R):
                        fr = replace(f, theta_x=thx[r], dbar=dbar[r])
                        X = xs[r] + Z
                        mean_path[r, c0 + m] = X.mean(axis=0)
                        u = e0.drift(tn[m], X, Z, factors=fr, index=m)
                        uu = u * u
                        power[r, c0 + m] = uu.sum(axis=1).mean()
                        zone_e[r] += dts[m] * uu
                        xs[r] += u * dts[m] + np.sqrt(dts[m]) * xi
            if not np.all(np.isfinite(power[:, c0:c1])):
                raise NaNError(
                    f"non-finite drift between t={t[c0]:.6g} and t={t[c1]:.6g}; "
                    "check the target covariances and eps"
                )
            if bar is not None:
                bar.update(int(c1 - c0))
    finally:
        if bar is not None:
            bar.close()
    wall = time.perf_counter() - t_start
    if not np.all(np.isfinite(xs)):
        raise NaNError("non-finite agent positions at the end of the simulation")
    for s_i in np.nonzero(snaps == N)[0]:
        snap_store[:, s_i] = xs + Z[None]
    out = AgentRuns(t=t, starts=Z, names=names, snapshot_index=snaps, wall_time=wall)
    final = xs + Z[None]
    mean_path[:, N] = final.mean(axis=1)
    for r, nm in enumerate(names):
        ae = zone_e[r].sum(axis=1)
        out.agent_energy[nm] = ae
        out.energy[nm] = float(ae.mean())
        out.energy_se[nm] = float(ae.std(ddof=1) / np.sqrt(B)) if B > 1 else float("nan")
        out.zone_energy[nm] = zone_e[r].mean(axis=0)
        out.power[nm] = power[r]
        out.peak_power[nm] = float(power[r].max())
        out.mean_path[nm] = mean_path[r]
        out.final[nm] = final[r]
        out.snapshots[nm] = snap_store[r]
    return out


# ---------------------------------------------------------------------------------------------
# damped fixed point on the guidance
# ---------------------------------------------------------------------------------------------
@dataclass
class FixedPointResult:
    """Result of :func:`fixed_point_guidance`.

    ``nu`` (M, d) the converged guidance; ``line`` (M, d) the theorem guidance from the same
    start mean; ``history`` the sup-norm changes per iteration; ``m_in`` the start mean used.
    """

    nu: np.ndarray
    line: np.ndarray
    history: list
    iterations: int
    converged: bool
    m_in: np.ndarray


def fixed_point_guidance(target: GaussianMixture, p_in, beta, breaks=None, *,
                         estimator: str = "exact", n_agents: int = 2000, n_steps: int = 500,
                         eps: float = 1e-3, seed: int = 0, starts=None, damping: float = 0.5,
                         tol: float = 2e-4, max_iter: int = 60, initial: str = "line",
                         raise_on_failure: bool = True) -> FixedPointResult:
    r"""Self-consistent guidance :math:`\nu_i = m_{t^{\rm mid}_i}[\nu]` by damped fixed point.

    The map sends a piecewise-constant guidance to the population mean at the interval
    midpoints: exactly (``estimator="exact"``, :math:`m_t = A_t\bar m_{\rm in} + B_t\bar m_{\rm tar}
    + c_t[\nu]`) or by simulation (``"mc"``, sample mean of ``n_agents`` agents with common
    random numbers across iterations, linearly interpolated on the grid). Update
    :math:`\nu\leftarrow\nu + \text{damping}\,(F(\nu) - \nu)`; stop when the sup-norm change is
    below ``tol``. ``initial="line"`` starts from the theorem guidance, ``"perturbed"`` from the
    line plus :math:`0.35\sin(2\pi t)(\bar m_{\rm tar}-\bar m_{\rm in})`. The start mean is
    :math:`\bar m_{\rm in}` of ``p_in`` (``"exact"``) or the sample mean of the drawn starts
    (``"mc"``), and ``line`` is built from it.
    """
    if not isinstance(target, GaussianMixture):
        raise TypeError(f"target={target!r} must be a GaussianMixture")
    if estimator not in ("exact", "mc"):
        raise ValueError(f"estimator={estimator!r}; allowed: 'exact', 'mc'")
    if initial not in ("line", "perturbed"):
        raise ValueError(f"initial={initial!r}; allowed: 'line', 'perturbed'")
    damping = _real("damping", damping, positive=True)
    if damping > 1:
        raise ValueError(f"damping={damping!r} must lie in (0, 1]")
    tol = _real("tol", tol, positive=True)
    max_iter = _int("max_iter", max_iter)
    prot0 = MFPIDProtocol(beta, np.zeros(target.dim), breaks)
    br = prot0.breaks
    tm = prot0.midpoints
    d = target.dim
    if estimator == "mc":
        if starts is None:
            if not isinstance(p_in, GaussianMixture):
                raise TypeError("p_in must be a GaussianMixture when starts are not given")
            starts = p_in.sample(_int("n_agents", n_agents), np.random.SeedSequence(seed))
        Z = np.asarray(starts, dtype=np.float64).reshape(-1, d)
        m_in = Z.mean(axis=0)
        grid = aligned_time_grid(br, n_steps, eps)
        noise_seed = _noise_seed(seed)
    else:
        m_in = p_in.mean if isinstance(p_in, GaussianMixture) else np.atleast_1d(
            _float_array("p_in", p_in))
    line = linear_guidance(br, m_in, target.mean)
    nu = line.copy()
    if initial == "perturbed":
        nu += 0.35 * np.sin(2 * np.pi * tm)[:, None] * (target.mean - m_in)[None, :]
    history: list[float] = []
    converged = False
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007
        prot = prot0.with_nu(nu)
        if estimator == "exact":
            F = MFPID(target, prot).mean(tm, m_in)
        else:
            runs = simulate_agents(target, {"mf": prot}, Z, grid, seed=noise_seed,
                                   progress=False)
            mp = runs.mean_path["mf"]
            F = np.stack([np.interp(tm, grid, mp[:, j]) for j in range(d)], axis=1)
        step = damping * (F - nu)
        nu = nu + step
        change = float(np.abs(step).max())
        history.append(change)
        if not np.isfinite(change):
            raise NaNError("the fixed-point iteration on the guidance produced a non-finite value")
        if change < tol:
            converged = True
            break
    res = FixedPointResult(nu, line, history, it, converged, m_in)
    if not converged and raise_on_failure:
        raise ConvergenceError(
            f"guidance fixed point not converged in {max_iter} iterations "
            f"(last change {history[-1]:.3g} > tol={tol:g})", history=history)
    return res


def _noise_seed(seed) -> int:
    ss = np.random.SeedSequence(seed)
    return int(ss.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


# ---------------------------------------------------------------------------------------------
# scenarios (the interface of the demand-response study)
# ---------------------------------------------------------------------------------------------
@dataclass
class ScenarioResult:
    """Energies of the mean-field run and the independent-agent baselines of one scenario.

    Dicts are keyed by run name (``"mf"``, ``"ia_zero"``, ``"ia_target"`` and, with
    ``mf_guidance="fixed_point"``, ``"ia_linear"``). ``savings`` holds
    :math:`1-\\mathcal E_{\\rm MF}/\\mathcal E_{\\rm ref}` for ``ref`` in the baselines.
    """

    estimator: str
    d: int
    energy: dict
    energy_se: dict
    zone_energy: dict
    peak_power: dict
    savings: dict
    savings_se: dict
    guidance: dict
    t: np.ndarray
    power: dict
    settings: dict
    wall_time: float
    runs: AgentRuns | None = None

    @property
    def energy_mf(self) -> float:
        return self.energy["mf"]

    @property
    def energy_ia_zero(self) -> float:
        return self.energy["ia_zero"]

    @property
    def energy_ia_target(self) -> float:
        return self.energy["ia_target"]

    def summary(self) -> dict:
        """Named scalar outputs (JSON-serialisable)."""
        out = {"estimator": self.estimator, "d": self.d, "wall_time_s": self.wall_time}
        for nm in self.energy:
            out[f"energy_{nm}"] = self.energy[nm]
            out[f"energy_se_{nm}"] = self.energy_se[nm]
            out[f"peak_power_{nm}"] = self.peak_power[nm]
            out[f"zone_energy_{nm}"] = [float(v) for v in self.zone_energy[nm]]
        for ref, v in self.savings.items():
            key = "savings" if ref == "ia_zero" else f"savings_vs_{ref}"
            out[key] = v
            out[key + "_se"] = self.savings_se[ref]
        out.update({k: v for k, v in self.settings.items() if np.isscalar(v)})
        return out


def run_scenario(p_in: GaussianMixture, p_tar: GaussianMixture, *, beta=None, breaks=None,
                 n_intervals: int = 8, eps: float = 1e-3, estimator: str = "mc",
                 n_agents: int = 4000, n_steps: int = 2500, seed: int = 0,
                 mf_guidance: str = "theorem", guidance_mean: str = "population",
                 covariance: str = "auto", backend: str = "numba",
                 n_hermite: int | None = None, keep_runs: bool = False,
                 progress: bool | None = None) -> ScenarioResult:
    r"""Energy of the mean-field guidance against the independent-agent baselines.

    Parameters
    ----------
    p_in, p_tar
        Start and target laws.
    beta, breaks, n_intervals
        Stiffness per interval (default: the geometric profile :math:`12\cdot0.65^{8i/M}` on
        ``n_intervals`` equal intervals) and optional breakpoints.
    eps
        Time window :math:`[\varepsilon, 1-\varepsilon]`.
    estimator
        ``"mc"``: agents with common random numbers (``n_agents``, ``n_steps``, ``seed``);
        ``"quadrature"``: deterministic Gauss--Hermite / Gauss--Legendre integration over the
        closed-form marginal (``d <= 2``; standard errors are 0).
    mf_guidance
        ``"theorem"``: the linear guidance at the interval midpoints; ``"fixed_point"``: the
        damped fixed point of the mean map (exact map for ``"quadrature"``, simulated for
        ``"mc"``), with the theorem guidance reported as the extra run ``"ia_linear"``.
    guidance_mean
        ``"population"`` (:math:`\bar m_{\rm in}` of ``p_in``) or ``"sample"`` (mean of the drawn
        starts) as the start of the linear guidance (Monte Carlo only).
    covariance, backend
        Passed to :func:`simulate_agents`.
    n_hermite
        Gauss--Hermite nodes per coordinate of the quadrature estimator (default 24 in 1-D,
        12 in 2-D).
    keep_runs
        Keep the :class:`AgentRuns` (paths statistics, per-agent energies) in the result.

    Returns a :class:`ScenarioResult`; :meth:`ScenarioResult.summary` gives ``energy_mf``,
    ``energy_ia_zero``, ``energy_ia_target``, ``savings`` (against IA(nu=0)),
    ``savings_vs_ia_target``, the per-zone energies, peak powers and standard errors.
    """
    if not isinstance(p_in, GaussianMixture) or not isinstance(p_tar, GaussianMixture):
        raise TypeError("p_in and p_tar must be GaussianMixture objects")
    if p_in.dim != p_tar.dim:
        raise ValueError(f"p_in has dimension {p_in.dim} but p_tar has {p_tar.dim}")
    if estimator not in ("mc", "quadrature"):
        raise ValueError(f"estimator={estimator!r}; allowed: 'mc', 'quadrature'")
    if mf_guidance not in ("theorem", "fixed_point"):
        raise ValueError(f"mf_guidance={mf_guidance!r}; allowed: 'theorem', 'fixed_point'")
    if guidance_mean not in ("population", "sample"):
        raise ValueError(f"guidance_mean={guidance_mean!r}; allowed: 'population', 'sample'")
    seed = check_seed(seed)
    d = p_tar.dim
    if estimator == "quadrature" and d > 2:
        raise ValueError(f"estimator='quadrature' needs d <= 2 (got d={d}); use 'mc'")
    if beta is None:
        beta = geometric_beta(_int("n_intervals", n_intervals))
    prot0 = MFPIDProtocol(beta, np.zeros(d), breaks)
    br = prot0.breaks
    t0 = time.perf_counter()
    settings = {"eps": float(eps), "n_intervals": prot0.n_intervals, "seed": seed,
                "mf_guidance": mf_guidance, "guidance_mean": guidance_mean}
    starts = None
    m_in = p_in.mean
    if estimator == "mc":
        n_agents = _int("n_agents", n_agents)
        n_steps = _int("n_steps", n_steps)
        ss_starts = np.random.SeedSequence(seed).spawn(1)[0]
        starts = p_in.sample(n_agents, ss_starts)
        if guidance_mean == "sample":
            m_in = starts.mean(axis=0)
        settings.update(n_agents=n_agents, n_steps=n_steps)
    guid = {
        "mf": linear_guidance(br, m_in, p_tar.mean),
        "ia_zero": np.zeros((prot0.n_intervals, d)),
        "ia_target": np.repeat(p_tar.mean[None, :], prot0.n_intervals, axis=0),
    }
    if mf_guidance == "fixed_point":
        fp = fixed_point_guidance(
            p_tar, p_in if estimator == "quadrature" else None, prot0.beta, br,
            estimator="exact" if estimator == "quadrature" else "mc",
            n_steps=n_steps, eps=eps, seed=seed, starts=starts)
        guid["ia_linear"] = guid["mf"]
        guid["mf"] = fp.nu
        settings["fixed_point_iterations"] = fp.iterations
    protocols = {nm: prot0.with_nu(nu) for nm, nu in guid.items()}
    runs = None
    if estimator == "mc":
        runs = simulate_agents(p_tar, protocols, starts, aligned_time_grid(br, n_steps, eps),
                               seed=_noise_seed(seed), covariance=covariance, backend=backend,
                               progress=progress)
        energy, energy_se = runs.energy, runs.energy_se
        zone, peak, power, t = runs.zone_energy, runs.peak_power, runs.power, runs.t[:-1]
        savings, savings_se = {}, {}
        for ref in [nm for nm in runs.names if nm != "mf"]:
            savings[ref], savings_se[ref] = runs.saving("mf", ref)
    else:
        energy, energy_se, zone, peak, power = {}, {}, {}, {}, {}
        if n_hermite is None:
            n_hermite = 24 if d == 1 else 12
        for nm, p in protocols.items():
            q = MFPID(p_tar, p).energy_quadrature(p_in, eps=eps, n_hermite=n_hermite)
            energy[nm], energy_se[nm] = q["energy"], 0.0
            zone[nm], peak[nm], power[nm], t = q["zone_energy"], q["peak_power"], q["power"], q["t"]
        savings = {ref: 1.0 - energy["mf"] / energy[ref] for ref in energy if ref != "mf"}
        savings_se = {ref: 0.0 for ref in savings}
    return ScenarioResult(estimator, d, dict(energy), dict(energy_se), dict(zone), dict(peak),
                          savings, savings_se, guid, t, dict(power), settings,
                          time.perf_counter() - t0, runs if keep_runs else None)


def _mixture_from_spec(name: str, spec) -> GaussianMixture:
    if not isinstance(spec, Mapping):
        raise TypeError(f"{name}={spec!r} must be a table with weights, means and covs or stds")
    if "covs" in spec and "stds" in spec:
        raise ValueError(f"{name}: give either 'covs' or 'stds', not both")
    if "stds" in spec:
        return GaussianMixture.diagonal(spec["weights"], spec["means"], spec["stds"])
    if "covs" in spec:
        return GaussianMixture(spec["weights"], spec["means"], spec["covs"])
    raise ValueError(f"{name} needs 'covs' or 'stds'")


def scenario_from_spec(spec: Mapping) -> ScenarioResult:
    """Run a scenario described by plain data (e.g. a TOML table).

    Keys: ``start`` and ``target`` (tables with ``weights``, ``means`` and ``covs`` or
    ``stds``), optional ``d`` and ``K`` (checked against the target), ``beta`` (list, or a table
    ``{beta0, ratio}`` for the geometric profile), ``n_intervals``, ``breaks``, ``eps``,
    ``estimator``, ``n_agents`` (samples), ``n_steps``, ``seed``, ``mf_guidance``,
    ``guidance_mean``, ``covariance``.
    """
    if not isinstance(spec, Mapping):
        raise TypeError(f"spec={spec!r} must be a mapping")
    allowed = {"start", "target", "d", "K", "beta", "n_intervals", "breaks", "eps", "estimator",
               "n_agents", "n_steps", "seed", "mf_guidance", "guidance_mean", "covariance"}
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise ValueError(f"unknown scenario keys {unknown}; allowed: {sorted(allowed)}")
    for key in ("start", "target"):
        if key not in spec:
            raise ValueError(f"scenario spec needs a '{key}' table")
    p_in = _mixture_from_spec("start", spec["start"])
    p_tar = _mixture_from_spec("target", spec["target"])
    if "d" in spec and spec["d"] != p_tar.dim:
        raise ValueError(f"d={spec['d']!r} but the target has dimension {p_tar.dim}")
    if "K" in spec and spec["K"] != p_tar.n_components:
        raise ValueError(f"K={spec['K']!r} but the target has {p_tar.n_components} components")
    n_int = spec.get("n_intervals", 8)
    beta = spec.get("beta")
    if isinstance(beta, Mapping):
        beta = geometric_beta(n_int, beta.get("beta0", 12.0), beta.get("ratio", 0.65))
    kwargs = {k: spec[k] for k in ("breaks", "eps", "estimator", "n_agents", "n_steps", "seed",
                                   "mf_guidance", "guidance_mean", "covariance") if k in spec}
    return run_scenario(p_in, p_tar, beta=beta, n_intervals=n_int, progress=False, **kwargs)


# ---------------------------------------------------------------------------------------------
# LQG agents (linear feedback u = -(S x + s))
# ---------------------------------------------------------------------------------------------
@njit(cache=True, parallel=True)
def _advance_linear(xs, keys, hashes, dts, A, S, s, e_agent, pow_part, mean_part, var_part,
                    block):
    """Euler--Maruyama for dx = (A x - S_n x - s_n) dt + dW; R guidances share S and the noise.

    xs (R, B, d); A (d, d); S (nc, d, d); s (R, nc, d); e_agent (R, B) += dt |u|^2;
    block sums: pow_part (R, nc, nblk), mean_part (R, nc, nblk, d), var_part (R, nc, nblk, d)
    (sums of x and x^2 at the start of each step)."""
    R, B, d = xs.shape
    nc = dts.shape[0]
    nblk = (B + block - 1) // block
    for ib in prange(nblk):
        xi = np.empty(d)
        u = np.empty(d)
        psum = np.empty(R)
        msum = np.empty((R, d))
        vsum = np.empty((R, d))
        for n in range(nc):
            dt = dts[n]
            sq = math.sqrt(dt)
            psum[:] = 0.0
            msum[:, :] = 0.0
            vsum[:, :] = 0.0
            for i in range(ib * block, min(B, (ib + 1) * block)):
                for j in range(d):
                    xi[j] = normal_from_bits(mix64(keys[i] + hashes[n, j]))
                for r in range(R):
                    usq = 0.0
                    for j in range(d):
                        acc = -s[r, n, j]
                        for k in range(d):
                            acc -= S[n, j, k] * xs[r, i, k]
                        u[j] = acc
                        usq += acc * acc
                    for j in range(d):
                        xj = xs[r, i, j]
                        msum[r, j] += xj
                        vsum[r, j] += xj * xj
                        drift = u[j]
                        for k in range(d):
                            drift += A[j, k] * xs[r, i, k]
                        u[j] = drift  # u now holds the full drift A x + control
                    for j in range(d):
                        xs[r, i, j] += u[j] * dt + sq * xi[j]
                    e_agent[r, i] += dt * usq
                    psum[r] += usq
            for r in range(R):
                pow_part[r, n, ib] = psum[r]
                for j in range(d):
                    mean_part[r, n, ib, j] = msum[r, j]
                    var_part[r, n, ib, j] = vsum[r, j]


def simulate_lqg_agents(model, guidances: Sequence[str] = ("mf", "ia_zero", "ia_target"), *,
                        n_agents: int = 20000, n_steps: int = 2000, seed: int = 0) -> dict:
    r"""Euler--Maruyama agents of the LQG benchmark under the closed-form feedback.

    ``model`` is an :class:`mfg_solvers.analytic.mfpid_lqg.LQGBenchmark` (or the 1-D class);
    all guidances use the same Dirac start and the same increments. Returns a dict with
    ``t`` (N+1,), and per guidance ``energy`` (left Riemann sum of :math:`\mathbb E\|u\|^2`
    on [0, 1], no 1/2), ``energy_se``, ``mean`` (N+1, d), ``var`` (N+1, d) (per coordinate).
    """
    n_agents = _int("n_agents", n_agents)
    n_steps = _int("n_steps", n_steps)
    seed = check_seed(seed)
    t = np.linspace(0.0, 1.0, n_steps + 1)
    tn = t[:-1]
    d = model.dim
    S = np.ascontiguousarray(model.riccati(tn).reshape(n_steps, d, d))
    s = np.ascontiguousarray(
        np.stack([np.asarray(model.offset(tn, g)).reshape(n_steps, d) for g in guidances]))
    A = np.ascontiguousarray(np.asarray(model.drift_matrix, dtype=float).reshape(d, d))
    R = len(guidances)
    xs = np.repeat(np.asarray(model.m0, dtype=float).reshape(1, 1, d), R, axis=0)
    xs = np.ascontiguousarray(np.repeat(xs, n_agents, axis=1))
    e_agent = np.zeros((R, n_agents))
    nblk = (n_agents + BLOCK - 1) // BLOCK
    pow_part = np.empty((R, n_steps, nblk))
    mean_part = np.empty((R, n_steps, nblk, d))
    var_part = np.empty((R, n_steps, nblk, d))
    keys = _agent_keys(seed, n_agents)
    hashes = _noise_hashes(seed, np.arange(n_steps), d)
    with np.errstate(over="ignore"):
        _advance_linear(xs, keys, hashes, np.diff(t), A, S, s, e_agent, pow_part, mean_part,
                        var_part, BLOCK)
    if not (np.all(np.isfinite(pow_part)) and np.all(np.isfinite(xs))):
        raise NaNError("non-finite state in the LQG agent simulation")
    out = {"t": t}
    for r, g in enumerate(guidances):
        mean = np.empty((n_steps + 1, d))
        sq = np.empty((n_steps + 1, d))
        mean[:-1] = mean_part[r].sum(axis=1) / n_agents
        sq[:-1] = var_part[r].sum(axis=1) / n_agents
        mean[-1] = xs[r].mean(axis=0)
        sq[-1] = (xs[r] ** 2).mean(axis=0)
        out[g] = {"energy": float(e_agent[r].mean()),
                  "energy_se": float(e_agent[r].std(ddof=1) / np.sqrt(n_agents)),
                  "power": pow_part[r].sum(axis=1) / n_agents,
                  "mean": mean, "var": sq - mean**2, "final": xs[r].copy()}
    return out
