# Nubo: set up, run and test. Every target is idempotent and quick when there is nothing to do.
#
#   make run          set up everything, then run web + worker + scheduler in the foreground
#   make test         set up everything, then the test suite on PostgreSQL
#   make help         every target
#
# Variables (environment or command line): PYTHON, DATABASE_URL, REDIS_URL, NUBO_BIND,
# NUBO_ADMIN_PASSWORD, PYTEST_ARGS, TEST_DATABASE_URL.

SHELL := /bin/bash
.DEFAULT_GOAL := run
# Steps depend on each other in the order listed (deps before venv before migrate ...).
.NOTPARALLEL:

PYTHON ?= $(shell command -v python3.11 2>/dev/null || echo python3)
VENV := .venv
PY := $(VENV)/bin/python
VENV_STAMP := $(VENV)/.nubo-installed
ASSETS_STAMP := node_modules/.nubo-installed
TEST_DATABASE_URL ?= $(or $(DATABASE_URL),postgresql://postgres@127.0.0.1:5432/nubo)
PYTEST_ARGS ?=

RUN_COMPONENTS := python node redis libvirt nfs images
TEST_COMPONENTS := python node redis chromium nginx postgres libvirt nfs images

export PYTHON

.PHONY: help run test test-sqlite deps deps-run venv assets start-redis start-postgres start-libvirtd \
	migrate bootstrap collectstatic bench doctor constraints clean

help:
	@echo "make run          set up (packages, virtualenv, assets, Redis, database) and run Nubo on http://127.0.0.1:8080/client/"
	@echo "make test         set up, start PostgreSQL and Redis, run the test suite (PYTEST_ARGS=... passes options)"
	@echo "make test-sqlite  the suite on SQLite, without tests marked postgres"
	@echo "make doctor       check this installation and say how to fix what fails"
	@echo "make bench        run the benchmarks (bench/run.py)"
	@echo "make deps         install missing system packages (as root; otherwise prints the apt-get command)"
	@echo "make start-libvirtd  start virtlogd + libvirtd for qemu:///system (as root; idempotent)"
	@echo "make venv         create .venv and install the pinned Python packages"
	@echo "make assets       install the pinned front-end packages into node_modules/"
	@echo "make migrate      apply database migrations"
	@echo "make bootstrap    create the ROOT domain, admin account and defaults (idempotent)"
	@echo "make constraints  re-pin constraints.txt after changing pyproject.toml"
	@echo "make clean        remove .venv, node_modules and collected static files (keeps var/ data)"

# --- set-up --------------------------------------------------------------------------------------

deps:
	@scripts/setup-system.sh $(TEST_COMPONENTS)

deps-run:
	@scripts/setup-system.sh $(RUN_COMPONENTS)

venv: $(VENV_STAMP)

# Re-installs only when pyproject.toml or constraints.txt changed (or .venv is missing).
$(VENV_STAMP): pyproject.toml constraints.txt
	@if [ -x $(PY) ] && ! $(PY) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then \
		echo "Recreating $(VENV): it is not Python 3.11"; rm -rf $(VENV); fi
	@test -x $(PY) || { echo "Creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	$(VENV)/bin/pip install --disable-pip-version-check -q -c constraints.txt -e '.[dev]' || { \
		pkg-config --exists libvirt 2>/dev/null || echo "libvirt-python needs libvirt-dev, pkg-config and gcc: run 'make deps' (as root) first"; \
		exit 1; }
	@touch $@

assets: $(ASSETS_STAMP)

# npm ci when package-lock.json exists (it is committed); npm install writes it the first time.
$(ASSETS_STAMP): package.json $(wildcard package-lock.json)
	@if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
	@touch $@

start-redis:
	@scripts/services.sh start-redis

start-postgres:
	@DATABASE_URL='$(TEST_DATABASE_URL)' scripts/services.sh start-postgres

# virtlogd + libvirtd for qemu:///system (this machine is a KVM host too), qemu.conf as guests need it.
start-libvirtd:
	@scripts/services.sh start-libvirtd

migrate: venv
	$(PY) manage.py migrate --noinput

bootstrap: venv
	$(PY) manage.py bootstrap

collectstatic: venv assets
	$(PY) manage.py collectstatic --noinput

# Writes constraints.txt from a fresh virtualenv holding exactly pyproject.toml's dependencies.
constraints:
	@tmp="$$(mktemp -d)" && trap 'rm -rf "$$tmp"' EXIT && \
	$(PYTHON) -m venv "$$tmp/venv" && \
	"$$tmp/venv/bin/pip" install --disable-pip-version-check -q -e '.[dev]' && \
	{ echo "# Exact versions of every Python package Nubo installs (pip install -c constraints.txt -e '.[dev]')."; \
	  echo "# Regenerate after changing pyproject.toml dependencies: make constraints"; \
	  "$$tmp/venv/bin/pip" freeze --disable-pip-version-check --exclude-editable; } > constraints.txt && \
	echo "constraints.txt: $$(grep -vc '^#' constraints.txt) packages pinned"

# --- run -----------------------------------------------------------------------------------------

# Foreground: honcho runs the Procfile's processes and stops them all on Ctrl-C.
run: deps-run venv assets start-redis start-libvirtd migrate bootstrap collectstatic
	exec $(VENV)/bin/honcho -f Procfile start

# --- tests, checks, benchmarks -------------------------------------------------------------------

test: deps venv assets start-redis start-postgres start-libvirtd
	DATABASE_URL='$(TEST_DATABASE_URL)' NUBO_FAST_HASHER=1 $(VENV)/bin/pytest $(PYTEST_ARGS)

test-sqlite: deps-run venv assets start-redis start-libvirtd
	@scripts/setup-system.sh chromium
	env -u DATABASE_URL NUBO_FAST_HASHER=1 $(VENV)/bin/pytest -m "not postgres" $(PYTEST_ARGS)

doctor: venv
	$(PY) manage.py doctor

bench: venv start-redis start-postgres start-libvirtd
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) node_modules var/staticroot nubo.egg-info
