r"""The problem catalogue: ``problems/*.toml`` → problem → solve → summary.

Each catalogue entry is one TOML file (TOML only: nothing is evaluated or unpickled)::

    kind = "fd-mfg"                  # which builder/runner handles the entry
    name = "periodic_benchmark"      # unique name in the catalogue (the file's stem)
    description = "one line"
    model = "general"                # kind-specific (fd-mfg: general | lq | ergodic-lq | ...)

    [source]                         # what the entry reproduces
    origin = "in-house"              # or "paper" (then citation / arxiv / doi, figure, table)
    reference = "in-house benchmark; formulation in docs/theory.md, section The periodic benchmark"

    [parameters]                     # the problem's data and sizes (kind/model specific)
    [solver]                         # method, tol, max_iter, [solver.options]
    [ci]                             # overlay used by `mfg-solvers verify`, e.g. parameters.nx = 50
    [reference]                      # quantity = {value = ..., rtol = ... / atol = ...}
                                     #          | {from = "other_quantity", rtol = ...}
                                     #          | {min = ..., max = ...}

Loading validates everything: an unknown key or a bad value raises :class:`CatalogueError`
(a :class:`ValueError`) whose message is one line naming the file, the key and what is
allowed; a malformed TOML file gives the line number.

Kinds are registered in a dispatch table (:func:`register_kind`); a kind supplies a
``validate`` function (raw TOML → normalised sections), a ``run`` function (spec →
``(solution, summary)``) and optionally ``build`` and ``figures``. Kinds living in other
modules are listed in :data:`KIND_MODULES` and imported on first use. This module registers
``fd-mfg`` (finite-difference MFG solved by :func:`mfg_solvers.coupling.solve`).

The ``fd-mfg`` problems are declarative: potentials, initial densities and terminal costs are
chosen from a small registry of named shapes (:data:`SHAPES`), the Hamiltonian by name
(:data:`HAMILTONIAN_PARAMS`) and the coupling by kind (:data:`COUPLINGS`); initial densities
are given up to a constant factor and normalised on the grid. Models with a closed form
(``lq``, ``ergodic-lq``, ``ergodic-log-gaussian``, see :data:`FD_MODELS`) take the formula's
parameters directly and add the exact quantities to the summary.

Summary of an ``fd-mfg`` run (named scalars, written to ``summary.json``):

=====================  ===================================================================
``iterations``         outer iterations of the solver; ``converged``, ``residual`` (last)
``mass_error``         :math:`\max_n |h^d \sum_i M^n_i - 1|`
``min_m``, ``max_m``   extreme values of the density over all times
``cost``               :math:`\int u(0, x)\, m_0(x)\, dx` (finite horizon)
``lambda``             the ergodic constant (ergodic problems)
``mean_T``, ``var_T``  mean and variance of :math:`m(T)` on non-periodic axes (``mean``,
                       ``var`` for ergodic problems; suffix ``_x``, ``_y`` in 2-D/3-D)
``*_exact``            closed-form values of the model (and ``*_error``: their absolute errors)
``time_*``             solver timings in seconds (``time_wall``: the whole run)
=====================  ===================================================================
"""

from __future__ import annotations

import copy
import inspect
import json
import math
import os
import re
import time
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "CatalogueError",
    "ProblemKind",
    "ProblemSpec",
    "Reference",
    "CheckResult",
    "SHAPES",
    "COUPLINGS",
    "FD_MODELS",
    "KIND_MODULES",
    "register_kind",
    "get_kind",
    "known_kinds",
    "catalogue_dir",
    "list_problems",
    "load_problem",
    "run_problem",
    "check_references",
    "verify",
    "apply_overrides",
    "parse_override",
    "write_summary",
    "write_outputs",
    "jsonable",
    "exact_moment_paths",
]

#: Environment variable naming the catalogue folder (default: ``problems/`` of the source tree).
CATALOGUE_ENV = "MFG_SOLVERS_CATALOGUE"

