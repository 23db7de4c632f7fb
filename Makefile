# A thin layer over the project's own commands; CI runs `make test` (see .ci/run).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
LINTBENCH_INSTALLED := $(VENV)/.installed-lintbench

.PHONY: test lint bench-lint docs clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[bench,dev]'
	touch $@

$(LINTBENCH_INSTALLED): $(INSTALLED)
	$(BIN)/pip install --quiet -e '.[bench,dev,lintbench]'
	touch $@

test: $(INSTALLED)
	$(BIN)/python -m pytest

lint: $(INSTALLED)
	$(BIN)/asyncguard check asyncguard/

bench-lint: $(LINTBENCH_INSTALLED)
	$(BIN)/python -m asyncguard.lint.benchmark --out reports/lint-bench.json --readme README.md

docs: $(INSTALLED)
	$(BIN)/python -m asyncguard.lint.docs README.md

clean:
	rm -rf $(VENV) .asyncguard_cache .pytest_cache
