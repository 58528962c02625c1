# spendgate: `make run` starts the gateway on SQLite, `make test` runs everything.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: run test lint typecheck unit bench web webtest e2e clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(STAMP)

web:
	@if [ -f web/package.json ]; then $(MAKE) --no-print-directory -C web build; fi

# Dashboard component tests (Vitest), then end-to-end tests in headless Chromium.
webtest:
	$(MAKE) --no-print-directory -C web test

e2e: $(DEV_STAMP) web
	$(BIN)/pytest -q tests/e2e

run: $(STAMP)
	@$(MAKE) --no-print-directory web || echo "spendgate: the dashboard is not built (see above); starting without it" >&2
	$(BIN)/spendgate serve

lint: $(DEV_STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

unit: $(DEV_STAMP)
	$(BIN)/pytest -q

test: lint unit webtest e2e

bench: $(DEV_STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache \
		web/node_modules src/spendgate/static test-artifacts