_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_QUANTITY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# =============================================================================================
# Errors and validation context
# =============================================================================================
class CatalogueError(ValueError):
    """A catalogue file or an override is invalid. The message is a single line."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


def _show(value: Any, limit: int = 60) -> str:
    """A short one-line representation of a TOML value for messages."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, float):
        text = repr(value)
    else:
        text = repr(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _join(names) -> str:
    return ", ".join(str(n) for n in names)


class _Context:
    """Where a value comes from (file label, overridden keys), for one-line messages."""

    def __init__(self, label: str, overridden=(), dim: int | None = None):
        self.label = label
        self.overridden = set(overridden)
        self.dim = dim

    def error(self, key: str, message: str, allowed: str | None = None) -> CatalogueError:
        text = f"{self.label}: {key}: {message}"
        if allowed:
            text += f"; allowed: {allowed}"
        if key in self.overridden:
            text += " (set by an override)"
        return CatalogueError(text)

    def bad_value(self, key: str, value, allowed: str) -> CatalogueError:
        return self.error(key, f"bad value {_show(value)}", allowed)

    def unknown_key(self, key: str, allowed) -> CatalogueError:
        text = f"{self.label}: unknown key '{key}'; allowed: {_join(sorted(allowed)) or '(none)'}"
        if key in self.overridden:
            text += " (set by an override)"
        return CatalogueError(text)

    def missing_key(self, key: str, allowed: str | None = None) -> CatalogueError:
        return self.error(key, "missing required key", allowed)


def _key(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


# =============================================================================================
# Value checks: each is ``check(ctx, key, value) -> normalised value`` with an ``allowed`` text
# =============================================================================================
class Check:
    """A value validator with a human-readable description of what it allows."""

    def __init__(self, func: Callable, allowed: str, *, normalise_default: bool = False):
        self.func = func
        self.allowed = allowed
        #: pass a schema default through the check too (per-axis values become tuples)
        self.normalise_default = normalise_default

    def __call__(self, ctx: _Context, key: str, value):
        return self.func(ctx, key, value)


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def real(*, gt: float | None = None, ge: float | None = None, ne: float | None = None) -> Check:
    """A finite real number (TOML integer or float), optionally bounded below."""
    parts = ["a finite real number"]
    if gt is not None:
        parts.append(f"> {gt:g}")
    if ge is not None:
        parts.append(f">= {ge:g}")
    if ne is not None:
        parts.append(f"!= {ne:g}")
    allowed = " ".join(parts)

    def func(ctx, key, value):
        if not _is_number(value) or not math.isfinite(float(value)):
            raise ctx.bad_value(key, value, allowed)
        v = float(value)
        if (
            (gt is not None and not v > gt)
            or (ge is not None and not v >= ge)
            or (ne is not None and v == ne)
        ):
            raise ctx.bad_value(key, value, allowed)
        return v

    return Check(func, allowed)


def integer(*, ge: int | None = None) -> Check:
    """A TOML integer, optionally bounded below."""
    allowed = "an integer" + (f" >= {ge}" if ge is not None else "")

    def func(ctx, key, value):
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer() and math.isfinite(value):
                value = int(value)
            else:
                raise ctx.bad_value(key, value, allowed)
        if ge is not None and value < ge:
            raise ctx.bad_value(key, value, allowed)
        return int(value)

    return Check(func, allowed)


def boolean() -> Check:
    def func(ctx, key, value):
        if not isinstance(value, bool):
            raise ctx.bad_value(key, value, "true, false")
        return value

    return Check(func, "true, false")


def choice(*names: str, aliases: Mapping[str, str] | None = None) -> Check:
    """One of the given strings (aliases map to canonical names)."""
    aliases = dict(aliases or {})
    allowed = _join(list(names) + sorted(aliases))

    def func(ctx, key, value):
        if isinstance(value, str):
            if value in names:
                return value
            if value in aliases:
                return aliases[value]
        raise ctx.bad_value(key, value, allowed)

    return Check(func, allowed)


def text() -> Check:
    def func(ctx, key, value):
        if not isinstance(value, str) or not value.strip():
            raise ctx.bad_value(key, value, "a non-empty string")
        return value

    return Check(func, "a non-empty string")


def per_axis(item: Check) -> Check:
    """A scalar (same on every axis) or a list with one entry per axis."""
    allowed = f"{item.allowed}, or a list of those with one entry per axis"

    def func(ctx, key, value):
        if isinstance(value, list):
            if not value:
                raise ctx.bad_value(key, value, allowed)
            out = tuple(item(ctx, key, v) for v in value)
            if ctx.dim is not None and len(out) != ctx.dim:
                raise ctx.error(
                    key, f"has {len(out)} entries but the domain has {ctx.dim} axes", allowed
                )
            return out
        v = item(ctx, key, value)
        return v if ctx.dim is None else (v,) * ctx.dim

    return Check(func, allowed, normalise_default=True)


@dataclass(frozen=True)
class Param:
    """One entry of a table schema. ``default=REQUIRED`` marks a required key."""

    name: str
    check: Check
    default: Any = None
    doc: str = ""


REQUIRED = object()


def validate_table(ctx: _Context, prefix: str, table, params, *, what: str | None = None) -> dict:
    """Check ``table`` against the ``params`` schema; return the normalised values.

    Unknown keys and missing required keys raise :class:`CatalogueError`; absent optional keys
    get their default.
    """
    if not isinstance(table, dict):
        raise ctx.bad_value(prefix, table, f"a table ({what or 'key = value pairs'})")
    schema = {p.name: p for p in params}
    for k in table:
        if k not in schema:
            raise ctx.unknown_key(_key(prefix, k), schema)
    out = {}
    for p in params:
        key = _key(prefix, p.name)
        if p.name in table:
            out[p.name] = p.check(ctx, key, table[p.name])
        elif p.default is REQUIRED:
            raise ctx.missing_key(key, p.check.allowed)
        elif p.default is not None and getattr(p.check, "normalise_default", False):
            out[p.name] = p.check(ctx, key, p.default)
        else:
            out[p.name] = p.default
    return out


# =============================================================================================
# Registry of named shapes (potential, m0, terminal cost)
# =============================================================================================
@dataclass(frozen=True)
class Shape:
    """A named function of the coordinates; ``make(params, domain)`` returns ``f(*coords)``.

    ``finish(ctx, key, params)`` (optional) checks the parameters against each other after the
    schema and normalises them in place.
    """

    name: str
    params: tuple[Param, ...]
    make: Callable
    doc: str = ""
    finish: Callable | None = None


def _axis_lengths(domain):
    return np.asarray(domain.lengths, dtype=float)


def _make_constant(p, domain):
    value = p["value"]

    def f(*coords):
        return np.full(np.shape(coords[0]), value)

    return f


def _make_uniform(p, domain):
    density = 1.0 / domain.volume

    def f(*coords):
        return np.full(np.shape(coords[0]), density)

    return f


def _make_cosine(p, domain):
    period = p["period"] if p["period"] is not None else tuple(_axis_lengths(domain))
    phase, a, c = p["phase"], p["amplitude"], p["offset"]

    def f(*coords):
        out = np.full(np.shape(coords[0]), c)
        for k, x in enumerate(coords):
            out = out + a * np.cos(2.0 * np.pi * (x - phase[k]) / period[k])
        return out

    return f


def _make_quadratic(p, domain):
    k, center = p["k"], p["center"]

    def f(*coords):
        return 0.5 * k * sum((x - center[i]) ** 2 for i, x in enumerate(coords))

    return f


def _make_gaussian(p, domain):
    mean, var, scale = p["mean"], p["var"], p["scale"]

    def f(*coords):
        out = np.full(np.shape(coords[0]), scale)
        for i, x in enumerate(coords):
            out = out * np.exp(-0.5 * (x - mean[i]) ** 2 / var[i]) / np.sqrt(2 * np.pi * var[i])
        return out

    return f


def _make_wells(p, domain):
    centers = p["centers"]
    depth = p["depth"]
    width = p["width"]
    lengths = _axis_lengths(domain)
    periodic = [b == "periodic" for b in domain.boundary]

    def f(*coords):
        out = np.zeros(np.shape(coords[0]))
        for j, c in enumerate(centers):
            r2 = np.zeros_like(out)
            for i, x in enumerate(coords):
                d = x - c[i]
                if periodic[i]:
                    d = d - lengths[i] * np.round(d / lengths[i])
                r2 = r2 + d * d
            out = out - depth[j] * np.exp(-0.5 * r2 / width**2)
        return out

    return f


def _points(ctx: _Context, key: str, value):
    allowed = "a list of points, each a number (1-D) or a list with one coordinate per axis"
    if not isinstance(value, list) or not value:
        raise ctx.bad_value(key, value, allowed)
    pts = []
    for v in value:
        pt = v if isinstance(v, list) else [v]
        if not all(_is_number(x) and math.isfinite(x) for x in pt):
            raise ctx.bad_value(key, value, allowed)
        if ctx.dim is not None and len(pt) != ctx.dim:
            raise ctx.error(key, f"point {_show(v)} needs {ctx.dim} coordinates", allowed)
        pts.append(tuple(float(x) for x in pt))
    return tuple(pts)


def _number_or_list(ctx: _Context, key: str, value):
    allowed = "a number or a list of numbers"
    if isinstance(value, list):
        if not value:
            raise ctx.bad_value(key, value, allowed)
        return tuple(_f(ctx, key, v) for v in value)
    return _f(ctx, key, value)


def _finish_wells(ctx: _Context, key: str, p: dict):
    n = len(p["centers"])
    depth = p["depth"]
    if isinstance(depth, tuple):
        if len(depth) != n:
            raise ctx.error(
                _key(key, "depth"), f"has {len(depth)} entries for {n} wells", "one per well"
            )
    else:
        p["depth"] = (depth,) * n


_f = real()
_pos = real(gt=0)

#: Named shapes for ``potential``, ``m0`` and ``terminal_cost`` (``{shape = "...", ...}``).
SHAPES: dict[str, Shape] = {
    s.name: s
    for s in (
        Shape("constant", (Param("value", _f, 0.0),), _make_constant, "value"),
        Shape("uniform", (), _make_uniform, "1 / volume (the uniform density)"),
        Shape(
            "cosine",
            (
                Param("offset", _f, 0.0),
                Param("amplitude", _f, 1.0),
                Param("phase", per_axis(_f), 0.0),
                Param("period", per_axis(_pos), None),
            ),
            _make_cosine,
            "offset + amplitude * sum_k cos(2 pi (x_k - phase_k) / period_k); "
            "period defaults to the domain length",
        ),
        Shape(
            "quadratic",
            (Param("k", _f, 1.0), Param("center", per_axis(_f), 0.0)),
            _make_quadratic,
            "k/2 * |x - center|^2",
        ),
        Shape(
            "gaussian",
            (
                Param("mean", per_axis(_f), 0.0),
                Param("var", per_axis(_pos), REQUIRED),
                Param("scale", _f, 1.0),
            ),
            _make_gaussian,
            "scale * prod_k N(x_k; mean_k, var_k) (normalised Gaussian pdf)",
        ),
        Shape(
            "wells",
            (
                Param("centers", Check(_points, "a list of points"), REQUIRED),
                Param("depth", Check(_number_or_list, "a number or one number per well"), 1.0),
                Param("width", _pos, REQUIRED),
            ),
            _make_wells,
            "-sum_j depth_j exp(-|x - c_j|^2 / (2 width^2)) (minimal image on periodic axes)",
            _finish_wells,
        ),
    )
}


def _validate_shape(ctx: _Context, key: str, value, *, optional: bool = True):
    """``{shape = name, ...params}`` → ``(name, params)``; ``"none"``/absent → None."""
    if value is None or (optional and value == "none"):
        return None
    if isinstance(value, str):
        value = {"shape": value}
    if not isinstance(value, dict):
        raise ctx.bad_value(
            key, value, 'a table {shape = "...", ...}' + (' or "none"' if optional else "")
        )
    if "shape" not in value:
        raise ctx.missing_key(_key(key, "shape"), _join(SHAPES))
    name = value["shape"]
    if name not in SHAPES:
        raise ctx.bad_value(_key(key, "shape"), name, _join(SHAPES))
    shape = SHAPES[name]
    rest = {k: v for k, v in value.items() if k != "shape"}
    out = validate_table(ctx, key, rest, shape.params, what=f"parameters of shape '{name}'")
    if shape.finish is not None:
        shape.finish(ctx, key, out)
    return (name, out)


def _shape_check(optional: bool = True) -> Check:
    return Check(
        lambda ctx, key, value: _validate_shape(ctx, key, value, optional=optional),
        f'{{shape = "..."}} with shape one of {_join(SHAPES)}'
        + (' (or "none")' if optional else ""),
    )


def build_shape(spec, domain) -> Callable | None:
    """The callable of a validated ``(name, params)`` shape (None stays None)."""
    if spec is None:
        return None
    name, params = spec
    return SHAPES[name].make(params, domain)


# =============================================================================================
# Registry of couplings and Hamiltonians
# =============================================================================================
@dataclass(frozen=True)
class CouplingKind:
    name: str
    params: tuple[Param, ...]
    make: Callable
    doc: str = ""


def _gaussian_kernel(width: float, dim: int):
    norm = (2.0 * np.pi * width**2) ** (-0.5 * dim)

    def kernel(*d):
        r2 = sum(di * di for di in d)
        return norm * np.exp(-0.5 * r2 / width**2)

    return kernel


def _make_local(kind):
    def make(p, dim):
        from .model import LocalCoupling

        return LocalCoupling(kind, strength=p["strength"], exponent=p.get("exponent"))

    return make


def _make_mean(p, dim):
    from .model import MeanCoupling

    return MeanCoupling(q=p["q"], kappa=p["kappa"])


def _make_convolution(p, dim):
    from .model import NonlocalCoupling

    return NonlocalCoupling(_gaussian_kernel(p["width"], dim), strength=p["strength"])


#: Couplings ``f(x, m)`` by kind (``{kind = "...", ...}``).
COUPLINGS: dict[str, CouplingKind] = {
    c.name: c
    for c in (
        CouplingKind(
            "linear", (Param("strength", _f, 1.0),), _make_local("linear"), "strength * m"
        ),
        CouplingKind("log", (Param("strength", _f, 1.0),), _make_local("log"), "strength * log m"),
        CouplingKind(
            "power",
            (Param("strength", _f, 1.0), Param("exponent", _pos, REQUIRED)),
            _make_local("power"),
            "strength * m**exponent",
        ),
        CouplingKind(
            "mean",
            (Param("q", real(ge=0), 1.0), Param("kappa", _f, 0.0)),
            _make_mean,
            "q/2 |x - kappa * mean(m)|^2",
        ),
        CouplingKind(
            "convolution",
            (Param("strength", _f, 1.0), Param("width", _pos, REQUIRED)),
            _make_convolution,
            "strength * (K * m) with a normalised Gaussian kernel K of standard deviation width",
        ),
    )
}


def _validate_coupling(ctx: _Context, key: str, value):
    if value is None or value == "none":
        return None
    if isinstance(value, str):
        value = {"kind": value}
    if not isinstance(value, dict):
        raise ctx.bad_value(key, value, '{kind = "..."} or "none"')
    if "kind" not in value:
        raise ctx.missing_key(_key(key, "kind"), _join(COUPLINGS))
    name = value["kind"]
    if name not in COUPLINGS:
        raise ctx.bad_value(_key(key, "kind"), name, _join(list(COUPLINGS) + ["none"]))
    rest = {k: v for k, v in value.items() if k != "kind"}
    return (name, validate_table(ctx, key, rest, COUPLINGS[name].params, what=f"coupling '{name}'"))


def build_coupling(spec, dim: int):
    if spec is None:
        return None
    name, params = spec
    return COUPLINGS[name].make(params, dim)


#: Hamiltonians by name, with the schema of their parameters.
HAMILTONIAN_PARAMS: dict[str, tuple[Param, ...]] = {
    "quadratic": (),
    "power": (Param("gamma", real(gt=1), REQUIRED),),
    "congestion": (Param("c", _pos, 1.0), Param("alpha", real(ge=0), 1.0)),
}


def _validate_hamiltonian(ctx: _Context, key: str, value):
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, dict):
        raise ctx.bad_value(key, value, f'a name ({_join(HAMILTONIAN_PARAMS)}) or {{name = "..."}}')
    if "name" not in value:
        raise ctx.missing_key(_key(key, "name"), _join(HAMILTONIAN_PARAMS))
    name = value["name"]
    if name not in HAMILTONIAN_PARAMS:
        raise ctx.bad_value(_key(key, "name"), name, _join(HAMILTONIAN_PARAMS))
    rest = {k: v for k, v in value.items() if k != "name"}
    return (
        name,
        validate_table(ctx, key, rest, HAMILTONIAN_PARAMS[name], what=f"Hamiltonian '{name}'"),
    )


def build_hamiltonian(spec):
    from .hamiltonians import make_hamiltonian

    name, params = spec
    return make_hamiltonian(name, **params)


# =============================================================================================
# Reference values
# =============================================================================================
@dataclass(frozen=True)
class Reference:
    """A reference for one summary quantity.

    Exactly one form: ``value`` (a number), ``source`` (another summary quantity, TOML key
    ``from``), or bounds ``min`` / ``max``. The first two need ``rtol`` and/or ``atol``; the
    check is ``|computed - reference| <= atol + rtol * |reference|``.
    """

    quantity: str
    value: float | None = None
    source: str | None = None
    rtol: float = 0.0
    atol: float = 0.0
    min: float | None = None
    max: float | None = None
    note: str = ""

    def describe_tolerance(self) -> str:
        if self.value is None and self.source is None:
            return "bound"
        parts = []
        if self.rtol:
            parts.append(f"rtol {self.rtol:.3g}")
        if self.atol:
            parts.append(f"atol {self.atol:.3g}")
        return ", ".join(parts) or "exact"


def _quantity_name(ctx, key, value):
    if not isinstance(value, str) or not _QUANTITY_RE.match(value):
        raise ctx.bad_value(key, value, "the name of another summary quantity")
    return value


_REFERENCE_PARAMS = (
    Param("value", _f, None),
    Param("from", Check(_quantity_name, "the name of another summary quantity"), None),
    Param("rtol", real(ge=0), None),
    Param("atol", real(ge=0), None),
    Param("min", _f, None),
    Param("max", _f, None),
    Param("note", text(), ""),
)


def _validate_reference(ctx: _Context, quantity: str, value) -> Reference:
    key = f"reference.{quantity}"
    allowed_forms = (
        '{value = x, rtol/atol = ...}, {from = "quantity", rtol/atol = ...}, {min/max = ...}'
    )
    if not _QUANTITY_RE.match(quantity):
        raise ctx.error(key, "a quantity name must be an identifier", "letters, digits, _")
    if not isinstance(value, dict):
        raise ctx.bad_value(key, value, allowed_forms)
    given = validate_table(ctx, key, value, _REFERENCE_PARAMS, what=allowed_forms)
    out = {k: v for k, v in given.items() if k in value and k != "from"}
    source = given["from"]
    if source == quantity:
        raise ctx.bad_value(f"{key}.from", source, "a quantity other than the one checked")
    forms = [("value" in out), (source is not None), ("min" in out or "max" in out)]
    if sum(forms) != 1:
        raise ctx.error(key, "give exactly one of value, from, or min/max", allowed_forms)
    has_tol = "rtol" in out or "atol" in out
    if (forms[0] or forms[1]) and not has_tol:
        raise ctx.missing_key(f"{key}.rtol", "rtol and/or atol (numbers >= 0) with value / from")
    if forms[2] and has_tol:
        raise ctx.error(key, "rtol/atol do not apply to min/max bounds", allowed_forms)
    if forms[2] and "min" in out and "max" in out and out["min"] > out["max"]:
        raise ctx.error(key, f"min {out['min']:g} > max {out['max']:g}", "min <= max")
    return Reference(
        quantity=quantity,
        value=out.get("value"),
        source=source,
        rtol=out.get("rtol") or 0.0,
        atol=out.get("atol") or 0.0,
        min=out.get("min"),
        max=out.get("max"),
        note=out.get("note", ""),
    )


# =============================================================================================
# Kinds: the dispatch table
# =============================================================================================
@dataclass(frozen=True)
class ProblemKind:
    """How one ``kind`` of catalogue entry is validated, built and run.

    validate(ctx, raw) -> dict
        Normalised kind-specific sections (at least ``parameters``; also ``solver`` and any
        extra top-level keys the kind declares in ``top_level_keys``). Raise through
        ``ctx.error`` / ``ctx.bad_value`` / ``ctx.unknown_key`` so messages stay one line.
    run(spec, progress=...) -> (solution, summary)
        Solve and return the solution object (with ``save(path)`` if it can be written) and a
        dict of named scalars.
    build(spec) -> object, optional
        The problem objects without solving (for notebooks).
    figures(spec, solution, summary) -> dict, optional
        Named :class:`matplotlib.figure.Figure` objects, written as ``<name>.png``.
    """

    name: str
    validate: Callable
    run: Callable
    build: Callable | None = None
    figures: Callable | None = None
    top_level_keys: tuple[str, ...] = ()
    description: str = ""


_KINDS: dict[str, ProblemKind] = {}

#: Kinds implemented in other modules, imported on first use; the module must call
#: :func:`register_kind`. Adding a kind is one line here plus that module.
KIND_MODULES: dict[str, str] = {
    "mfpid-lqg": "mfg_solvers.kinds.mfpid",
    "mfpid-gm": "mfg_solvers.kinds.mfpid",
    "particles": "mfg_solvers.kinds.particles",
    "fem-crowd": "mfg_solvers.kinds.fem",
}


def register_kind(kind: ProblemKind, *, replace: bool = False) -> ProblemKind:
    """Add ``kind`` to the dispatch table (``replace=True`` to overwrite an entry)."""
    if not isinstance(kind, ProblemKind):
        raise TypeError(f"kind={kind!r} must be a ProblemKind")
    if kind.name in _KINDS and not replace:
        raise ValueError(f"kind={kind.name!r} is already registered")
    _KINDS[kind.name] = kind
    return kind


def known_kinds() -> list[str]:
    return sorted(set(_KINDS) | set(KIND_MODULES))


def get_kind(name: str) -> ProblemKind:
    """The registered :class:`ProblemKind` (importing its module if needed)."""
    if name not in _KINDS and name in KIND_MODULES:
        import importlib

        importlib.import_module(KIND_MODULES[name])
    if name not in _KINDS:
        raise ValueError(f"kind={name!r} is not known; allowed: {_join(known_kinds())}")
    return _KINDS[name]


# =============================================================================================
# The spec object, loading, overrides
# =============================================================================================
_COMMON_KEYS = ("kind", "name", "description", "source", "parameters", "solver", "ci", "reference")


def _text_or_int(ctx, key, value):
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise ctx.bad_value(key, value, "a string or an integer")


_TEXT_OR_INT = Check(_text_or_int, "a string or an integer")

_SOURCE_PARAMS = (
    Param("origin", choice("paper", "in-house"), REQUIRED, "what the entry reproduces"),
    Param("citation", text(), None, "authors, title, journal, year"),
    Param("arxiv", text(), None),
    Param("doi", text(), None),
    Param("url", text(), None),
    Param("figure", _TEXT_OR_INT, None),
    Param("table", _TEXT_OR_INT, None),
    Param("reference", text(), None, "for in-house entries: where the problem is stated"),
    Param("section", text(), None),
    Param("notes", text(), None),
)


def _validate_source(ctx: _Context, table) -> dict:
    out = validate_table(ctx, "source", table, _SOURCE_PARAMS, what="origin, citation, ...")
    if out["origin"] == "paper" and not (out["citation"] or out["arxiv"] or out["doi"]):
        raise ctx.missing_key("source.citation", 'citation, arxiv or doi for origin = "paper"')
    if out["origin"] == "in-house" and not out["reference"]:
        raise ctx.missing_key(
            "source.reference",
            'where the problem is stated (e.g. "docs/theory.md, section The periodic benchmark")',
        )
    return {k: v for k, v in out.items() if v is not None}


@dataclass
class ProblemSpec:
    """A validated catalogue entry: the resolved TOML document plus its normalised sections.

    Attributes
    ----------
    name, kind, description
        From the document.
    source, parameters, solver
        Normalised tables (defaults filled in; kind-specific for parameters and solver).
    reference
        ``{quantity: Reference}``.
    ci
        The raw ``[ci]`` overlay.
    raw
        The document as run (overrides and, if ``ci_applied``, the CI overlay included).
    path
        The file it came from (None for a dict).
    overrides
        The dotted-key overrides applied to ``base``.
    ci_applied
        Whether ``raw`` is the CI-size document.
    extra
        Kind-specific normalised top-level keys (fd-mfg: ``model``).
    """

    name: str
    kind: str
    description: str
    source: dict
    parameters: dict
    solver: dict
    reference: dict[str, Reference]
    ci: dict
    raw: dict
    path: Path | None = None
    overrides: dict = field(default_factory=dict)
    ci_applied: bool = False
    extra: dict = field(default_factory=dict)
    base: dict = field(default_factory=dict, repr=False)  # the document before the overrides

    @property
    def label(self) -> str:
        return str(self.path) if self.path is not None else f"<{self.name or 'spec'}>"

    def with_overrides(self, overrides: Mapping | None) -> ProblemSpec:
        """A new validated spec with dotted-key overrides applied to the raw document."""
        if not overrides:
            return self
        merged = dict(self.overrides)
        merged.update(overrides)
        return _spec_from_raw(
            self.base, self.path, merged, ci_applied=self.ci_applied, label=self.label
        )

    def ci_spec(self) -> ProblemSpec:
        """The spec at its CI size (the ``[ci]`` overlay applied; overrides kept on top)."""
        if self.ci_applied:
            return self
        raw = _deep_merge(self.base, self.ci)
        return _spec_from_raw(raw, self.path, self.overrides, ci_applied=True, label=self.label)

    def build(self):
        """The problem objects without solving (kind-specific; fd-mfg: ``(problem, grid, nt)``)."""
        kind = get_kind(self.kind)
        if kind.build is None:
            raise NotImplementedError(f"kind {self.kind!r} has no build step")
        return kind.build(self)

    def to_dict(self) -> dict:
        """The resolved raw document (JSON-serialisable)."""
        return copy.deepcopy(self.raw)

    def __repr__(self):
        return f"<ProblemSpec {self.name!r} kind={self.kind!r} file={self.label}>"


def _deep_merge(base: dict, overlay: Mapping) -> dict:
    out = copy.deepcopy(base)
    for k, v in overlay.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _flatten(table: Mapping, prefix: str = "") -> list[str]:
    keys = []
    for k, v in table.items():
        key = _key(prefix, k)
        keys.append(key)
        if isinstance(v, Mapping):
            keys.extend(_flatten(v, key))
    return keys


def apply_overrides(raw: dict, overrides: Mapping | None, label: str = "<spec>") -> dict:
    """A copy of ``raw`` with ``{"a.b.c": value}`` overrides set (missing tables are created)."""
    out = copy.deepcopy(raw)
    for dotted, value in (overrides or {}).items():
        if not isinstance(dotted, str) or not dotted or any(not p for p in dotted.split(".")):
            raise CatalogueError(
                f"{label}: override key {_show(dotted)} is not a dotted key; "
                "allowed: e.g. parameters.nx or solver.method"
            )
        parts = dotted.split(".")
        node = out
        for i, part in enumerate(parts[:-1]):
            if part not in node:
                node[part] = {}
            elif not isinstance(node[part], dict):
                where = ".".join(parts[: i + 1])
                raise CatalogueError(
                    f"{label}: override {dotted}: '{where}' is a value, not a table; "
                    f"allowed: set '{where}' itself"
                )
            node = node[part]
        node[parts[-1]] = copy.deepcopy(value)
    return out


_BARE_WORD = re.compile(r"^[A-Za-z_][A-Za-z0-9_.+-]*$")


def parse_override(item: str) -> tuple[str, Any]:
    """Parse ``key=value``: the value is a TOML scalar, array or inline table; a bare word
    that is not valid TOML (``fixed_point``) is taken as a string."""
    if not isinstance(item, str) or "=" not in item:
        raise CatalogueError(
            f"override {_show(item)} is not of the form key=value; allowed: e.g. parameters.nx=200"
        )
    key, _, value = item.partition("=")
    key, value = key.strip(), value.strip()
    if not key:
        raise CatalogueError(
            f"override {_show(item)} has an empty key; allowed: e.g. parameters.nx=200"
        )
    try:
        return key, tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        if _BARE_WORD.match(value) and value not in ("true", "false"):
            return key, value
        raise CatalogueError(
            f"override {key}: value {_show(value)} is not a TOML value; allowed: numbers, "
            'true/false, "strings", bare words, [arrays], {inline = "tables"}'
        ) from None


_LINE_RE = re.compile(r"\(at line (\d+), column (\d+)\)")


def _read_toml(path: Path) -> dict:
    try:
        text_ = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CatalogueError(f"{path}: file not found; allowed: a readable .toml file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogueError(f"{path}: cannot read the file ({exc})") from None
    try:
        return tomllib.loads(text_)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = _LINE_RE.search(msg)
        lines = text_.splitlines()
        if m is None and "end of document" in msg:
            # report the last non-blank line: where the unterminated construct ran out
            lineno = max((i + 1 for i, ln in enumerate(lines) if ln.strip()), default=1)
            reason = msg.replace("(at end of document)", "").strip()
            key = lines[lineno - 1].split("=", 1)[0].strip() if lines else ""
            raise CatalogueError(
                f"{path}: line {lineno}: malformed TOML near {_show(key, 40)}: {reason} at the end "
                "of the file; allowed: TOML 1.0 syntax, e.g. key = 1.0"
            ) from None
        if m:
            lineno = int(m.group(1))
            line = lines[lineno - 1].strip() if 0 < lineno <= len(lines) else ""
            key = line.split("=", 1)[0].strip() if "=" in line else line
            reason = _LINE_RE.sub("", msg).strip()
            raise CatalogueError(
                f"{path}: line {lineno}: malformed TOML near {_show(key, 40)}: {reason} "
                f"(column {m.group(2)}); allowed: TOML 1.0 syntax, e.g. key = 1.0"
            ) from None
        raise CatalogueError(f"{path}: malformed TOML: {msg}; allowed: TOML 1.0 syntax") from None


def _validate_document(ctx: _Context, raw) -> dict:
    if not isinstance(raw, dict):
        raise CatalogueError(f"{ctx.label}: the document must be a TOML table")
    kind_name = raw.get("kind")
    if kind_name is None:
        raise ctx.missing_key("kind", _join(known_kinds()))
    if not isinstance(kind_name, str) or kind_name not in known_kinds():
        raise ctx.bad_value("kind", kind_name, _join(known_kinds()))
    try:
        kind = get_kind(kind_name)
    except ImportError as exc:
        raise ctx.error("kind", f"kind {kind_name!r} is not available here ({exc})") from None
    allowed_top = set(_COMMON_KEYS) | set(kind.top_level_keys)
    for k in raw:
        if k not in allowed_top:
            raise ctx.unknown_key(k, allowed_top)
    for k in ("name", "description", "source", "parameters"):
        if k not in raw:
            raise ctx.missing_key(k)
    name = raw["name"]
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ctx.bad_value("name", name, "letters, digits, '_', '-', '.' (a file-name-like word)")
    description = text()(ctx, "description", raw["description"])
    source = _validate_source(ctx, raw["source"])
    references = raw.get("reference", {})
    if not isinstance(references, dict):
        raise ctx.bad_value("reference", references, "a table of quantity = {...} entries")
    reference = {q: _validate_reference(ctx, q, v) for q, v in references.items()}
    ci = raw.get("ci", {})
    if not isinstance(ci, dict):
        raise ctx.bad_value("ci", ci, "a table overlaying the document, e.g. parameters.nx = 50")
    if "ci" in ci:
        raise ctx.unknown_key("ci.ci", [k for k in allowed_top if k != "ci"])
    for k in ci:
        if k not in allowed_top:
            raise ctx.unknown_key(f"ci.{k}", allowed_top - {"ci"})
    sections = kind.validate(ctx, raw)
    if not isinstance(sections, dict) or "parameters" not in sections:
        raise TypeError(f"kind {kind_name!r}: validate() must return a dict with 'parameters'")
    return {
        "name": name,
        "kind": kind_name,
        "description": description,
        "source": source,
        "reference": reference,
        "ci": ci,
        "sections": sections,
    }


def _spec_from_raw(
    raw: dict,
    path: Path | None,
    overrides: Mapping | None = None,
    *,
    ci_applied: bool = False,
    label: str | None = None,
) -> ProblemSpec:
    label = label or (str(path) if path is not None else f"<{raw.get('name', 'spec')}>")
    overrides = dict(overrides or {})
    base = copy.deepcopy(raw)
    merged = apply_overrides(base, overrides, label)
    ctx = _Context(label, overridden=overrides)
    doc = _validate_document(ctx, merged)
    if not ci_applied and doc["ci"]:
        # the CI overlay must itself give a valid document
        ci_ctx = _Context(f"{label} [ci overlay]")
        _validate_document(ci_ctx, _deep_merge(merged, doc["ci"]))
    sections = doc["sections"]
    extra = {k: v for k, v in sections.items() if k not in ("parameters", "solver")}
    return ProblemSpec(
        name=doc["name"],
        kind=doc["kind"],
        description=doc["description"],
        source=doc["source"],
        parameters=sections["parameters"],
        solver=sections.get("solver", {}),
        reference=doc["reference"],
        ci=doc["ci"],
        raw=merged,
        path=path,
        overrides=overrides,
        ci_applied=ci_applied,
        extra=extra,
        base=base,
    )


def catalogue_dir() -> Path:
    """The catalogue folder: ``$MFG_SOLVERS_CATALOGUE`` or ``problems/`` next to the package."""
    env = os.environ.get(CATALOGUE_ENV)
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "problems"


def _resolve_path(name_or_path, directory: Path | None = None) -> Path:
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.exists() or os.sep in str(name_or_path):
        return p
    folder = Path(directory) if directory is not None else catalogue_dir()
    candidate = folder / f"{name_or_path}.toml"
    if candidate.exists():
        return candidate
    names = sorted(q.stem for q in folder.glob("*.toml")) if folder.is_dir() else []
    raise CatalogueError(
        f"{name_or_path}: no such problem file or catalogue entry in {folder}; "
        f"allowed: a .toml path or one of {_join(names) or '(empty catalogue)'}"
    )


def load_problem(
    path_or_name,
    overrides: Mapping | None = None,
    *,
    ci: bool = False,
    directory: str | Path | None = None,
) -> ProblemSpec:
    """Read and validate a catalogue entry.

    Parameters
    ----------
    path_or_name
        A path to a TOML file, the name of an entry of the catalogue (``"lq_mfg"``), a raw
        dict with the same structure, or a :class:`ProblemSpec`.
    overrides
        ``{"parameters.nx": 200, "solver.method": "fixed_point"}``: dotted keys set on the
        document before validation.
    ci
        Apply the entry's ``[ci]`` overlay (the sizes used by ``mfg-solvers verify``); the
        overrides are applied on top of it.
    directory
        The catalogue folder used to resolve names (default :func:`catalogue_dir`).
    """
    if isinstance(path_or_name, ProblemSpec):
        spec = path_or_name
        if ci:
            spec = spec.ci_spec()
        return spec.with_overrides(overrides)
    if isinstance(path_or_name, Mapping):
        raw, path = copy.deepcopy(dict(path_or_name)), None
    elif isinstance(path_or_name, str | os.PathLike):
        path = _resolve_path(path_or_name, directory)
        raw = _read_toml(path)
    else:
        raise TypeError(
            f"path_or_name={path_or_name!r} must be a path, a catalogue name, a dict "
            "or a ProblemSpec"
        )
    if ci:
        label = str(path) if path is not None else f"<{raw.get('name', 'spec')}>"
        # validate the plain entry first so that errors name the right table
        plain = _spec_from_raw(raw, path, None, label=label)
        raw = _deep_merge(raw, plain.ci)
        return _spec_from_raw(raw, path, overrides, ci_applied=True, label=label)
    return _spec_from_raw(raw, path, overrides)


def list_problems(directory: str | Path | None = None) -> list[ProblemSpec]:
    """Every entry of the catalogue folder, validated, sorted by name."""
    folder = Path(directory) if directory is not None else catalogue_dir()
    if not folder.is_dir():
        raise CatalogueError(
            f"{folder}: catalogue folder not found; allowed: a folder of .toml files"
        )
    specs, seen = [], {}
    for path in sorted(folder.glob("*.toml")):
        spec = load_problem(path)
        if spec.name in seen:
            raise CatalogueError(
                f"{path}: name: {spec.name!r} is already used by {seen[spec.name]}; "
                "allowed: a name unique in the catalogue"
            )
        seen[spec.name] = path
        specs.append(spec)
    return sorted(specs, key=lambda s: s.name)


# =============================================================================================
# Running, summaries, reference checks
# =============================================================================================
def _json_scalar(v):
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, bool | int | float | str) or v is None:
        return v
    if isinstance(v, list | tuple):
        return [_json_scalar(x) for x in v]
    return str(v)


def write_summary(summary: Mapping, path: str | Path) -> Path:
    """Write a summary dict as JSON (NaN/inf become ``null``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {k: _json_scalar(v) for k, v in summary.items()}
    path.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return path


def run_problem(
    path_or_spec,
    overrides: Mapping | None = None,
    out: str | Path | None = None,
    *,
    ci: bool = False,
    progress: bool = False,
    figures: bool = True,
    directory: str | Path | None = None,
):
    """Load, solve and summarise a catalogue entry.

    Parameters
    ----------
    path_or_spec
        Path, catalogue name, raw dict or :class:`ProblemSpec` (see :func:`load_problem`).
    overrides
        Dotted-key overrides, e.g. ``{"parameters.nx": 200}``.
    out
        If given, a folder that receives ``solution.nc`` (the :class:`~mfg_solvers.Solution`),
        ``summary.json``, ``problem.json`` (the resolved document) and PNG figures.
    ci
        Run at the entry's ``[ci]`` size.
    progress
        Show the solver's progress bar.
    figures
        Write figures when ``out`` is given.

    Returns
    -------
    (solution, summary)
        The solution object and a dict of named scalars (``iterations``, ``residual``,
        ``mass_error``, ``min_m``, ``time_total``, model-specific quantities such as
        ``mean_T`` and ``mean_T_exact``...).
    """
    spec = load_problem(path_or_spec, overrides, ci=ci, directory=directory)
    kind = get_kind(spec.kind)
    t0 = time.perf_counter()
    solution, summary = kind.run(spec, progress=progress)
    summary = dict(summary)
    summary.setdefault("time_wall", time.perf_counter() - t0)
    if out is not None:
        write_outputs(spec, solution, summary, out, figures=figures)
    return solution, summary


def write_outputs(
    spec: ProblemSpec, solution, summary: Mapping, out, *, figures: bool = True
) -> list[Path]:
    """Write ``solution.nc``, ``summary.json``, ``problem.json`` and figures into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    if solution is not None and hasattr(solution, "save"):
        written.append(solution.save(out / "solution.nc"))
    written.append(write_summary(summary, out / "summary.json"))
    doc = out / "problem.json"
    doc.write_text(json.dumps(jsonable(spec.to_dict()), indent=2) + "\n", encoding="utf-8")
    written.append(doc)
    kind = get_kind(spec.kind)
    if figures and kind.figures is not None and solution is not None:
        for name, fig in kind.figures(spec, solution, summary).items():
            path = out / f"{name}.png"
            fig.savefig(path, dpi=110)
            written.append(path)
    return written


def jsonable(obj):
    """``obj`` with numpy scalars made plain and NaN/inf made None (JSON-ready)."""
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    return _json_scalar(obj)


@dataclass(frozen=True)
class CheckResult:
    """One row of the verification table."""

    problem: str
    quantity: str
    computed: float | None
    reference: str
    tolerance: str
    rel_error: float | None
    passed: bool
    message: str = ""


def _number(v):
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, int | float | np.integer | np.floating):
        return float(v)
    return None


