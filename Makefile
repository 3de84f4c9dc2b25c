# fastchat: every routine action has a target. `make help` lists them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

HOST     ?= 0.0.0.0
PORT     ?= 6667
TLS_PORT ?= 6697
WEB_PORT ?= 8080
WORKERS  ?= auto
TEST_JOBS ?= 2

# make loadtest: locust users; HOST/PORT given on the command line point it at a running server
USERS    ?= 200
ROOMS    ?= 20
RATE     ?= 1
DURATION ?= 30
# make bench: PEERS=ngircd,inspircd runs them side by side; BENCH_ARGS for the rest
PEERS         ?=
BENCH_WORKERS ?= 1
BENCH_ARGS    ?=
# make bench-ceilings: flags for bench.hubceiling and bench.workerceiling
CEILING_ARGS        ?=
CEILING_ARGS_WORKER ?=
LOBBY_ARGS          ?= --clients 20000 --workers 4
BENCH_STAMP   := $(VENV)/.bench-stamp
comma         := ,
# (a comma inside $(or ...) would split its arguments: bench-peers' default, named)
ALL_PEERS     := ngircd$(comma)inspircd
SUDO          := $(if $(filter 0,$(shell id -u)),,sudo)

# make conformance: the irctest suite (read-only; a clone of progval/irctest) against fastchat
IRCTEST_DIR         ?= ../shared/irctest
IRCTEST_COMMIT      := b00c039766f5c497920dd787f7cb0e0005bd5ce0
IRCTEST_VENV        := .venv-irctest
IRCTEST_STAMP       := $(IRCTEST_VENV)/.installed-stamp
CONFORMANCE_RESULTS := conformance/results
CONFORMANCE_WORKERS ?= 1 4
# pytest-xdist processes per run; each test starts its own server on its own port
CONFORMANCE_JOBS    ?= 2
# Time: at 4 workers, leave out the tests skipped at 1 worker (fastchat lacks the capability,
# ISUPPORT token or command they need, whatever the worker count); they count as skipped
# there too. CONFORMANCE_RERUN_SKIPPED=1 runs them again.
CONFORMANCE_RERUN_SKIPPED ?= 0
# A flaky test is a bug: no retries. CONFORMANCE_RETRIES=3 reruns failures to name the flaky.
CONFORMANCE_RETRIES ?= 0
# What any server is held to: nothing specific to one implementation, no deprecated specs,
# no strict readings of ambiguous ones. Tests marked "services" run too: fastchat's accounts
# are built in (REGISTER, SASL), as Ergo's are. Nothing else is deselected.
CONFORMANCE_MARKERS := not implementation-specific and not deprecated and not strict

.PHONY: help install run client test test-system-deps test-peers test-browser-deps test-browser screenshot test-fast conformance conformance-deps conformance-update lint format settings-doc bench bench-ceilings bench-lobby \
        bench-peers loadtest clean

help:            ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

install: $(STAMP) ## create .venv and install fastchat with its dev tools

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: install     ## start a server (WORKERS=auto: as many workers as pay off here, see the log): IRC on 0.0.0.0:6667, TLS on 6697, the web client on http://localhost:8080 (HOST, PORT, TLS_PORT, WEB_PORT, WORKERS)
	$(BIN)/fastchat serve --host $(HOST) --port $(PORT) --tls-port $(TLS_PORT) --web-port $(WEB_PORT) --workers $(WORKERS)

client: install  ## start the curses client against HOST:PORT (default 127.0.0.1:6667)
	$(BIN)/fastchat client $(if $(filter 0.0.0.0,$(HOST)),127.0.0.1,$(HOST)) $(PORT)

# Test processes (pytest-xdist): most tests wait on servers they started, so two share the
# machine's cores well (the suite took 7.5 min alone, 5.5 min in two); TEST_JOBS=0 for one
test: install test-system-deps ## run the whole test suite (TEST_JOBS processes)
	$(BIN)/python -m pytest -q -n $(TEST_JOBS)

