"""The ``mfg-solvers`` command line.

::

    mfg-solvers list                                   # the catalogue: name, kind, description
    mfg-solvers run PROBLEM [--set key=value ...] [--out DIR] [--json] [--ci]
    mfg-solvers verify [--problems NAME ...]           # every entry at its [ci] size
    mfg-solvers demo [--out demo_output]               # the headline problems, figures, summary

``PROBLEM`` is a path to a TOML file or the name of a catalogue entry. ``--set`` takes dotted
keys into the document (``--set parameters.nx=200 --set solver.method=fixed_point``); values
are TOML (numbers, ``true``, ``"text"``, ``[1, 2]``, ``{shape = "uniform"}``) or bare words.

Under an MPI launcher (``mpiexec -n 2 mfg-solvers run ...``) every rank runs the command and the
particle kinds shard their particles over the ranks; only rank 0 prints and writes files. The
rank is read from the launcher's environment (``PMI_RANK``, ``OMPI_COMM_WORLD_RANK``), so a
single process never imports mpi4py.

Exit status: 0 success; 1 a solver failure or a failed verification; 2 a usage error (bad
file, unknown key, bad override), reported as one ``error: ...`` line on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

from . import __version__

#: The headline problems solved by ``mfg-solvers demo``.
DEMO_PROBLEMS = ("periodic_benchmark", "lq_mfg")


#: Environment variables through which MPI launchers give a process its rank.
MPI_RANK_VARIABLES = ("PMI_RANK", "OMPI_COMM_WORLD_RANK")


def launcher_rank() -> int:
    """This process's rank under an MPI launcher, read from its environment (0 otherwise)."""
    for name in MPI_RANK_VARIABLES:
        value = os.environ.get(name)
        if value:
            try:
                return int(value)
            except ValueError:
                continue
    return 0


