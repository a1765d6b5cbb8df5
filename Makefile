# gcpipe: `make setup && make demo` to see it run, `make setup && make test` to check it.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
UV_VERSION := 0.13.9
UV := $(or $(shell command -v uv 2>/dev/null),$(CURDIR)/.tools/bin/uv)
VENV := $(CURDIR)/.venv
EMULATOR_VENV := $(CURDIR)/.venv-emulators
GCPIPE := $(VENV)/bin/gcpipe
PYTEST_ARGS ?=

.PHONY: help setup setup-system test lint format up down status demo clean bench dashboard

help:  ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(CURDIR)/.tools/bin/uv:
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --target $(CURDIR)/.tools uv==$(UV_VERSION)

setup: $(UV)  ## Create the project and emulator environments from the lock files (idempotent).
	@start=$$(date +%s); \
	$(UV) sync --frozen --extra dev --python $(PYTHON) --quiet && \
	UV_PROJECT_ENVIRONMENT=$(EMULATOR_VENV) $(UV) sync --frozen --project infra/local/emulators \
		--python $(PYTHON) --quiet && \
	$(EMULATOR_VENV)/bin/python infra/local/install_duckdb_spatial.py && \
	echo "setup done in $$(( $$(date +%s) - start )) s"

setup-system:  ## Install the Debian packages in infra/local/system-packages.txt (apt-get; CI runs it).
	bash infra/local/setup_system.sh

lint:  ## Ruff: lint and format check.
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format:  ## Ruff: fix what can be fixed and format.
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: lint  ## Lint, then every test (the tests start the emulators they need).
	$(VENV)/bin/pytest $(PYTEST_ARGS)

up:  ## Start the local stack (Pub/Sub, BigQuery, Cloud Storage emulators).
	$(GCPIPE) up

down:  ## Stop the local stack.
	$(GCPIPE) down

status:  ## Report the local stack.
	$(GCPIPE) status

demo:  ## Run the whole platform end to end on the local target.
	$(GCPIPE) demo

dashboard: up  ## The live dashboard of the streaming rides on localhost (Ctrl-C stops it).
	$(GCPIPE) dashboard

clean: down  ## Stop the stack and delete its state (.gcpipe/).
	rm -rf .gcpipe

bench:  ## Every benchmark with its baseline in the same run; writes BENCHMARKS.md.
	$(GCPIPE) bench
