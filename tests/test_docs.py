"""The documentation builds without warnings, and its code examples run and say what they show.

``test_docs_build`` (default suite) builds every page, the API reference and the tutorial
notebooks *without executing them* (``nb_execution_mode=off``) with warnings as errors, as
``make docs`` does; the notebooks themselves are executed by ``tests/test_notebooks.py``.
``test_docs_build_executed`` (slow) builds the full site with every notebook executed, exactly
as published.

The ``python`` code blocks of README.md and of the documentation pages are executed in order
(one namespace per page, in a scratch directory) and the values they print or claim are
checked.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sphinx")
pytest.importorskip("myst_nb")

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _build(tmp_path: Path, execution: str) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp_path / "html"
    cmd = [
        sys.executable, "-m", "sphinx",
        "-W", "--keep-going", "-q",
        "-b", "html",
        "-d", str(tmp_path / "doctrees"),
        "-D", f"nb_execution_mode={execution}",
        "-D", f"nb_execution_cache_path={tmp_path / 'jupyter_cache'}",
        "-w", str(tmp_path / "warnings.txt"),
        str(DOCS), str(out),
    ]
    env = dict(os.environ, MFG_DOCS_NB_EXECUTION=execution)
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    return proc, out


def _check_site(proc: subprocess.CompletedProcess, out: Path) -> None:
    assert proc.returncode == 0, f"sphinx-build failed:\n{proc.stdout}\n{proc.stderr}"
    # Sphinx's own warnings (the notebook kernel may log to stderr; that is not a warning here)
    warnings = (out.parent / "warnings.txt").read_text(encoding="utf-8").strip()
    assert warnings == "", warnings
    for page in ("index", "theory", "getting_started", "cli", "tutorials", "architecture"):
        assert (out / f"{page}.html").is_file(), page
    # API reference: the public modules are documented with their members
    api = (out / "api" / "fd.html").read_text(encoding="utf-8")
    assert "FDDiscretisation" in api
    coupling = (out / "api" / "coupling.html").read_text(encoding="utf-8")
    for name in ("solve_newton", "solve_fixed_point", "solve_fictitious_play",
                 "solve_policy_iteration"):
        assert name in coupling, name
    # theory page: display maths reach MathJax
    theory = (out / "theory.html").read_text(encoding="utf-8")
    assert "\\partial_t" in theory and "mathjax" in theory.lower()
    # every tutorial notebook has its page
    for nb in sorted((ROOT / "notebooks").glob("*.py")):
        assert (out / "notebooks" / f"{nb.stem}.html").is_file(), nb.name


def test_docs_build(tmp_path):
    proc, out = _build(tmp_path, "off")
    _check_site(proc, out)


@pytest.mark.slow
def test_docs_build_executed(tmp_path):
    proc, out = _build(tmp_path, "force")
    _check_site(proc, out)
    # executed notebooks carry their figures
    for nb in sorted((ROOT / "notebooks").glob("*.py")):
        html = (out / "notebooks" / f"{nb.stem}.html").read_text(encoding="utf-8")
        assert "<img" in html, f"{nb.name}: no figure in the executed page"


# -- code examples --------------------------------------------------------------------------------
def _python_blocks(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def _run_blocks(path: Path, tmp_path: Path, monkeypatch) -> tuple[dict, str]:
    """Execute the python blocks of ``path`` in one namespace; return it and the printed text."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    blocks = _python_blocks(path)
    assert blocks, f"{path.name} has no python code block"
    namespace: dict = {"__name__": "__docs_example__"}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for block in blocks:
            exec(compile(block, str(path), "exec"), namespace)  # noqa: S102
    return namespace, out.getvalue()


def test_readme_example(tmp_path, monkeypatch):
    readme = ROOT / "README.md"
    ns, printed = _run_blocks(readme, tmp_path, monkeypatch)
    sol = ns["solution"]
    assert sol.converged
    assert np.abs(sol.mass() - 1).max() < 1e-12
    # the output shown in the README is the output of the example
    text = readme.read_text(encoding="utf-8")
    shown = re.search(r"^```text\n(.*?)^```", text, flags=re.S | re.M).group(1)
    for prefix in ("Newton iterations:", "min m:"):
        expected = next(line for line in shown.splitlines() if line.startswith(prefix))
        actual = next(line for line in printed.splitlines() if line.startswith(prefix))
        assert actual == expected
    residuals = sol.residual_history
    assert residuals[1] > residuals[0]  # "rises after the first full step"
    # the figure the README shows is in the repository
    image = re.search(r"!\[[^\]]*\]\(([^)]+)\)", text).group(1)
    assert (ROOT / image).is_file() and image.startswith("docs/_static/")


def test_index_example(tmp_path, monkeypatch):
    ns, printed = _run_blocks(DOCS / "index.md", tmp_path, monkeypatch)
    sol = ns["solution"]
    iterations, mass = printed.split()
    assert int(iterations) == sol.iterations <= 8
    assert abs(float(mass) - 1.0) < 1e-12


def test_getting_started_examples(tmp_path, monkeypatch):
    ns, printed = _run_blocks(DOCS / "getting_started.md", tmp_path, monkeypatch)
    sol = ns["solution"]
    assert sol.converged and sol.iterations <= 8
    assert np.abs(ns["mass"] - 1).max() < 1e-12 and sol.m.min() > 0
    assert (tmp_path / "snapshots.png").is_file()
    # ergodic LQ: lambda = sigma^2 sqrt(q) / 2, first-order error about 1e-2 at h = 0.05
    lam = ns["stationary"].ergodic_constant
    assert abs(lam - 0.25) < 0.015
    # Newton and (relaxed) policy iteration reach the same discrete solution
    assert np.abs(ns["newton"].m - ns["policy"].m).max() < 1e-8
    assert np.abs(ns["newton"].u - ns["policy"].u).max() < 1e-8


def test_cli_page_example(tmp_path, monkeypatch):
    ns, printed = _run_blocks(DOCS / "cli.md", tmp_path, monkeypatch)
    summary = ns["summary"]
    assert summary["iterations"] <= 6 and summary["mass_error"] < 1e-12
    rows = list(ns["check_references"](ns["spec"], summary))
    assert rows and all(row.passed for row in rows)
