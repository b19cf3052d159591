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
# The client-matrix e2e test's two clients that cannot live in .venv: binance-connector
# (its package is named `binance`, like python-binance's) in a venv of its own, and ccxt
# for JavaScript, installed by npm from tests/e2e/js's lock file.
CONNECTOR_VERSION := 3.13.0
CN_VENV  := .venv-connector
CN_STAMP := $(CN_VENV)/.installed-$(CONNECTOR_VERSION)
JS_DIR   := tests/e2e/js
JS_STAMP := $(JS_DIR)/node_modules/.installed-stamp
# The matching engine's hot modules, compiled by mypyc into C extensions next to their
# sources (plus their shared library, src/sandex_native__mypyc*.so; all gitignored),
# which Python imports before the .py files. They are rebuilt when the modules or what
# they import change; `make pure` removes them, and the same sources then run as plain
# Python.
NATIVE       := $(addprefix src/sandex/exchange/,book.py engine.py market.py)
NATIVE_DEPS  := $(NATIVE) $(addprefix src/sandex/exchange/,checks.py errors.py events.py \
                money.py orders.py rejections.py symbols.py units.py)
NATIVE_SO    := src/sandex/exchange/*.so src/sandex_native__mypyc*.so
NATIVE_STAMP := build/native/.stamp

define NATIVE_BUILD
import sys
from mypyc.build import mypycify
from setuptools import Distribution
modules = mypycify(sys.argv[1:], group_name="sandex_native", target_dir="build/native")
dist = Distribution({"name": "sandex-native", "package_dir": {"": "src"}, "ext_modules": modules})
build = dist.get_command_obj("build_ext")
build.inplace, build.build_temp, build.build_lib = True, "build/native/temp", "build/native/lib"
dist.run_command("build_ext")
endef
export NATIVE_BUILD

.PHONY: run test lint typecheck unit bench clean freqtrade connector ccxtjs native pure

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

$(CN_STAMP):
	@test -x $(CN_VENV)/bin/python || $(PYTHON) -m venv $(CN_VENV)
	@rm -f $(CN_VENV)/.installed-*
	@$(CN_VENV)/bin/python -m pip install --quiet --disable-pip-version-check 'binance-connector==$(CONNECTOR_VERSION)'
	@touch $(CN_STAMP)

connector: $(CN_STAMP)

$(JS_STAMP): $(JS_DIR)/package.json $(JS_DIR)/package-lock.json
	@cd $(JS_DIR) && npm ci --ignore-scripts --no-audit --no-fund --silent
	@touch $(JS_STAMP)

ccxtjs: $(JS_STAMP)

$(NATIVE_STAMP): $(STAMP) $(NATIVE_DEPS)
	@mkdir -p build/native
	@rm -f $(NATIVE_SO)
	@echo "mypyc: compiling $(NATIVE) (build/native/build.log)"
	@$(BIN)/python -c "$$NATIVE_BUILD" --cache-dir=build/native/mypy $(NATIVE) \
		>build/native/build.log 2>&1 \
		|| { cat build/native/build.log; exit 1; }
	@touch $(NATIVE_SO) $@

native: $(NATIVE_STAMP)

pure:
	rm -f $(NATIVE_SO) $(NATIVE_STAMP)

run: $(STAMP) $(NATIVE_STAMP)
	$(BIN)/sandex serve --demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy --strict src

unit: $(STAMP) $(FT_STAMP) $(CN_STAMP) $(JS_STAMP) $(NATIVE_STAMP)
	$(BIN)/python -m pytest

test: lint typecheck freqtrade connector ccxtjs unit

bench: $(STAMP) $(NATIVE_STAMP)
	$(BIN)/python bench/auth.py
	$(BIN)/python bench/http.py
	$(BIN)/python bench/engine.py
	$(BIN)/python bench/orders.py
	$(BIN)/python bench/ws.py

clean:
	rm -rf $(VENV) $(FT_VENV) $(CN_VENV) $(JS_DIR)/node_modules .mypy_cache .ruff_cache .pytest_cache .hypothesis build/native
	rm -f $(NATIVE_SO)
