"""Block-sparse linear systems over copies of a finite-element space, solved through PETSc.

The Newton systems of :mod:`mfg_solvers.fem` couple several fields that all live in the same
Lagrange space :math:`V_h` -- :math:`U^0, \\dots, U^{N_T-1}`, :math:`M^1, \\dots, M^{N_T}` in the
time-dependent case, :math:`U, M` in the ergodic one -- plus a few global scalars (the ergodic
constant :math:`\\lambda`, the multiplier of the mass constraint, the mean :math:`\\bar x` of a
mean-field coupling). :class:`BlockLayout` numbers these unknowns for PETSc: each MPI rank owns
its dofs of every block (block-major) and the last rank also owns the scalars.
:class:`BlockMatrix` collects the blocks -- sparse matrices assembled by dolfinx, diagonals,
dense rows and columns of the scalars -- into one distributed AIJ matrix by COO assembly: the
sparsity pattern is computed once, later assemblies only pass values. Dirichlet dofs (exits) of
the constrained blocks are eliminated symmetrically: their rows and columns are dropped and an
identity row is put in their place. The system is solved by a sparse direct LU factorisation
(MUMPS) through a PETSc KSP; the symbolic factorisation is reused while the pattern is unchanged.
"""

from __future__ import annotations

import itertools

import numpy as np

from ._backend import MPI, PETSc

_PREFIX_COUNTER = itertools.count()

#: Default options of the direct solver.
DEFAULT_PETSC_OPTIONS = {
    "ksp_type": "preonly",
    "pc_type": "lu",
    "pc_factor_mat_solver_type": "mumps",
    "mat_mumps_icntl_14": 200,  # extra workspace (percent) for pivoting
}


