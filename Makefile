# gcpipe: `make setup && make demo` to see it run, `make setup && make test` to check it.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# The interpreter itself, not a pyenv shim: uv rebuilds a venv whose recorded interpreter path differs.
PYTHON ?= $(shell $$(command -v python3.11 || command -v python3) -c 'import sys; print(sys.executable)')
UV_VERSION := 0.13.9
UV := $(or $(shell command -v uv 2>/dev/null),$(CURDIR)/.tools/bin/uv)
VENV := $(CURDIR)/.venv
EMULATOR_VENV := $(CURDIR)/.venv-emulators
INFRA_VENV := $(CURDIR)/.venv-infra
GCPIPE := $(VENV)/bin/gcpipe
PYTEST_ARGS ?=

.PHONY: help setup setup-system setup-infra test lint lint-infra format up down status demo clean bench soak dashboard \
	deploy-infra build-templates deploy-dags run-gcp airflow

help:  ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(CURDIR)/.tools/bin/uv:
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --target $(CURDIR)/.tools uv==$(UV_VERSION)

setup: $(UV)  ## Everything demo and test need: the environments from the lock files, the pinned jars, the Debian packages (idempotent).
	@start=$$(date +%s); \
	$(UV) sync --frozen --extra dev --python $(PYTHON) --quiet --compile-bytecode && \
	UV_PROJECT_ENVIRONMENT=$(EMULATOR_VENV) $(UV) sync --frozen --project infra/local/emulators \
		--python $(PYTHON) --quiet && \
	$(EMULATOR_VENV)/bin/python infra/local/install_duckdb_spatial.py && \
	$(VENV)/bin/python infra/local/fetch_jars.py && \
	$(MAKE) --no-print-directory setup-infra && \
	bash infra/local/setup_system.sh && \
	echo "setup done in $$(( $$(date +%s) - start )) s"

# The infra checks (checkov, and Terraform for `fmt`) have their own environment: checkov's pins clash
# with the project's lock.
$(INFRA_VENV)/bin/checkov: infra/checks/uv.lock | $(UV)
	UV_PROJECT_ENVIRONMENT=$(INFRA_VENV) $(UV) sync --frozen --project infra/checks --python $(PYTHON) --quiet
	touch $@

setup-infra: $(INFRA_VENV)/bin/checkov  ## The infra checks' environment (.venv-infra: checkov, terraform for fmt).

setup-system:  ## Only the Debian packages of infra/local/system-packages.txt (part of make setup).
	bash infra/local/setup_system.sh

lint: lint-infra  ## Ruff: lint and format check; then the infra checks.
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

lint-infra: $(INFRA_VENV)/bin/checkov  ## Offline: terraform fmt -check and the checkov scan of infra/.
	$(INFRA_VENV)/bin/terraform fmt -check -recursive -diff infra/terraform
	$(INFRA_VENV)/bin/checkov --config-file infra/checks/checkov.yaml

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

airflow: up  ## Airflow standalone on SQLite (.gcpipe/airflow), the DAGs of dags/ on the local target.
	$(GCPIPE) dags standalone

clean: down  ## Stop the stack and delete its state (.gcpipe/).
	rm -rf .gcpipe

bench:  ## Every benchmark with its baseline in the same run; writes BENCHMARKS.md.
	$(GCPIPE) bench

SOAK ?= --rate 2000 --duration 1800 --kill-at 600 --emulator-restart-at 1200
soak:  ## The stream for 30 min (SOAK="--rate R --duration S --kill-at T ..."); a plot, figures in BENCHMARKS.md.
	nice -n 10 $(GCPIPE) bench soak $(SOAK)

# Google Cloud: GCPIPE_PROJECT and GCPIPE_REGION (or gcpipe.toml [gcp]); DRY_RUN=1 prints the commands and
# files and calls nothing. ENVIRONMENT=dev|staging|prod (default prod).
DEPLOY_FLAGS = $(if $(filter 1 true yes,$(DRY_RUN)),--dry-run) $(if $(ENVIRONMENT),--environment=$(ENVIRONMENT))

deploy-infra:  ## Terraform state bucket, plan, apply; outputs into gcpipe.toml (DRY_RUN=1 prints).
	$(GCPIPE) deploy infra $(DEPLOY_FLAGS)

build-templates:  ## Flex-template images (Cloud Build) and template specs (DRY_RUN=1 prints).
	$(GCPIPE) deploy templates $(DEPLOY_FLAGS)

deploy-dags:  ## Composer PyPI packages, the Spark jobs' code, then DAGs and support code (DRY_RUN=1 prints).
	$(GCPIPE) deploy dags $(DEPLOY_FLAGS)

run-gcp:  ## One job on GCP: JOB=csv_ingest|taxi_streaming|kdd_analysis|als_recommend ARGS="--input=gs://...".
	@test -n "$(JOB)" || { echo "error: name the job: make run-gcp JOB=csv_ingest ARGS='--input=gs://...'" >&2; exit 2; }
	$(GCPIPE) deploy run $(DEPLOY_FLAGS) $(JOB) $(ARGS)
