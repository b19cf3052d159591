# The two commands: `make run` and `make test`. Each creates .venv and installs what it needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# freqtrade (for the e2e test that runs it against a live server) lives in a venv of its
# own, so that its pinned dependencies cannot change the project's. The stamp names the
# version, so changing FREQTRADE_VERSION reinstalls it.
FREQTRADE_VERSION := 2026.9
FT_VENV  := .venv-freqtrade
FT_STAMP := $(FT_VENV)/.installed-$(FREQTRADE_VERSION)

.PHONY: run test lint typecheck unit bench clean freqtrade

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

$(FT_STAMP):
	@test -x $(FT_VENV)/bin/python || $(PYTHON) -m venv $(FT_VENV)
	@rm -f $(FT_VENV)/.installed-*
	@$(FT_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(FT_VENV)/bin/python -m pip install --quiet --disable-pip-version-check 'freqtrade==$(FREQTRADE_VERSION)'
	@touch $(FT_STAMP)

freqtrade: $(FT_STAMP)

run: $(STAMP)
	$(BIN)/sandex serve --demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy --strict src

unit: $(STAMP) $(FT_STAMP)
	$(BIN)/python -m pytest

test: lint typecheck freqtrade unit

bench: $(STAMP)
	$(BIN)/python bench/auth.py
	$(BIN)/python bench/http.py
	$(BIN)/python bench/engine.py

clean:
	rm -rf $(VENV) $(FT_VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
