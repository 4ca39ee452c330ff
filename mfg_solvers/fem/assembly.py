"""Reassembly of the Jacobian blocks into PETSc matrices with a fixed sparsity pattern.

Every Newton step reassembles the same bilinear forms (the four Jacobian blocks of each time
step) into matrices whose pattern never changes. Inserting the element matrices through
``MatSetValuesLocal`` costs as much as computing them for these cheap P1 / P2 kernels, so a
:class:`FormMatrix` lets dolfinx assemble into its native CSR storage
(:class:`dolfinx.la.MatrixCSR`) and hands the values to PETSc in bulk:

* in serial the PETSc ``SeqAIJ`` matrix is built on *the same arrays*
  (``MatCreateSeqAIJWithArrays``): the values land in PETSc's matrix without a copy;
* in parallel the ghost rows are summed into their owners (``scatter_reverse``) and the owned
  rows are copied into the ``MPIAIJ`` matrix row by row (``MatSetValuesCSR``, global column
  numbers precomputed once).

``Mat.assemble`` then marks the matrix changed, so a factorisation attached to it is redone.
The result is the same matrix as PETSc's own assembly (same pattern, same values up to the
summation order of the ghost contributions).
"""

from __future__ import annotations

import numpy as np

from ._backend import PETSc, fem


class FormMatrix:
    """A PETSc matrix of the bilinear ``form``, reassembled in place by :meth:`assemble`.

    Parameters
    ----------
    form
        A compiled bilinear form (``dolfinx.fem.Form``).
    bcs
        Dirichlet conditions: their rows and columns are zeroed and ``diag`` is put on the
        diagonal (for a form whose test and trial spaces are the same object).
    diag
        The diagonal value of the constrained rows.
    """

    def __init__(self, form, bcs=(), diag: float = 1.0):
        self.form = form
        self.bcs = list(bcs)
        self.diag = float(diag)
        comm = form.mesh.comm
        self.native = comm.size == 1
        csr = fem.create_matrix(form)
        self._csr = csr
        self._data = csr.data
        n_rows = csr.index_map(0).size_local * csr.block_size[0]
        indptr = np.asarray(csr.indptr)
        # PETSc wants its own integer type; owned rows only (ghost rows are sent to the owners)
        self._indptr = np.ascontiguousarray(indptr[: n_rows + 1], dtype=PETSc.IntType)
        self._nnz = int(indptr[n_rows])
        local_cols = np.asarray(csr.indices[: self._nnz])
        if self.native:
            n_cols = csr.index_map(1).size_local * csr.block_size[1]
            self._indices = np.ascontiguousarray(local_cols, dtype=PETSc.IntType)
            # the values array is shared with PETSc, not copied
            self.mat = PETSc.Mat().createAIJWithArrays(
                (n_rows, n_cols), (self._indptr, self._indices, self._data),
                comm=PETSc.COMM_SELF,
            )
            self.mat.assemble()
        else:
            if list(csr.block_size) != [1, 1]:
                raise ValueError("FormMatrix supports scalar spaces only in parallel")
            self._indices = np.ascontiguousarray(
                csr.index_map(1).local_to_global(local_cols.astype(np.int32)),
                dtype=PETSc.IntType,
            )
            self.mat = fem.petsc.create_matrix(form)

    def assemble(self) -> PETSc.Mat:
        """Reassemble the form with the current coefficients; returns the PETSc matrix."""
        self._data[:] = 0.0
        fem.assemble_matrix(self._csr, self.form, bcs=self.bcs, diag=self.diag)
        if not self.native:
            self._csr.scatter_reverse()
            self.mat.setValuesCSR(self._indptr, self._indices, self._data[: self._nnz],
                                  addv=PETSc.InsertMode.INSERT_VALUES)
        self.mat.assemble()  # also bumps the object state: attached factorisations are redone
        return self.mat

    def values(self) -> np.ndarray:
        """A copy of the CSR values of the owned rows (PETSc's order)."""
        if self.native:
            return self._data.copy()
        return self.mat.getValuesCSR()[2].copy()

    def destroy(self) -> None:
        self.mat.destroy()
