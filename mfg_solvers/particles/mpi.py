"""Sharding particles across MPI ranks (mpi4py), and the reductions the integrators need.

Particle ``i`` keeps its global index on every rank layout, and its random stream depends only on
that index (:mod:`.rng`), so a run on ``p`` ranks follows the same trajectories as on one rank.
Shards are contiguous and start at multiples of :data:`~.integrators.BLOCK`; block partial sums
(moments) are gathered in global block order and added in that order, so moments -- and the
trajectories of moment-coupled systems -- are bit-identical for any number of ranks. Densities
(deposited grids) are summed with ``Allreduce`` and agree to round-off.

``mpi4py`` is imported only when a communicator is used.
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: Alignment of shard boundaries (the integrators' block size).
ALIGN = 1024


def shard_range(n_total: int, size: int, rank: int, align: int = ALIGN) -> tuple[int, int]:
    """``(start, stop)`` of rank ``rank``'s contiguous share of ``n_total`` particles.

    Boundaries fall on multiples of ``align`` (except the last), and shares differ by at most one
    ``align`` block.
    """
    for name, v in (("n_total", n_total), ("size", size), ("rank", rank), ("align", align)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 0:
            raise ValueError(f"{name}={v!r} must be a non-negative integer")
    if size < 1 or not 0 <= rank < size or align < 1:
        raise ValueError(
            f"need size >= 1, 0 <= rank < size, align >= 1 (got {size}, {rank}, {align})"
        )
    nblocks = -(-int(n_total) // align)
    base, extra = divmod(nblocks, size)
    b0 = rank * base + min(rank, extra)
    b1 = b0 + base + (1 if rank < extra else 0)
    return min(b0 * align, n_total), min(b1 * align, n_total)


def local_layout(comm, n_local: int) -> tuple[int, int]:
    """``(offset, n_total)``: the global index of this rank's first particle and the total."""
    if comm is None or comm.Get_size() == 1:
        return 0, int(n_local)
    counts = comm.allgather(int(n_local))
    rank = comm.Get_rank()
    return int(sum(counts[:rank])), int(sum(counts))


def allreduce_sum(comm, arr: np.ndarray) -> np.ndarray:
    """Element-wise sum over ranks (a copy; ``comm=None`` returns ``arr`` unchanged)."""
    if comm is None or comm.Get_size() == 1:
        return arr
    from mpi4py import MPI

    a = np.ascontiguousarray(arr)
    out = np.empty_like(a)
    comm.Allreduce(a, out, op=MPI.SUM)
    return out


def allgather_rows(comm, arr: np.ndarray) -> np.ndarray:
    """Concatenation over ranks (in rank order) of ``arr``'s rows."""
    if comm is None or comm.Get_size() == 1:
        return arr
    a = np.ascontiguousarray(arr)
    row = int(np.prod(a.shape[1:])) if a.ndim > 1 else 1
    counts = np.array(comm.allgather(a.shape[0]), dtype=np.int64)
    out = np.empty((int(counts.sum()),) + a.shape[1:], dtype=a.dtype)
    comm.Allgatherv(a, (out, counts * row))
    return out


@njit(cache=True)
def _ordered_sum(partials, counts):
    nb = partials.shape[0]
    d = partials.shape[1]
    s = np.zeros(d)
    c = 0
    for b in range(nb):
        for k in range(d):
            s[k] += partials[b, k]
        c += counts[b]
    return s, c


def reduce_blocks(comm, partials: np.ndarray, counts: np.ndarray):
    """Sum of block partial sums ``(nb, m)`` and block counts, in global block order."""
    P = np.ascontiguousarray(partials.reshape(partials.shape[0], -1))
    C = np.ascontiguousarray(counts, dtype=np.int64)
    if comm is not None and comm.Get_size() > 1:
        P = allgather_rows(comm, P)
        C = allgather_rows(comm, C)
    s, c = _ordered_sum(P, C)
    return s.reshape(partials.shape[1:]), int(c)
