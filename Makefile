# The two commands of the README: `make demo` (the main job) and `make test` (the tests).
# Both create or reuse .venv/ and install the project into it.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.tvau-installed

# Keep every run offline and quiet: each of these tools otherwise sends usage telemetry.
export DO_NOT_TRACK := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export MLFLOW_DISABLE_TELEMETRY := true
export DVC_NO_ANALYTICS := 1
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: demo test test-fast install bench clean-venv system-deps

install: $(STAMP)

# constraints.txt pins the whole resolved set (pip freeze) so installs are fast and repeatable.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	# deepspeed is an sdist; DS_BUILD_OPS=0 skips compiling its C++/CUDA ops at install time.
	DS_BUILD_OPS=0 $(PY) -m pip install --quiet -c constraints.txt -e ".[all,dev]"
	touch $(STAMP)

# OS packages the tests need that pip cannot provide, installed only when missing (root, or sudo):
# Debian's chromium renders the report pages for their screenshot tests, and docker-compose validates
# infra/docker-compose.yml (`docker-compose config`; no Docker daemon is needed).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT := DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get
system-deps:
	@missing=""; test -x /usr/bin/chromium || missing="chromium"; \
	  command -v docker-compose >/dev/null || missing="$$missing docker-compose"; \
	  if [ -n "$$missing" ]; then echo "installing Debian packages:$$missing"; \
	    $(APT) update -qq && $(APT) install -y -qq --no-install-recommends $$missing; fi

# ruff first: a lint finding fails fast, before the slower tests.
test: $(STAMP) system-deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest -q

# The quick loop while editing: no servers, no multi-process training, no end-to-end pipeline runs
# (tests marked `slow` or `services`); `make test` runs everything.
test-fast: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest -q -m "not slow and not services"

demo: $(STAMP)
	$(VENV)/bin/tvau demo

bench: $(STAMP)
	$(PY) -m benchmarks

clean-venv:
	rm -rf $(VENV)
