# commonwatch: `make run` serves the demo, `make test` runs the whole suite.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
export COMMONWATCH_DATA_DIR ?= $(CURDIR)/var

.PHONY: run test test-clock lint messages bench clean fonts

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
	@$(BIN)/commonwatch demo --serve

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests bench bench/scanner_vs_presidio bench/taxii_vs_medallion  # the two Python benches without .py

test: lint
	$(BIN)/python -m pytest

# The suites where commonwatch's injected clock meets a real one (GnuPG key times and signatures,
# HTTP Last-Modified and conditional requests, cookie, session and token expiry), run again with
# the machine's date a year ahead under libfaketime (Debian's faketime): they must not depend on
# today's date. CI runs this after `make test`.
CLOCK_SUITES ?= tests/notify tests/intel tests/constituency/test_contacts_pgp.py tests/access/test_auth.py \
                tests/access/test_cli.py tests/feeds/test_collect.py tests/vulns/test_csaf_provider_trust.py
CLOCK_OFFSET ?= +365d
test-clock: $(VENV)/.installed-test
	@command -v faketime >/dev/null || { echo "test-clock needs faketime (apt-get install faketime)"; exit 1; }
	faketime -f '$(CLOCK_OFFSET)' $(BIN)/python -m pytest -p no:cacheprovider $(CLOCK_SUITES)

# Re-extract messages after changing English texts; translate the new entries in each locale/zh_CN.po.
messages: $(VENV)/.installed-test
	$(BIN)/python -m commonwatch.tools.messages

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache

# The pages' Noto Sans SC subset: run after adding Chinese messages (tests/web/test_fonts.py says when).
fonts: $(VENV)/.installed-test
	$(BIN)/python -m commonwatch.tools.fonts