# The programs some tests drive, installed from Debian when we can (root, apt), with one
# `apt-get update` for all that are missing; a test whose program is missing is skipped
# (CI's .ci/run then fails). Each entry is package=program.
# - The client's end-to-end tests also run against ngIRCd (the client must work with any
#   server); interoperability tests run a real headless WeeChat and irssi against fastchat.
#   ngircd's service is kept from starting (policy-rc.d); the tests start their own instances.
# - The web client's tests (tests/browser/) drive Debian's headless Chromium through its own
#   chromedriver (Selenium is pointed at /usr/bin/chromedriver and never downloads one).
PEER_DEPS    := ngircd=/usr/sbin/ngircd weechat-headless=/usr/bin/weechat-headless irssi=/usr/bin/irssi
BROWSER_DEPS := chromium=/usr/bin/chromium chromium-driver=/usr/bin/chromedriver
# - irctest's LIST tests of creation and topic times (ELIST C and T) run the server under
#   libfaketime, a minute passing every 2 s; without it they wait 3 real minutes each.
CONFORMANCE_DEPS := faketime=/usr/bin/faketime
define apt_install
	@missing=; for pair in $(1); do [ -x "$${pair#*=}" ] || missing="$$missing $${pair%%=*}"; done; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  made=; if [ ! -e /usr/sbin/policy-rc.d ]; then \
	    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; made=1; fi; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; } \
	    || echo "WARNING: could not install$$missing: the tests that need them will be skipped"; \
	  if [ -n "$$made" ]; then rm -f /usr/sbin/policy-rc.d; fi; \
	else echo "NOTE: not installed:$$missing (apt-get install$$missing): the tests that need them will be skipped"; fi
endef
test-system-deps: ## apt-get install what the interop and browser tests drive, if missing (root, best effort)
	$(call apt_install,$(PEER_DEPS) $(BROWSER_DEPS))
test-peers:       ## apt-get install ngircd, weechat-headless and irssi for the interop tests, if missing
	$(call apt_install,$(PEER_DEPS))
test-browser-deps: ## apt-get install chromium and chromium-driver for the browser tests, if missing
	$(call apt_install,$(BROWSER_DEPS))
conformance-deps: ## apt-get install faketime for irctest's clock tests, if missing
	$(call apt_install,$(CONFORMANCE_DEPS))

test-browser: install test-browser-deps ## the web client's tests in headless Chromium (and its JS unit tests)
	$(BIN)/python -m pytest -q tests/browser

screenshot: install test-browser-deps ## rewrite docs/webclient.png (the README's picture) from a test session
	FASTCHAT_UPDATE_SCREENSHOT=1 $(BIN)/python -m pytest -q tests/browser/test_screenshot.py

test-fast: install ## unit tests only (no sockets, seconds)
	$(BIN)/python -m pytest -q tests/unit

