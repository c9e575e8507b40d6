# The README's two commands: `make run` and `make test`.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PG_TEST_URL ?= postgresql+asyncpg://postgres@127.0.0.1:5432/test
DEMO_CUSTOMERS ?= 2000

.PHONY: run test lint test-sqlite test-postgres test-own-pbx test-postgres-and-own-pbx install system-packages

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

# Real-PBX modules that run their own Asterisk instance (own ports, own SQLite CRM): they run
# beside the PostgreSQL pass, which uses no PBX or SIPp at all, so `make test` stays short
# without two PBX test runs sharing a machine. A new module with its own instance goes here.
OWN_PBX_MODULES := tests/pbx/test_admin_live.py tests/pbx/test_operations_live.py \
	tests/pbx/test_wrapup_live.py tests/pbx/test_supervise_live.py

test-sqlite: $(STAMP)
	$(BIN)/pytest -q -p no:cacheprovider $(addprefix --ignore=,$(OWN_PBX_MODULES))

test-own-pbx: $(STAMP)
	$(BIN)/pytest -q -p no:cacheprovider $(OWN_PBX_MODULES)

# The real-PBX tests touch no database, so the PostgreSQL pass leaves them to the SQLite pass.
test-postgres: $(STAMP)
	bash scripts/ensure-postgres.sh
	HOTLINE_TEST_DATABASE_URL=$(PG_TEST_URL) $(BIN)/pytest -q -p no:cacheprovider -m "not pbx"

# Both must pass; -O keeps each one's output together.
test-postgres-and-own-pbx:
	$(MAKE) --no-print-directory -j2 -O test-postgres test-own-pbx

## test: lint, the whole suite on SQLite (the own-instance PBX modules beside the PostgreSQL
## pass), then again on PostgreSQL
test: lint test-sqlite test-postgres-and-own-pbx
