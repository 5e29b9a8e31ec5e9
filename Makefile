# Two commands on a fresh machine: `make run` and `make test`. Everything else is installed on demand.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8501

.PHONY: run test bench load lint init-db demo browser clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.runtime $@

run: $(VENV)/.runtime
	$(PY) -m exact run --port $(PORT)

# Browser journeys drive Debian's Chromium; playwright cannot download its own browser here.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Chromium for the browser tests (apt-get)..."; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

lint: $(VENV)/.dev
	$(PY) -m ruff check .

test: $(VENV)/.dev browser
	$(PY) -m ruff check .
	$(PY) -m pytest

bench: $(VENV)/.dev
	$(PY) -m bench

# Load test on loopback (docs/load-test.md): 50 sessions for 60 s. E.g. make load LOAD_ARGS="--sessions 10 --json load.json"
load: $(VENV)/.dev
	$(PY) -m bench.load $(LOAD_ARGS)

init-db: $(VENV)/.runtime
	$(PY) -m exact init-db

demo: $(VENV)/.runtime
	$(PY) -m exact demo

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
