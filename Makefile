# The two commands of the README: `make demo` (the main job) and `make test` (the tests).
# Both create or reuse .venv/ and install the project into it.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.tvau-installed

# Keep every run offline and quiet (STACK.md: telemetry).
export DO_NOT_TRACK := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export MLFLOW_DISABLE_TELEMETRY := true
export DVC_NO_ANALYTICS := 1
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: demo test install bench clean-venv system-deps

install: $(STAMP)

# constraints.txt pins the whole resolved set (pip freeze) so installs are fast and repeatable.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	# deepspeed is an sdist; DS_BUILD_OPS=0 skips compiling its C++/CUDA ops at install time.
	DS_BUILD_OPS=0 $(PY) -m pip install --quiet -c constraints.txt -e ".[all,dev]"
	touch $(STAMP)

# OS packages the tests need that pip cannot provide: Debian's chromium renders the report page
# for its screenshot test. Installed only when missing (root, or sudo).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
system-deps:
	@test -x /usr/bin/chromium || { echo "installing chromium (Debian package) for the report screenshot test"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends chromium; }

test: $(STAMP) system-deps
	$(VENV)/bin/pytest -q

demo: $(STAMP)
	$(VENV)/bin/tvau demo

bench: $(STAMP)
	$(PY) -m benchmarks

clean-venv:
	rm -rf $(VENV)
