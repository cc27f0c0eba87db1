# Shopdesk: `make demo` to try it, `make test` to run the whole suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# pytest-xdist workers: one per core (CI machines have 2)
WORKERS ?= auto

.PHONY: demo test install install-test serve bench lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

demo: install
	$(BIN)/shopdesk demo

serve: install
	$(BIN)/shopdesk serve

test: install-test
	$(BIN)/python -m pytest -n $(WORKERS) -q $(PYTEST_ARGS)

# ruff (rules in pyproject's [tool.ruff]) and mypy (strict on the seams, see [tool.mypy])
lint: install-test
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: install-test
	$(BIN)/python -m tests.bench

clean:
	rm -rf $(VENV) build dist *.egg-info .shopdesk shopdesk.db shopdesk.db-*