def check_references(spec: ProblemSpec, summary: Mapping) -> list[CheckResult]:
    """Compare ``summary`` with the entry's ``[reference]`` values."""
    rows = []
    for q, ref in spec.reference.items():
        computed = _number(summary.get(q))
        if computed is None or not math.isfinite(computed):
            rows.append(
                CheckResult(
                    spec.name,
                    q,
                    computed,
                    "-",
                    ref.describe_tolerance(),
                    None,
                    False,
                    f"quantity {q!r} is missing or not finite in the summary",
                )
            )
            continue
        if ref.value is not None or ref.source is not None:
            if ref.source is not None:
                target = _number(summary.get(ref.source))
                if target is None or not math.isfinite(target):
                    rows.append(
                        CheckResult(
                            spec.name,
                            q,
                            computed,
                            ref.source,
                            ref.describe_tolerance(),
                            None,
                            False,
                            f"reference quantity {ref.source!r} is missing",
                        )
                    )
                    continue
                shown = f"{target:.6g} ({ref.source})"
            else:
                target = ref.value
                shown = f"{target:.6g}"
            diff = abs(computed - target)
            rel = diff / abs(target) if target != 0 else None
            passed = diff <= ref.atol + ref.rtol * abs(target)
            rows.append(
                CheckResult(spec.name, q, computed, shown, ref.describe_tolerance(), rel, passed)
            )
        else:
            lo = ref.min if ref.min is not None else -math.inf
            hi = ref.max if ref.max is not None else math.inf
            if ref.min is not None and ref.max is not None:
                shown = f"[{ref.min:.6g}, {ref.max:.6g}]"
            elif ref.max is not None:
                shown = f"<= {ref.max:.6g}"
            else:
                shown = f">= {ref.min:.6g}"
            rows.append(
                CheckResult(spec.name, q, computed, shown, "bound", None, lo <= computed <= hi)
            )
    return rows


