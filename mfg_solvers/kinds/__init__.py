"""Catalogue kinds implemented outside :mod:`mfg_solvers.catalogue`, one module per family.

Each submodule registers its :class:`~mfg_solvers.catalogue.ProblemKind` objects with
:func:`~mfg_solvers.catalogue.register_kind` when it is imported; the catalogue imports it on
first use through :data:`~mfg_solvers.catalogue.KIND_MODULES` (kind name -> module), so that
listing or loading the catalogue never imports a heavy engine it does not need.

* :mod:`mfg_solvers.kinds.mfpid`: ``mfpid-lqg`` (the LQG benchmark of Mean-Field Path-Integral
  Diffusion: closed form and agents) and ``mfpid-gm`` (the Gaussian-mixture demand-response
  scenarios and their parameter sweeps);
* :mod:`mfg_solvers.kinds.particles`: ``particles`` (interacting-particle runs, sharded over MPI
  ranks under ``mpiexec``);
* :mod:`mfg_solvers.kinds.fem`: ``fem-crowd`` (crowd evacuation of a room with obstacles and
  exits, finite elements on dolfinx).
"""
