"""Counter-based random streams for particle systems.

Every random number used by the particle integrators is a pure function of
``(seed, i, n, j)``: the run's seed, the **global** index ``i`` of the particle, the time step
``n`` and a slot ``j`` inside the step. Nothing depends on a shared sequential state, so a run
gives bit-identical results with any number of numba threads and with the particles sharded over
any number of MPI ranks.

Construction (all arithmetic modulo :math:`2^{64}`):

.. math::

    k_i = \\operatorname{mix}(s_a + i\\,\\gamma),\\qquad
    h_{n,j} = \\operatorname{mix}(s_b + (n\\,J + j)\\,\\gamma),\\qquad
    u_{i,n,j} = \\operatorname{mix}(k_i + h_{n,j}),

where :math:`s_a, s_b` are derived from the seed, :math:`\\gamma` is the odd 64-bit golden-ratio
increment, :math:`J` = :data:`SLOTS` and ``mix`` is the SplitMix64 finaliser (a bijection of
64-bit words with full avalanche). :math:`k_i` is recomputed on the fly, so no per-particle
state is stored.

Standard normal variates are obtained from :math:`u` by a 256-layer ziggurat (tables built at
import from the half-normal density; layer index, sign and a 53-bit uniform all come from the
same 64-bit word). The rare rejection path (about 1.2 % of draws) continues on a private
SplitMix64 stream seeded by :math:`u` itself, so it stays a pure function of ``(seed, i, n, j)``.
Uniform variates are :math:`\\lfloor u / 2^{11} \\rfloor\\, 2^{-53} \\in [0, 1)`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ._threads import threads_for

# -- 64-bit constants (numpy scalars so that the arithmetic stays in uint64, also without JIT)
_MASK64 = (1 << 64) - 1
GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S8 = np.uint64(8)
_S11 = np.uint64(11)
_ONE = np.uint64(1)
_MASK8 = np.uint64(255)
_SLOW = np.uint64(0xD1B54A32D192ED03)
_TWO_M53 = 2.0**-53

#: Random slots reserved per particle and time step (normals for up to 3 noise components,
#: one uniform for the exit test of absorbing walls, spare slots).
SLOTS = 8
#: Slot of the uniform used by the Brownian-bridge exit test.
EXIT_SLOT = 4
#: Step index reserved for drawing initial positions.
INITIAL_STEP = 1 << 40


# ---------------------------------------------------------------------------------------------
# Ziggurat tables (256 layers of equal area under f(x) = exp(-x^2/2), x >= 0)
# ---------------------------------------------------------------------------------------------
def _ziggurat_tables(n: int = 256):
    """Layer abscissae for a ``n``-layer ziggurat of the half-normal density.

    Layer 0 is the base strip (rectangle ``[0, r] x [0, f(r)]`` plus the tail ``x > r``), with
    virtual width ``x_0 = v / f(r)``; layers ``k >= 1`` are rectangles ``[0, x_k] x [f(x_k),
    f(x_{k+1})]`` of the common area ``v``; ``x_n = 0``. ``r`` is found by bisection so that the
    recursion closes exactly at the top (``f(x_{n-1}) + v / x_{n-1} = 1``).
    """
    from scipy.special import erfc

    def f(x):
        return math.exp(-0.5 * x * x)

    def closure(r):
        v = r * f(r) + math.sqrt(math.pi / 2.0) * erfc(r / math.sqrt(2.0))
        x = r
        for _ in range(n - 2):
            y = f(x) + v / x
            if y >= 1.0:
                return 1.0, v  # recursion overshoots: r too small
            x = math.sqrt(-2.0 * math.log(y))
        return f(x) + v / x - 1.0, v

    lo, hi = 3.0, 4.5
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if closure(mid)[0] > 0.0:
            lo = mid
        else:
            hi = mid
    r = hi
    v = closure(r)[1]
    x = np.empty(n + 1)
    x[0] = v / f(r)
    x[1] = r
    for k in range(1, n - 1):
        x[k + 1] = math.sqrt(-2.0 * math.log(f(x[k]) + v / x[k]))
    x[n] = 0.0
    fx = np.exp(-0.5 * x * x)
    # fast-path thresholds on the 53-bit integer m: accept m * x_k 2^-53 < x_{k+1}
    ratio = x[1:] / x[:-1]
    k_tab = np.array([int(math.floor(q * 2.0**53)) for q in ratio], dtype=np.uint64)
    w_tab = x[:-1] * _TWO_M53
    return float(r), x, fx, k_tab, w_tab


ZIG_R, _ZX, _ZF, _ZK, _ZW = _ziggurat_tables()
_ZKI = _ZK.astype(np.int64)  # thresholds < 2^53: compare as int64


# ---------------------------------------------------------------------------------------------
# numba primitives
# ---------------------------------------------------------------------------------------------
@njit(cache=True)
def mix64(z):
    """SplitMix64 finaliser: a bijection of uint64 with full avalanche."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit(cache=True)