def verify(
    names=None,
    *,
    directory: str | Path | None = None,
    on_result: Callable | None = None,
) -> list[CheckResult]:
    """Run catalogue entries at their ``[ci]`` size and check their reference values.

    ``names`` selects entries (default: all). A run that raises (non-convergence, ...) gives a
    failed row for that entry. ``on_result(spec, rows, seconds)`` is called after each entry.
    """
    specs = list_problems(directory)
    if names:
        by_name = {s.name: s for s in specs}
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise CatalogueError(
                f"verify: unknown problem(s) {_join(unknown)}; allowed: {_join(sorted(by_name))}"
            )
        specs = [by_name[n] for n in names]
    rows_all = []
    for spec in specs:
        t0 = time.perf_counter()
        try:
            _, summary = run_problem(spec, ci=True)
            rows = check_references(spec, summary)
            if not rows:
                rows = [
                    CheckResult(
                        spec.name,
                        "-",
                        None,
                        "-",
                        "-",
                        None,
                        False,
                        "no [reference] values to check",
                    )
                ]
        except Exception as exc:  # a failing entry must not stop the others
            msg = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
            rows = [CheckResult(spec.name, "run", None, "-", "-", None, False, msg)]
        if on_result is not None:
            on_result(spec, rows, time.perf_counter() - t0)
        rows_all.extend(rows)
    return rows_all