class UsageError(Exception):
    """A user error: printed as one line and exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit status 2
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mfg-solvers",
        description="Solve, check and explore the mfg_solvers problem catalogue.",
    )
    parser.add_argument("--version", action="version", version=f"mfg_solvers {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def catalogue_option(p):
        p.add_argument(
            "--catalogue",
            metavar="DIR",
            default=None,
            help="catalogue folder (default: $MFG_SOLVERS_CATALOGUE or problems/)",
        )

    p = sub.add_parser("list", help="list the catalogue entries")
    catalogue_option(p)

    p = sub.add_parser("run", help="solve one problem (a TOML file or a catalogue name)")
    p.add_argument("problem", metavar="PROBLEM", help="path to a .toml file or a catalogue name")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a value by dotted key, e.g. parameters.nx=200 (repeatable)",
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        default=None,
        help="write solution.nc, summary.json, problem.json and PNG figures here",
    )
    p.add_argument("--json", action="store_true", help="print only the summary, as JSON, on stdout")
    p.add_argument("--ci", action="store_true", help="run at the entry's [ci] size")
    p.add_argument("--no-progress", action="store_true", help="hide the solver's progress bar")
    catalogue_option(p)

    p = sub.add_parser("verify", help="run every entry at its [ci] size and check its references")
    p.add_argument(
        "--problems", nargs="+", metavar="NAME", default=None, help="only these catalogue entries"
    )
    catalogue_option(p)

    p = sub.add_parser("demo", help="solve the headline problems and write figures and a summary")
    p.add_argument(
        "--out", metavar="DIR", default="demo_output", help="output folder (default: demo_output)"
    )
    catalogue_option(p)
    return parser


# ---------------------------------------------------------------------------------------------
# formatting helpers
# ---------------------------------------------------------------------------------------------
def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        return f"{v:.6g}"
    return str(v)


def _table(headers, rows) -> str:
    rows = [[_fmt(c) if not isinstance(c, str) else c for c in r] for r in rows]
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    out = [line.rstrip(), "  ".join("-" * w for w in widths)]
    for r in rows:
        out.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return "\n".join(out)


def _catalogue_dir(args):
    return Path(args.catalogue) if getattr(args, "catalogue", None) else None


def _print_summary(summary: dict, file=None):
    width = max(len(k) for k in summary)
    for k, v in summary.items():
        print(f"  {k.ljust(width)}  {_fmt(v)}", file=file)


# ---------------------------------------------------------------------------------------------
# commands
# ---------------------------------------------------------------------------------------------
def _cmd_list(args) -> int:
    from .catalogue import list_problems

    specs = list_problems(_catalogue_dir(args))
    print(_table(["name", "kind", "description"], [[s.name, s.kind, s.description] for s in specs]))
    return 0


def _cmd_run(args) -> int:
    from .catalogue import load_problem, parse_override, run_problem, write_outputs
    from .errors import ConvergenceError, NaNError

    overrides = dict(parse_override(item) for item in args.overrides)
    spec = load_problem(args.problem, overrides, ci=args.ci, directory=_catalogue_dir(args))
    progress = not args.no_progress and not args.json
    # under MPI every rank solves; only rank 0 writes files
    out = args.out if launcher_rank() == 0 else None
    # in --json mode stdout carries the summary only: anything else printed goes to stderr
    redirect = contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext()
    with redirect:
        try:
            solution, summary = run_problem(spec, out=out, progress=progress)
        except (ConvergenceError, NaNError) as exc:
            if out and getattr(exc, "solution", None) is not None:
                last = {
                    "problem": spec.name,
                    "converged": False,
                    "error": " ".join(str(exc).split()),
                }
                write_outputs(spec, exc.solution, last, out, figures=False)
            print(
                f"error: {spec.name}: {type(exc).__name__}: {' '.join(str(exc).split())}",
                file=sys.stderr,
            )
            return 1
    if args.json:
        from .catalogue import jsonable

        print(json.dumps(jsonable(summary), indent=2, allow_nan=False))
    else:
        print(f"{spec.name} ({spec.kind}): {spec.description}")
        _print_summary(summary)
        if args.out:
            print(f"written to {Path(args.out).resolve()}")
    return 0 if summary.get("converged", True) else 1


def _cmd_verify(args) -> int:
    from .catalogue import verify

    def progress(spec, rows, seconds):
        status = "ok" if all(r.passed for r in rows) else "FAILED"
        print(f"{spec.name}: {status} ({seconds:.1f} s)", file=sys.stderr)

    rows = verify(args.problems, directory=_catalogue_dir(args), on_result=progress)
    table = [
        [
            r.problem,
            r.quantity,
            _fmt(r.computed),
            r.reference,
            r.tolerance,
            _fmt(r.rel_error) if r.rel_error is not None else "-",
            "pass" if r.passed else "FAIL",
        ]
        for r in rows
    ]
    print(
        _table(
            ["problem", "quantity", "computed", "reference", "tolerance", "rel. error", "status"],
            table,
        )
    )
    failures = [r for r in rows if not r.passed]
    for r in failures:
        if r.message:
            print(f"{r.problem}: {r.quantity}: {r.message}")
    print(f"{len(rows) - len(failures)}/{len(rows)} checks passed")
    return 1 if failures else 0


def _cmd_demo(args) -> int:
    if launcher_rank() > 0:  # under MPI only rank 0 writes: the others solve into a scratch folder
        with tempfile.TemporaryDirectory() as scratch:
            return _demo(args, Path(scratch))
    return _demo(args, Path(args.out))


def _demo(args, out: Path) -> int:
    from .catalogue import jsonable, load_problem, run_problem

    out.mkdir(parents=True, exist_ok=True)
    combined, results = {}, {}
    for name in DEMO_PROBLEMS:
        spec = load_problem(name, directory=_catalogue_dir(args))
        t0 = time.perf_counter()
        solution, summary = run_problem(spec, out=out / name, progress=sys.stderr.isatty())
        results[name] = (spec, solution, summary)
        combined[name] = summary
        print(f"{name}: solved in {time.perf_counter() - t0:.1f} s -> {(out / name).resolve()}")
        for line in _demo_lines(name, summary):
            print(f"  {line}")
    (out / "summary.json").write_text(
        json.dumps(jsonable(combined), indent=2, allow_nan=False) + "\n", encoding="utf-8"
    )
    overview = _demo_figure(results)
    if overview is not None:
        overview.savefig(out / "demo.png", dpi=110)
    print(f"figures and summary.json written to {out.resolve()}")
    if overview is not None:
        print(f"overview figure: {(out / 'demo.png').resolve()}")
    return 0


def _demo_lines(name: str, s: dict) -> list[str]:
    lines = []
    if "iterations" in s:
        lines.append(
            f"{s.get('method', 'solver')}: {s['iterations']} iterations, residual "
            f"{_fmt(s.get('residual'))}, converged: {_fmt(s.get('converged'))}"
        )
    if "mass_error" in s:
        lines.append(f"mass error {_fmt(s['mass_error'])}, min m {_fmt(s.get('min_m'))}")
    for q in ("mean_T", "var_T", "lambda", "var"):
        if q in s and f"{q}_exact" in s:
            lines.append(
                f"{q} = {_fmt(s[q])} (exact {_fmt(s[q + '_exact'])}, "
                f"error {_fmt(abs(s[q] - s[q + '_exact']))})"
            )
    return lines


def _demo_figure(results: dict):
    """Overview: the periodic benchmark (density, Newton residuals) and the LQ moments vs exact."""
    from matplotlib.figure import Figure

    from . import plotting
    from .catalogue import exact_moment_paths

    fig = Figure(figsize=(10.0, 7.5), layout="constrained")
    axes = fig.subplots(2, 2)
    drawn = False
    if "periodic_benchmark" in results:
        _, sol, _ = results["periodic_benchmark"]
        plotting.plot_heatmap(sol, "m", ax=axes[0, 0])
        axes[0, 0].set_title("periodic benchmark: m(t, x)")
        plotting.plot_residual_history(sol, ax=axes[0, 1], label="Newton")
        axes[0, 1].set_title("periodic benchmark: Newton residuals")
        drawn = True
    if "lq_mfg" in results:
        spec, sol, _ = results["lq_mfg"]
        plotting.plot_moments(sol, axes=axes[1], exact=exact_moment_paths(spec, sol))
        axes[1, 0].set_title("LQ MFG: mean of m(t)")
        axes[1, 1].set_title("LQ MFG: variance of m(t)")
        drawn = True
    return fig if drawn else None


_COMMANDS = {"list": _cmd_list, "run": _cmd_run, "verify": _cmd_verify, "demo": _cmd_demo}


def main(argv=None) -> int:
    """Entry point of the ``mfg-solvers`` console script; returns the exit status."""
    from .catalogue import CatalogueError

    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help(sys.stderr)
            return 2
        if launcher_rank() > 0:  # under MPI only rank 0 prints
            with open(os.devnull, "w") as sink:
                with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                    return _COMMANDS[args.command](args)
        return _COMMANDS[args.command](args)
    except (UsageError, CatalogueError) as exc:
        if launcher_rank() == 0:
            print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
