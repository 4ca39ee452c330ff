"""Execute every tutorial notebook in ``notebooks/`` (jupytext percent-format ``.py`` files).

Each notebook is read with jupytext, executed cell by cell by nbclient in the ``python3`` kernel
of the running interpreter (ipykernel), with ``MPLBACKEND=Agg``. The notebooks assert their own
key comparisons (closed form vs grid solution, mass conservation, fitted orders), so a failing
assertion inside a notebook fails its test here. New notebooks are picked up automatically.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

jupytext = pytest.importorskip("jupytext")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.py"))

#: Seconds allowed for a single cell.
CELL_TIMEOUT = 600


def test_tutorial_notebooks_present():
    names = {p.stem for p in NOTEBOOKS}
    assert {"01_lq_mfg", "02_periodic_and_2d"} <= names, names


def test_notebooks_are_percent_format():
    for path in NOTEBOOKS:
        nb = jupytext.read(path)
        text_repr = nb.metadata["jupytext"]["text_representation"]
        assert text_repr["format_name"] == "percent", path.name
        assert nb.metadata["kernelspec"]["name"] == "python3", path.name
        kinds = {cell.cell_type for cell in nb.cells}
        assert kinds == {"markdown", "code"}, (path.name, kinds)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path, tmp_path, monkeypatch):
    import nbformat
    from nbclient.exceptions import CellExecutionError

    nb = jupytext.read(path)
    # a last cell reports the kernel's interpreter: it must be the one running the tests
    nb.cells.append(nbformat.v4.new_code_cell("import sys\nprint(sys.executable)"))
    # the kernel inherits the environment: no GUI backend
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    client = nbclient.NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},  # run in a scratch directory
    )
    try:
        client.execute()
    except CellExecutionError as exc:  # an assertion (or any error) inside the notebook
        pytest.fail(f"{path.name} failed:\n{exc}", pytrace=False)

    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    assert code_cells, f"{path.name} has no code cells"
    counts = [c.execution_count for c in code_cells]
    assert counts == list(range(1, len(code_cells) + 1)), counts
    errors = [o for c in code_cells for o in c.outputs if o.output_type == "error"]
    assert not errors
    kernel_python = code_cells[-1].outputs[0]["text"].strip()
    assert os.path.realpath(kernel_python) == os.path.realpath(sys.executable)
    # the notebook writes nothing into the repository: only into its scratch directory
    assert not list(NOTEBOOK_DIR.glob("*.nc"))
