# `make demo` and `make test` work on a fresh clone: both bootstrap .venv from the project's own files.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The whole tree pinned (pyproject's dependencies + the dev and trading extras), written by `make lock`.
# torch is the 2.13.0+cpu build: pip finds it in a local wheel folder (find-links), or, elsewhere, with
# PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu.
LOCK   := requirements.lock
# pip-tools lives in its own venv: the project venv stays exactly the lock.
LOCK_VENV := .venv-lock

export DO_NOT_TRACK := 1
# Bytecode is written on first import (the install skips compiling, below): an inherited
# PYTHONDONTWRITEBYTECODE=1, common in CI and container images, would make every process compile every
# module it imports from source again (a third of a `candlecast run`'s CPU, 3x the imports' time).
export PYTHONDONTWRITEBYTECODE :=
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR := false

.PHONY: demo test lint bench clean venv up down lock image ui-check

venv: $(STAMP)

# Installs the lock as it is (--no-deps: nothing to resolve, nothing floats), then the project itself.
# pip is pinned first (python3.11's own pip 23.2 keeps an older HTTP cache, so it re-downloads everything);
# --no-compile halves the install (224 s -> 108 s here): modules compile when first imported instead.
$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet pip==26.3
	$(BIN)/python -m pip install --quiet --no-compile --no-deps -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check
	touch $(STAMP)

# Re-resolve after a change to pyproject's requirements: pins already in the lock are kept while they
# still fit (upgrade with LOCK_ARGS=--upgrade or LOCK_ARGS="--upgrade-package NAME"). constraints.txt
# keeps torch on the local CPU wheel. bench is not locked (make test, demo and the image never install it):
# `pip install -c $(LOCK) -e ".[dev,bench]"` keeps every shared package at its pin and adds only the peers'.
lock:
	test -x $(LOCK_VENV)/bin/pip-compile || { $(PYTHON) -m venv $(LOCK_VENV) && $(LOCK_VENV)/bin/python -m pip install --quiet pip-tools==7.7.0; }
	CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_VENV)/bin/pip-compile --quiet --allow-unsafe --strip-extras \
		--no-emit-index-url --no-emit-find-links --extra dev --extra trading -c constraints.txt $(LOCK_ARGS) \
		--output-file $(LOCK) pyproject.toml

demo: $(STAMP)
	$(BIN)/candlecast run --config configs/demo.yaml
	$(BIN)/candlecast status

# The living loop rehearsed offline (docs/live.md): weeks of 4h candles in minutes, a regime change, the drift
# alarm, the retrain and the gate's decision, in <state>/rehearsal.
.PHONY: live-demo
live-demo: $(STAMP)
	$(BIN)/candlecast live --rehearsal

# Whole files per worker (a file's module fixtures and servers stay in one process), the slow files first
# (tests/conftest.py orders them; --no-loadscope-reorder keeps that order, where xdist would send the files
# with the most tests first and the one-test stack file last). Most tests wait on servers, subprocesses and
# I/O, so three workers on 2 cores keep both busy where two left them idle between a test's steps (a fresh
# clone's make test at 558 tests: 617 s of tests with 3, against about 900 s with 2 earlier, not side by side).
# Where the time went: .ci/durations.txt.
TEST_WORKERS ?= 3
test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=25 \
		--durations-file=.ci/durations.txt

# mypy's cache lives beside pip's, outside the checkout: a fresh clone reuses it (mypy matches files by
# hash when their path changed), so only the first check on a machine is cold (76 s here, 4 s warm).
test lint: export MYPY_CACHE_DIR ?= $(HOME)/.cache/candlecast/mypy

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

# A headless browser on the four UIs of the state `make demo` left (not part of `make test`: minutes, a browser):
# the decision and ratio in MLflow's runs table, the objective's name in optuna-dashboard, Data Docs pages that
# agree with their index rows, whole deployment names in Prefect; screenshots in <state>/ui-check.
# Playwright lives in its own venv (the lock does not carry it) and drives the system's chromium
# (apt-get install chromium; CHROMIUM=path for another): its own browser download is not needed.
UI_VENV := .venv-ui
ui-check: $(STAMP) $(UI_VENV)/.installed
	$(UI_VENV)/bin/python scripts/ui_check.py

$(UI_VENV)/.installed:
	$(PYTHON) -m venv $(UI_VENV)
	$(UI_VENV)/bin/python -m pip install --quiet playwright==1.65.2
	touch $@

# The image (docker/Dockerfile) with docker or podman, whichever works here; docker/smoke.sh also runs the demo in it.
image:
	docker/build.sh candlecast:latest

clean:
	rm -rf .candlecast
