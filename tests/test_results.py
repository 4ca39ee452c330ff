"""The Solution object: construction, attributes, mass, exact save/load round trip."""

import numpy as np
import pytest

from mfg_solvers import Solution


def _time_dependent(rng):
    x = np.linspace(0.0, 1.0, 12, endpoint=False)
    t = np.linspace(0.0, 0.5, 6)
    m = rng.uniform(0.5, 1.5, size=(6, 12))
    m /= m.sum(axis=1, keepdims=True) * (x[1] - x[0])
    return Solution.from_arrays(
        u=rng.normal(size=(6, 12)),
        m=m,
        axes=[x],
        t=t,
        control=rng.normal(size=(6, 12, 1)),
        residual_history=[2.1, 14.0, 6.3, 0.24, 1.5e-3, 9.2e-10],
        attrs={
            "problem": "periodic benchmark",
            "solver": "newton",
            "iterations": 5,
            "converged": True,
            "interrupted": False,
            "time_total": 0.123456789,
            "stage_iterations": [3, 2],
            "continuation_nu": [1.0, 0.5],
            "damping": "none",
            "failure": None,
        },
    )


def _ergodic_2d(rng):
    x = np.linspace(-1.0, 1.0, 5)
    y = np.linspace(0.0, 2.0, 4, endpoint=False)
    return Solution.from_arrays(
        u=rng.normal(size=(5, 4)),
        m=rng.uniform(size=(5, 4)),
        axes=[x, y],
        ergodic_constant=0.9404621347822961,
        residual_history=[1.0, 1e-3, 1e-13],
        attrs={"converged": False, "interrupted": True, "solver": "policy_iteration"},
    )


@pytest.mark.parametrize("build", [_time_dependent, _ergodic_2d])
def test_save_load_round_trip_is_exact(tmp_path, build):
    sol = build(np.random.default_rng(7))
    path = sol.save(tmp_path / "nested" / "solution.nc")
    assert path.exists()
    back = Solution.load(path)
    assert back.equals(sol)
    # bit-identical float64 data, bools restored
    np.testing.assert_array_equal(back.u, sol.u)
    np.testing.assert_array_equal(back.m, sol.m)
    np.testing.assert_array_equal(back.residual_history, sol.residual_history)
    assert back.u.dtype == np.float64
    assert set(back.attrs) == set(sol.attrs)
    for key, value in sol.attrs.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(back.attrs[key], value)
        else:
            assert back.attrs[key] == value
    assert back.converged is sol.converged and back.interrupted is sol.interrupted
    assert back.ergodic_constant == sol.ergodic_constant


def test_equals_detects_a_changed_value(tmp_path):
    sol = _time_dependent(np.random.default_rng(1))
    back = Solution.load(sol.save(tmp_path / "s.nc"))
    back.dataset["u"].values[2, 3] += 1e-15
    assert not back.equals(sol)


def test_attributes_and_accessors():
    sol = _time_dependent(np.random.default_rng(2))
    a = sol.attrs
    assert a["converged"] is True and a["interrupted"] is False
    assert "failure" not in a  # None attributes are dropped
    assert a["version"] == __import__("mfg_solvers").__version__
    np.testing.assert_array_equal(a["continuation_nu"], [1.0, 0.5])
    assert sol.iterations == 5
    assert sol.axis_names == ("x",)
    assert sol.t.shape == (6,) and sol.t[-1] == 0.5
    assert sol.control.shape == (6, 12, 1)
    assert sol.ergodic_constant is None
    assert sol["u"].dims == ("t", "x")
    text = repr(sol)
    assert "periodic benchmark" in text and "newton" in text and "converged" in text
    erg = _ergodic_2d(np.random.default_rng(3))
    assert erg.axis_names == ("x", "y") and erg.t is None and erg.control is None
    assert erg.iterations == 3  # no 'iterations' attribute: the history length
    assert "interrupted" in repr(erg)


def test_mass_is_the_discrete_integral():
    sol = _time_dependent(np.random.default_rng(4))
    np.testing.assert_allclose(sol.mass(), np.ones(6), rtol=1e-14)
    x = np.linspace(-1.0, 1.0, 5)  # h = 0.5
    y = np.linspace(0.0, 2.0, 4, endpoint=False)  # h = 0.5
    m = np.full((5, 4), 2.0)
    sol2 = Solution.from_arrays(u=np.zeros((5, 4)), m=m, axes=[x, y])
    assert sol2.cell_volume == 0.25
    assert sol2.mass() == pytest.approx(2.0 * 20 * 0.25, rel=1e-15)


def test_dataset_type_is_checked():
    with pytest.raises(TypeError, match="dataset=.* must be an xarray.Dataset"):
        Solution({"u": np.zeros(3)})
