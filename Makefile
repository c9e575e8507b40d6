# The README's two commands: `make run` and `make test`.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PG_TEST_URL ?= postgresql+asyncpg://postgres@127.0.0.1:5432/test
DEMO_CUSTOMERS ?= 2000

.PHONY: run test lint test-sqlite test-postgres test-own-pbx test-own-pbx-a test-own-pbx-b \
	test-postgres-and-own-pbx install system-packages

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

# Real-PBX modules that run their own Asterisk instance (own ports, own CRM database): they
# run beside the PostgreSQL pass, which uses no PBX or SIPp at all, so `make test` stays short
# without two PBX test runs sharing a machine. They are mostly waiting on calls, so they run
# in two lanes of about the same length. A new module with its own instance goes in one,
# with an offset whose ports (offset + 4573 … offset + 7100 and its SIPp media ports above)
# stay clear of the other lane's: lane A uses 18000 and 22000, lane B 10000 to 14000.
OWN_PBX_LANE_A := tests/pbx/test_admin_live.py tests/pbx/test_operations_live.py
OWN_PBX_LANE_B := tests/pbx/test_wrapup_live.py tests/pbx/test_supervise_live.py \
	tests/pbx/test_cluster_live.py tests/sms/test_sms_cluster_workers.py
OWN_PBX_MODULES := $(OWN_PBX_LANE_A) $(OWN_PBX_LANE_B)

test-sqlite: $(STAMP)
	$(BIN)/pytest -q -p no:cacheprovider $(addprefix --ignore=,$(OWN_PBX_MODULES))

test-own-pbx: test-own-pbx-a test-own-pbx-b

test-own-pbx-a: $(STAMP)
	$(BIN)/pytest -q -p no:cacheprovider $(OWN_PBX_LANE_A)

# The cluster module runs two nodes on a PostgreSQL database of its own (test_cluster).
test-own-pbx-b: $(STAMP)
	$(BIN)/pytest -q -p no:cacheprovider $(OWN_PBX_LANE_B)

# The real-PBX tests touch no database, so the PostgreSQL pass leaves them to the SQLite pass.
test-postgres: $(STAMP)
	bash scripts/ensure-postgres.sh
	HOTLINE_TEST_DATABASE_URL=$(PG_TEST_URL) $(BIN)/pytest -q -p no:cacheprovider -m "not pbx"

# All must pass; -O keeps each one's output together. PostgreSQL first: lane B needs it too.
test-postgres-and-own-pbx:
	bash scripts/ensure-postgres.sh
	$(MAKE) --no-print-directory -j3 -O test-postgres test-own-pbx-a test-own-pbx-b

## test: lint, the whole suite on SQLite (the own-instance PBX modules beside the PostgreSQL
## pass), then again on PostgreSQL
test: lint test-sqlite test-postgres-and-own-pbx
