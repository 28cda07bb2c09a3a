# commonwatch: `make run` serves the demo, `make test` runs the whole suite.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
export COMMONWATCH_DATA_DIR ?= $(CURDIR)/var

.PHONY: run test lint messages bench clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "commonwatch needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@ $(VENV)/.installed-run

run: $(VENV)/.installed-run
	$(BIN)/commonwatch demo --serve

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests bench

test: lint
	$(BIN)/python -m pytest

# Re-extract messages after changing English texts; translate the new entries in each locale/zh_CN.po.
messages: $(VENV)/.installed-test
	$(BIN)/python -m commonwatch.tools.messages

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