class BlockLayout:
    """Numbering of ``n_blocks`` copies of the owned dofs of ``V`` and ``n_scalars`` scalars.

    On rank ``r`` the local unknowns are ordered ``[block 0 dofs, block 1 dofs, ..., scalars]``
    (scalars on the last rank only); the global index of (block ``b``, owned dof ``i``) is
    ``start + b * n_loc + i``.
    """

    def __init__(self, V, n_blocks: int, n_scalars: int = 0):
        imap = V.dofmap.index_map
        if V.dofmap.index_map_bs != 1:
            raise ValueError("BlockLayout needs a scalar function space")
        self.comm = V.mesh.comm
        self.rank, self.nranks = self.comm.rank, self.comm.size
        self.n_blocks, self.n_scalars = int(n_blocks), int(n_scalars)
        self.n_loc = int(imap.size_local)
        nghost = int(imap.num_ghosts)
        self.local_to_global = imap.local_to_global(np.arange(self.n_loc + nghost, dtype=np.int32))
        self.dof_sizes = np.array(self.comm.allgather(self.n_loc), dtype=np.int64)
        self.dof_starts = np.concatenate([[0], np.cumsum(self.dof_sizes)[:-1]])
        last = self.rank == self.nranks - 1
        self.local_size = self.n_blocks * self.n_loc + (self.n_scalars if last else 0)
        sizes = np.array(self.comm.allgather(self.local_size), dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        self.start = int(self.starts[self.rank])
        self.size = int(sizes.sum())
        if self.size >= np.iinfo(PETSc.IntType).max:
            raise ValueError(f"the system has {self.size} unknowns: too many for 32-bit PETSc")

    def columns(self, global_dofs: np.ndarray):
        """``(base, stride)``: column of dof ``g`` in block ``b`` is ``base + b * stride``."""
        g = np.asarray(global_dofs, dtype=np.int64)
        owner = np.searchsorted(self.dof_starts, g, side="right") - 1
        base = self.starts[owner] + (g - self.dof_starts[owner])
        return base, self.dof_sizes[owner]

    def scalar_index(self, s: int) -> int:
        if not 0 <= s < self.n_scalars:
            raise IndexError(f"scalar {s} out of range (n_scalars={self.n_scalars})")
        return int(self.starts[-1] + self.n_blocks * self.dof_sizes[-1] + s)

    def block_slice(self, b: int) -> slice:
        return slice(b * self.n_loc, (b + 1) * self.n_loc)

    def split(self, x: np.ndarray):
        """``(blocks (n_blocks, n_loc), scalars (n_scalars,))``; scalars broadcast to all ranks."""
        blocks = x[: self.n_blocks * self.n_loc].reshape(self.n_blocks, self.n_loc)
        scalars = np.zeros(self.n_scalars)
        if self.rank == self.nranks - 1 and self.n_scalars:
            scalars[:] = x[self.n_blocks * self.n_loc:]
        if self.nranks > 1 and self.n_scalars:
            self.comm.Bcast(scalars, root=self.nranks - 1)
        return blocks, scalars

    def join(self, blocks, scalars=()) -> np.ndarray:
        """The local vector from ``blocks`` (n_blocks, n_loc) and the scalars."""
        x = np.zeros(self.local_size)
        x[: self.n_blocks * self.n_loc] = np.asarray(blocks, dtype=float).reshape(-1)
        if self.rank == self.nranks - 1 and self.n_scalars:
            x[self.n_blocks * self.n_loc:] = np.asarray(scalars, dtype=float)
        return x


class CSRPattern:
    """Local rows (owned) and global columns of a dolfinx PETSc matrix."""

    def __init__(self, A: PETSc.Mat):
        indptr, indices, _ = A.getValuesCSR()
        self.indptr = np.asarray(indptr, dtype=np.int64)
        self.rows = np.repeat(np.arange(len(indptr) - 1, dtype=np.int64), np.diff(self.indptr))
        self.cols = np.asarray(indices, dtype=np.int64)
        self.nnz = len(self.cols)


class BlockMatrix:
    """A distributed block matrix on a :class:`BlockLayout`, assembled by COO, solved by LU.

    Terms are registered once (:meth:`add_csr`, :meth:`add_diagonal`, :meth:`add_column`,
    :meth:`add_row`, :meth:`add_scalar`), then :meth:`finalize` builds the pattern. Each
    :meth:`assemble` takes one value array per registered term, in registration order (the full
    CSR value array of the dolfinx matrix, the diagonal, the dense column or row over the owned
    dofs, or a scalar) and masks the Dirichlet rows and columns itself.

    Parameters
    ----------
    layout
        The numbering.
    constrained
        Local (owned and ghost) indices of the Dirichlet dofs, or ``None``.
    constrained_blocks
        The blocks in which those dofs are Dirichlet dofs.
    petsc_options
        Options of the KSP (default :data:`DEFAULT_PETSC_OPTIONS`: MUMPS LU).
    """

    def __init__(self, layout: BlockLayout, constrained=None, constrained_blocks=(),
                 petsc_options=None):
        self.layout = layout
        n_loc = layout.n_loc
        cons = np.zeros(0, dtype=np.int64) if constrained is None else np.asarray(constrained)
        self.cons_owned = np.sort(cons[cons < n_loc]).astype(np.int64)
        self.row_mask = np.zeros(n_loc, dtype=bool)
        self.row_mask[self.cons_owned] = True
        self.cons_global = np.sort(layout.local_to_global[cons.astype(np.int64)])
        self.cblocks = frozenset(int(b) for b in constrained_blocks)
        self._rows: list[np.ndarray] = []
        self._cols: list[np.ndarray] = []
        self._keep: list = []
        self.options = dict(DEFAULT_PETSC_OPTIONS)
        self.options.update(petsc_options or {})
        self.A = None
        self.ksp = None

    # -- registration -----------------------------------------------------------------------
    def _is_cons_col(self, gcols):
        if not len(self.cons_global):
            return np.zeros(len(gcols), dtype=bool)
        pos = np.searchsorted(self.cons_global, gcols)
        pos = np.minimum(pos, len(self.cons_global) - 1)
        return self.cons_global[pos] == gcols

    def _append(self, rows, cols, keep):
        self._rows.append(np.asarray(rows, dtype=np.int64))
        self._cols.append(np.asarray(cols, dtype=np.int64))
        self._keep.append(keep)

    def add_csr(self, rb: int, cb: int, pattern: CSRPattern) -> None:
        """The block ``(rb, cb)``: a dolfinx matrix with ``pattern`` (values: its CSR values)."""
        lay = self.layout
        drop = np.zeros(pattern.nnz, dtype=bool)
        if rb in self.cblocks:
            drop |= self.row_mask[pattern.rows]
        if cb in self.cblocks:
            drop |= self._is_cons_col(pattern.cols)
        keep = np.flatnonzero(~drop)
        base, stride = lay.columns(pattern.cols[keep])
        rows = lay.start + rb * lay.n_loc + pattern.rows[keep]
        self._append(rows, base + cb * stride, keep)

    def add_diagonal(self, rb: int, cb: int) -> None:
        """A diagonal block ``(rb, cb)`` (values: one per owned dof)."""
        lay = self.layout
        drop = np.zeros(lay.n_loc, dtype=bool)
        if rb in self.cblocks or cb in self.cblocks:
            drop |= self.row_mask
        keep = np.flatnonzero(~drop)
        self._append(lay.start + rb * lay.n_loc + keep, lay.start + cb * lay.n_loc + keep, keep)

    def add_column(self, rb: int, s: int) -> None:
        """A dense column: rows of block ``rb``, column of scalar ``s`` (values: owned dofs)."""
        lay = self.layout
        keep = np.flatnonzero(~self.row_mask) if rb in self.cblocks else np.arange(lay.n_loc)
        rows = lay.start + rb * lay.n_loc + keep
        self._append(rows, np.full(len(keep), lay.scalar_index(s)), keep)

    def add_row(self, s: int, cb: int) -> None:
        """A dense row: row of scalar ``s``, columns of block ``cb`` (values: owned dofs)."""
        lay = self.layout
        keep = np.flatnonzero(~self.row_mask) if cb in self.cblocks else np.arange(lay.n_loc)
        cols = lay.start + cb * lay.n_loc + keep
        self._append(np.full(len(keep), lay.scalar_index(s)), cols, keep)

    def add_scalar(self, s1: int, s2: int) -> None:
        """The entry (scalar ``s1``, scalar ``s2``) (value: a float; set by the last rank)."""
        lay = self.layout
        last = lay.rank == lay.nranks - 1
        rows = [lay.scalar_index(s1)] if last else []
        cols = [lay.scalar_index(s2)] if last else []
        self._append(rows, cols, "scalar" if last else "none")

    def finalize(self) -> None:
        """Add the identity rows of the Dirichlet dofs and build the PETSc matrix and solver."""
        lay = self.layout
        ident = []
        for b in sorted(self.cblocks):
            ident.append(lay.start + b * lay.n_loc + self.cons_owned)
        ident = np.concatenate(ident) if ident else np.zeros(0, dtype=np.int64)
        self._ident = ident
        rows = np.concatenate(self._rows + [ident]).astype(PETSc.IntType)
        cols = np.concatenate(self._cols + [ident]).astype(PETSc.IntType)
        A = PETSc.Mat().create(comm=lay.comm)
        A.setSizes(((lay.local_size, lay.size), (lay.local_size, lay.size)))
        A.setType("aij")
        A.setPreallocationCOO(rows, cols)
        self.A = A
        self._ones = np.ones(len(ident))
        prefix = f"mfgfem{next(_PREFIX_COUNTER)}_"
        opts = PETSc.Options()
        for k, v in self.options.items():
            opts[f"{prefix}{k}"] = v
        ksp = PETSc.KSP().create(lay.comm)
        ksp.setOptionsPrefix(prefix)
        ksp.setOperators(A)
        ksp.setFromOptions()
        self.ksp = ksp
        self._prefix = prefix

    # -- values and solves ------------------------------------------------------------------
    def assemble(self, values) -> None:
        """Set all values (one array per registered term, in registration order)."""
        if self.A is None:
            self.finalize()
        if len(values) != len(self._keep):
            raise ValueError(f"{len(values)} value arrays for {len(self._keep)} terms")
        parts = []
        for v, keep in zip(values, self._keep, strict=True):
            if isinstance(keep, str):
                if keep == "scalar":
                    parts.append(np.atleast_1d(np.asarray(v, dtype=float)))
                continue
            parts.append(np.asarray(v, dtype=float)[keep])
        parts.append(self._ones)
        vals = np.concatenate(parts)
        self.A.setValuesCOO(vals, addv=PETSc.InsertMode.INSERT_VALUES)
        self.A.assemble()

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        """Solve ``A x = rhs`` (local parts of the vectors)."""
        lay = self.layout
        b = self.A.createVecLeft()
        b.setArray(np.asarray(rhs, dtype=float))
        x = self.A.createVecRight()
        self.ksp.solve(b, x)
        reason = self.ksp.getConvergedReason()
        if reason < 0:
            raise RuntimeError(
                f"the PETSc linear solve failed (KSP converged reason {reason}); the Newton matrix "
                "may be singular"
            )
        out = x.getArray().copy()
        b.destroy()
        x.destroy()
        if not np.all(np.isfinite(out)):
            flag = 1
        else:
            flag = 0
        if lay.comm.allreduce(flag, op=MPI.MAX):
            raise FloatingPointError("the linear solve produced NaN or inf")
        return out

    def destroy(self):
        if self.ksp is not None:
            self.ksp.destroy()
            opts = PETSc.Options()
            for k in self.options:
                opts.delValue(f"{self._prefix}{k}")
        if self.A is not None:
            self.A.destroy()
        self.A = self.ksp = None
