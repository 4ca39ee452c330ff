"""Interacting-particle (McKean--Vlasov) engine: numba SDE integrators, interaction kernels,
feedback drifts from grid solutions, density estimation and MPI sharding.

The finite-:math:`N` picture of the mean-field systems solved on grids elsewhere in the package:

* :func:`simulate` -- Euler--Maruyama, Milstein and the exact linear (OU / linear McKean--Vlasov)
  step, with free, periodic, reflecting and absorbing boundaries (:class:`Box`);
* drifts (:class:`AffineDrift`, :class:`NumbaDrift`, :class:`CallableDrift`, :class:`GridDrift`,
  :class:`FeedbackDrift`) and diffusions (:class:`StateDiffusion`);
* interactions through moments (:class:`QuadraticInteraction`, :class:`MeanFieldAffine`) and
  pairwise kernels (:class:`PairwiseInteraction`: direct sum or particle--mesh);
* densities (:func:`deposit`, :func:`histogram`, :func:`kde`, :func:`kde_at`);
* counter-based random streams (:mod:`.rng`), reproducible for any thread and rank count;
* closed forms and a 1-D McKean--Vlasov Fokker--Planck solver for verification
  (:mod:`.mckean_vlasov`);
* :func:`run_particles` -- a run described by a plain dict (the catalogue's ``particles`` kind);
  :func:`run_particles_result` also returns the :class:`ParticleResult` (moments over time,
  deposited density; NetCDF ``save``/``load``).
"""

from .boundaries import Box
from .density import bandwidth, deposit, histogram, interpolate, kde, kde_at
from .drifts import (
    AffineDrift,
    CallableDrift,
    FeedbackDrift,
    GridDrift,
    NumbaDrift,
    StateDiffusion,
    grid_gradient,
)
from .exact import interval_survival, linear_mv_moments
from .integrators import ParticleRun, cloud_moments, simulate
from .interactions import (
    GaussianKernel,
    MeanFieldAffine,
    MorseKernel,
    PairwiseInteraction,
    QuadraticInteraction,
    QuadraticKernel,
    RegularisedCoulombKernel,
    interaction_drift,
)
from .mckean_vlasov import solve_mv_fokker_planck
from .mpi import shard_range
from .rng import gaussian_particles, standard_normals, uniform_particles, uniforms
from .run import ParticleResult, run_particles, run_particles_result

__all__ = [
    "AffineDrift",
    "Box",
    "CallableDrift",
    "FeedbackDrift",
    "GaussianKernel",
    "GridDrift",
    "MeanFieldAffine",
    "MorseKernel",
    "NumbaDrift",
    "PairwiseInteraction",
    "ParticleResult",
    "ParticleRun",
    "QuadraticInteraction",
    "QuadraticKernel",
    "RegularisedCoulombKernel",
    "run_particles",
    "run_particles_result",
    "StateDiffusion",
    "bandwidth",
    "cloud_moments",
    "deposit",
    "gaussian_particles",
    "grid_gradient",
    "histogram",
    "interaction_drift",
    "interpolate",
    "interval_survival",
    "kde",
    "kde_at",
    "linear_mv_moments",
    "shard_range",
    "simulate",
    "solve_mv_fokker_planck",
    "standard_normals",
    "uniform_particles",
    "uniforms",
]
