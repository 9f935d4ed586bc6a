# The README's two commands: `make demo` (the demo cohort, offline, 2 cores) and `make test`.
# Each installs what it needs into .venv on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.dnafm-installed
CORES  ?= 2

.PHONY: setup system-deps demo run test test-fast lint clean slurm-up slurm-down

setup: $(STAMP)

# torch first, pinned to the CPU wheel on disk; the project itself only asks for torch>=2.5,
# so a GPU user's CUDA build is kept.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev,workflow]'
	touch $@

# Debian packages the tests start or call (bedtools, chromium, slurm, …); needs root.
system-deps:
	bash scripts/install-system-deps.sh

# A run killed hard (SIGKILL, OOM) leaves Snakemake's lock behind: released first when no
# Snakemake runs here, so rerunning the same command resumes (dnafm_lib/workflow/stale_lock.py).
demo: setup
	$(BIN)/python -m dnafm_lib.workflow.stale_lock
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/snakemake --profile profiles/local --cores $(CORES)

# Snakemake with the venv on PATH, for any cohort: make run ARGS="--configfile config/cohorts/mine_example.yaml"
run: setup
	$(BIN)/python -m dnafm_lib.workflow.stale_lock
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/snakemake --profile profiles/local --cores $(CORES) $(ARGS)

# As root (CI) the tests marked `slurm` start a single-node Slurm (scripts/slurm-up.sh) and stop it.
test: setup system-deps
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -q -ra $(PYTEST_ARGS)

test-fast: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -q -m "not slow and not slurm and not browser" $(PYTEST_ARGS)

# ruff (lint + format check) and snakefmt over the code, snakemake --lint over the workflow;
# settings in pyproject.toml. `ruff format .` and `snakefmt Snakefile workflow` fix the formatting.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakefmt --check Snakefile workflow
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/snakemake --lint

# A single-node Slurm on this machine, for trying profiles/slurm (needs root; see docs/cluster.md).
slurm-up:
	bash scripts/slurm-up.sh

slurm-down:
	bash scripts/slurm-down.sh

clean:
	rm -rf results logs .snakemake
