"""The problem catalogue: loading, validation messages, overrides, shapes, reference checks,
the kind dispatch table, and run_problem summaries against exact / published values."""

from __future__ import annotations

import json
import math
import tomllib
import warnings
from pathlib import Path

import numpy as np
import pytest

from mfg_solvers import catalogue as cat
from mfg_solvers.catalogue import CatalogueError

CATALOGUE = Path(__file__).resolve().parent.parent / "problems"
PERIODIC = CATALOGUE / "periodic_benchmark.toml"


def _raw(name="periodic_benchmark") -> dict:
    return tomllib.loads((CATALOGUE / f"{name}.toml").read_text(encoding="utf-8"))


def _dump(value) -> str:
    """Minimal TOML writer for the test documents (scalars, arrays, inline tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_dump(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_dump(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


def _write(path: Path, raw: dict) -> Path:
    lines = [f"{k} = {_dump(v)}" for k, v in raw.items() if not isinstance(v, dict)]
    for k, v in raw.items():
        if isinstance(v, dict):
            lines.append(f"[{k}]")
            lines += [f"{kk} = {_dump(vv)}" for kk, vv in v.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _one_line_error(excinfo, *fragments):
    msg = str(excinfo.value)
    assert "\n" not in msg
    for f in fragments:
        assert f in msg, (f, msg)
    return msg


# ---------------------------------------------------------------------------------------------
# the catalogue itself
# ---------------------------------------------------------------------------------------------
EXPECTED_ENTRIES = {
    "periodic_benchmark",
    "lq_mfg",
    "ergodic_lq",
    "ergodic_log_gaussian",
    "crowd_aversion_2d",
}


def test_every_entry_loads_with_its_ci_overlay():
    specs = cat.list_problems(CATALOGUE)
    names = {s.name for s in specs}
    assert EXPECTED_ENTRIES <= names
    for s in specs:
        assert s.path.stem == s.name
        assert s.reference, f"{s.name} has no reference values"
        assert s.source["origin"] in ("paper", "in-house")
        ci = s.ci_spec()
        assert ci.name == s.name
        assert ci.ci_applied and ci.ci_spec() is ci


def test_lq_entry_parameters_and_reference_values():
    spec = cat.load_problem("lq_mfg", directory=CATALOGUE)
    p = spec.parameters
    expected = dict(
        q=2.0,
        q_T=0.5,
        kappa=0.6,
        kappa_T=0.3,
        sigma=0.6,
        T=1.0,
        mean0=1.0,
        var0=0.2,
        x_min=-4.0,
        x_max=4.0,
    )
    for k, v in expected.items():
        assert p[k] == v
    assert set(p) == set(expected) | {"nx", "nt"}
    exact = cat.FD_MODELS["lq"].exact(p)
    # LQ check case check values
    assert exact["mean_T_exact"] == pytest.approx(0.5476579284, abs=1e-10)
    assert exact["var_T_exact"] == pytest.approx(0.1965042738, abs=1e-10)
    assert spec.reference["mean_T"].source == "mean_T_exact"


def test_closed_form_models_exact_quantities():
    e = cat.FD_MODELS["ergodic-lq"].exact(
        dict(q=4.0, kappa=0.5, sigma=0.5, nx=11, x_min=-1.0, x_max=1.0)
    )
    assert e["lambda_exact"] == pytest.approx(0.25 * 2.0 / 2.0, rel=1e-14)  # sigma^2 sqrt(q) / 2
    assert e["var_exact"] == pytest.approx(0.25 / (2 * 2.0), rel=1e-14)  # sigma^2 / (2 sqrt q)
    c, alpha, nu = 1.0, 0.5, 0.3
    e = cat.FD_MODELS["ergodic-log-gaussian"].exact(
        dict(c=c, alpha=alpha, nu=nu, nx=11, x_min=-1.0, x_max=1.0)
    )
    a = (-alpha + math.sqrt(alpha**2 + 4 * c * nu**2)) / (2 * nu)
    assert e["var_exact"] == pytest.approx(nu / a, rel=1e-14)
    assert e["lambda_exact"] == pytest.approx(
        nu * a + 0.5 * alpha * math.log(a / (2 * math.pi * nu)), rel=1e-14
    )


def test_periodic_benchmark_builds_the_reference_problem():
    spec = cat.load_problem(PERIODIC, {"parameters.nx": 64, "parameters.nt": 10})
    problem, grid, nt = spec.build()
    assert (grid.shape, nt, problem.nu, problem.T) == ((64,), 10, 0.1, 1.0)
    x = grid.axes[0]
    np.testing.assert_allclose(problem.potential_values(grid), -np.cos(2 * np.pi * x), atol=1e-15)
    m0 = problem.initial_density(grid)
    raw = 1 + 0.5 * np.cos(2 * np.pi * (x - 0.25))
    np.testing.assert_allclose(m0, raw / (raw.sum() / 64), rtol=1e-14)
    assert grid.integrate(m0) == pytest.approx(1.0, abs=1e-14)
    np.testing.assert_allclose(problem.terminal_values(grid), 0.0)
    np.testing.assert_allclose(problem.coupling.value(m0), m0)
    assert problem.name == "periodic_benchmark"


def test_lq_build_uses_mean_couplings_on_a_reflecting_box():
    spec = cat.load_problem(
        "lq_mfg", {"parameters.nx": 81, "parameters.nt": 5}, directory=CATALOGUE
    )
    problem, grid, nt = spec.build()
    assert grid.boundary == ("neumann",) and grid.bounds == ((-4.0, 4.0),)
    assert problem.nu == pytest.approx(0.18, rel=1e-14)
    assert (problem.coupling.q, problem.coupling.kappa) == (2.0, 0.6)
    assert (problem.terminal_coupling.q, problem.terminal_coupling.kappa) == (0.5, 0.3)
    m0 = problem.initial_density(grid)
    x = grid.axes[0]
    assert grid.integrate(m0 * x) == pytest.approx(1.0, abs=1e-6)
    assert grid.integrate(m0 * (x - 1.0) ** 2) == pytest.approx(0.2, abs=1e-4)


# ---------------------------------------------------------------------------------------------
# validation messages: one line, naming the file, the key and what is allowed
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "mutate, fragments",
    [
        (lambda r: r.update(colour="red"), ["unknown key 'colour'", "allowed:", "parameters"]),
        (
            lambda r: r["parameters"].update(nxx=3),
            ["unknown key 'parameters.nxx'", "allowed:", "nx"],
        ),
        (
            lambda r: r["parameters"]["m0"].update(amplitud=1),
            ["unknown key 'parameters.m0.amplitud'", "amplitude, offset, period, phase"],
        ),
        (lambda r: r["parameters"].update(nu=-0.1), ["parameters.nu", "-0.1", ">= 0"]),
        (lambda r: r["parameters"].update(nx=2), ["parameters.nx", "an integer >= 3"]),
        (lambda r: r["parameters"].update(nt=1.5), ["parameters.nt", "1.5", "integer >= 1"]),
        (
            lambda r: r["parameters"].update(boundary="dirichlet"),
            ["parameters.boundary", "dirichlet", "periodic, neumann"],
        ),
        (
            lambda r: r["parameters"]["potential"].update(shape="sombrero"),
            ["parameters.potential.shape", "sombrero", "cosine", "gaussian"],
        ),
        (
            lambda r: r["parameters"]["coupling"].update(kind="cubic"),
            ["parameters.coupling.kind", "cubic", "linear, log, power"],
        ),
        (
            lambda r: r["parameters"].update(hamiltonian="quartic"),
            ["parameters.hamiltonian.name", "quartic", "quadratic, power, congestion"],
        ),
        (lambda r: r["parameters"].update(T=True), ["parameters.T", "true", "real number > 0"]),
        (
            lambda r: r["parameters"].update(sigma=0.3),
            ["parameters.nu", "exactly one of nu and sigma"],
        ),
        (lambda r: r["parameters"].pop("m0"), ["parameters.m0", "missing"]),
        (
            lambda r: r["solver"].update(method="gradient_descent"),
            [
                "solver.method",
                "gradient_descent",
                "newton, fixed_point, fictitious_play, policy_iteration",
            ],
        ),
        (lambda r: r.update(kind="fd-mgf"), ["kind", "fd-mgf", "fd-mfg"]),
        (lambda r: r.update(model="lqr"), ["model", "lqr", "general, lq, ergodic-lq"]),
        (lambda r: r["source"].update(origin="blog"), ["source.origin", "blog", "paper, in-house"]),
        (lambda r: r["source"].pop("reference"), ["source.reference", "missing"]),
        (
            lambda r: r["reference"].update(min_m={"value": 0.4}),
            ["reference.min_m.rtol", "missing"],
        ),
        (
            lambda r: r["reference"].update(min_m={"value": 0.4, "from": "max_m", "atol": 1}),
            ["reference.min_m", "exactly one of value, from, or min/max"],
        ),
        (
            lambda r: r["reference"].update(min_m={"value": 0.4, "tolerance": 1}),
            ["unknown key 'reference.min_m.tolerance'", "atol", "rtol"],
        ),
        (
            lambda r: r["ci"].update(parameters={"nx": 1}),
            ["[ci overlay]", "parameters.nx", "integer >= 3"],
        ),
        (lambda r: r["ci"].update(sizes={"nx": 1}), ["unknown key 'ci.sizes'"]),
        (lambda r: r.update(name="bad name!"), ["name", "bad name!"]),
    ],
)
def test_validation_errors_are_one_line_naming_file_and_key(tmp_path, mutate, fragments):
    raw = _raw()
    mutate(raw)
    path = _write(tmp_path / "entry.toml", raw)
    with pytest.raises(CatalogueError) as excinfo:
        cat.load_problem(path)
    _one_line_error(excinfo, str(path), *fragments)


def test_catalogue_error_is_a_value_error():
    assert issubclass(CatalogueError, ValueError)


def test_the_test_writer_round_trips_a_valid_entry(tmp_path):
    path = _write(tmp_path / "entry.toml", _raw())
    spec = cat.load_problem(path)
    assert spec.parameters == cat.load_problem(PERIODIC).parameters


def test_malformed_toml_names_the_file_and_the_line(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text('kind = "fd-mfg"\nname = "broken"\nnx = = 3\n', encoding="utf-8")
    with pytest.raises(CatalogueError) as excinfo:
        cat.load_problem(path)
    msg = _one_line_error(excinfo, str(path), "line 3", "malformed TOML", "nx")
    assert msg.startswith(str(path))


def test_missing_file_and_unknown_name(tmp_path):
    with pytest.raises(CatalogueError) as excinfo:
        cat.load_problem(tmp_path / "nope.toml")
    _one_line_error(excinfo, "nope.toml", "file not found")
    with pytest.raises(CatalogueError) as excinfo:
        cat.load_problem("no_such_problem", directory=CATALOGUE)
    _one_line_error(excinfo, "no_such_problem", "periodic_benchmark")


def test_model_construction_errors_become_catalogue_errors():
    # m0 = cos has negative values: the problem statement rejects it when built
    spec = cat.load_problem(PERIODIC, {"parameters.m0.offset": 0.0})
    with pytest.raises(CatalogueError) as excinfo:
        spec.build()
    _one_line_error(excinfo, str(PERIODIC), "parameters.m0", "negative values")


def test_duplicate_names_in_a_catalogue_folder(tmp_path):
    _write(tmp_path / "a.toml", _raw())
    _write(tmp_path / "b.toml", _raw())
    with pytest.raises(CatalogueError) as excinfo:
        cat.list_problems(tmp_path)
    _one_line_error(excinfo, "b.toml", "already used", "a.toml")


# ---------------------------------------------------------------------------------------------
# overrides
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, expected",
    [
        ("parameters.nx=200", ("parameters.nx", 200)),
        ("parameters.nu = 0.05", ("parameters.nu", 0.05)),
        ("solver.method=fixed_point", ("solver.method", "fixed_point")),
        ('solver.method="policy_iteration"', ("solver.method", "policy_iteration")),
        ("parameters.ergodic=true", ("parameters.ergodic", True)),
        ("parameters.nx=[10, 12]", ("parameters.nx", [10, 12])),
        ('parameters.m0={shape = "uniform"}', ("parameters.m0", {"shape": "uniform"})),
        ("solver.tol=1e-8", ("solver.tol", 1e-8)),
    ],
)
def test_parse_override(text, expected):
    assert cat.parse_override(text) == expected


@pytest.mark.parametrize("text", ["parameters.nx", "=3", "parameters.nx=[1,", 'a="unterminated'])
def test_parse_override_rejects_malformed_items(text):
    with pytest.raises(CatalogueError) as excinfo:
        cat.parse_override(text)
    _one_line_error(excinfo, "allowed")


def test_overrides_set_nested_keys_and_are_validated():
    spec = cat.load_problem(
        "periodic_benchmark",
        {
            "parameters.nx": 40,
            "parameters.m0.amplitude": 0.25,
            "solver.method": "fixed_point",
            "solver.options.relaxation": 0.3,
        },
        directory=CATALOGUE,
    )
    assert spec.parameters["nx"] == (40,)
    assert spec.parameters["m0"][1]["amplitude"] == 0.25
    assert spec.solver["method"] == "fixed_point"
    assert spec.solver["options"] == {"relaxation": 0.3}
    assert spec.raw["parameters"]["nx"] == 40
    # the file itself is untouched; a second override set starts from the file
    again = spec.with_overrides({"parameters.nt": 7})
    assert again.parameters["nx"] == (40,) and again.parameters["nt"] == 7
    with pytest.raises(CatalogueError) as excinfo:
        cat.load_problem(PERIODIC, {"parameters.nx": "many"})
    _one_line_error(excinfo, "parameters.nx", '"many"', "set by an override")
    with pytest.raises(CatalogueError) as excinfo:
        cat.load_problem(PERIODIC, {"parameters.nu.value": 1})
    _one_line_error(excinfo, "parameters.nu", "not a table")


def test_ci_overlay_then_overrides():
    spec = cat.load_problem(PERIODIC, ci=True)
    assert spec.parameters["nx"] == (100,) and spec.parameters["nt"] == 100
    spec = cat.load_problem(PERIODIC, {"parameters.nt": 20}, ci=True)
    assert spec.parameters["nx"] == (100,) and spec.parameters["nt"] == 20
    # the same from a loaded spec: overrides survive the overlay and later overrides
    plain = cat.load_problem(PERIODIC, {"parameters.nt": 20})
    ci = cat.load_problem(plain, ci=True)
    assert ci.ci_applied and ci.parameters["nx"] == (100,) and ci.parameters["nt"] == 20
    again = ci.with_overrides({"parameters.nx": 60})
    assert again.ci_applied and again.parameters["nx"] == (60,) and again.parameters["nt"] == 20
    assert plain.parameters["nx"] == (200,)


def test_dict_specs_are_accepted():
    raw = _raw()
    spec = cat.load_problem(raw, {"parameters.nx": 30})
    assert spec.path is None and spec.parameters["nx"] == (30,)
    raw["parameters"]["nx"] = 1
    with pytest.raises(CatalogueError) as excinfo:
        cat.load_problem(raw)
    _one_line_error(excinfo, "<periodic_benchmark>", "parameters.nx")


# ---------------------------------------------------------------------------------------------
# shapes, couplings, Hamiltonians
# ---------------------------------------------------------------------------------------------
def _general(**params):
    raw = _raw()
    raw["parameters"] = params
    raw.pop("ci")
    return cat.load_problem(raw)


def test_shapes_evaluate_their_formulas_in_2d():
    from mfg_solvers.grid import Grid

    spec = _general(
        bounds=[[0.0, 1.0], [0.0, 2.0]],
        boundary=["periodic", "neumann"],
        nx=[16, 21],
        nt=4,
        T=1.0,
        sigma=0.5,
        potential={"shape": "cosine", "offset": 0.5, "amplitude": 2.0, "phase": [0.1, 0.2]},
        m0={"shape": "gaussian", "mean": [0.5, 1.0], "var": [0.01, 0.04], "scale": 3.0},
        terminal_cost={"shape": "quadratic", "k": 3.0, "center": [0.5, 1.5]},
        coupling={"kind": "power", "strength": 2.0, "exponent": 1.5},
        hamiltonian={"name": "congestion", "c": 0.5, "alpha": 0.25},
    )
    problem, grid, nt = spec.build()
    assert isinstance(grid, Grid) and grid.shape == (16, 21)
    assert problem.nu == pytest.approx(0.125)
    x, y = grid.coordinates()
    V = 0.5 + 2.0 * (np.cos(2 * np.pi * (x - 0.1)) + np.cos(2 * np.pi * (y - 0.2) / 2.0))
    np.testing.assert_allclose(problem.potential_values(grid), V, atol=1e-14)
    g = 1.5 * ((x - 0.5) ** 2 + (y - 1.5) ** 2)
    np.testing.assert_allclose(problem.terminal_values(grid), g, atol=1e-14)
    raw_m0 = cat.build_shape(spec.parameters["m0"], problem.domain)(x, y)
    pdf = np.exp(-0.5 * (x - 0.5) ** 2 / 0.01 - 0.5 * (y - 1.0) ** 2 / 0.04) / (
        2 * np.pi * np.sqrt(0.01 * 0.04)
    )
    np.testing.assert_allclose(raw_m0, 3.0 * pdf, rtol=1e-13)
    assert problem.coupling.value(np.array([4.0]))[0] == pytest.approx(16.0)
    assert problem.hamiltonian.params == (0.5, 0.25)


def test_wells_use_the_minimal_image_on_periodic_axes():
    spec = _general(
        bounds=[0.0, 1.0],
        nx=50,
        nt=2,
        T=1.0,
        nu=0.1,
        m0="uniform",
        potential={"shape": "wells", "centers": [0.05, 0.6], "depth": [2.0, 1.0], "width": 0.1},
    )
    problem, grid, _ = spec.build()
    x = grid.axes[0]
    d1 = (x - 0.05) - np.round(x - 0.05)
    d2 = (x - 0.6) - np.round(x - 0.6)
    V = -2.0 * np.exp(-0.5 * d1**2 / 0.01) - np.exp(-0.5 * d2**2 / 0.01)
    np.testing.assert_allclose(problem.potential_values(grid), V, atol=1e-15)
    # one well at 0.05: across the periodic seam V(0.98) equals V(0.12) (both 0.07 away)
    one = _general(
        bounds=[0.0, 1.0],
        nx=50,
        nt=2,
        T=1.0,
        nu=0.1,
        m0="uniform",
        potential={"shape": "wells", "centers": [0.05], "width": 0.1},
    )
    V1 = cat.build_shape(one.parameters["potential"], problem.domain)
    assert V1(np.array([0.98]))[0] == pytest.approx(V1(np.array([0.12]))[0], rel=1e-12)
    assert V1(np.array([0.12]))[0] == pytest.approx(-np.exp(-0.5 * 0.07**2 / 0.01), rel=1e-12)


def test_convolution_coupling_is_a_normalised_gaussian_kernel():
    spec = _general(
        bounds=[0.0, 1.0],
        nx=200,
        nt=2,
        T=1.0,
        nu=0.1,
        m0="uniform",
        coupling={"kind": "convolution", "strength": 2.0, "width": 0.05},
    )
    problem, grid, _ = spec.build()
    # K * 1 = 1 on the torus (kernel mass 1, width << period): f = strength
    np.testing.assert_allclose(problem.coupling.value(np.ones(grid.shape), grid), 2.0, rtol=1e-10)


def test_per_axis_lists_must_match_the_dimension(tmp_path):
    raw = _raw()
    raw["parameters"]["potential"] = {"shape": "cosine", "phase": [0.1, 0.2]}
    with pytest.raises(CatalogueError) as excinfo:
        cat.load_problem(_write(tmp_path / "e.toml", raw))
    _one_line_error(excinfo, "parameters.potential.phase", "2 entries", "1 axes")


def test_ergodic_general_problem_rejects_a_horizon():
    with pytest.raises(CatalogueError) as excinfo:
        _general(bounds=[0.0, 1.0], nx=20, T=1.0, ergodic=True, nu=0.1)
    _one_line_error(excinfo, "parameters.T", "not allowed when ergodic = true")
    spec = _general(bounds=[0.0, 1.0], nx=20, ergodic=True, nu=0.1, coupling="log")
    problem, grid, nt = spec.build()
    assert problem.ergodic and nt is None
    assert problem.coupling.kind == "log"


# ---------------------------------------------------------------------------------------------
# reference checks
# ---------------------------------------------------------------------------------------------
def _spec_with_references(refs: dict):
    raw = _raw()
    raw["reference"] = refs
    return cat.load_problem(raw)


def test_check_references_value_from_and_bounds():
    spec = _spec_with_references(
        {
            "a": {"value": 1.0, "rtol": 0.01},
            "b": {"from": "b_exact", "atol": 1e-3},
            "c": {"max": 6},
            "d": {"min": 0.0, "max": 1.0},
            "e": {"value": 0.0, "atol": 1e-12},
        }
    )
    summary = {"a": 1.0099, "b": 2.0, "b_exact": 2.0015, "c": 7, "d": 0.5, "e": -5e-13}
    rows = {r.quantity: r for r in cat.check_references(spec, summary)}
    assert rows["a"].passed and rows["a"].rel_error == pytest.approx(0.0099)
    assert not rows["b"].passed and rows["b"].rel_error == pytest.approx(0.0015 / 2.0015)
    assert not rows["c"].passed and rows["c"].reference == "<= 6"
    assert rows["d"].passed and rows["d"].reference == "[0, 1]"
    assert rows["e"].passed and rows["e"].rel_error is None
    missing = cat.check_references(spec, {"a": 1.0})
    assert [r.passed for r in missing] == [True, False, False, False, False]
    assert "missing" in missing[1].message


# ---------------------------------------------------------------------------------------------
# the dispatch table: a toy kind registers itself and is run, verified and written out
# ---------------------------------------------------------------------------------------------
class _ToySolution:
    def __init__(self, value):
        self.value = value

    def save(self, path):
        Path(path).write_text(f"{self.value!r}\n")
        return Path(path)


def _toy_validate(ctx, raw):
    params = cat.validate_table(
        ctx,
        "parameters",
        raw["parameters"],
        (cat.Param("a", cat.real(), cat.REQUIRED), cat.Param("n", cat.integer(ge=1), 10)),
    )
    return {"parameters": params}


def _toy_run(spec, progress=False):
    # partial sums of the Leibniz series: pi/4 with error < 1/(2n+1)
    n, a = spec.parameters["n"], spec.parameters["a"]
    s = sum((-1) ** k / (2 * k + 1) for k in range(n))
    return _ToySolution(s), {"pi_estimate": 4 * s * a, "pi": math.pi, "n": n}


@pytest.fixture
def toy_kind():
    kind = cat.register_kind(cat.ProblemKind("toy", _toy_validate, _toy_run), replace=True)
    yield kind
    cat._KINDS.pop("toy", None)


def _toy_raw(name="toy_pi", n=200, rtol=0.01):
    return {
        "kind": "toy",
        "name": name,
        "description": "Leibniz series for pi",
        "source": {"origin": "in-house", "reference": "the Leibniz series"},
        "parameters": {"a": 1.0, "n": n},
        "ci": {"parameters": {"n": n}},
        "reference": {"pi_estimate": {"from": "pi", "rtol": rtol}},
    }


def test_registered_kind_is_loaded_run_and_written(toy_kind, tmp_path):
    assert "toy" in cat.known_kinds()
    sol, summary = cat.run_problem(_toy_raw(), {"parameters.n": 1000}, out=tmp_path / "out")
    assert summary["pi_estimate"] == pytest.approx(math.pi, abs=4 / 2001)
    assert summary["n"] == 1000
    data = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert data["pi_estimate"] == summary["pi_estimate"]
    assert float((tmp_path / "out" / "solution.nc").read_text()) == pytest.approx(sol.value)
    assert json.loads((tmp_path / "out" / "problem.json").read_text())["parameters"]["n"] == 1000
    with pytest.raises(CatalogueError) as excinfo:
        cat.load_problem(_toy_raw(), {"parameters.b": 1})
    _one_line_error(excinfo, "unknown key 'parameters.b'", "a, n")


def test_verify_reports_pass_and_fail(toy_kind, tmp_path):
    (tmp_path / "good.toml").write_text(_toml_of(_toy_raw("good", n=2000)))
    (tmp_path / "bad.toml").write_text(_toml_of(_toy_raw("bad", n=3, rtol=1e-3)))
    seen = []
    rows = cat.verify(directory=tmp_path, on_result=lambda s, r, t: seen.append(s.name))
    assert seen == ["bad", "good"]
    by = {r.problem: r for r in rows}
    assert by["good"].passed and by["good"].rel_error < 1e-3
    assert not by["bad"].passed and by["bad"].rel_error > 1e-2
    with pytest.raises(CatalogueError) as excinfo:
        cat.verify(["ugly"], directory=tmp_path)
    _one_line_error(excinfo, "ugly", "bad, good")


def test_unknown_kind_lists_the_registered_ones():
    raw = _toy_raw()
    with pytest.raises(CatalogueError) as excinfo:
        cat.load_problem(raw)
    _one_line_error(excinfo, "kind", '"toy"', "fd-mfg")


def _toml_of(raw: dict) -> str:
    lines = [f"{k} = {_dump(v)}" for k, v in raw.items() if not isinstance(v, dict)]
    for k, v in raw.items():
        if isinstance(v, dict):
            lines.append(f"{k} = {_dump(v)}")
    return "\n".join(lines) + "\n"


def test_write_summary_turns_nan_into_null(tmp_path):
    path = cat.write_summary(
        {"a": np.float64(1.5), "b": float("nan"), "c": np.int64(3), "d": "x"}, tmp_path / "s.json"
    )
    assert json.loads(path.read_text()) == {"a": 1.5, "b": None, "c": 3, "d": "x"}


# ---------------------------------------------------------------------------------------------
# run_problem on the fd-mfg entries (small sizes) against reference values
# ---------------------------------------------------------------------------------------------
def test_periodic_benchmark_summary_small_mesh():
    sol, s = cat.run_problem(PERIODIC, {"parameters.nx": 50, "parameters.nt": 50})
    assert s["converged"] and s["iterations"] <= 6  # ~5 at every mesh
    assert s["residual"] < 1e-9
    assert s["mass_error"] < 1e-12
    assert s["min_m"] == pytest.approx(0.40, abs=0.02)
    assert s["nx"] == 50 and s["nt"] == 50
    assert sol.m.shape == (51, 50)
    assert s["min_m"] == pytest.approx(float(sol.m.min()), rel=0, abs=0)
    for k in ("time_total", "cost", "max_m"):
        assert math.isfinite(s[k])


def test_lq_summary_matches_the_closed_form_at_first_order():
    # LQ check case table: mean error 2.32e-2 and variance error 2.18e-2 at 101 x 25
    _, s = cat.run_problem(
        "lq_mfg", {"parameters.nx": 101, "parameters.nt": 25}, directory=CATALOGUE
    )
    assert s["converged"]
    assert s["mean_T_exact"] == pytest.approx(0.5476579284, abs=1e-10)
    assert s["mean_T_error"] == pytest.approx(abs(s["mean_T"] - s["mean_T_exact"]), rel=1e-15)
    assert s["mean_T_error"] < 1.3 * 2.32e-2
    assert s["var_T_error"] < 1.3 * 2.18e-2
    assert s["mass_error"] < 1e-12


@pytest.mark.parametrize(
    "name, lam_rtol, var_rtol",
    # first-order errors measured at 161 nodes: ergodic_lq 4.2e-2 / 6.3e-2 (h = 6/160),
    # ergodic_log_gaussian 1.7e-2 / 1.4e-2 (h = 8/160); both halve when h halves
    [("ergodic_lq", 0.06, 0.09), ("ergodic_log_gaussian", 0.025, 0.02)],
)
def test_ergodic_summaries_match_the_formulas(name, lam_rtol, var_rtol):
    _, s = cat.run_problem(name, {"parameters.nx": 161}, directory=CATALOGUE)
    assert s["converged"]
    assert s["lambda"] == pytest.approx(s["lambda_exact"], rel=lam_rtol)
    assert s["var"] == pytest.approx(s["var_exact"], rel=var_rtol)
    assert abs(s["mean"]) < 1e-8  # symmetric problem: mean 0 up to round-off
    assert s["mass_error"] < 1e-12


def test_solver_options_are_checked_against_the_method():
    with pytest.raises(CatalogueError) as excinfo:
        cat.run_problem(
            PERIODIC, {"parameters.nx": 20, "parameters.nt": 5, "solver.options.warp": 9}
        )
    _one_line_error(excinfo, str(PERIODIC), "solver.options.warp", "allowed:", "tol")


def test_fixed_point_override_reaches_the_same_solution():
    small = {"parameters.nx": 30, "parameters.nt": 20, "parameters.T": 0.3}
    sol_n, s_n = cat.run_problem(PERIODIC, small)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sol_f, s_f = cat.run_problem(
            PERIODIC,
            {**small, "solver.method": "fixed_point", "solver.tol": 1e-10, "solver.max_iter": 500},
        )
    assert s_f["method"] == "fixed_point" and s_f["converged"]
    np.testing.assert_allclose(sol_f.m, sol_n.m, atol=1e-7)


def test_catalogue_entries_solve_the_same_discrete_problem_as_direct_construction(
    periodic_benchmark,
):
    from mfg_solvers import Domain, Grid, MassNormalisationWarning, MeanCoupling, MFGProblem, solve

    sol_cat, _ = cat.run_problem(PERIODIC, {"parameters.nx": 40, "parameters.nt": 30})
    direct = solve(
        periodic_benchmark(), Grid((0.0, 1.0), 40, "periodic"), 30, progress=False, tol=1e-9
    )
    np.testing.assert_allclose(sol_cat.m, direct.m, rtol=0, atol=1e-12)
    np.testing.assert_allclose(sol_cat.u, direct.u, rtol=0, atol=1e-12)

    lq_cat, _ = cat.run_problem(
        "lq_mfg", {"parameters.nx": 61, "parameters.nt": 10}, directory=CATALOGUE
    )
    sigma = 0.6
    problem = MFGProblem(
        Domain((-4.0, 4.0), "neumann"),
        nu=sigma**2 / 2,
        coupling=MeanCoupling(2.0, 0.6),
        terminal_coupling=MeanCoupling(0.5, 0.3),
        T=1.0,
        m0=lambda x: np.exp(-0.5 * (x - 1.0) ** 2 / 0.2),
    )
    with pytest.warns(MassNormalisationWarning):  # the unnormalised pdf is rescaled on the grid
        lq_direct = solve(problem, Grid((-4.0, 4.0), 61, "neumann"), 10, progress=False, tol=1e-10)
    np.testing.assert_allclose(lq_cat.m, lq_direct.m, rtol=0, atol=1e-12)
