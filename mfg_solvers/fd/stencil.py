"""Neighbour tables and the sparsity pattern of the ``2d+1``-point stencil on a :class:`Grid`.

Built once per grid. Nodes are numbered in C order (``numpy.ravel``). Along a periodic axis the
neighbours wrap around; along a reflecting (Neumann) axis the walls are nodes and the differences
that would leave the box are dropped (neighbour index ``-1``), which gives zero-flux walls.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..grid import Grid


class Stencil:
    """Index tables of a grid.

    Attributes
    ----------
    nbp, nbm : int64 arrays (d, N)
        Next / previous node along each axis, ``-1`` at a wall.
    inv_h : float array (d,)
        Inverse spacings.
    indptr, indices : CSR pattern (symmetric) of the stencil matrices.
    pos : int64 array (N, 2d+1)
        Position in the CSR data of entry ``e`` of row ``i`` (``-1`` where absent), with the
        entry numbering of :mod:`mfg_solvers.fd.kernels` (0 diagonal, ``1+2k`` next node along
        axis ``k``, ``2+2k`` previous node).
    pos_t : int64 array (N, 2d+1)
        Position in the CSR data of the *transposed* entry: scattering ``coef`` through
        ``pos_t`` gives the CSR arrays of ``C^T``, i.e. the CSC arrays of ``C``.
    """

    def __init__(self, grid: Grid):
        self.grid = grid
        d, N = grid.dim, grid.size
        self.dim, self.size = d, N
        idx = np.arange(N).reshape(grid.shape)
        nbp = np.empty((d, N), dtype=np.int64)
        nbm = np.empty((d, N), dtype=np.int64)
        for k in range(d):
            plus = np.roll(idx, -1, axis=k)
            minus = np.roll(idx, 1, axis=k)
            if not grid.periodic[k]:
                sl_last = [slice(None)] * d
                sl_last[k] = -1
                plus[tuple(sl_last)] = -1
                sl_first = [slice(None)] * d
                sl_first[k] = 0
                minus[tuple(sl_first)] = -1
            nbp[k] = plus.ravel()
            nbm[k] = minus.ravel()
        self.nbp, self.nbm = nbp, nbm
        self.inv_h = 1.0 / np.asarray(grid.spacing, dtype=float)
        self.n_entries = 2 * d + 1

        cols = np.empty((N, self.n_entries), dtype=np.int64)
        cols[:, 0] = np.arange(N)
        for k in range(d):
            cols[:, 1 + 2 * k] = nbp[k]
            cols[:, 2 + 2 * k] = nbm[k]
        rows = np.repeat(np.arange(N), self.n_entries).reshape(N, self.n_entries)
        valid = cols >= 0
        flat = np.flatnonzero(valid.ravel())
        r, c = rows.ravel()[flat], cols.ravel()[flat]
        order = np.lexsort((c, r))
        pos = np.full(N * self.n_entries, -1, dtype=np.int64)
        pos[flat[order]] = np.arange(flat.size)
        self.pos = pos.reshape(N, self.n_entries)
        self.indices = np.ascontiguousarray(c[order], dtype=np.int32)
        self.indptr = np.zeros(N + 1, dtype=np.int32)
        np.cumsum(np.bincount(r, minlength=N), out=self.indptr[1:])
        self.nnz = int(flat.size)
        # transposed positions: entry (i, j) of C goes to entry (j, i) of C^T
        pos_t = np.full((N, self.n_entries), -1, dtype=np.int64)
        pos_t[:, 0] = self.pos[:, 0]
        for k in range(d):
            p, m = nbp[k], nbm[k]
            has_p, has_m = p >= 0, m >= 0
            # (i, p(i)) -> (p(i), i): the previous-node entry of row p(i)
            pos_t[has_p, 1 + 2 * k] = self.pos[p[has_p], 2 + 2 * k]
            pos_t[has_m, 2 + 2 * k] = self.pos[m[has_m], 1 + 2 * k]
        self.pos_t = pos_t

    # -- sparse matrices from stencil coefficients ------------------------------------------
    def csr(self, coef: np.ndarray) -> sp.csr_matrix:
        """The matrix ``C`` of coefficients ``coef`` (N, 2d+1) as CSR."""
        data = np.zeros(self.nnz)
        valid = self.pos >= 0
        data[self.pos[valid]] = coef[valid]
        return sp.csr_matrix((data, self.indices, self.indptr), shape=(self.size, self.size))

    def csc(self, coef: np.ndarray) -> sp.csc_matrix:
        """The matrix ``C`` as CSC (what SuperLU factorises without a conversion)."""
        data = np.zeros(self.nnz)
        valid = self.pos_t >= 0
        data[self.pos_t[valid]] = coef[valid]
        return sp.csc_matrix((data, self.indices, self.indptr), shape=(self.size, self.size))

    def coo_pattern(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(rows, cols, valid)`` of the entries ``(i, e)`` (each (N, 2d+1))."""
        N = self.size
        cols = np.empty((N, self.n_entries), dtype=np.int64)
        cols[:, 0] = np.arange(N)
        for k in range(self.dim):
            cols[:, 1 + 2 * k] = self.nbp[k]
            cols[:, 2 + 2 * k] = self.nbm[k]
        rows = np.repeat(np.arange(N), self.n_entries).reshape(N, self.n_entries)
        return rows, cols, cols >= 0
