# mfg_solvers: every target bootstraps .venv (Python >= 3.12) and installs the package once.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_FLAGS ?=
export MPLBACKEND := Agg

.PHONY: demo test test-all bench docs venv clean lint

venv: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	@if [ ! -x $(PY) ]; then \
	  PYBIN=$$(PYTHON="$(PYTHON)" tools/find_python.sh) || exit 1; \
	  echo "Creating $(VENV) with $$PYBIN"; \
	  "$$PYBIN" -m venv $(VENV) || exit 1; \
	fi
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[all]"
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/mfg-solvers demo --out demo_output

test: $(STAMP)
	$(PY) -m pytest -m "not slow" $(PYTEST_FLAGS)

test-all: $(STAMP)
	$(PY) -m pytest $(PYTEST_FLAGS)

bench: $(STAMP)
	@for f in benchmarks/*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

docs: $(STAMP)
	$(VENV)/bin/sphinx-build -W --keep-going -b html docs docs/_build/html
	@echo "Docs written to docs/_build/html/index.html"

lint: $(STAMP)
	$(PY) -m pip install --quiet ruff && $(VENV)/bin/ruff check mfg_solvers tests

clean:
	rm -rf $(VENV) docs/_build demo_output .pytest_cache