def particle_key(seed_a, gid):
    """Per-particle key :math:`k_i = \\operatorname{mix}(s_a + i\\gamma)` (``gid`` as uint64)."""
    return mix64(seed_a + gid * GAMMA)


@njit(cache=True)
def uniform_from_bits(u):
    """:math:`\\lfloor u / 2^{11}\\rfloor 2^{-53} \\in [0, 1)`."""
    return float(np.int64(u >> _S11)) * _TWO_M53


@njit(cache=True)
def _normal_slow(u):
    s = u ^ _SLOW
    while True:
        layer = np.int64(u & _MASK8)
        neg = (u >> _S8) & _ONE
        m = u >> _S11
        if m < _ZK[layer]:
            x = float(m) * _ZW[layer]
            return -x if neg else x
        if layer == 0:
            # tail x > r (Marsaglia): x = -log(U1)/r, y = -log(U2), accept if 2y > x^2
            while True:
                s += GAMMA
                u1 = (float(mix64(s) >> _S11) + 1.0) * _TWO_M53
                s += GAMMA
                u2 = (float(mix64(s) >> _S11) + 1.0) * _TWO_M53
                xx = -math.log(u1) / ZIG_R
                yy = -math.log(u2)
                if 2.0 * yy > xx * xx:
                    x = ZIG_R + xx
                    return -x if neg else x
        x = float(m) * _ZW[layer]
        s += GAMMA
        y = _ZF[layer] + uniform_from_bits(mix64(s)) * (_ZF[layer + 1] - _ZF[layer])
        if y < math.exp(-0.5 * x * x):
            return -x if neg else x
        s += GAMMA
        u = mix64(s)


@njit(cache=True)
def normal_from_bits(u):
    """Standard normal variate from 64 random bits (ziggurat; exact in distribution).

    The fast path is branch-free in the sign (a mispredicted sign branch would cost as much as
    the rest), and converts the 53-bit integer through int64 (one instruction)."""
    layer = np.int64(u & _MASK8)
    m = np.int64(u >> _S11)
    if m < _ZKI[layer]:
        sign = 1.0 - 2.0 * float(np.int64((u >> _S8) & _ONE))
        return float(m) * _ZW[layer] * sign
    return _normal_slow(u)


