"""Shared set-up of the finite-element tests: skipped as a whole without dolfinx."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("dolfinx_solver", reason="the finite-element solver needs the 'fem' extra")


def fitted_order(h, errors) -> float:
    """Slope of the least-squares fit of log(error) against log(h)."""
    h = np.asarray(h, dtype=float)
    errors = np.asarray(errors, dtype=float)
    return float(np.polyfit(np.log(h), np.log(errors), 1)[0])


@pytest.fixture
def quiet_mass_warning():
    """Silence the mass normalisation warning of m0 (the tests normalise on purpose)."""
    from mfg_solvers.model import MassNormalisationWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MassNormalisationWarning)
        yield
