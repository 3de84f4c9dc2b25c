# fastchat: every routine action has a target. `make help` lists them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

HOST    ?= 0.0.0.0
PORT    ?= 6667
WORKERS ?= 4

.PHONY: help install run client test test-fast lint format bench loadtest clean

help:            ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

install: $(STAMP) ## create .venv and install fastchat with its dev tools

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: install     ## start a 4-worker server on 0.0.0.0:6667 (HOST, PORT, WORKERS to change)
	$(BIN)/fastchat serve --host $(HOST) --port $(PORT) --workers $(WORKERS)

client: install  ## start the curses client against HOST:PORT (default 127.0.0.1:6667)
	$(BIN)/fastchat client $(if $(filter 0.0.0.0,$(HOST)),127.0.0.1,$(HOST)) $(PORT)

test: install    ## run the whole test suite
	$(BIN)/python -m pytest -q

test-fast: install ## unit tests only (no sockets, seconds)
	$(BIN)/python -m pytest -q tests/unit

lint: install    ## ruff (lint + format check) and mypy --strict
	$(BIN)/ruff check fastchat tests loadtest
	$(BIN)/ruff format --check fastchat tests loadtest
	$(BIN)/mypy

format: install  ## apply ruff's formatting and safe fixes
	$(BIN)/ruff format fastchat tests loadtest
	$(BIN)/ruff check --fix fastchat tests loadtest

clean:           ## remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
