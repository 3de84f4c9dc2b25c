# fastchat: every routine action has a target. `make help` lists them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

HOST    ?= 0.0.0.0
PORT    ?= 6667
WORKERS ?= 4

# make loadtest: locust users; HOST/PORT given on the command line point it at a running server
USERS    ?= 200
ROOMS    ?= 20
RATE     ?= 1
DURATION ?= 30
# make bench: PEERS=ngircd,inspircd runs them side by side; BENCH_ARGS for the rest
PEERS         ?=
BENCH_WORKERS ?= 1
BENCH_ARGS    ?=
BENCH_STAMP   := $(VENV)/.bench-stamp
comma         := ,
SUDO          := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: help install run client test test-fast lint format bench bench-peers loadtest clean

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
	$(BIN)/ruff check fastchat tests loadtest bench
	$(BIN)/ruff format --check fastchat tests loadtest bench
	$(BIN)/mypy

format: install  ## apply ruff's formatting and safe fixes
	$(BIN)/ruff format fastchat tests loadtest bench
	$(BIN)/ruff check --fix fastchat tests loadtest bench

loadtest: install ## locust, headless: USERS in ROOMS at RATE msg/s each for DURATION s (own server unless HOST/PORT)
	$(BIN)/python -m loadtest.run --users $(USERS) --rooms $(ROOMS) --rate $(RATE) \
	  --duration $(DURATION) --workers $(WORKERS) \
	  $(if $(filter command line environment,$(origin HOST)),--host $(HOST)) \
	  $(if $(filter command line environment,$(origin PORT)),--port $(PORT))

$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

bench: install $(BENCH_STAMP) ## peak throughput, latency, memory: fastchat (and PEERS=ngircd,inspircd) side by side
	$(if $(PEERS),$(MAKE) --no-print-directory bench-peers PEERS=$(PEERS))
	$(BIN)/python -m bench.run --workers $(BENCH_WORKERS) $(if $(PEERS),--peers $(PEERS)) $(BENCH_ARGS)

bench-peers:     ## apt-get install the PEERS (default ngircd,inspircd) that are missing; their services stay off
	@for p in $(subst $(comma), ,$(or $(PEERS),ngircd,inspircd)); do \
	  if command -v $$p >/dev/null || [ -x /usr/sbin/$$p ]; then echo "$$p: installed"; else \
	    $(SUDO) apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$p && \
	    { $(SUDO) systemctl disable --now $$p 2>/dev/null || true; }; \
	  fi; \
	done

clean:           ## remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
