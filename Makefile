# signoff: `make run` starts the product (offline against the Slack emulator when no Slack
# tokens are set); `make test` runs the whole test suite, first installing the browser tests'
# Chromium where it may (scripts/ensure-chromium); `make lint` runs ruff and `mypy --strict`
# (configured in pyproject.toml).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/signoff run

test: $(STAMP)
	@scripts/ensure-chromium
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check bot graphs tests bench
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
