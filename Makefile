# Retain: the two commands of the README, and a few helpers.
#
#   make run    the product with demo data: SQLite + a filesystem task queue, no server to install
#   make test   the whole test suite (uses DATABASE_URL / REDIS_URL when set, SQLite + locmem otherwise)
#
# Needs only Python 3.11+ (python3 on PATH, or PYTHON=/path/to/python3.11).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Re-installs only when pyproject.toml is newer than the stamp.
STAMP := $(VENV)/.retain-installed
PYTEST_ARGS ?=
# Test processes (pytest-xdist). 0 (the default, what CI runs): one process. TEST_WORKERS=auto: one per CPU,
# each with its own test database (pytest-django) and Redis database (tests/xdist_env.py), a module staying
# on one process (--dist loadfile) — about a third faster, but two order-dependent failures seen in it are
# not diagnosed yet (docs/testing.md "In parallel").
TEST_WORKERS ?= 0

.DEFAULT_GOAL := help
.PHONY: help install run test lint format migrations-check chromium dovecot clean-demo mutation

help:
	@echo "make run    start Retain with demo data at http://127.0.0.1:8000/ (Ctrl-C stops web and worker)"
	@echo "make test   run the whole test suite (PYTEST_ARGS='-k health' to narrow it)"
	@echo "make lint   ruff check + ruff format --check + the layer contracts (lint-imports) + import cycles"
	@echo "make mutation  mutation testing of the formula and tenancy modules (docs/testing.md)"

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Retain needs Python 3.11 or newer; this is " + sys.version.split()[0] + ". Run with PYTHON=/path/to/python3.11")'
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) scripts/run_demo.py

chromium:
	@sh scripts/ensure_chromium.sh

# The IMAP capture tests start their own Dovecot (Debian's dovecot-imapd); this installs the binaries.
dovecot:
	@sh scripts/ensure_dovecot.sh

test: $(STAMP) chromium dovecot
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(PY) scripts/import_cycles.py

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

migrations-check: $(STAMP)
	$(PY) manage.py makemigrations --check --dry-run

# Mutation testing (mutmut) of scoring, retention analytics, rollups, segments and tenancy; see
# docs/testing.md. MUTATION_ARGS narrows or bounds it, e.g. MUTATION_ARGS='scoring tenancy --budget 900'
# or MUTATION_ARGS='analytics --sample 250'. Run it with DATABASE_URL (Postgres) set, as CI's figures are.
MUTATION_ARGS ?=
mutation: $(STAMP)
	$(PY) scripts/mutation.py $(MUTATION_ARGS)

# Forget the demo: database, queue and beat schedule (the next `make run` seeds again).
clean-demo:
	rm -rf var/retain.sqlite3 var/queue var/celerybeat-schedule* var/log