$(IRCTEST_STAMP): conformance/requirements.txt
	$(PYTHON) -m venv $(IRCTEST_VENV)
	$(IRCTEST_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(IRCTEST_VENV)/bin/python -m pip install --quiet -r conformance/requirements.txt
	touch $(IRCTEST_STAMP)

# conformance/run.py runs pytest inside IRCTEST_DIR (its conftest.py and pytest.ini live
# there) without writing into it, once per worker count, retries the suspects, then
# conformance/report.py prints the table and checks the ratchet (conformance/passing.txt).
conformance: install $(IRCTEST_STAMP) conformance-deps ## irctest at 1 and 4 workers; fails if a test in conformance/passing.txt does not pass
	@$(IRCTEST_VENV)/bin/python conformance/run.py \
	  --irctest-dir "$(IRCTEST_DIR)" --commit $(IRCTEST_COMMIT) \
	  --python "$(CURDIR)/$(IRCTEST_VENV)/bin/python" --fastchat $(BIN)/fastchat \
	  --workers $(CONFORMANCE_WORKERS) --jobs $(CONFORMANCE_JOBS) --retries $(CONFORMANCE_RETRIES) \
	  $(if $(filter 1,$(CONFORMANCE_RERUN_SKIPPED)),--rerun-skipped) \
	  --markers '$(CONFORMANCE_MARKERS)' \
	  --results $(CONFORMANCE_RESULTS) --passing conformance/passing.txt

conformance-update: ## rewrite conformance/passing.txt from the last `make conformance` (tests passing at every worker count)
	@$(PYTHON) conformance/report.py --update \
	  --results $(CONFORMANCE_RESULTS) --passing conformance/passing.txt

lint: install    ## ruff (lint + format check) and mypy --strict
	$(BIN)/ruff check fastchat tests loadtest bench conformance
	$(BIN)/ruff format --check fastchat tests loadtest bench conformance
	$(BIN)/mypy
	$(if $(wildcard $(IRCTEST_DIR)/irctest),MYPYPATH="$(IRCTEST_DIR)" $(BIN)/mypy --strict \
	  --follow-imports=silent conformance,$(BIN)/mypy --strict conformance/report.py conformance/run.py)

format: install  ## apply ruff's formatting and safe fixes
	$(BIN)/ruff format fastchat tests loadtest bench conformance
	$(BIN)/ruff check --fix fastchat tests loadtest bench conformance

settings-doc: install ## rewrite the settings table in README.md and fastchat.example.toml from fastchat/server/config.py
	$(BIN)/python -m fastchat.server.config --update-readme README.md \
	  --update-example fastchat.example.toml

loadtest: install ## locust, headless: USERS in ROOMS at RATE msg/s each for DURATION s (own server unless HOST/PORT)
	$(BIN)/python -m loadtest.run --users $(USERS) --rooms $(ROOMS) --rate $(RATE) \
	  --duration $(DURATION) --workers $(if $(filter auto,$(WORKERS)),4,$(WORKERS)) \
	  $(if $(filter command line environment,$(origin HOST)),--host $(HOST)) \
	  $(if $(filter command line environment,$(origin PORT)),--port $(PORT))

$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

bench: install $(BENCH_STAMP) ## peak throughput, latency, memory: fastchat (and PEERS=ngircd,inspircd) side by side
	$(if $(PEERS),$(MAKE) --no-print-directory bench-peers PEERS=$(PEERS))
	$(BIN)/python -m bench.run --workers $(BENCH_WORKERS) $(if $(PEERS),--peers $(PEERS)) $(BENCH_ARGS)

bench-ceilings: install $(BENCH_STAMP) ## the hub alone and a worker's paths alone, one core each; BENCHMARKS.md's projection
	$(BIN)/python -m bench.hubceiling $(CEILING_ARGS)
	$(BIN)/python -m bench.workerceiling $(CEILING_ARGS_WORKER)

bench-lobby: install ## 20,000 clients autojoin #lobby at 4 workers: time, bytes, CPU, PING after (LOBBY_ARGS)
	$(BIN)/python -m bench.lobbyjoin $(LOBBY_ARGS)

bench-peers:     ## apt-get install the PEERS (default ngircd,inspircd) that are missing; their services stay off
	@for p in $(subst $(comma), ,$(or $(PEERS),$(ALL_PEERS))); do \
	  if command -v $$p >/dev/null || [ -x /usr/sbin/$$p ]; then echo "$$p: installed"; else \
	    $(SUDO) apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$p && \
	    { $(SUDO) systemctl disable --now $$p 2>/dev/null || true; }; \
	  fi; \
	done

clean:           ## remove the virtualenvs, caches and conformance results
	rm -rf $(VENV) $(IRCTEST_VENV) $(CONFORMANCE_RESULTS) .pytest_cache .mypy_cache .ruff_cache .hypothesis
