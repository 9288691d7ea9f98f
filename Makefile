# One entry point for people and CI. `make demo` and `make test` work from a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
APT_PACKAGES := redis-server espeak-ng sox chromium fonts-telu opus-tools
STAMP := $(VENV)/.installed

.PHONY: help apt venv lock protos test test-unit test-e2e soak demo up lint clean

help:
	@echo "make demo       set up everything, start the stack, talk to it in Telugu, write reply WAVs"
	@echo "make test       set up everything and run the whole test suite (unit + end-to-end)"
	@echo "make test-unit  quick run: unit tests only"
	@echo "make soak       N real-time callers for minutes: flat memory, no errors, turns in Redis"
	@echo "                (TS2S_SOAK_CALLERS=4 TS2S_SOAK_S=180 by default)"
	@echo "make up         start the local stack (Ctrl-C stops it)"
	@echo "make protos     regenerate the gRPC stubs from protos/"
	@echo "make lock       re-pin every dependency in requirements.lock"

# System packages: installed when running as root, explained otherwise.
apt:
	@missing=""; \
	for pkg in $(APT_PACKAGES); do dpkg -s $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "missing system packages:$$missing"; \
	    echo "install them with: sudo apt-get install -y $(APT_PACKAGES)"; exit 1; \
	  fi; \
	fi

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade "pip>=24"
	$(BIN)/pip install -q -c requirements.lock -e ".[all,dev]"
	touch $(STAMP)

venv: $(STAMP)

# Re-pin every dependency (after a change to pyproject.toml).
lock: venv
	$(BIN)/python scripts/lock.py

protos: venv
	$(BIN)/python scripts/gen_protos.py

lint: venv
	$(BIN)/ruff check src
	$(BIN)/ruff format --check src
	$(BIN)/mypy

test: apt venv lint
	$(BIN)/python -m pytest -m "not soak"

test-unit: venv
	$(BIN)/python -m pytest -m "not e2e and not slow and not soak"

test-e2e: apt venv
	$(BIN)/python -m pytest -m "e2e and not soak"

soak: apt venv
	$(BIN)/python -m pytest -m soak -s tests/e2e/test_soak.py

demo: apt venv
	$(BIN)/telugu-s2s demo

up: apt venv
	$(BIN)/telugu-s2s up

clean:
	rm -rf .run .pytest_cache