# ---------------------------------------------------------------------------------------------
# Python-side seeding
# ---------------------------------------------------------------------------------------------
def _mix_int(z: int) -> int:
    z &= _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def check_seed(seed) -> int:
    """Validate a seed (a non-negative integer below :math:`2^{63}`)."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"seed={seed!r} must be a non-negative integer")
    seed = int(seed)
    if not 0 <= seed < 2**63:
        raise ValueError(f"seed={seed!r} must be an integer in [0, 2**63)")
    return seed


class StreamKeys:
    """The two 64-bit stream keys derived from a seed (see the module docstring)."""

    def __init__(self, seed: int):
        self.seed = check_seed(seed)
        self.a = np.uint64(_mix_int(self.seed * 0x9E3779B97F4A7C15 + 0x243F6A8885A308D3))
        self.b = np.uint64(_mix_int(self.seed * 0x9E3779B97F4A7C15 + 0x13198A2E03707344))

    def step_hashes(self, step: int) -> np.ndarray:
        """:math:`h_{n,j}` for the :data:`SLOTS` slots of step ``n`` (uint64 array)."""
        if step < 0:
            raise ValueError(f"step={step!r} must be >= 0")
        base = int(self.b)
        return np.array(
            [_mix_int(base + (step * SLOTS + j) * 0x9E3779B97F4A7C15) for j in range(SLOTS)],
            dtype=np.uint64,
        )


# ---------------------------------------------------------------------------------------------
# Bulk draws
# ---------------------------------------------------------------------------------------------
@njit(cache=True, parallel=True)
def _draws_kernel(seed_a, hashes, offset, normal, out):
    """``out[i, j]``: normal (or uniform) draw of slot ``hashes[j]`` of particle ``offset + i``."""
    n, d = out.shape
    for i in prange(n):
        key = particle_key(seed_a, np.uint64(offset + i))
        for j in range(d):
            u = mix64(key + hashes[j])
            out[i, j] = normal_from_bits(u) if normal else uniform_from_bits(u)


def _check_draw_args(n, d, offset, first_slot):
    for name, v in (("n", n), ("d", d), ("offset", offset), ("first_slot", first_slot)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 0:
            raise ValueError(f"{name}={v!r} must be a non-negative integer")
    if first_slot + d > SLOTS:
        raise ValueError(
            f"first_slot={first_slot} with d={d} exceeds the {SLOTS} slots of a step"
        )


def standard_normals(seed, n, d, step, offset=0, first_slot=0) -> np.ndarray:
    """The standard normals :math:`z_{i,n,j}` of particles ``offset .. offset+n-1``.

    Returns an array ``(n, d)`` whose column ``k`` is slot ``first_slot + k`` of step ``step``.
    These are exactly the variates that the integrators use for step ``step``
    (:math:`\\Delta W = \\sqrt{\\Delta t}\\,z`), which lets a test rebuild a Brownian path.
    """
    _check_draw_args(n, d, offset, first_slot)
    keys = StreamKeys(seed)
    out = np.empty((int(n), int(d)))
    with np.errstate(over="ignore"), threads_for(n):
        _draws_kernel(keys.a, keys.step_hashes(int(step))[first_slot:], np.int64(offset), True,
                      out)
    return out


def uniforms(seed, n, d, step, offset=0, first_slot=0) -> np.ndarray:
    """Uniform variates in :math:`[0, 1)` from the same streams as :func:`standard_normals`."""
    _check_draw_args(n, d, offset, first_slot)
    keys = StreamKeys(seed)
    out = np.empty((int(n), int(d)))
    with np.errstate(over="ignore"), threads_for(n):
        _draws_kernel(keys.a, keys.step_hashes(int(step))[first_slot:], np.int64(offset), False,
                      out)
    return out


# ---------------------------------------------------------------------------------------------
# Initial positions
# ---------------------------------------------------------------------------------------------
def _as_mean_cov(mean, cov, d=None):
    mean = np.atleast_1d(np.asarray(mean, dtype=float))
    if mean.ndim != 1 or not 1 <= mean.size <= 3:
        raise ValueError(f"mean={mean!r} must be a vector of length 1 to 3")
    d = mean.size if d is None else d
    if mean.size != d:
        raise ValueError(f"mean={mean!r} has length {mean.size}; expected {d}")
    cov = np.asarray(cov, dtype=float)
    if cov.ndim == 0:
        cov = float(cov) * np.eye(d)
    elif cov.ndim == 1:
        if cov.size != d:
            raise ValueError(f"cov={cov!r}: a diagonal needs {d} entries")
        cov = np.diag(cov)
    if cov.shape != (d, d):
        raise ValueError(f"cov has shape {cov.shape}; expected ({d}, {d})")
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(cov))):
        raise ValueError("mean and cov must be finite")
    if not np.allclose(cov, cov.T, rtol=1e-12, atol=0.0):
        raise ValueError("cov must be symmetric")
    return mean, cov


def psd_factor(cov: np.ndarray, name: str = "cov") -> np.ndarray:
    """A factor ``F`` with ``F @ F.T == cov`` for a symmetric positive semi-definite ``cov``."""
    cov = np.asarray(cov, dtype=float)
    w, v = np.linalg.eigh(0.5 * (cov + cov.T))
    scale = max(1.0, float(np.max(np.abs(w)))) if w.size else 1.0
    if np.min(w) < -1e-12 * scale:
        raise ValueError(f"{name} is not positive semi-definite (eigenvalue {np.min(w):.3g})")
    try:
        return np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        return v * np.sqrt(np.clip(w, 0.0, None))


def gaussian_particles(n, mean, cov, seed, offset=0) -> np.ndarray:
    """``n`` positions drawn from :math:`\\mathcal N(\\text{mean}, \\text{cov})`.

    Particle ``i`` (global index ``offset + i``) uses the reserved step :data:`INITIAL_STEP`
    of its own stream, so the cloud does not depend on how it is sharded.
    """
    mean, cov = _as_mean_cov(mean, cov)
    z = standard_normals(seed, n, mean.size, INITIAL_STEP, offset=offset)
    return np.ascontiguousarray(mean + z @ psd_factor(cov).T)


def uniform_particles(n, bounds, seed, offset=0) -> np.ndarray:
    """``n`` positions uniform in the box ``bounds`` (one ``(a, b)`` pair per axis)."""
    b = np.asarray(bounds, dtype=float)
    if b.ndim == 1:
        b = b[None, :]
    if b.ndim != 2 or b.shape[1] != 2 or not 1 <= b.shape[0] <= 3 or np.any(b[:, 1] <= b[:, 0]):
        raise ValueError(f"bounds={bounds!r} must be 1 to 3 pairs (a, b) with a < b")
    u = uniforms(seed, n, b.shape[0], INITIAL_STEP, offset=offset)
    return np.ascontiguousarray(b[:, 0] + u * (b[:, 1] - b[:, 0]))
