r"""Catalogue kinds of Mean-Field Path-Integral Diffusion (MF-PID): ``mfpid-lqg`` and ``mfpid-gm``.

Both kinds compare the **mean-field** guidance (MF: every agent pays
:math:`\tfrac{\beta_t}{2}\|x-\nu_t\|^2` with :math:`\nu_t` the population mean) with two
**independent-agent** baselines that keep a constant centre, IA(:math:`\nu=0`) and
IA(:math:`\nu=\bar m_{\rm tar}`). Agents follow :math:`dx_t=(f(x_t)+u_t)\,dt+dW_t` on
:math:`[0,1]`, minimise
:math:`\mathbb E\int_0^1\tfrac12\|u_t\|^2+\tfrac{\beta_t}{2}\|x_t-\nu_t\|^2\,dt`
and must reach the target law :math:`x_1\sim p_{\rm tar}` (a hard constraint). The energy is
the cumulative control energy :math:`\mathcal E=\int\mathbb E\|u_t\|^2\,dt` (no factor 1/2) and
the saving of MF against a baseline is :math:`1-\mathcal E_{\rm MF}/\mathcal E_{\rm IA}`.
The model and the experiments are those of M. Chertkov, *Mean-Field Path-Integral Diffusion:
From Samples to Interacting Agents*, arXiv:2605.00007 (2026); the package documentation
(docs/mfpid.md) states the closed forms, the protocol and the scenario data.

``mfpid-lqg`` (LQG benchmark of the paper)
    Ornstein--Uhlenbeck agents, :math:`f(x)=-\kappa x`, stiffness :math:`q`, Dirac start at 0,
    Gaussian target :math:`\mathcal N(m_{\rm target},\sigma_{\rm target}^2)`. Feedback
    :math:`u=-(S_tx+s_t)` with the Riccati solution
    :math:`S_t=-\kappa+\Delta\frac{1+\rho e^{2\Delta(t-1)}}{1-\rho e^{2\Delta(t-1)}}`,
    :math:`\Delta=\sqrt{\kappa^2+q}`, variance :math:`\Sigma_t` in closed form, MF mean
    :math:`m_t=m_{\rm target}\sinh(\kappa t)/\sinh\kappa` (:math:`\ddot m=\kappa^2m`), power
    :math:`P=S^2\Sigma+(Sm+s)^2` (:mod:`mfg_solvers.analytic.mfpid_lqg`). The estimator
    ``"closed-form"`` integrates :math:`P` by Gauss--Legendre quadrature (exact to round-off);
    ``"monte-carlo"`` simulates ``samples`` agents by Euler--Maruyama (weak order 1) with
    ``steps`` steps and common random numbers, and reports the closed-form values next to the
    estimates (``*_exact``).

``mfpid-gm`` (Gaussian-mixture demand-response experiments of the paper)
    Driftless agents, Gaussian-mixture start and target laws, the piecewise-constant
    demand-response protocol: ``intervals`` equal intervals, stiffness
    :math:`\beta_i=\beta_0\,r^{8t_i}` (``beta0``, ``beta_ratio``; :math:`12\cdot0.65^i` for eight
    intervals), MF guidance equal to the theorem line
    :math:`\nu_t=(1-t)\bar m_{\rm in}+t\bar m_{\rm tar}` sampled at the interval midpoints (its
    mean path deviates from the line by :math:`O(M^{-2})`). Each agent uses the exact
    closed-form drift of the start-shifted bridge (:class:`mfg_solvers.analytic.mfpid.MFPID`).
    The estimator ``"monte-carlo"`` runs ``samples`` agents on an Euler--Maruyama grid of
    ``steps`` steps on :math:`[\varepsilon,1-\varepsilon]` (``epsilon``) aligned with the
    breakpoints, MF and both baselines with common random numbers
    (:func:`mfg_solvers.particles.mfpid_agents.run_scenario`); energies are left Riemann sums
    (weak order 1 in the step, with a larger error near :math:`t=1` where the drift is stiff).
    ``"quadrature"`` integrates :math:`\mathbb E\|u_t\|^2` over the exact marginal with
    Gauss--Hermite nodes (``quadrature_nodes`` per coordinate) and graded Gauss--Legendre panels
    in time (deterministic, spectrally accurate; :math:`d\le2`). Scenarios (``scenario``):
    ``"1d-A"``, ``"1d-B"`` (1-D Scenarios A and B), ``"d-sweep"`` (Scenario B broadened to
    ``d`` zones), ``"k-sweep"`` (``K`` sub-populations in ``d`` zones), ``"ar1"`` (AR(1) zone
    correlation ``rho`` in ``d`` zones) and ``"custom"`` (tables ``start`` and ``target`` with
    ``weights``, ``means`` and ``stds`` or ``covs``); the scenario data are listed in
    docs/mfpid.md, section "Catalogue entries".

    **Sweeps.** A study file names one point of its sweep (``d = 8``) -- the point that
    ``mfg-solvers run`` summarises and ``mfg-solvers verify`` checks, overridable with
    ``--set parameters.d=16`` -- and the list ``sweep = [1, 2, 4, 8, 16, 32]`` of values of the
    scenario's swept parameter (``d``, ``K`` or ``rho``). When ``sweep`` is not empty, ``run``
    also runs every listed point with the same sizes and seed and adds per-point lists
    (``sweep_values``, ``sweep_energy_per_zone_mf``, ``sweep_saving_vs_zero``, ...) and the
    figure ``sweep``; ``--set parameters.sweep=[]`` runs the point alone.

Summary (``summary.json``; ``g`` is ``mf``, ``ia_zero`` or ``ia_target``)

===================================  ==============================================================
``energy_g``, ``energy_se_g``        :math:`\int\mathbb E\|u\|^2dt` and its Monte-Carlo standard
                                     error (0 for deterministic estimators)
``energy_per_zone_g``                ``energy_g / d``; ``zone_energy_g``: the list per coordinate
``peak_power_g``                     :math:`\max_tP(t)`, :math:`P(t)=\mathbb E\|u_t\|^2`
``saving_vs_zero``, ``..._target``   :math:`1-\mathcal E_{\rm MF}/\mathcal E_{\rm IA}` (fractions)
                                     and their standard errors ``saving_vs_zero_se`` (paired, common
                                     random numbers), ``saving_vs_target_se``
``mean_path_deviation_g``            :math:`\max_t\|\bar x_t-\ell_t\|/\|\Delta m\|`,
                                     :math:`\Delta m=\bar m_{\rm tar}-\bar m_{\rm in}`,
                                     :math:`\ell` the straight line from the start mean (the
                                     sample mean of the starts for Monte Carlo); ``_exact``:
                                     the same for the closed-form mean of the protocol (exact
                                     mixture marginal of the start-shifted bridges)
``*_quadrature``                     energies and savings by quadrature (``quadrature_check``,
                                     default on for :math:`d=1`)
``energy_by_start_mode_g``           mean path energy of the agents of each start component
                                     (responsibility-weighted; Monte Carlo)
``sweep_*``                          per-point lists of a sweep (see above)
===================================  ==============================================================

``mfpid-lqg`` adds the closed-form anchors ``Delta``, ``rho``, ``S_0``, ``S_1``,
``Sigma_0_25``, ``Sigma_0_5``, ``s0_mf``, ``s0_ia_zero``, ``s0_ia_target`` and, for Monte
Carlo, ``mean_path_error_mf`` and ``variance_path_error``.

Figures: ``power`` (power curves), ``mean_paths`` (mean paths of MF against IA and the line),
``zone_effort`` (per-zone energy), ``sweep`` (energy per zone and savings against the swept
parameter); ``variance`` and ``energy`` for ``mfpid-lqg``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..analytic.mfpid import (
    MFPID,
    GaussianMixture,
    MFPIDProtocol,
    geometric_beta,
    linear_guidance,
    scenario_1d,
    scenario_ar1,
    scenario_d_sweep,
    scenario_k_sweep,
)
from ..catalogue import (
    REQUIRED,
    CatalogueError,
    Check,
    Param,
    ProblemKind,
    ProblemSpec,
    boolean,
    choice,
    integer,
    real,
    register_kind,
    validate_table,
)

__all__ = [
    "RUNS",
    "SCENARIOS",
    "SWEEP_PARAMETERS",
    "LQGStudy",
    "GMStudy",
    "scenario_laws",
    "plot_power",
    "plot_mean_paths",
    "plot_zone_effort",
    "plot_sweep",
]

#: The compared runs: the mean-field guidance and the two independent-agent baselines.
RUNS = ("mf", "ia_zero", "ia_target")
#: Saving names: ``saving_vs_<name>`` compares MF with the run of the key.
_SAVING = {"ia_zero": "zero", "ia_target": "target"}
_LABELS = {
    "mf": "MF (linear guidance)",
    "ia_zero": r"IA ($\nu = 0$)",
    "ia_target": r"IA ($\nu = \bar m_{\rm tar}$)",
}
_COLOURS = {"mf": "C0", "ia_zero": "C3", "ia_target": "C1"}

#: Gaussian-mixture scenarios of the paper's demand-response study and ``"custom"``.
SCENARIOS = ("1d-A", "1d-B", "d-sweep", "k-sweep", "ar1", "custom")
#: The parameter that the ``sweep`` list of a scenario varies.
SWEEP_PARAMETERS = {"d-sweep": "d", "k-sweep": "K", "ar1": "rho"}
#: Largest dimension of the quadrature estimator (its cost grows like nodes^(2d)).
QUADRATURE_MAX_DIM = 2


def _no_solver(ctx, raw: dict) -> dict:
    solver = raw.get("solver", {})
    validate_table(ctx, "solver", {} if solver is None else solver, (), what="no keys")
    return {}


def _engine_error(spec: ProblemSpec, exc: Exception, key: str = "parameters") -> CatalogueError:
    return CatalogueError(f"{spec.label}: {key}: {' '.join(str(exc).split())}")


def _summary_head(spec: ProblemSpec) -> dict:
    return {"problem": spec.name, "kind": spec.kind}


def _saving_ratio_se(e1: float, se1: float, e0: float, se0: float) -> float:
    """Standard error of 1 - e1/e0 when the paired energies are not available: the delta
    method for independent estimates (an upper bound under positively correlated common
    random numbers)."""
    if e0 == 0:
        return float("nan")
    r = e1 / e0
    return float(abs(r) * math.hypot(se1 / e1 if e1 else 0.0, se0 / e0))


def _netcdf_attrs(values: dict) -> dict:
    out = {}
    for k, v in values.items():
        if isinstance(v, bool):
            out[k] = int(v)
        elif isinstance(v, int | str) or (isinstance(v, float) and math.isfinite(v)):
            out[k] = v
    return out


# =============================================================================================
# mfpid-lqg
# =============================================================================================
_LQG_PARAMS = (
    Param("kappa", real(ge=0), REQUIRED, "OU relaxation rate: base drift -kappa x"),
    Param("q", real(ge=0), REQUIRED, "stiffness of the running cost q/2 (x - nu)^2"),
    Param("m_target", real(), REQUIRED, "mean of the Gaussian target"),
    Param("sigma_target", real(gt=0), REQUIRED, "standard deviation of the Gaussian target"),
    Param("estimator", choice("closed-form", "monte-carlo"), "closed-form"),
    Param("samples", integer(ge=2), 20000, "agents (monte-carlo)"),
    Param("steps", integer(ge=1), 2000, "Euler-Maruyama steps on [0, 1] (monte-carlo)"),
    Param("seed", integer(ge=0), 0, "seed of the Brownian increments (monte-carlo)"),
)


def _lqg_model(p: dict):
    from ..analytic.mfpid_lqg import LQGBenchmark1D

    return LQGBenchmark1D(p["kappa"], p["q"], p["m_target"], p["sigma_target"])


def _validate_lqg(ctx, raw: dict) -> dict:
    params = validate_table(
        ctx, "parameters", raw["parameters"], _LQG_PARAMS, what="parameters of kind 'mfpid-lqg'"
    )
    try:
        _lqg_model(params)
    except (ValueError, TypeError) as exc:
        key = "parameters.sigma_target" if "sigma_tar" in str(exc) else "parameters"
        raise ctx.error(key, " ".join(str(exc).split()), "kappa^2 + q > 0 and rho < 1") from None
    return {"parameters": params, "solver": _no_solver(ctx, raw)}


@dataclass
class LQGStudy:
    """Paths of the LQG benchmark: closed forms on a fine grid and, for Monte Carlo, the agents.

    Dicts are keyed by run name (:data:`RUNS`). ``t``: fine grid on [0, 1]; ``power``,
    ``mean``, ``energy`` (cumulative): closed forms on ``t``; ``variance``: :math:`\\Sigma_t`
    (the same for every run). ``t_mc``, ``power_mc``, ``mean_mc``, ``variance_mc``: the
    simulation (``None`` for the closed-form estimator).
    """

    t: np.ndarray
    power: dict
    mean: dict
    energy: dict
    variance: np.ndarray
    m_target: float
    t_mc: np.ndarray | None = None
    power_mc: dict = field(default_factory=dict)
    mean_mc: dict = field(default_factory=dict)
    variance_mc: dict = field(default_factory=dict)
    attrs: dict = field(default_factory=dict)

    def to_dataset(self):
        import xarray as xr

        data = {"variance": (("t",), self.variance)}
        for g in RUNS:
            data[f"power_{g}"] = (("t",), self.power[g])
            data[f"mean_{g}"] = (("t",), self.mean[g])
            data[f"energy_{g}"] = (("t",), self.energy[g])
        coords = {"t": self.t}
        if self.t_mc is not None:
            coords["t_mc"] = self.t_mc
            coords["t_step"] = self.t_mc[:-1]
            for g in self.power_mc:
                data[f"power_mc_{g}"] = (("t_step",), self.power_mc[g])
                data[f"mean_mc_{g}"] = (("t_mc",), self.mean_mc[g])
                data[f"variance_mc_{g}"] = (("t_mc",), self.variance_mc[g])
        return xr.Dataset(data, coords=coords, attrs=_netcdf_attrs(self.attrs))

    def save(self, path) -> Path:
        """Write the paths as NetCDF-4 (h5netcdf)."""
        path = Path(path)
        self.to_dataset().to_netcdf(path, engine="h5netcdf")
        return path


def _run_lqg(spec: ProblemSpec, *, progress: bool = False):
    p = spec.parameters
    t0 = time.perf_counter()
    try:
        bench = _lqg_model(p)
    except (ValueError, TypeError) as exc:
        raise _engine_error(spec, exc) from None
    t = np.linspace(0.0, 1.0, 2001)
    power = {g: bench.power(t, g) for g in RUNS}
    mean = {g: bench.mean(t, g) for g in RUNS}
    energy_path = {g: bench.energy(t, g) for g in RUNS}
    energy_exact = {g: float(energy_path[g][-1]) for g in RUNS}
    s = _summary_head(spec)
    s.update(estimator=p["estimator"], d=1)
    s.update(
        Delta=float(bench.delta),
        rho=float(bench.rho),
        S_0=float(bench.riccati(0.0)),
        S_1=float(bench.riccati(1.0)),
        Sigma_0_25=float(bench.variance(0.25)),
        Sigma_0_5=float(bench.variance(0.5)),
        Sigma_1=float(bench.variance(1.0)),
    )
    for g in RUNS:
        s[f"s0_{g}"] = float(bench.offset(0.0, g))
    for g in RUNS:
        s[f"energy_{g}_exact"] = energy_exact[g]
        s[f"peak_power_{g}_exact"] = float(power[g].max())
    for ref, nm in _SAVING.items():
        s[f"saving_vs_{nm}_exact"] = 1.0 - energy_exact["mf"] / energy_exact[ref]
    study = LQGStudy(t, power, mean, energy_path, bench.variance(t), float(p["m_target"]))
    if p["estimator"] == "closed-form":
        est = {g: (energy_exact[g], 0.0, float(power[g].max())) for g in RUNS}
        savings = {ref: (s[f"saving_vs_{nm}_exact"], 0.0) for ref, nm in _SAVING.items()}
    else:
        from ..particles.mfpid_agents import simulate_lqg_agents

        try:
            sim = simulate_lqg_agents(
                bench, RUNS, n_agents=p["samples"], n_steps=p["steps"], seed=p["seed"]
            )
        except (ValueError, TypeError) as exc:
            raise _engine_error(spec, exc) from None
        s.update(samples=p["samples"], steps=p["steps"], seed=p["seed"])
        est = {
            g: (sim[g]["energy"], sim[g]["energy_se"], float(np.max(sim[g]["power"])))
            for g in RUNS
        }
        savings = {
            ref: (
                1.0 - est["mf"][0] / est[ref][0],
                _saving_ratio_se(est["mf"][0], est["mf"][1], est[ref][0], est[ref][1]),
            )
            for ref in _SAVING
        }
        tm = sim["t"]
        study.t_mc = tm
        for g in RUNS:
            study.power_mc[g] = sim[g]["power"]
            study.mean_mc[g] = sim[g]["mean"][:, 0]
            study.variance_mc[g] = sim[g]["var"][:, 0]
        exact_mean = bench.mean(tm, "mf")
        scale = max(abs(float(p["m_target"])), float(p["sigma_target"]))
        s["mean_path_error_mf"] = float(np.abs(study.mean_mc["mf"] - exact_mean).max() / scale)
        var_exact = bench.variance(tm)
        s["variance_path_error"] = float(
            max(np.abs(study.variance_mc[g] - var_exact).max() for g in RUNS)
            / float(p["sigma_target"]) ** 2
        )
    for g in RUNS:
        e, se, peak = est[g]
        s[f"energy_{g}"] = float(e)
        s[f"energy_se_{g}"] = float(se)
        s[f"energy_per_zone_{g}"] = float(e)
        s[f"peak_power_{g}"] = float(peak)
    for ref, nm in _SAVING.items():
        s[f"saving_vs_{nm}"] = float(savings[ref][0])
        s[f"saving_vs_{nm}_se"] = float(savings[ref][1])
    s["time_total"] = time.perf_counter() - t0
    study.attrs = {"problem": spec.name, "kind": spec.kind, "estimator": p["estimator"]}
    return study, _ordered(s)


def _ordered(s: dict) -> dict:
    """Headline quantities first, then the rest in insertion order."""
    head = ["problem", "kind", "scenario", "estimator", "d", "K"]
    head += [f"energy_{g}" for g in RUNS] + ["saving_vs_zero", "saving_vs_target"]
    head += [f"energy_per_zone_{g}" for g in RUNS] + [f"peak_power_{g}" for g in RUNS]
    head += [f"energy_se_{g}" for g in RUNS] + ["saving_vs_zero_se", "saving_vs_target_se"]
    out = {k: s[k] for k in head if k in s}
    out.update({k: v for k, v in s.items() if k not in out})
    return out


def _figures_lqg(spec: ProblemSpec, study: LQGStudy, summary) -> dict:
    figs = {"power": plot_power(study), "mean_paths": plot_mean_paths(study)}
    fig, ax = _new_axes()
    ax.plot(study.t, study.variance, "k-", label=r"closed form $\Sigma_t$")
    if study.t_mc is not None:
        for g in RUNS:
            ax.plot(study.t_mc, study.variance_mc[g], ls="none", marker=".", ms=2,
                    color=_COLOURS[g], label=f"agents, {_LABELS[g]}")
    ax.set_xlabel("t")
    ax.set_ylabel("variance")
    ax.set_title("LQG: the variance channel does not see the guidance")
    ax.legend(fontsize=8)
    figs["variance"] = fig
    fig, ax = _new_axes()
    for g in RUNS:
        ax.plot(study.t, study.energy[g], color=_COLOURS[g], label=_LABELS[g])
    ax.set_xlabel("t")
    ax.set_ylabel(r"cumulative energy $\int_0^t \mathbb{E}|u|^2$")
    ax.legend(fontsize=8)
    figs["energy"] = fig
    return figs


def _build_lqg(spec: ProblemSpec):
    """The :class:`~mfg_solvers.analytic.mfpid_lqg.LQGBenchmark1D` of the entry."""
    return _lqg_model(spec.parameters)


register_kind(
    ProblemKind(
        name="mfpid-lqg",
        validate=_validate_lqg,
        run=_run_lqg,
        build=_build_lqg,
        figures=_figures_lqg,
        description="MF-PID LQG benchmark (OU agents, Gaussian target): closed form and agents",
    )
)


# =============================================================================================
# mfpid-gm
# =============================================================================================
_MIXTURE_ALLOWED = (
    "a table {weights = [...], means = [...], stds = [...]} (or covs = [...] instead of stds): "
    "weights summing to 1, K means (numbers for d = 1, or lists of d numbers), standard "
    "deviations (K numbers or K lists of d) or covariance matrices (K lists of d x d)"
)


def _mixture(ctx, key, value):
    if not isinstance(value, dict):
        raise ctx.bad_value(key, value, _MIXTURE_ALLOWED)
    allowed = {"weights", "means", "stds", "covs"}
    for k in value:
        if k not in allowed:
            raise ctx.unknown_key(f"{key}.{k}", allowed)
    for k in ("weights", "means"):
        if k not in value:
            raise ctx.missing_key(f"{key}.{k}", _MIXTURE_ALLOWED)
    if ("stds" in value) == ("covs" in value):
        raise ctx.error(key, "give exactly one of stds and covs", _MIXTURE_ALLOWED)
    try:
        if "stds" in value:
            return GaussianMixture.diagonal(value["weights"], value["means"], value["stds"])
        return GaussianMixture(value["weights"], value["means"], value["covs"])
    except (ValueError, TypeError) as exc:
        raise ctx.error(key, " ".join(str(exc).split()), _MIXTURE_ALLOWED) from None


def _number_list(ctx, key, value):
    allowed = "a list of numbers (possibly empty)"
    if not isinstance(value, list):
        raise ctx.bad_value(key, value, allowed)
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise ctx.bad_value(key, value, allowed)
        out.append(v)
    return out


_GM_PARAMS = (
    Param("scenario", choice(*SCENARIOS), REQUIRED, "which start/target laws"),
    Param("d", integer(ge=1), None, "dimension (zones per building)"),
    Param("K", integer(ge=1), None, "mixture components (k-sweep)"),
    Param("rho", real(), None, "AR(1) zone correlation (ar1)"),
    Param("start", Check(_mixture, _MIXTURE_ALLOWED), None, "start law (custom)"),
    Param("target", Check(_mixture, _MIXTURE_ALLOWED), None, "target law (custom)"),
    Param("sweep", Check(_number_list, "a list of numbers"), None, "values of the swept parameter"),
    Param("estimator", choice("monte-carlo", "quadrature"), "monte-carlo"),
    Param("samples", integer(ge=2), 4000, "agents (monte-carlo)"),
    Param("steps", integer(ge=1), 2500, "Euler-Maruyama steps on [eps, 1 - eps]"),
    Param("seed", integer(ge=0), 0, "seed of the starts and of the increments"),
    Param("epsilon", real(gt=0), 1e-3, "time window [eps, 1 - eps]"),
    Param("intervals", integer(ge=1), 8, "protocol intervals M"),
    Param("beta0", real(ge=0), 12.0, "stiffness on the first interval"),
    Param("beta_ratio", real(gt=0), 0.65, "stiffness ratio per eighth of the horizon"),
    Param("quadrature_nodes", integer(ge=2), 12, "Gauss-Hermite nodes per coordinate"),
    Param("quadrature_check", boolean(), None, "also compute the quadrature energies (d <= 2)"),
)

#: Per scenario: (fixed d or None, default d, fixed K or None, default K, default rho).
_SCENARIO_SHAPE = {
    "1d-A": (1, 1, 2, 2, None),
    "1d-B": (1, 1, 2, 2, None),
    "d-sweep": (None, 8, 2, 2, None),
    "k-sweep": (None, 4, None, 4, None),
    "ar1": (None, 8, 2, 2, 0.5),
    "custom": (None, None, None, None, None),
}


def _check_rho(ctx, key, value):
    if not -1.0 < value < 1.0:
        raise ctx.bad_value(key, value, "a number in (-1, 1)")


def _validate_gm(ctx, raw: dict) -> dict:
    table = raw["parameters"]
    p = validate_table(
        ctx, "parameters", table, _GM_PARAMS, what="parameters of kind 'mfpid-gm'"
    )
    sc = p["scenario"]
    fixed_d, default_d, fixed_k, default_k, default_rho = _SCENARIO_SHAPE[sc]
    given = set(table) if isinstance(table, dict) else set()

    def only_for(name, scenarios):
        if name in given and sc not in scenarios:
            raise ctx.error(
                f"parameters.{name}",
                f"does not apply to scenario {sc!r}",
                f"scenarios {', '.join(scenarios)}",
            )

    only_for("rho", ("ar1",))
    only_for("start", ("custom",))
    only_for("target", ("custom",))
    only_for("sweep", tuple(SWEEP_PARAMETERS))
    if sc == "custom":
        for k in ("start", "target"):
            if p[k] is None:
                raise ctx.missing_key(f"parameters.{k}", _MIXTURE_ALLOWED)
        if p["start"].dim != p["target"].dim:
            raise ctx.error(
                "parameters.start",
                f"has dimension {p['start'].dim} but the target has {p['target'].dim}",
                "start and target laws of the same dimension",
            )
        fixed_d, fixed_k = p["target"].dim, p["target"].n_components
        default_d, default_k = fixed_d, fixed_k
    if p["d"] is None:
        p["d"] = default_d
    elif fixed_d is not None and p["d"] != fixed_d:
        raise ctx.bad_value("parameters.d", p["d"], f"{fixed_d} (fixed by scenario {sc!r})")
    if p["K"] is None:
        p["K"] = default_k
    elif fixed_k is not None and p["K"] != fixed_k:
        raise ctx.bad_value("parameters.K", p["K"], f"{fixed_k} (fixed by scenario {sc!r})")
    if sc == "ar1":
        if p["rho"] is None:
            p["rho"] = default_rho
        _check_rho(ctx, "parameters.rho", p["rho"])
    p["sweep"] = list(p["sweep"] or [])
    swept = SWEEP_PARAMETERS.get(sc)
    for v in p["sweep"]:
        if swept == "rho":
            _check_rho(ctx, "parameters.sweep", v)
        elif isinstance(v, float) and not v.is_integer() or v < 1:
            raise ctx.bad_value(
                "parameters.sweep", p["sweep"], f"a list of integers >= 1 (values of {swept})"
            )
    if swept in ("d", "K"):
        p["sweep"] = [int(v) for v in p["sweep"]]
    if len(set(p["sweep"])) != len(p["sweep"]):
        raise ctx.bad_value("parameters.sweep", p["sweep"], "a list of distinct values")
    if p["epsilon"] >= 0.5:
        raise ctx.bad_value("parameters.epsilon", p["epsilon"], "a number in (0, 0.5)")
    if p["estimator"] == "monte-carlo" and p["steps"] < p["intervals"]:
        raise ctx.bad_value(
            "parameters.steps", p["steps"], f"an integer >= intervals ({p['intervals']})"
        )
    dims = [p["d"]] + (p["sweep"] if swept == "d" else [])
    if p["estimator"] == "quadrature" and max(dims) > QUADRATURE_MAX_DIM:
        raise ctx.error(
            "parameters.estimator",
            f"'quadrature' needs d <= {QUADRATURE_MAX_DIM} (got d = {max(dims)})",
            "monte-carlo for larger d",
        )
    if p["quadrature_check"] is None:
        p["quadrature_check"] = p["d"] == 1
    elif p["quadrature_check"] and p["d"] > QUADRATURE_MAX_DIM:
        raise ctx.error(
            "parameters.quadrature_check",
            f"the quadrature needs d <= {QUADRATURE_MAX_DIM} (got d = {p['d']})",
            "false for larger d",
        )
    return {"parameters": p, "solver": _no_solver(ctx, raw)}


def scenario_laws(scenario: str, *, d: int | None = None, K: int | None = None,
                  rho: float | None = None, start: GaussianMixture | None = None,
                  target: GaussianMixture | None = None):
    """``(p_in, p_tar)`` of a named demand-response scenario or of ``"custom"`` laws."""
    if scenario in ("1d-A", "1d-B"):
        return scenario_1d(scenario[-1])
    if scenario == "d-sweep":
        return scenario_d_sweep(d)
    if scenario == "k-sweep":
        return scenario_k_sweep(K, d)
    if scenario == "ar1":
        return scenario_ar1(d, rho)
    if scenario == "custom":
        if not isinstance(start, GaussianMixture) or not isinstance(target, GaussianMixture):
            raise TypeError("scenario='custom' needs start and target GaussianMixture objects")
        return start, target
    raise ValueError(f"scenario={scenario!r}; allowed: {', '.join(SCENARIOS)}")


def _point_parameters(p: dict, value=None) -> dict:
    """Parameters of one sweep point (``value`` of the swept parameter; None: the main point)."""
    q = dict(p)
    if value is not None:
        q[SWEEP_PARAMETERS[p["scenario"]]] = value
    return q


def _laws(p: dict):
    return scenario_laws(p["scenario"], d=p["d"], K=p["K"], rho=p["rho"], start=p["start"],
                         target=p["target"])


def _beta(p: dict) -> np.ndarray:
    return geometric_beta(p["intervals"], p["beta0"], p["beta_ratio"])


def _protocols(p: dict, p_in: GaussianMixture, p_tar: GaussianMixture) -> dict:
    beta = _beta(p)
    br = np.linspace(0.0, 1.0, beta.size + 1)
    nu = {
        "mf": linear_guidance(br, p_in.mean, p_tar.mean),
        "ia_zero": np.zeros((beta.size, p_tar.dim)),
        "ia_target": np.repeat(p_tar.mean[None, :], beta.size, axis=0),
    }
    return {g: MFPIDProtocol(beta, nu[g], br) for g in RUNS}


def _build_gm(spec: ProblemSpec) -> dict:
    """``{"p_in", "p_tar", "protocols"}``: the laws and the protocols (MF, both IA) of the entry."""
    p = spec.parameters
    try:
        p_in, p_tar = _laws(p)
        return {"p_in": p_in, "p_tar": p_tar, "protocols": _protocols(p, p_in, p_tar)}
    except (ValueError, TypeError) as exc:
        raise _engine_error(spec, exc) from None


def _deviation(mean: np.ndarray, t: np.ndarray, m_in: np.ndarray, m_tar: np.ndarray) -> np.ndarray:
    """``|mean(t) - line(t)| / |m_tar - m_in|`` along ``t``."""
    line = (1.0 - t)[:, None] * m_in[None, :] + t[:, None] * m_tar[None, :]
    scale = float(np.linalg.norm(m_tar - m_in))
    return np.linalg.norm(mean - line, axis=1) / (scale if scale > 0 else 1.0)


def _run_point(p: dict, *, keep_runs: bool, progress: bool):
    """One scenario run: the ScenarioResult and the laws."""
    from ..particles.mfpid_agents import run_scenario

    p_in, p_tar = _laws(p)
    res = run_scenario(
        p_in, p_tar, beta=_beta(p), eps=p["epsilon"],
        estimator="mc" if p["estimator"] == "monte-carlo" else "quadrature",
        n_agents=p["samples"], n_steps=p["steps"], seed=p["seed"],
        n_hermite=p["quadrature_nodes"], keep_runs=keep_runs, progress=progress,
    )
    return res, p_in, p_tar


@dataclass
class GMStudy:
    """Paths and per-zone energies of one ``mfpid-gm`` run (and its sweep).

    Dicts are keyed by run name (:data:`RUNS`). ``t_power``/``power``: :math:`P(t)` on the
    simulation grid (or the quadrature nodes); ``t``/``mean``: the population mean path
    (simulated, or exact for the quadrature estimator); ``mean_exact``: the closed-form mean
    (mean of the exact mixture marginal) on ``t``; ``line_start``: the start of the straight
    line the paths are compared with; ``zone_energy``: (d,) per-coordinate energies;
    ``sweep``: per-point lists.
    """

    scenario: str
    estimator: str
    d: int
    m_in: np.ndarray
    m_tar: np.ndarray
    line_start: np.ndarray
    t_power: np.ndarray
    power: dict
    t: np.ndarray
    mean: dict
    mean_exact: dict
    zone_energy: dict
    sweep: dict = field(default_factory=dict)
    attrs: dict = field(default_factory=dict)

    def progress(self, run: str, exact: bool = False) -> np.ndarray:
        """Fraction of the displacement covered: :math:`e\\cdot(\\bar x_t-\\ell_0)/|\\Delta m|`,
        :math:`e` the unit displacement; the theorem makes it :math:`t` for MF."""
        dm = self.m_tar - self.line_start
        n2 = float(dm @ dm)
        path = self.mean_exact[run] if exact else self.mean[run]
        return (path - self.line_start[None, :]) @ dm / (n2 if n2 > 0 else 1.0)

    def deviation(self, run: str, exact: bool = False) -> np.ndarray:
        """:math:`\\|\\bar x_t-\\ell_t\\|/\\|\\Delta m\\|` along ``t``."""
        start = self.m_in if exact else self.line_start
        path = self.mean_exact[run] if exact else self.mean[run]
        return _deviation(path, self.t, start, self.m_tar)

    def to_dataset(self):
        import xarray as xr

        data: dict[str, Any] = {
            "m_in": (("zone",), self.m_in),
            "m_tar": (("zone",), self.m_tar),
            "line_start": (("zone",), self.line_start),
        }
        for g in RUNS:
            data[f"power_{g}"] = (("t_power",), self.power[g])
            data[f"mean_{g}"] = (("t", "zone"), self.mean[g])
            data[f"mean_exact_{g}"] = (("t", "zone"), self.mean_exact[g])
            data[f"zone_energy_{g}"] = (("zone",), np.asarray(self.zone_energy[g]))
        coords = {"t_power": self.t_power, "t": self.t, "zone": np.arange(self.d)}
        if self.sweep:
            coords["sweep"] = np.asarray(self.sweep["values"], dtype=float)
            for k, v in self.sweep.items():
                if k != "values" and k != "parameter":
                    data[f"sweep_{k}"] = (("sweep",), np.asarray(v, dtype=float))
        attrs = dict(self.attrs)
        if self.sweep:
            attrs["sweep_parameter"] = self.sweep["parameter"]
        return xr.Dataset(data, coords=coords, attrs=_netcdf_attrs(attrs))

    def save(self, path) -> Path:
        """Write the paths, energies and sweep as NetCDF-4 (h5netcdf)."""
        path = Path(path)
        self.to_dataset().to_netcdf(path, engine="h5netcdf")
        return path


def _point_summary(p: dict, res, p_in, p_tar) -> dict:
    d = p_tar.dim
    s: dict[str, Any] = {}
    for g in RUNS:
        s[f"energy_{g}"] = float(res.energy[g])
        s[f"energy_se_{g}"] = float(res.energy_se[g])
        s[f"energy_per_zone_{g}"] = float(res.energy[g]) / d
        s[f"peak_power_{g}"] = float(res.peak_power[g])
    for ref, nm in _SAVING.items():
        s[f"saving_vs_{nm}"] = float(res.savings[ref])
        s[f"saving_vs_{nm}_se"] = float(res.savings_se[ref])
    return s


def _run_gm(spec: ProblemSpec, *, progress: bool = False):
    p = spec.parameters
    t0 = time.perf_counter()
    mc = p["estimator"] == "monte-carlo"
    try:
        res, p_in, p_tar = _run_point(p, keep_runs=True, progress=progress)
    except (ValueError, TypeError) as exc:
        raise _engine_error(spec, exc) from None
    d = p_tar.dim
    s = _summary_head(spec)
    s.update(scenario=p["scenario"], estimator=p["estimator"], d=d, K=p_tar.n_components)
    if p["scenario"] == "ar1":
        s["rho"] = float(p["rho"])
    s.update(_point_summary(p, res, p_in, p_tar))
    for g in RUNS:
        s[f"zone_energy_{g}"] = [float(v) for v in res.zone_energy[g]]
    s.update(intervals=p["intervals"], epsilon=p["epsilon"], beta0=p["beta0"],
             beta_ratio=p["beta_ratio"])
    if mc:
        s.update(samples=p["samples"], steps=p["steps"], seed=p["seed"])
    else:
        s["quadrature_nodes"] = p["quadrature_nodes"]
    s["displacement"] = float(np.linalg.norm(p_tar.mean - p_in.mean))

    # mean paths: simulated (Monte Carlo) or exact, against the straight line (the theorem)
    protocols = _protocols(p, p_in, p_tar)
    if mc:
        runs = res.runs
        t = runs.t
        mean = {g: runs.mean_path[g] for g in RUNS}
        line_start = runs.starts.mean(axis=0)
    else:
        t = np.linspace(p["epsilon"], 1.0 - p["epsilon"], 801)
        mean = None
        line_start = p_in.mean
    mean_exact = {g: MFPID(p_tar, protocols[g]).mean(t, p_in.mean) for g in RUNS}
    if mean is None:
        mean = mean_exact
    for g in RUNS:
        s[f"mean_path_deviation_{g}"] = float(_deviation(mean[g], t, line_start, p_tar.mean).max())
    # the exact check on a fixed grid, so that it does not depend on the estimator or the sizes
    t_fixed = np.linspace(p["epsilon"], 1.0 - p["epsilon"], 2001)
    for g in RUNS:
        exact_path = MFPID(p_tar, protocols[g]).mean(t_fixed, p_in.mean)
        s[f"mean_path_deviation_{g}_exact"] = float(
            _deviation(exact_path, t_fixed, p_in.mean, p_tar.mean).max()
        )
    if mc:
        # energy by start component (responsibility-weighted means of the path energies)
        if p_in.n_components > 1 and np.all(np.linalg.eigvalsh(p_in.covs) > 0):
            r = p_in.responsibilities(runs.starts)  # (B, K_in)
            for g in RUNS:
                e = runs.agent_energy[g]
                s[f"energy_by_start_mode_{g}"] = [float(v) for v in (r.T @ e) / r.sum(axis=0)]

    # deterministic energies by quadrature (d <= 2)
    if p["quadrature_check"]:
        if mc:
            try:
                qres, _, _ = _run_point(dict(p, estimator="quadrature"), keep_runs=False,
                                        progress=False)
            except (ValueError, TypeError) as exc:
                raise _engine_error(spec, exc) from None
            q = _point_summary(p, qres, p_in, p_tar)
        else:
            q = _point_summary(p, res, p_in, p_tar)
        for g in RUNS:
            s[f"energy_{g}_quadrature"] = q[f"energy_{g}"]
            s[f"energy_per_zone_{g}_quadrature"] = q[f"energy_per_zone_{g}"]
            s[f"peak_power_{g}_quadrature"] = q[f"peak_power_{g}"]
        for nm in _SAVING.values():
            s[f"saving_vs_{nm}_quadrature"] = q[f"saving_vs_{nm}"]

    study = GMStudy(
        scenario=p["scenario"], estimator=p["estimator"], d=d, m_in=p_in.mean,
        m_tar=p_tar.mean, line_start=np.asarray(line_start, dtype=float),
        t_power=np.asarray(res.t, dtype=float), power={g: res.power[g] for g in RUNS},
        t=t, mean=mean, mean_exact=mean_exact,
        zone_energy={g: np.asarray(res.zone_energy[g]) for g in RUNS},
    )

    # the sweep
    if p["sweep"]:
        swept = SWEEP_PARAMETERS[p["scenario"]]
        main_value = p[swept]
        rows = []
        for v in p["sweep"]:
            tv = time.perf_counter()
            if v == main_value:
                rows.append((_point_summary(p, res, p_in, p_tar), res.wall_time))
                continue
            q = _point_parameters(p, v)
            try:
                rv, qi, qt = _run_point(q, keep_runs=False, progress=progress)
            except (ValueError, TypeError) as exc:
                raise _engine_error(spec, exc, "parameters.sweep") from None
            rows.append((_point_summary(q, rv, qi, qt), time.perf_counter() - tv))
        sw: dict[str, Any] = {"parameter": swept, "values": list(p["sweep"])}
        keys = [f"energy_per_zone_{g}" for g in RUNS] + [f"energy_se_{g}" for g in RUNS]
        keys += ["saving_vs_zero", "saving_vs_zero_se", "saving_vs_target", "saving_vs_target_se"]
        for k in keys:
            sw[k] = [float(r[0][k]) for r in rows]
        sw["wall_s"] = [float(r[1]) for r in rows]
        study.sweep = sw
        s["sweep_parameter"] = swept
        s["sweep_values"] = list(p["sweep"])
        for k, v in sw.items():
            if k not in ("parameter", "values"):
                s[f"sweep_{k}"] = v
        e = np.asarray(sw["energy_per_zone_mf"])
        s["sweep_energy_per_zone_mf_spread"] = float((e.max() - e.min()) / e.mean())
        s["sweep_saving_vs_zero_min"] = float(min(sw["saving_vs_zero"]))
        s["sweep_saving_vs_zero_max"] = float(max(sw["saving_vs_zero"]))
    s["time_total"] = time.perf_counter() - t0
    study.attrs = {"problem": spec.name, "kind": spec.kind, "scenario": p["scenario"],
                   "estimator": p["estimator"]}
    return study, _ordered(s)


def _figures_gm(spec: ProblemSpec, study: GMStudy, summary) -> dict:
    figs = {
        "power": plot_power(study),
        "mean_paths": plot_mean_paths(study),
        "zone_effort": plot_zone_effort(study),
    }
    if study.sweep:
        figs["sweep"] = plot_sweep(study)
    return figs


register_kind(
    ProblemKind(
        name="mfpid-gm",
        validate=_validate_gm,
        run=_run_gm,
        build=_build_gm,
        figures=_figures_gm,
        description="MF-PID Gaussian-mixture demand response: MF guidance vs independent agents",
    )
)


# =============================================================================================
# figures
# =============================================================================================
def _new_axes(ax=None, figsize=(6.4, 4.0)):
    if ax is not None:
        return ax.figure, ax
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.subplots()


def plot_power(study, ax=None):
    """Power curves :math:`P(t)=\\mathbb E\\|u_t\\|^2` of MF and both baselines (log scale)."""
    fig, ax = _new_axes(ax)
    if isinstance(study, LQGStudy):
        for g in RUNS:
            ax.plot(study.t, study.power[g], color=_COLOURS[g], label=f"{_LABELS[g]}, closed form")
            if study.t_mc is not None:
                ax.plot(study.t_mc[:-1], study.power_mc[g], ls="none", marker=".", ms=2,
                        color=_COLOURS[g], alpha=0.5)
        ax.set_title("LQG power (dots: agents)")
    else:
        for g in RUNS:
            ax.plot(study.t_power, study.power[g], color=_COLOURS[g], lw=1, label=_LABELS[g])
        ax.set_yscale("log")
        ax.set_title(f"power, {study.scenario} (d = {study.d}, {study.estimator})")
    ax.set_xlabel("t")
    ax.set_ylabel(r"$P(t) = \mathbb{E}\,|u_t|^2$")
    ax.legend(fontsize=8)
    return fig


def plot_mean_paths(study, axes=None):
    """Mean paths of MF against the baselines.

    Gaussian mixtures: the fraction of the displacement covered (left; the straight line is the
    diagonal) and the distance to the line relative to the displacement (right); dashed: the
    closed-form mean of the protocol. LQG: the mean paths and the closed forms."""
    if isinstance(study, LQGStudy):
        fig, ax = _new_axes(None if axes is None else axes)
        for g in RUNS:
            ax.plot(study.t, study.mean[g], color=_COLOURS[g], label=_LABELS[g])
            if study.t_mc is not None:
                ax.plot(study.t_mc, study.mean_mc[g], ls="none", marker=".", ms=2,
                        color=_COLOURS[g], alpha=0.5)
        ax.plot([0, 1], [0, study.m_target], "k:", lw=1, label="straight line")
        ax.set_xlabel("t")
        ax.set_ylabel("mean")
        ax.set_title("LQG mean paths (MF: sinh profile; dots: agents)")
        ax.legend(fontsize=8)
        return fig
    if axes is None:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(10.0, 4.0), layout="constrained")
        axes = fig.subplots(1, 2)
    fig = axes[0].figure
    for g in RUNS:
        axes[0].plot(study.t, study.progress(g), color=_COLOURS[g], label=_LABELS[g])
        axes[0].plot(study.t, study.progress(g, exact=True), color=_COLOURS[g], ls="--", lw=1)
        axes[1].semilogy(study.t, np.maximum(study.deviation(g), 1e-12), color=_COLOURS[g],
                         label=_LABELS[g])
        axes[1].semilogy(study.t, np.maximum(study.deviation(g, exact=True), 1e-12),
                         color=_COLOURS[g], ls="--", lw=1)
    axes[0].plot([0, 1], [0, 1], "k:", lw=1, label="straight line")
    axes[0].set_xlabel("t")
    axes[0].set_ylabel("fraction of the displacement")
    axes[0].set_title("mean paths (dashed: closed form)")
    axes[0].legend(fontsize=8)
    axes[1].set_xlabel("t")
    axes[1].set_ylabel(r"$|\bar x_t - \ell_t| \,/\, |\Delta m|$")
    axes[1].set_title("distance to the straight line")
    return fig


def plot_zone_effort(study: GMStudy, ax=None):
    """Per-zone energy :math:`\\int\\mathbb E[u_j^2]dt` of MF and both baselines (grouped bars)."""
    fig, ax = _new_axes(ax, figsize=(max(6.4, 0.3 * study.d + 3), 4.0))
    x = np.arange(study.d)
    w = 0.27
    for i, g in enumerate(RUNS):
        ax.bar(x + (i - 1) * w, study.zone_energy[g], width=w, color=_COLOURS[g], label=_LABELS[g])
    ax.set_xlabel("zone j")
    ax.set_ylabel(r"$\int \mathbb{E}[u_j^2]\,dt$")
    ax.set_title(f"per-zone effort, {study.scenario} (d = {study.d})")
    if study.d <= 16:
        ax.set_xticks(x)
    top = max(float(np.max(study.zone_energy[g])) for g in RUNS)
    ax.set_ylim(0.0, 1.22 * top)
    ax.legend(fontsize=8, ncol=3, loc="upper center")
    return fig


def plot_sweep(study: GMStudy, axes=None):
    """Energy per zone (left) and savings of MF (right) against the swept parameter."""
    if not study.sweep:
        raise ValueError("study has no sweep; run the entry with a non-empty parameters.sweep")
    if axes is None:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(10.0, 4.0), layout="constrained")
        axes = fig.subplots(1, 2)
    fig = axes[0].figure
    sw = study.sweep
    v = np.asarray(sw["values"], dtype=float)
    for g in RUNS:
        e = np.asarray(sw[f"energy_per_zone_{g}"])
        se = np.asarray(sw[f"energy_se_{g}"]) / (v if sw["parameter"] == "d" else study.d)
        axes[0].errorbar(v, e, yerr=2 * se, marker="o", color=_COLOURS[g], label=_LABELS[g],
                         capsize=3)
    for key, label, c in (("saving_vs_zero", r"vs IA ($\nu = 0$)", "C3"),
                          ("saving_vs_target", r"vs IA ($\nu = \bar m_{\rm tar}$)", "C1")):
        axes[1].errorbar(v, 100 * np.asarray(sw[key]), yerr=200 * np.asarray(sw[key + "_se"]),
                         marker="o", color=c, label=label, capsize=3)
    axes[1].axhspan(19, 24, color="0.85", zorder=0, label="published range vs IA(0)")
    name = sw["parameter"]
    for ax in axes:
        ax.set_xlabel(name)
        if name in ("d", "K") and v.min() > 0 and v.max() / v.min() >= 8:
            ax.set_xscale("log", base=2)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("energy per zone")
    axes[0].set_title(f"energy per zone against {name} (bars: 2 s.e.)")
    axes[1].set_ylabel("saving of MF [%]")
    axes[1].set_title(f"savings against {name}")
    return fig