# =============================================================================================
# Kind "fd-mfg": finite-difference MFG problems solved by mfg_solvers.coupling.solve
# =============================================================================================
METHODS = ("newton", "fixed_point", "fictitious_play", "policy_iteration")


def _options_table(ctx, key, value):
    if not isinstance(value, dict):
        raise ctx.bad_value(key, value, 'a table of solver options (e.g. damping = "backtracking")')
    for k in value:
        if not _QUANTITY_RE.match(k):
            raise ctx.bad_value(f"{key}.{k}", value[k], "an option name that is an identifier")
    return dict(value)


_SOLVER_PARAMS = (
    Param("method", choice(*METHODS), "newton"),
    Param("tol", real(gt=0), None, "stopping tolerance on the residual (solver default if absent)"),
    Param("max_iter", integer(ge=1), None, "iteration limit (solver default if absent)"),
    Param(
        "options",
        Check(_options_table, "a table of solver options"),
        None,
        "further keyword options of the solver (checked against its signature when run)",
    ),
)


def _validate_solver(ctx: _Context, table) -> dict:
    out = validate_table(
        ctx,
        "solver",
        {} if table is None else table,
        _SOLVER_PARAMS,
        what="method, tol, max_iter, options",
    )
    out["options"] = out["options"] or {}
    return out


