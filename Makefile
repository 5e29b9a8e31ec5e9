# Two commands on a fresh machine: `make run` and `make test`. Everything else is installed on demand.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8501

.PHONY: run test bench bench-scale load lint init-db demo browser clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.runtime $@

# The optional extra for trained models (requirements-models.txt): PyTorch's CPU build, Captum, safetensors, ONNX.
$(VENV)/.models: requirements.txt requirements-models.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet -r requirements-models.txt
	touch $@

run: $(VENV)/.runtime $(VENV)/.models
	$(PY) -m exact run --port $(PORT)

# Browser journeys drive Debian's Chromium; playwright cannot download its own browser here.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Chromium for the browser tests (apt-get)..."; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

lint: $(VENV)/.dev
	$(PY) -m ruff check .

test: $(VENV)/.dev $(VENV)/.models browser
	$(PY) -m ruff check .
	$(PY) -m pytest

# Scoring speed (bench/__main__.py), the scale benchmark's small form (bench/scale.py, under a minute), then
# parallel scoring (bench/parallel_scoring.py, when present).
bench: $(VENV)/.dev
	$(PY) -m bench
	$(PY) -m bench.scale --small
	@if [ -f bench/parallel_scoring.py ]; then $(PY) -m bench.parallel_scoring; fi

# 1,000,000 scores over 1,000 challenges in a scratch database; service calls and pages against their targets.
bench-scale: $(VENV)/.dev
	$(PY) -m bench.scale $(SCALE_ARGS)

# Load test on loopback (docs/load-test.md): 50 sessions for 60 s. E.g. make load LOAD_ARGS="--sessions 10 --json load.json"
# or against the scale data set: make load LOAD_ARGS="--dataset scale"
load: $(VENV)/.dev
	$(PY) -m bench.load $(LOAD_ARGS)

init-db: $(VENV)/.runtime
	$(PY) -m exact init-db

demo: $(VENV)/.runtime $(VENV)/.models
	$(PY) -m exact demo

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
