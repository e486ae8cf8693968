# fluxbus developer entry points. Every target does its own setup.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Debian packages the test suite runs for real: sshd (SSH Git server),
# git (http-backend), docker-registry (Docker Distribution).
DEB_PACKAGES := openssh-server openssh-client git docker-registry apache2-utils

.PHONY: setup deps up demo play test lint bench clean

setup: $(STAMP) deps

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,plot,helm]'
	touch $(STAMP)

# Install missing Debian packages when running as root (CI, dev boxes).
deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	    systemctl disable --now docker-registry >/dev/null 2>&1 || true; \
	  else \
	    echo "warning: missing Debian packages (run as root to install):$$missing"; \
	  fi; \
	fi

up: setup
	$(BIN)/fluxbus up

demo: setup
	$(BIN)/python -m fluxbus_cli.demo

# The demo, kept running to experiment with (Ctrl-C stops it).
play: setup
	$(BIN)/python -m fluxbus_cli.demo --keep-running

test: setup
	$(BIN)/pytest -q

# ruff, import-linter and mypy over the code; actionlint and zizmor (offline: no
# GitHub API) over .github/workflows. Any finding fails.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/actionlint
	$(BIN)/zizmor --offline --quiet .github/workflows

# Every benchmark, then bench/RESULTS.md; QUICK=1: a small version of each (minutes).
bench: setup
	$(BIN)/python -m bench $(if $(QUICK),--quick)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
