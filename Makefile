# The outcomes warehouse. `make` lists the targets; `make demo` and `make test` are all a new
# machine needs (python3, make and git; uv is bootstrapped into .tools/ when missing).

.DEFAULT_GOAL := help
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

UV_VERSION := 0.13.8
UV := $(or $(shell command -v uv 2>/dev/null),$(CURDIR)/.tools/uv/bin/uv)
VENV := $(CURDIR)/.venv
BIN := $(VENV)/bin
# Never let uv fetch a Python build: the machine's python3 (3.11) is the one.
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
# Compile every installed module to bytecode once, at install. Where PYTHONDONTWRITEBYTECODE is
# set (many containers and CI images) Python would otherwise compile Airflow, dbt, Great
# Expectations and pandas from source in every process: about 8 s of each `outcomes run`.
export UV_COMPILE_BYTECODE := 1

.PHONY: docs help install chromium openssh-server docker-compose demo test test-celery test-deployment test-quick lint format up down stop bench clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[1m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(CURDIR)/.tools/uv/bin/uv:
	python3 -m venv $(CURDIR)/.tools/uv
	$(CURDIR)/.tools/uv/bin/python -m pip install --quiet uv==$(UV_VERSION)

$(VENV)/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen
	$(VENV)/bin/python -m compileall -q plugins
	@touch $@

install: $(VENV)/.installed ## Create .venv/ with the `outcomes` command (bootstraps uv if missing)

demo: install ## Run the whole job on synthetic sources, on the embedded warehouse
	$(BIN)/outcomes demo

# The dashboard's browser tests drive Debian's chromium (Playwright's own download does not work
# offline); installed here when missing, with sudo when not root.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
chromium:
	@command -v chromium >/dev/null || { echo "installing Debian's chromium for the browser tests"; \
	  $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q --no-install-recommends chromium; }

# The SFTP landing-zone tests start OpenSSH's sshd on loopback (never as a service: the package's
# own service is not started here); installed when missing, like chromium.
openssh-server:
	@test -x /usr/sbin/sshd || { echo "installing Debian's openssh-server for the SFTP landing tests"; \
	  $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q --no-install-recommends openssh-server; }

# The compose file is resolved by Debian's docker-compose (1.29: profiles, `${VAR:?}`,
# service_completed_successfully), which needs no container engine; installed here when missing.
docker-compose:
	@command -v docker-compose >/dev/null || { echo "installing Debian's docker-compose to check the compose file"; \
	  $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q --no-install-recommends docker-compose; }

# Test files run on this many workers (pytest-xdist), each with its own warehouse and Airflow.
TEST_WORKERS ?= 2

test: install chromium openssh-server docker-compose ## Run every test but the two deployments': quick ones and the end-to-end pipeline runs (installs chromium, sshd, docker-compose)
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder -m "not celery and not deployment"

# About 2.5 minutes on 2 cores; needs Redis on 127.0.0.1:6379 (OUTCOMES_TEST_REDIS_URL).
test-celery: install ## Run the ingest and build DAGs under the CeleryExecutor (scheduler, Redis, 2 workers)
	$(BIN)/pytest -m celery tests/test_celery.py

# About 14 minutes on 2 cores (the plain run 7.5, celery 5, a DAG import error 2); needs the PostgreSQL
# server on 127.0.0.1:5432 (OUTCOMES_TEST_WAREHOUSE_URL) and redis-server.
test-deployment: install docker-compose ## Run docker-compose.yml's services as processes to a published build (plain and celery), and the upgrade from the last release
	$(BIN)/pytest -m deployment tests/test_compose.py tests/test_upgrade.py

test-quick: install docker-compose ## Run only the quick tests (no end-to-end runs)
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder -m "not slow"

lint: install ## ruff (lint + format check), mypy, and sqlfluff on the dbt models (.sqlfluff)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/sqlfluff lint dbt_project/models dbt_project/snapshots

docs: install ## Write the generated parts of the docs (settings table, source contracts) from their one home
	$(BIN)/python -m outcomes.docgen

format: install ## Format the code with ruff
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

up: install ## Start Airflow in the background (standalone, sized for 2 cores), DAGs unpaused; prints URL and login
	$(BIN)/outcomes up

down: install ## Stop the Airflow that `make up` started
	$(BIN)/outcomes down

stop: install ## Stop the embedded warehouse
	$(BIN)/outcomes stop

# full: ~1.5 h and ~40 GB of scratch space in /tmp (1,000 / 10,000 / 100,000 participants);
# small: under 5 minutes, proves every part still runs (CI runs it; no timing is asserted).
BENCH_SCALE ?= full

release-snapshot: install ## Keep this checkout's deployment after a build as tests/releases/<version>/ (at each release; the upgrade test starts from the newest)
	cd tests && $(BIN)/python -m support.releases

bench: install ## Run the benchmark suite, BENCH_SCALE=full|small (results: bench/README.md, bench/results/)
	$(UV) sync --frozen --group bench
	$(BIN)/python bench/run.py --scale $(BENCH_SCALE)

clean: ## Stop the embedded warehouse and delete local state (.outcomes/) and caches
	-[ -x $(BIN)/outcomes ] && $(BIN)/outcomes down
	-[ -x $(BIN)/outcomes ] && $(BIN)/outcomes stop
	rm -rf .outcomes .pytest_cache .ruff_cache .mypy_cache
