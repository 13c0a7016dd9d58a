# galyleo: `make demo` runs a real session on a local test cluster; `make test` runs every suite.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
HARNESS_ROOT ?= /srv/galyleo-test

.PHONY: all venv lint lint-scripts pyz harness harness-down test test-fast test-py test-bats demo demo-ssh demo-shell bench clean

all: pyz

$(VENV)/.done: requirements-dev.txt
	$(PY) -m venv $(VENV)
	$(VPY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

venv: $(VENV)/.done

lint: venv
	$(VENV)/bin/ruff check galyleo tests/py
	$(VENV)/bin/mypy

# Render representative job scripts with `generate` and shellcheck them (also for a site's CI:
# GALYLEO=... names a built pyz, GALYLEO_CONFIG the site file).
lint-scripts: venv
	$(VPY) build/lint_scripts.py --shellcheck $(VENV)/bin/shellcheck $(if $(GALYLEO),--galyleo '$(GALYLEO)')

pyz: venv
	$(VPY) build/build_pyz.py --out dist/galyleo.pyz

# stdin stays for the target that asked (demo-shell's commands): the set-up never reads it.
harness:
	bash tests/harness/up </dev/null

harness-down:
	bash tests/harness/down

# Every suite: lint, unit and render tests, shellcheck, bats, pyz on every Python, real cluster end to end.
test: venv pyz harness lint test-py test-bats

# The stand-in's own tests run on the proxy host, next to Apache (see that file).
test-py: venv
	$(VPY) -m pytest -q -ra tests/py
	tests/harness/on proxy env SATELLITE_DIAL=127.0.0.1 $(VPY) -m pytest -q -ra -p no:cacheprovider tests/harness/test_satellite_standin.py

test-bats: venv
	bash tests/bats/run

# Without the cluster: quick local loop for developers.
test-fast: venv lint
	$(VPY) -m pytest -q -m "not cluster" tests/py
	bash tests/bats/run

demo: venv pyz harness
	bash tests/harness/demo

# The same in ssh-tunnel mode (no proxy): prints the ssh command to run here, the laptop's key included.
demo-ssh: venv pyz harness
	bash tests/harness/demo ssh

# A login shell on the cluster's login node as the demo user: galyleo on PATH, the site config in effect.
demo-shell: venv pyz harness
	bash tests/harness/demo-shell

bench: venv pyz harness
	$(VPY) bench/run.py

clean:
	rm -rf dist build/work .pytest_cache .mypy_cache .ruff_cache
