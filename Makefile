# Dual-Rerank. `make run` and `make test` each set up .venv first, so either works on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export PATH := $(CURDIR)/$(BIN):$(PATH)
export PYTHONUNBUFFERED := 1
# `make run` starts a temporary Prefect API server; give it time on a busy machine (Prefect's default: 20 s)
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 120
# offline machines: no telemetry attempts (they only log errors)
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export DVC_NO_ANALYTICS ?= 1

.PHONY: live benchmark venv run repro deploy worker test test-all lint typecheck imports serve bench-serve sweep clean-data help fetch-mslr run-mslr

help:
	@echo "make run    - set up .venv and run the production cycle on the default world, then print the results"
	@echo "make repro  - the same pipeline with DVC alone (dvc repro); both runners record into dvc.lock"
	@echo "make deploy - register the Prefect deployments of prefect.yaml (PREFECT_API_URL: your server)"
	@echo "make worker - start a process worker that runs the deployments in this checkout"
	@echo "make test   - set up .venv and run the test suite (what CI runs)"
	@echo "make lint   - ruff + mypy + import-linter"
	@echo "make serve  - serve the packaged Best-of-N reranker with BentoML"
	@echo "make sweep  - headroom vs dependency strength (small worlds) -> data/reports/sweep.json + plot"
	@echo "make run-mslr - fetch the MSLR-WEB10K excerpt and run the whole pipeline on it (params.mslr.yaml)"
	@echo "make live   - the live loop (needs make run): arms served over HTTP learn from their own logs -> data/reports/live.json"
	@echo "make benchmark - the research benchmark (needs make run): flows/benchmark.py, then docs/results.md"
	@echo "make bench-serve - load-test the served reranker (NAR Best-of-N vs AR teacher) -> data/reports/serving.json"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@# a download that arrives corrupted (pip: "do not match the hashes") or cut off fails one try: up to 3, the later ones past pip's cache
	@for try in 1 2 3; do \
	  cache=$$( [ $$try -gt 1 ] && echo --no-cache-dir ); \
	  $(BIN)/python -m pip install --quiet --disable-pip-version-check $$cache -e ".[dev]" && break; \
	  [ $$try -lt 3 ] || exit 1; echo "pip install failed (try $$try of 3); trying again in 15 s"; sleep 15; \
	done
	@touch $(STAMP)

venv: $(STAMP)

run: venv
	$(BIN)/python flows/pipeline.py
	$(BIN)/dualrerank summary

repro: venv
	$(BIN)/dvc repro
	$(BIN)/dualrerank summary

deploy: venv
	$(BIN)/prefect work-pool create dual-rerank --type process --overwrite
	$(BIN)/prefect work-pool set-concurrency-limit dual-rerank 1
	$(BIN)/prefect --no-prompt deploy --all

worker: venv
	$(BIN)/prefect worker start --pool dual-rerank

# two workers (the 2-core target); the tests sharing the trained tiny project stay on one (tests/integration/conftest.py)
test: venv
	$(BIN)/pytest -m "not slow" -q -n 2 --dist loadgroup

test-all: venv
	$(BIN)/pytest -q -n 2 --dist loadgroup

lint: venv
	$(BIN)/ruff check src tests flows
	$(BIN)/mypy
	$(BIN)/lint-imports

serve: venv
	$(BIN)/bentoml serve

bench-serve: venv
	$(BIN)/dualrerank bench-serve

live: venv
	$(BIN)/python flows/live.py

benchmark: venv
	$(BIN)/python flows/benchmark.py
	$(BIN)/dualrerank bench results

sweep: venv
	$(BIN)/dualrerank sweep

clean-data:
	rm -rf data/raw data/processed data/models data/reports data/checkpoints

# Real data: the MSLR-WEB10K Fold 1 excerpt (docs/click-model.md). run-mslr runs the production DVC pipeline with
# the params.mslr.yaml overlay (merged into params.yaml for the run, then restored); a later `make run` sees the
# parameters changed and brings the default world's outputs back (from DVC's run cache when it has them).
fetch-mslr: venv
	$(BIN)/dualrerank fetch-mslr

run-mslr: fetch-mslr
	$(BIN)/python flows/pipeline.py --overlay params.mslr.yaml
	$(BIN)/dualrerank summary
