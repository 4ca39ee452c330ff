"""Reassembly of the Jacobian blocks into PETSc matrices with a fixed sparsity pattern.

Every Newton step reassembles the same bilinear forms (the four Jacobian blocks of each time
step) into matrices whose pattern never changes. Inserting the element matrices through
``MatSetValuesLocal`` costs as much as computing them for these cheap P1 / P2 kernels, so in
serial a :class:`FormMatrix` lets dolfinx assemble into its native CSR storage
(:class:`dolfinx.la.MatrixCSR`) and builds the PETSc ``SeqAIJ`` matrix on *the same arrays*
(``MatCreateSeqAIJWithArrays``): the values land in PETSc's matrix without a copy, and
``Mat.assemble`` marks it changed, so a factorisation attached to it is redone. In parallel the
ordinary PETSc assembly is used (owned rows, ghost contributions sent to their owners).

The result is the same matrix in both paths (same pattern, same values: the element kernels and
the summation order of each entry are the same).
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
        if self.native:
            csr = fem.create_matrix(form)
            n_rows = csr.index_map(0).size_local
            n_cols = csr.index_map(1).size_local
            self._csr = csr
            # PETSc wants its own integer type; the values array is shared, not copied
            self._indptr = np.ascontiguousarray(csr.indptr, dtype=PETSc.IntType)
            self._indices = np.ascontiguousarray(csr.indices, dtype=PETSc.IntType)
            self._data = csr.data
            self.mat = PETSc.Mat().createAIJWithArrays(
                (n_rows, n_cols), (self._indptr, self._indices, self._data),
                comm=PETSc.COMM_SELF,
            )
            self.mat.assemble()
        else:
            self._csr = None
            self.mat = fem.petsc.create_matrix(form)

    def assemble(self) -> PETSc.Mat:
        """Reassemble the form with the current coefficients; returns the PETSc matrix."""
        if self.native:
            self._data[:] = 0.0
            fem.assemble_matrix(self._csr, self.form, bcs=self.bcs, diag=self.diag)
        else:
            self.mat.zeroEntries()
            fem.petsc.assemble_matrix(self.mat, self.form, bcs=self.bcs, diag=self.diag)
        self.mat.assemble()  # also bumps the object state: attached factorisations are redone
        return self.mat

    def values(self) -> np.ndarray:
        """A copy of the CSR values of the owned rows (PETSc's order)."""
        if self.native:
            return self._data.copy()
        return self.mat.getValuesCSR()[2].copy()

    def destroy(self) -> None:
        self.mat.destroy()
