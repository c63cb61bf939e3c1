# Developer entry points. Every target installs what it needs on a fresh clone:
# uv from PyPI when it is missing, then the locked dependencies (`uv sync`).
SHELL := /bin/bash
.DEFAULT_GOAL := help

APP_DIR := backend-py/app
TOOLS_DIR := $(CURDIR)/.tools

# `make ingest PATH=docs/` would replace the shell's PATH for every recipe:
# keep the argument and restore the real search path.
ifeq ($(origin PATH),command line)
INGEST_PATH := $(PATH)
override PATH := $(shell printf '%s' "$$PATH" | grep -q ':' && printf '%s' "$$PATH" || echo /root/.local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)
endif

UV := $(shell command -v uv 2>/dev/null || echo $(TOOLS_DIR)/bin/uv)
UV_RUN := cd $(APP_DIR) && $(UV) run --frozen
export UV_PYTHON_DOWNLOADS := never

.PHONY: help init run test lint-backend-py lint-backend-py-ci format-backend-py \
	format-backend-py-check type-check-backend-py layers-backend-py deps-backend-py \
	test-backend-py gen-models \
	db-migrate db-reset docker-lint token ingest reembed eval bench bench-knowledge \
	bench-streaming bench-rooms

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-26s %s\n", $$1, $$2}'

$(TOOLS_DIR)/bin/uv:
	@echo "uv not found: installing it from PyPI into .tools/"
	python3 -m venv $(TOOLS_DIR)
	$(TOOLS_DIR)/bin/pip install --quiet --disable-pip-version-check uv

init: $(UV) ## Install the locked dependencies (uv sync)
	cd $(APP_DIR) && $(UV) sync --frozen

run: init ## Serve the API (HOST, PORT, WORKERS; embedded Postgres unless DATABASE_URL)
	$(UV_RUN) python -m src.cli.serve

# The benchmarks are code too: linted, formatted and type-checked with the app.
BENCH_DIR := ../../bench

test: init lint-backend-py-ci format-backend-py-check type-check-backend-py layers-backend-py deps-backend-py test-backend-py ## Lint, format check, mypy strict, layers, dependencies, pytest with coverage

lint-backend-py: init ## Ruff lint with fixes
	$(UV_RUN) ruff check --fix src tests $(BENCH_DIR)

lint-backend-py-ci: init ## Ruff lint, no fixes
	$(UV_RUN) ruff check src tests $(BENCH_DIR)

format-backend-py: init ## Ruff format
	$(UV_RUN) ruff format src tests $(BENCH_DIR)

format-backend-py-check: init ## Ruff format check
	$(UV_RUN) ruff format --check src tests $(BENCH_DIR)

type-check-backend-py: init ## MyPy (strict)
	$(UV_RUN) mypy src tests $(BENCH_DIR)

layers-backend-py: init ## Import-linter: no layer imports upwards (contracts in pyproject.toml)
	$(UV_RUN) lint-imports

deps-backend-py: init ## Deptry: every import declared, every dependency used
	$(UV_RUN) deptry src

test-backend-py: init ## Pytest with coverage (fails under 85%)
	$(UV_RUN) pytest --cov --cov-report=term --cov-report=html $(PYTEST_ARGS)

gen-models: init ## Regenerate domain/entity/models.py from the migrated schema
	$(UV_RUN) python -m src.cli.db gen-models

db-migrate: init ## Apply pending migrations (embedded DB, or DATABASE_URL)
	$(UV_RUN) python -m src.cli.db migrate

docker-lint: init ## Lint backend-py/Dockerfile with hadolint (installed from PyPI)
	cd $(APP_DIR) && $(UV) run --frozen hadolint ../Dockerfile

db-reset: init ## Drop all data of the embedded DB, re-apply migrations and seed.sql
	$(UV_RUN) python -m src.cli.db reset

token: init ## Print a dev access token for EMAIL (user created if missing) as the last line
	@test -n "$(EMAIL)" || { echo "usage: make token EMAIL=alice@example.com" >&2; exit 2; }
	@$(UV_RUN) python -m src.cli.token --email "$(EMAIL)"

ingest: init ## Load a file or folder into the shared knowledge base (make ingest PATH=docs/)
	@test -n "$(INGEST_PATH)" || { echo "usage: make ingest PATH=<file or folder>" >&2; exit 2; }
	$(UV_RUN) python -m src.cli.ingest "$(abspath $(INGEST_PATH))"

reembed: init ## Re-embed every chunk made by another embedding model than the configured one
	$(UV_RUN) python -m src.cli.reembed

bench-knowledge: init ## Ingestion throughput, hybrid search latency and recall at 100k chunks (own DB in /tmp)
	$(UV_RUN) python ../../bench/knowledge_bench.py

bench-streaming: init ## Streamed turns at K users, ours vs the LangChain peer (STREAMING_ARGS; -> bench/results/streaming.md)
	$(UV_RUN) python ../../bench/streaming_bench.py $(STREAMING_ARGS)

bench-rooms: init ## Room events: post-to-event delay on 500 open streams, memory per stream (ROOMS_ARGS; -> bench/results/rooms.md)
	$(UV_RUN) python ../../bench/room_events_bench.py $(ROOMS_ARGS)

# `make bench`: the load benchmark (BENCH_ARGS, e.g. "--connections 100
# --duration 60"), the knowledge benchmark at BENCH_CHUNKS chunks (20000
# by default here; 100000 is the full run of `make bench-knowledge`), then the
# streaming benchmark against the peer (STREAMING_ARGS, e.g. "--users 50,200"),
# then the room events benchmark (ROOMS_ARGS, e.g. "--members 500 --rate 5").
BENCH_CHUNKS ?= 20000
bench: init ## Load benchmark (-> bench/results/load.md), knowledge benchmark at BENCH_CHUNKS=20000, streaming benchmark with the peer, room events
	$(UV_RUN) python ../../bench/load_bench.py $(BENCH_ARGS)
	$(UV_RUN) env BENCH_CHUNKS=$(BENCH_CHUNKS) python ../../bench/knowledge_bench.py
	$(UV_RUN) python ../../bench/streaming_bench.py $(STREAMING_ARGS)
	$(UV_RUN) python ../../bench/room_events_bench.py $(ROOMS_ARGS)

eval: init ## Retrieval quality (recall@5, MRR) of vector, full-text and hybrid search (own DB in /tmp)
	$(UV_RUN) python ../../bench/retrieval_eval.py
