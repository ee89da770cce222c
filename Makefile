# make demo: set up, train the bundled penguins model, export, verify, show where it went.
# make test: set up, run the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SKEDGE := $(VENV)/bin/skedge
NPM ?= npm
# onnxruntime-web (the page) and onnxruntime-node (the Node test), exactly as mobile_demo/package-lock.json says
DEMO_NPM := mobile_demo/node_modules/.skedge-npm-ci

.PHONY: setup demo test bench clean lint coverage

setup: $(VENV)/.installed $(DEMO_NPM)

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade --quiet pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

# ONNXRUNTIME_NODE_INSTALL=skip: onnxruntime-node's install script would otherwise download CUDA binaries;
# --ignore-scripts as well, since no script is needed (its CPU binaries are in the package) and npm 11 warns.
# Without npm a developer's machine still gets the Python suite (the browser and Node tests skip, saying
# what to install); CI must have it.
$(DEMO_NPM): mobile_demo/package.json mobile_demo/package-lock.json
	@if command -v $(NPM) >/dev/null 2>&1; then \
	  (cd mobile_demo && ONNXRUNTIME_NODE_INSTALL=skip $(NPM) ci --no-audit --no-fund --ignore-scripts) && touch $@; \
	elif [ "$$CI" = "true" ]; then \
	  echo "npm not found: CI needs Node.js and npm (apt-get install nodejs npm)" >&2; exit 1; \
	else \
	  echo "npm not found: the browser demo and its tests need Node.js 18+ and npm (apt-get install nodejs npm)" >&2; \
	fi

# The demo trains into a folder of its own and, on a re-run, removes only the version it made there:
# never models/penguins, where a user's own versions live.
DEMO_OUT := models/demo
DEMO_BUNDLE := $(DEMO_OUT)/penguins/1.0.0

demo: setup
	rm -rf $(DEMO_BUNDLE) $(DEMO_OUT)/verify-report
	$(SKEDGE) train examples/penguins.toml --out $(DEMO_OUT)
	$(SKEDGE) verify $(DEMO_BUNDLE) --report $(DEMO_OUT)/verify-report
	$(SKEDGE) inspect $(DEMO_BUNDLE)
	@echo
	@echo "bundle:  $(DEMO_BUNDLE)  (model.onnx, model.ort, model.mlmodel, golden.json, manifest.json)"
	@echo "report:  $(DEMO_BUNDLE)/card.md and $(DEMO_BUNDLE)/report/"
	@if [ -f $(DEMO_NPM) ]; then \
	  $(SKEDGE) demo $(DEMO_BUNDLE) --out $(DEMO_OUT)/penguins-web >/dev/null && \
	  echo "web:     $(DEMO_OUT)/penguins-web (static site); live on this machine: $(SKEDGE) demo $(DEMO_BUNDLE)"; \
	else echo "web:     skipped (npm ci in mobile_demo/ first, see docs/mobile.md)"; fi

test: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) bench/run_all.py

# docs/coverage.md from the census (tests/exporter/census.py): skedge and plain skl2onnx side by side
coverage: setup
	$(PY) -m tests.exporter.census

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy runtime exporter trainer cli mobile_demo

clean:
	rm -rf $(VENV) models build dist *.egg-info mobile_demo/node_modules test-artifacts
