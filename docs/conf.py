"""Sphinx configuration for the mfg_solvers documentation.

Build with ``make docs`` (``sphinx-build -W --keep-going -b html docs docs/_build/html``).

Tutorial notebooks are stored as jupytext percent-format scripts in ``notebooks/`` at the
repository root. Before each build they are converted to ``docs/notebooks/*.ipynb`` (a build
product, ignored by git) and rendered by myst-nb.

Notebook execution is controlled by the environment variable ``MFG_DOCS_NB_EXECUTION``
(any myst-nb ``nb_execution_mode``: ``cache`` (default), ``force``, ``auto``, ``off``).
With ``cache`` the executed notebooks are kept in ``docs/_build/.jupyter_cache`` and a notebook
is re-run only when its code changes. The test suite executes every notebook independently
(``tests/test_notebooks.py``), so ``off`` is a safe choice for quick documentation edits.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))

import mfg_solvers  # noqa: E402

# Notebook kernels inherit this process's environment: show figures inline even when the
# caller (e.g. the Makefile) exports MPLBACKEND=Agg for the command-line tools.
os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"

# -- project ------------------------------------------------------------------------------------
project = "mfg_solvers"
author = "the mfg_solvers developers"
copyright = "the mfg_solvers developers"
version = mfg_solvers.__version__
release = mfg_solvers.__version__

# -- general ------------------------------------------------------------------------------------
extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
root_doc = "index"
exclude_patterns = ["_build", "**.ipynb_checkpoints", "Thumbs.db", ".DS_Store"]
templates_path: list[str] = []

# -- MyST ---------------------------------------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
myst_dmath_double_inline = True

# -- notebooks (myst-nb) ------------------------------------------------------------------------
nb_execution_mode = os.environ.get("MFG_DOCS_NB_EXECUTION", "cache")
nb_execution_cache_path = str(DOCS / "_build" / ".jupyter_cache")
nb_execution_timeout = 600
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True
nb_kernel_rgx_aliases = {".*": "python3"}

# -- autodoc ------------------------------------------------------------------------------------
autodoc_default_options = {
    "members": True,
    "undoc-members": False,
    "show-inheritance": True,
    "member-order": "bysource",
}
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
autosummary_generate = False
napoleon_google_docstring = False
napoleon_numpy_docstring = True
# ``Attributes`` sections become ``:ivar:`` fields, so that they do not clash with the
# properties autodoc documents under the same names.
napoleon_use_ivar = True
napoleon_use_rtype = False

# -- HTML ---------------------------------------------------------------------------------------
html_theme = "sphinx_book_theme"
html_title = f"mfg_solvers {release}"
html_static_path = ["_static"]
html_theme_options = {
    "show_toc_level": 2,
    "navigation_with_keys": False,
}


# -- notebook sources ---------------------------------------------------------------------------
def _sync_notebooks() -> None:
    """Convert ``notebooks/*.py`` (jupytext percent format) to ``docs/notebooks/*.ipynb``.

    A file is rewritten only when its content changes, so that Sphinx and the execution
    cache see unchanged notebooks as unchanged. Converted notebooks whose source is gone are
    removed.
    """
    import jupytext
    import nbformat

    src_dir = ROOT / "notebooks"
    out_dir = DOCS / "notebooks"
    out_dir.mkdir(exist_ok=True)
    wanted = set()
    for src in sorted(src_dir.glob("*.py")):
        nb = jupytext.read(src, fmt="py:percent")
        nb.metadata.pop("jupytext", None)
        text = nbformat.writes(nb)
        target = out_dir / (src.stem + ".ipynb")
        wanted.add(target.name)
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
    for stale in out_dir.glob("*.ipynb"):
        if stale.name not in wanted:
            stale.unlink()


_sync_notebooks()


# -- tables read from the package ---------------------------------------------------------------
from docutils import nodes  # noqa: E402
from sphinx.util.docutils import SphinxDirective  # noqa: E402


def _table(headers: list[str], rows: list[list[str]], widths: list[int]) -> nodes.table:
    """A docutils table of plain-text cells (literal text in the first column)."""
    table = nodes.table(classes=["longtable"])
    group = nodes.tgroup(cols=len(headers))
    table += group
    for w in widths:
        group += nodes.colspec(colwidth=w)
    head = nodes.thead()
    group += head
    row = nodes.row()
    for h in headers:
        row += nodes.entry("", nodes.paragraph(text=h))
    head += row
    body = nodes.tbody()
    group += body
    for cells in rows:
        row = nodes.row()
        for i, text in enumerate(cells):
            para = nodes.paragraph()
            para += nodes.literal(text=text) if i == 0 else nodes.Text(text)
            row += nodes.entry("", para)
        body += row
    return table


class CatalogueTable(SphinxDirective):
    """``mfg-catalogue``: the entries of ``problems/*.toml`` (name, kind, description, source)."""

    def run(self):
        from mfg_solvers.catalogue import list_problems

        folder = ROOT / "problems"
        for path in sorted(folder.glob("*.toml")):
            self.env.note_dependency(str(path))
        rows = []
        for spec in list_problems(folder):
            source = spec.source.get("reference") or spec.source.get("citation") or ""
            rows.append([spec.name, spec.kind, spec.description, str(source)])
        return [_table(["entry", "kind", "description", "source"], rows, [18, 8, 50, 24])]


class ShapeTable(SphinxDirective):
    """``mfg-shapes``: the named shapes a catalogue entry may use for potentials and densities."""

    def run(self):
        from mfg_solvers.catalogue import REQUIRED, SHAPES

        rows = []
        for name, shape in SHAPES.items():
            params = []
            for p in shape.params:
                if p.default is REQUIRED:
                    params.append(f"{p.name} (required)")
                elif p.default is None:
                    params.append(p.name)
                else:
                    params.append(f"{p.name} = {p.default}")
            rows.append([name, ", ".join(params) or "-", shape.doc])
        return [_table(["shape", "parameters", "value"], rows, [12, 34, 54])]


def setup(app):
    app.add_directive("mfg-catalogue", CatalogueTable)
    app.add_directive("mfg-shapes", ShapeTable)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
