"""Finite differences: the monotone Achdou--Capuzzo-Dolcetta discretisation and its kernels.

* :class:`FDDiscretisation` -- the discretisation object the coupling solvers drive
  (see ``docs/architecture.md``, "The Discretisation interface");
* :class:`FDPolicy` -- a frozen discrete policy (policy iteration);
* :class:`NumericalHamiltonian` -- the Godunov numerical Hamiltonians and their derivatives.
"""

from __future__ import annotations

from .discretisation import FDDiscretisation, FDPolicy
from .numerical_hamiltonians import NumericalHamiltonian

__all__ = ["FDDiscretisation", "FDPolicy", "NumericalHamiltonian"]