@dataclass(frozen=True)
class FDModel:
    """A family of fd-mfg problems: a parameter schema, a builder and exact quantities.

    build(params) -> (MFGProblem, Grid, nt)
    exact(params) -> dict of named exact quantities (added to the summary)
    validate(ctx, params) -> None: cross-field checks after the schema
    """

    name: str
    params: tuple[Param, ...]
    build: Callable
    exact: Callable | None = None
    validate: Callable | None = None
    description: str = ""


FD_MODELS: dict[str, FDModel] = {}


def register_fd_model(model: FDModel, *, replace: bool = False) -> FDModel:
    """Add a model family to the ``fd-mfg`` kind."""
    if model.name in FD_MODELS and not replace:
        raise ValueError(f"fd-mfg model {model.name!r} is already registered")
    FD_MODELS[model.name] = model
    return model


# -- model "general": everything declared in [parameters] ------------------------------------
def _bounds_check(ctx, key, value):
    allowed = "[a, b] or one [a, b] pair per axis (1 to 3 axes), finite with a < b"
    pairs = value if (isinstance(value, list) and value and isinstance(value[0], list)) else [value]
    if not isinstance(value, list) or not 1 <= len(pairs) <= 3:
        raise ctx.bad_value(key, value, allowed)
    out = []
    for pair in pairs:
        if (
            not isinstance(pair, list)
            or len(pair) != 2
            or not all(_is_number(v) and math.isfinite(v) for v in pair)
            or not pair[0] < pair[1]
        ):
            raise ctx.bad_value(key, value, allowed)
        out.append((float(pair[0]), float(pair[1])))
    return tuple(out)


_BOUNDARY = choice("periodic", "neumann", aliases={"reflecting": "neumann"})

_GENERAL_PARAMS = (
    Param(
        "bounds",
        Check(_bounds_check, "[a, b] or a list of [a, b] pairs"),
        REQUIRED,
        "the box, one [a, b] per axis",
    ),
    Param("boundary", per_axis(_BOUNDARY), "periodic", "periodic | neumann, per axis or for all"),
    Param("nx", per_axis(integer(ge=3)), REQUIRED, "nodes per axis"),
    Param("nt", integer(ge=1), None, "time steps (finite horizon)"),
    Param("T", real(gt=0), None, "horizon (finite horizon)"),
    Param("ergodic", boolean(), False, "solve the stationary ergodic system"),
    Param("nu", real(ge=0), None, "viscosity nu = sigma^2 / 2"),
    Param("sigma", real(ge=0), None, "noise level (nu = sigma^2 / 2)"),
    Param(
        "hamiltonian",
        Check(_validate_hamiltonian, "a Hamiltonian name or table", normalise_default=True),
        "quadratic",
    ),
    Param("coupling", Check(_validate_coupling, "a coupling table"), None),
    Param("potential", _shape_check(), None),
    Param("m0", _shape_check(), None),
    Param("terminal_cost", _shape_check(), None),
    Param("terminal_coupling", Check(_validate_coupling, "a coupling table"), None),
)


def _validate_general(ctx: _Context, table) -> dict:
    if not isinstance(table, dict):
        raise ctx.bad_value("parameters", table, "a table")
    # the dimension comes from the bounds; per-axis checks need it
    if "bounds" not in table:
        raise ctx.missing_key("parameters.bounds", "[a, b] or a list of [a, b] pairs")
    dim = len(_bounds_check(ctx, "parameters.bounds", table["bounds"]))
    old, ctx.dim = ctx.dim, dim
    try:
        p = validate_table(ctx, "parameters", table, _GENERAL_PARAMS)
    finally:
        ctx.dim = old
    if (p["nu"] is None) == (p["sigma"] is None):
        raise ctx.error(
            "parameters.nu", "give exactly one of nu and sigma", "nu >= 0 or sigma >= 0"
        )
    if p["ergodic"]:
        for k in ("T", "nt", "terminal_cost", "terminal_coupling"):
            if p[k] is not None:
                raise ctx.error(
                    f"parameters.{k}",
                    "not allowed when ergodic = true",
                    "remove it, or set ergodic = false",
                )
    else:
        for k, what in (
            ("T", "a horizon > 0"),
            ("nt", "an integer >= 1"),
            ("m0", "an initial density shape"),
        ):
            if p[k] is None:
                raise ctx.missing_key(
                    f"parameters.{k}", f"{what} (finite horizon; or ergodic = true)"
                )
    return p


def _build_general(p: dict):
    from .grid import Domain, Grid
    from .model import MFGProblem

    domain = Domain(p["bounds"], p["boundary"])
    grid = Grid(domain.bounds, p["nx"], domain.boundary)
    nu = p["nu"] if p["nu"] is not None else 0.5 * p["sigma"] ** 2
    m0 = p["m0"] if p["m0"] is not None else ("uniform", {})
    problem = MFGProblem(
        domain,
        nu,
        hamiltonian=build_hamiltonian(p["hamiltonian"]),
        coupling=build_coupling(p["coupling"], domain.dim),
        potential=build_shape(p["potential"], domain),
        m0=_density_on_grid(build_shape(m0, domain), grid, "parameters.m0"),
        T=None if p["ergodic"] else p["T"],
        terminal_cost=build_shape(p["terminal_cost"], domain),
        terminal_coupling=build_coupling(p["terminal_coupling"], domain.dim),
        ergodic=p["ergodic"],
    )
    return problem, grid, (None if p["ergodic"] else p["nt"])


