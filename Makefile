# make demo: set up, train the bundled penguins model, export, verify, show where it went.
# make test: set up, run the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SKEDGE := $(VENV)/bin/skedge

.PHONY: setup demo test bench clean lint

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade --quiet pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

demo: setup
	rm -rf models/penguins
	$(SKEDGE) train examples/penguins.toml --out models
	$(SKEDGE) verify models/penguins/1.0.0
	$(SKEDGE) inspect models/penguins/1.0.0
	@echo
	@echo "bundle:  models/penguins/1.0.0  (model.onnx, model.ort, model.mlmodel, golden.json, manifest.json)"
	@echo "report:  models/penguins/1.0.0/card.md and models/penguins/1.0.0/report/"

test: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) bench/run_all.py

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy runtime exporter trainer cli

clean:
	rm -rf $(VENV) models build dist *.egg-info
