"""run_particles: a run described by a dict, summarised, with its closed form when linear."""

import math

import numpy as np
import pytest

from mfg_solvers.particles import run_particles

SPEC = {
    "n_particles": 50_000,
    "dim": 2,
    "T": 1.0,
    "n_steps": 10,
    "seed": 4,
    "scheme": "exact",
    "nu": 0.125,
    "initial": {"kind": "gaussian", "mean": [1.0, -1.0], "cov": [[0.3, 0.1], [0.1, 0.2]]},
    "drift": {"kind": "ou", "theta": 1.0, "mu": [0.5, 0.0]},
    "interaction": {"kind": "quadratic", "k": 1.0},
    "record_every": 5,
}


def test_linear_run_matches_its_closed_form():
    out = run_particles(SPEC)
    n = SPEC["n_particles"]
    assert out["n_particles"] == n and out["dim"] == 2 and out["steps_done"] == 10
    assert out["mass"] == 1.0 and out["ranks"] == 1 and out["scheme"] == "exact"
    var = np.diag(np.array(out["cov_exact"]))
    # the empirical mean is N(m(T), Sigma_{A+B}(T)/N) with A + B = -I:
    # Sigma_{A+B}(1) = e^{-2} S0 + 2 nu (1 - e^{-2}) / 2 <= 0.15 on the diagonal
    assert out["mean_error"] < 5 * math.sqrt(0.15 / n)
    assert out["cov_error"] < 5 * max(var) * math.sqrt(2.0 / n)
    assert out["w2_to_meanfield"] < 0.02
    assert out["particle_steps_per_s"] > 0


def test_catalogue_table_and_density():
    spec = {"name": "demo", "kind": "particles", "source": "test",
            "particles": {"n_particles": 20_000, "T": 0.5, "n_steps": 20, "sigma": 0.5,
                          "initial": {"kind": "uniform", "bounds": [[0.0, 1.0]]},
                          "box": {"bounds": [0.0, 1.0], "boundary": "periodic"},
                          "interaction": {"kind": "gaussian", "strength": -0.5, "width": 0.1,
                                          "method": "pm", "mesh": 64},
                          "density": {"shape": 32}}}
    out = run_particles(spec)
    assert out["dim"] == 1 and abs(out["density_mass"] - 1.0) < 1e-12
    assert out["density_max"] > 0.5
    assert "mean_exact" not in out  # no closed form for a pairwise kernel


@pytest.mark.parametrize(
    "patch, match",
    [
        ({"n_particles": 1}, "n_particles"),
        ({"colour": "red"}, "unknown key"),
        ({"drift": {"kind": "tanh"}}, "drift.kind"),
        ({"interaction": {"kind": "quadratic", "k": 1.0, "width": 2}}, "unknown key"),
        ({"initial": {"kind": "cauchy"}}, "initial.kind"),
        ({"sigma": 0.3}, "either sigma or nu"),
        ({"dim": 4}, "dim"),
        ({"T": None}, "T=None"),
    ],
)
def test_bad_specs(patch, match):
    spec = {**SPEC, **patch}
    if patch.get("T", 1) is None:
        spec.pop("T")
        match = "'T' is required"
    with pytest.raises((ValueError, TypeError), match=match):
        run_particles(spec)