register_fd_model(
    FDModel(
        "general",
        _GENERAL_PARAMS,
        _build_general,
        description="any fd-mfg problem declared with named shapes, couplings and Hamiltonians",
    )
)


# -- closed-form families -------------------------------------------------------------------
def _gaussian_pdf(mean: float, var: float):
    def f(x):
        return np.exp(-0.5 * (x - mean) ** 2 / var) / np.sqrt(2 * np.pi * var)

    return f


class _KeyedValueError(ValueError):
    """A ValueError raised while building a problem, attributed to a key of the document."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key


def _density_on_grid(func, grid, key: str) -> np.ndarray:
    """``func`` sampled on ``grid`` and normalised to unit mass (``h^d sum = 1``).

    Catalogue densities are given up to a constant factor ("m0 proportional to ..."), so the
    normalisation is exact and silent; negative, non-finite or zero-mass samples are errors.
    """
    try:
        values = grid.evaluate(func, "m0")
    except ValueError as exc:
        raise _KeyedValueError(key, str(exc)) from None
    if np.any(values < 0):
        raise _KeyedValueError(
            key, f"the density has negative values (min {values.min():.3g}); a density must be >= 0"
        )
    mass = grid.integrate(values)
    if not mass > 0:
        raise _KeyedValueError(key, "the density has zero mass on the grid")
    return values / mass


def _uniform_density(grid) -> np.ndarray:
    """The uniform density on ``grid`` (the initial guess of the ergodic models)."""
    return np.full(grid.shape, 1.0 / (grid.size * grid.cell_volume))


def _check_box(ctx, p, lo="x_min", hi="x_max"):
    if not p[lo] < p[hi]:
        raise ctx.error(
            f"parameters.{hi}", f"x_max = {p[hi]:g} must exceed x_min = {p[lo]:g}", "x_min < x_max"
        )


_LQ_PARAMS = (
    Param("q", real(ge=0), REQUIRED, "running state cost weight"),
    Param("q_T", real(ge=0), REQUIRED, "terminal cost weight"),
    Param("kappa", _f, REQUIRED, "running mean-field attraction"),
    Param("kappa_T", _f, REQUIRED, "terminal mean-field attraction"),
    Param("sigma", real(gt=0), REQUIRED, "noise level (nu = sigma^2/2)"),
    Param("T", real(gt=0), REQUIRED, "horizon"),
    Param("mean0", _f, REQUIRED, "mean of the Gaussian m0"),
    Param("var0", real(gt=0), REQUIRED, "variance of the Gaussian m0"),
    Param("nx", integer(ge=3), REQUIRED, "nodes"),
    Param("nt", integer(ge=1), REQUIRED, "time steps"),
    Param("x_min", _f, REQUIRED, "left wall (reflecting)"),
    Param("x_max", _f, REQUIRED, "right wall (reflecting)"),
)


def _build_lq(p: dict):
    from .grid import Domain, Grid
    from .model import MeanCoupling, MFGProblem

    domain = Domain((p["x_min"], p["x_max"]), "neumann")
    grid = Grid(domain.bounds, p["nx"], "neumann")
    problem = MFGProblem(
        domain,
        0.5 * p["sigma"] ** 2,
        coupling=MeanCoupling(p["q"], p["kappa"]),
        terminal_coupling=MeanCoupling(p["q_T"], p["kappa_T"]),
        T=p["T"],
        m0=_density_on_grid(_gaussian_pdf(p["mean0"], p["var0"]), grid, "parameters.mean0"),
    )
    return problem, grid, p["nt"]


def _lq_reference(p: dict):
    """The closed-form finite-horizon LQ solution (mfg_solvers.analytic.lq)."""
    from .analytic import lq

    return lq.lq_finite_horizon(
        q=p["q"],
        q_T=p["q_T"],
        kappa=p["kappa"],
        kappa_T=p["kappa_T"],
        sigma2=p["sigma"] ** 2,
        T=p["T"],
        mean0=p["mean0"],
        var0=p["var0"],
    )


def _exact_lq(p: dict) -> dict:
    ref = _lq_reference(p)
    return {"mean_T_exact": float(ref.mean_T), "var_T_exact": float(ref.var_T)}


register_fd_model(
    FDModel(
        "lq",
        _LQ_PARAMS,
        _build_lq,
        _exact_lq,
        lambda ctx, p: _check_box(ctx, p),
        "finite-horizon linear-quadratic MFG with mean coupling (closed form of "
        "mfg_solvers.analytic.lq.lq_finite_horizon; docs/theory.md, section Verification cases)",
    )
)


_ERGODIC_LQ_PARAMS = (
    Param("q", real(gt=0), REQUIRED, "state cost weight"),
    Param(
        "kappa", real(ne=1), REQUIRED, "mean-field attraction (kappa = 1: continuum of equilibria)"
    ),
    Param("sigma", real(gt=0), REQUIRED, "noise level (nu = sigma^2/2)"),
    Param("nx", integer(ge=3), REQUIRED, "nodes"),
    Param("x_min", _f, REQUIRED, "left wall (reflecting)"),
    Param("x_max", _f, REQUIRED, "right wall (reflecting)"),
)


def _build_ergodic_lq(p: dict):
    from .grid import Domain, Grid
    from .model import MeanCoupling, MFGProblem

    domain = Domain((p["x_min"], p["x_max"]), "neumann")
    grid = Grid(domain.bounds, p["nx"], "neumann")
    problem = MFGProblem(
        domain,
        0.5 * p["sigma"] ** 2,
        coupling=MeanCoupling(p["q"], p["kappa"]),
        m0=_uniform_density(grid),
        ergodic=True,
    )
    return problem, grid, None


def _exact_ergodic_lq(p: dict) -> dict:
    from .analytic import lq

    ref = lq.ergodic_lq(q=p["q"], kappa=p["kappa"], sigma2=p["sigma"] ** 2)
    return {
        "lambda_exact": float(ref.lam),
        "mean_exact": float(ref.mean[0]),
        "var_exact": float(ref.variance),
    }


register_fd_model(
    FDModel(
        "ergodic-lq",
        _ERGODIC_LQ_PARAMS,
        _build_ergodic_lq,
        _exact_ergodic_lq,
        lambda ctx, p: _check_box(ctx, p),
        "ergodic linear-quadratic MFG (closed form of mfg_solvers.analytic.lq.ergodic_lq; "
        "docs/theory.md, section Verification cases)",
    )
)


_ERGODIC_LOG_PARAMS = (
    Param("c", real(gt=0), REQUIRED, "potential V = c/2 x^2"),
    Param("alpha", _f, REQUIRED, "coupling f = alpha log m (alpha > 0: crowd aversion)"),
    Param("nu", real(gt=0), REQUIRED, "viscosity"),
    Param("nx", integer(ge=3), REQUIRED, "nodes"),
    Param("x_min", _f, REQUIRED, "left wall (reflecting)"),
    Param("x_max", _f, REQUIRED, "right wall (reflecting)"),
)


def _build_ergodic_log(p: dict):
    from .grid import Domain, Grid
    from .model import LocalCoupling, MFGProblem

    domain = Domain((p["x_min"], p["x_max"]), "neumann")
    grid = Grid(domain.bounds, p["nx"], "neumann")
    c = p["c"]
    problem = MFGProblem(
        domain,
        p["nu"],
        coupling=LocalCoupling("log", p["alpha"]),
        potential=lambda x: 0.5 * c * x**2,
        m0=_uniform_density(grid),
        ergodic=True,
    )
    return problem, grid, None


def _exact_ergodic_log(p: dict) -> dict:
    from .analytic import lq

    ref = lq.ergodic_log_gaussian(c=p["c"], alpha=p["alpha"], nu=p["nu"])
    return {"lambda_exact": float(ref.lam), "mean_exact": 0.0, "var_exact": float(ref.variance)}


def _validate_ergodic_log(ctx, p):
    _check_box(ctx, p)
    a = p["alpha"]
    if a < 0 and not (-a + math.sqrt(a * a + 4 * p["c"] * p["nu"] ** 2)) > 0:
        raise ctx.bad_value(
            "parameters.alpha",
            a,
            "a value with a = (-alpha + sqrt(alpha^2 + 4 c nu^2)) / (2 nu) > 0",
        )


register_fd_model(
    FDModel(
        "ergodic-log-gaussian",
        _ERGODIC_LOG_PARAMS,
        _build_ergodic_log,
        _exact_ergodic_log,
        _validate_ergodic_log,
        "stationary Gaussian MFG with quadratic potential and log coupling (closed form of "
        "mfg_solvers.analytic.lq.ergodic_log_gaussian; docs/theory.md, section Verification cases)",
    )
)


# -- the kind ------------------------------------------------------------------------------
def _validate_fd(ctx: _Context, raw: dict) -> dict:
    model_name = raw.get("model", "general")
    if model_name not in FD_MODELS:
        raise ctx.bad_value("model", model_name, _join(FD_MODELS))
    model = FD_MODELS[model_name]
    if model_name == "general":
        params = _validate_general(ctx, raw["parameters"])
    else:
        params = validate_table(
            ctx,
            "parameters",
            raw["parameters"],
            model.params,
            what=f"parameters of model '{model_name}'",
        )
        if model.validate is not None:
            model.validate(ctx, params)
    solver = _validate_solver(ctx, raw.get("solver"))
    return {"parameters": params, "solver": solver, "model": model_name}


def _build_fd(spec: ProblemSpec):
    """``(MFGProblem, Grid, nt)`` of an fd-mfg entry (``nt`` is None for ergodic problems)."""
    import warnings

    from .model import MassNormalisationWarning

    model = FD_MODELS[spec.extra["model"]]
    try:
        problem, grid, nt = model.build(spec.parameters)
    except _KeyedValueError as exc:
        raise CatalogueError(f"{spec.label}: {exc.key}: {' '.join(str(exc).split())}") from None
    except (ValueError, TypeError) as exc:
        raise CatalogueError(f"{spec.label}: parameters: {' '.join(str(exc).split())}") from None
    problem.name = spec.name
    # sample the data on the grid now, so that a bad shape is reported against its key
    general = spec.extra["model"] == "general"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MassNormalisationWarning)
        checks = [("m0", problem.initial_density), ("potential", problem.potential_values)]
        if not problem.ergodic:
            checks.append(
                (
                    "terminal_cost",
                    lambda g: problem.terminal_values(
                        g,
                        problem.initial_density(g)
                        if problem.terminal_coupling is not None
                        else None,
                    ),
                )
            )
        for name, sample in checks:
            try:
                sample(grid)
            except (ValueError, TypeError, FloatingPointError) as exc:
                key = f"parameters.{name}" if general else "parameters"
                raise CatalogueError(f"{spec.label}: {key}: {' '.join(str(exc).split())}") from None
    return problem, grid, nt


def _solver_call(spec: ProblemSpec):
    """The coupling solver function and its keyword options, checked against its signature."""
    from . import coupling
    from .coupling import dispatch

    s = spec.solver
    method = s["method"]
    options = dict(s["options"] or {})
    for k in ("tol", "max_iter"):
        if s[k] is not None:
            options[k] = s[k]
    func = getattr(coupling, f"solve_{method}", None)
    if func is not None:
        sig = inspect.signature(func)
        if not any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
            names = [
                n
                for n, p in sig.parameters.items()
                if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
            ][1:]
            names += list(getattr(dispatch, "DISCRETISATION_OPTIONS", ()))
            for k in options:
                if k not in names or k == "progress":
                    key = f"solver.{k}" if k in ("tol", "max_iter") else f"solver.options.{k}"
                    raise CatalogueError(
                        f"{spec.label}: unknown key '{key}' for method '{method}'; "
                        f"allowed: {_join(n for n in names if n != 'progress')}"
                    )
    return method, options


def _moments(grid, m):
    """Per-axis mean and variance of density fields ``m`` (..., *grid.shape)."""
    coords = grid.coordinates()
    means, variances = [], []
    for c in coords:
        mu = grid.integrate(m * c)
        mu_b = np.asarray(mu)[(...,) + (None,) * grid.dim]
        variances.append(grid.integrate(m * (c - mu_b) ** 2))
        means.append(mu)
    return means, variances


def _fd_summary(spec: ProblemSpec, problem, grid, nt, solution) -> dict:
    attrs = solution.attrs
    summary: dict[str, Any] = {
        "problem": spec.name,
        "kind": spec.kind,
        "model": spec.extra["model"],
        "method": spec.solver["method"],
    }
    for name, n in zip(grid.axis_names, grid.shape, strict=True):
        summary[f"n{name}"] = int(n)
    if nt is not None:
        summary["nt"] = int(nt)
    summary["iterations"] = int(solution.iterations)
    summary["converged"] = bool(solution.converged)
    hist = solution.residual_history
    if len(hist):
        summary["residual"] = float(hist[-1])
    m = solution.m
    mass = np.atleast_1d(solution.mass())
    summary["mass_error"] = float(np.max(np.abs(mass - 1.0)))
    summary["min_m"] = float(m.min())
    summary["max_m"] = float(m.max())
    if problem.ergodic:
        if solution.ergodic_constant is not None:
            summary["lambda"] = float(solution.ergodic_constant)
        mT = m
    else:
        mT = m[-1]
        # expected total cost of the game: int u(0, x) m0(x) dx
        summary["cost"] = float(grid.integrate(solution.u[0] * m[0]))
    non_periodic = [k for k in range(grid.dim) if not grid.periodic[k]]
    if non_periodic:
        means, variances = _moments(grid, mT)
        suffix = "" if problem.ergodic else "_T"
        for k in non_periodic:
            ax = "" if grid.dim == 1 else f"_{grid.axis_names[k]}"
            summary[f"mean{suffix}{ax}"] = float(means[k])
            summary[f"var{suffix}{ax}"] = float(variances[k])
    for k in ("time_total", "time_assembly", "time_linear_solve", "time_per_iteration"):
        if k in attrs:
            try:
                summary[k] = float(attrs[k])
            except (TypeError, ValueError):
                pass
    model = FD_MODELS[spec.extra["model"]]
    if model.exact is not None:
        exact = model.exact(spec.parameters)
        summary.update(exact)
        for q in list(exact):
            base = q[: -len("_exact")]
            if q.endswith("_exact") and base in summary:
                summary[f"{base}_error"] = abs(summary[base] - exact[q])
    return summary


def _run_fd(spec: ProblemSpec, *, progress: bool = False):
    from .coupling import solve

    problem, grid, nt = _build_fd(spec)
    method, options = _solver_call(spec)
    t0 = time.perf_counter()
    try:
        # the solver detects NaN/inf itself (NaNError); numpy's own warnings on rejected
        # line-search trials (log of a negative density, ...) would only be noise
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            solution = solve(problem, grid, nt, method=method, progress=progress, **options)
    except (ValueError, TypeError) as exc:
        # input validation of the solver (bad option value): a user error in the file
        message = " ".join(str(exc).split())
        m = re.match(r"(\w+)=", message)
        key = "solver"
        if m and m.group(1) in options:
            name = m.group(1)
            key = f"solver.{name}" if name in ("tol", "max_iter") else f"solver.options.{name}"
        raise CatalogueError(f"{spec.label}: {key}: {message}") from exc
    wall = time.perf_counter() - t0
    summary = _fd_summary(spec, problem, grid, nt, solution)
    summary.setdefault("time_total", wall)
    return solution, summary


def _figures_fd(spec: ProblemSpec, solution, summary) -> dict:
    from . import plotting

    figs = {}
    dim = len(solution.axes)
    if dim == 1:
        if solution.t is not None:
            figs["density"] = plotting.plot_heatmap(solution, "m")
            figs["value"] = plotting.plot_heatmap(solution, "u")
            figs["snapshots"] = plotting.plot_snapshots(solution, "m")
            if spec.extra["model"] == "lq":
                exact = exact_moment_paths(spec, solution)
                figs["moments"] = plotting.plot_moments(solution, exact=exact)
        else:
            figs["profile"] = plotting.plot_snapshots(
                solution, "m", exact=_ergodic_exact_density(spec, solution)
            )
            figs["value"] = plotting.plot_snapshots(solution, "u")
    else:
        figs["density"] = plotting.plot_small_multiples(solution, "m", shared_scale=False)
    if len(solution.residual_history):
        figs["residuals"] = plotting.plot_residual_history(solution)
    return figs


def exact_moment_paths(spec: ProblemSpec, solution):
    """Exact mean and variance of ``m(t)`` on the solution's time grid, as a dict with arrays
    ``t``, ``mean``, ``var`` (fd-mfg model ``lq``); None for entries without a closed form."""
    if spec.kind != "fd-mfg" or spec.extra.get("model") != "lq":
        return None
    try:
        ref = _lq_reference(spec.parameters)
        t = solution.t
        return {
            "t": t,
            "mean": np.asarray(ref.mean(t), dtype=float),
            "var": np.asarray(ref.cov(t), dtype=float),
        }
    except (ImportError, ValueError):  # the closed form is optional for the figure
        return None


def _ergodic_exact_density(spec: ProblemSpec, solution):
    model = FD_MODELS[spec.extra["model"]]
    if model.exact is None:
        return None
    try:
        e = model.exact(spec.parameters)
        x = solution.axes[0]
        return {
            "x": x,
            "value": _gaussian_pdf(e["mean_exact"], e["var_exact"])(x),
            "label": "exact",
        }
    except (ImportError, ValueError, KeyError):  # the closed form is optional for the figure
        return None


register_kind(
    ProblemKind(
        name="fd-mfg",
        validate=_validate_fd,
        run=_run_fd,
        build=_build_fd,
        figures=_figures_fd,
        top_level_keys=("model",),
        description="finite-difference MFG (ACD scheme) solved by mfg_solvers.coupling.solve",
    )
)
