# `make demo` and `make test` work on a fresh clone: both bootstrap .venv from the project's own files.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

export DO_NOT_TRACK := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR := false

.PHONY: demo test lint bench clean venv up down

venv: $(STAMP)

# constraints.txt pins torch to the local CPU wheel: pip never resolves another torch (GBs of CUDA).
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,trading]"
	$(BIN)/python -m pip check
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/candlecast run --config configs/demo.yaml
	$(BIN)/candlecast status

# Two workers, whole files each (a file's module fixtures and servers stay in one process): most tests
# wait on servers, subprocesses and I/O, so two processes on 2 cores finish well before one.
test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile --durations=25

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# The local stack on 127.0.0.1 (Prefect server + UI, a process worker, MLflow server + UI, optuna-dashboard).
up: $(STAMP)
	$(BIN)/candlecast up

down:
	$(BIN)/candlecast down

bench: $(STAMP)
	$(BIN)/python bench/demo_stages.py

clean:
	rm -rf .candlecast
