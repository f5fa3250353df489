# Load Lab. `make lab-up` brings the lab up; `make test` runs the whole test suite.
# Both set up the Python environment (.venv) first, so they work on a fresh clone.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
WORKERS ?=
BENCH_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install lab-up lab-down lab-status lab-workers dashboards test test-unit test-integration test-e2e lint bench images-offline

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(BIN)/.installed: pyproject.toml compose/api/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[cli,dev]' -r compose/api/requirements.txt
	@touch $@

install: $(BIN)/.installed ## create .venv with the lab, its tests' and the demo API's dependencies

lab-up: install ## bring the lab up (WORKERS=N for N Locust workers) and print its URLs
	$(BIN)/lab up $(if $(WORKERS),--workers $(WORKERS))

lab-down: install ## stop the lab; data volumes and results stay
	$(BIN)/lab down

lab-status: install ## each service's health and Prometheus's targets
	$(BIN)/lab status

lab-workers: install ## start workers here for a master elsewhere (MASTER=host:5557, COUNT=N, default one a core)
	$(if $(MASTER),,$(error set MASTER=host:port, the master's published worker port (lab up with LAB_EXPOSE_MASTER=1)))
	$(BIN)/lab workers up --master $(MASTER) $(if $(COUNT),--count $(COUNT))

dashboards: install ## regenerate grafana/dashboards/*.json and prometheus/rules/slo.yml (thresholds from locust/slo.yaml)
	$(BIN)/lab dashboards

test: install ## run the whole test suite (unit, integration, end-to-end on Docker)
	$(BIN)/python -m pytest

test-unit: install ## the unit tests: pure Python, seconds, no Docker
	$(BIN)/python -m pytest -m unit tests/unit

test-integration: install ## the integration tests: real processes; servers and promtool from the lab's images on Docker
	$(BIN)/python -m pytest -m integration

test-e2e: install ## the end-to-end tests on the compose stack
	$(BIN)/python -m pytest -m e2e

lint: install ## ruff check and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: install ## run the benchmarks and write docs/benchmarks.md (BENCH_ARGS=--many-workers adds ~10 min)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

images-offline: ## build every image with no container registry (debootstrap base, Debian stand-ins)
	compose/offline/build.sh
