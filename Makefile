# Two commands on a fresh machine:  make setup  &&  make test
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup test test-fast backtest bench lint

setup:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	# torch first and pinned: the CPU wheel; an unpinned torch pulls gigabytes of CUDA.
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -e '.[dev]'

test:
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

test-fast:
	$(BIN)/python -m pytest -q -m "not slow"

backtest:
	$(BIN)/sextant backtest configs/walkforward.yaml

bench:
	$(BIN)/sextant bench

lint:
	$(BIN)/ruff check .
