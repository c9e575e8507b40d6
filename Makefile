# The README's two commands: `make run` and `make test`.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PG_TEST_URL ?= postgresql+asyncpg://postgres@127.0.0.1:5432/test
DEMO_CUSTOMERS ?= 2000

.PHONY: run test lint test-sqlite test-postgres install system-packages

$(STAMP): pyproject.toml setup.py scripts/system-packages.sh recordings/_pcm.c
	bash scripts/system-packages.sh
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## run: install everything, migrate, seed demo data when empty, start the PBX and the server
run: $(STAMP)
	DEMO_CUSTOMERS=$(DEMO_CUSTOMERS) bash scripts/run.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test-sqlite: $(STAMP)
	$(BIN)/pytest -q -p no:cacheprovider

# The real-PBX tests touch no database, so the PostgreSQL pass leaves them to the SQLite pass.
test-postgres: $(STAMP)
	bash scripts/ensure-postgres.sh
	HOTLINE_TEST_DATABASE_URL=$(PG_TEST_URL) $(BIN)/pytest -q -p no:cacheprovider -m "not pbx"

## test: lint, then the whole suite on SQLite, then again on PostgreSQL
test: lint test-sqlite test-postgres
