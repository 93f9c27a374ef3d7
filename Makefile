# The two commands a new user needs (see README): `make run` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --disable-pip-version-check

.PHONY: run test test-fast lint tools

# What the product needs, nothing more: `make run` never installs the test tools.
$(VENV)/.installed: requirements.txt pyproject.toml
	python3 -m venv $(VENV)
	@echo "installing pinned runtime packages into $(VENV) (log: $(VENV)/pip.log)"
	@$(PIP) -r requirements.txt > $(VENV)/pip.log 2>&1 || (tail -40 $(VENV)/pip.log; exit 1)
	@$(PIP) --no-deps -e . >> $(VENV)/pip.log 2>&1 || (tail -40 $(VENV)/pip.log; exit 1)
	touch $@

# The test and lint tools on top (playwright, schemathesis, hypothesis, ruff, duckdb, the sign-in mock, ...).
$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	@echo "installing pinned test tools into $(VENV) (log: $(VENV)/pip-dev.log)"
	@$(PIP) -r requirements.txt -r requirements-dev.txt > $(VENV)/pip-dev.log 2>&1 || (tail -40 $(VENV)/pip-dev.log; exit 1)
	touch $@

# Local endpoint (azmlinfsrv) + dashboard; trains a model on the bundled real CDC extract first if none exists.
run: $(VENV)/.installed
	$(PY) -m deploy.run_local

# Static checkers with pins that clash with the project's (checkov wants older pycep-parser and packaging),
# and Azurite (the Azure Storage emulator, npm): each in its own folder under .tools/, installed once.
CHECKOV := .tools/checkov/bin/checkov
AZURITE := .tools/azurite/node_modules/.bin/azurite-blob
$(CHECKOV): requirements-checkov.txt
	python3 -m venv .tools/checkov
	@.tools/checkov/bin/python -m pip install --disable-pip-version-check -r requirements-checkov.txt \
		> .tools/checkov-pip.log 2>&1 || (tail -40 .tools/checkov-pip.log; exit 1)
	touch $@
$(AZURITE):
	mkdir -p .tools/azurite
	cd .tools/azurite && npm install --no-audit --no-fund --silent azurite@3.37.0
tools: $(CHECKOV) $(AZURITE)

# Lint (ruff, incl. complexity C901 <= 10) and format check, the arrows between the packages (import-linter),
# and types (mypy; config in pyproject.toml).
lint: $(VENV)/.installed-dev
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

# The tests run in PYTEST_WORKERS processes (pytest-xdist): one per physical core, at most 4 (2 on the project's
# machine); `make test PYTEST_WORKERS=0` runs them in this one. loadgroup keeps the tests that share a module
# fixture, or the browser tests' app, on one worker (tests/conftest.py).
PYTEST_WORKERS ?= auto
PYTEST_ARGS := -n $(PYTEST_WORKERS) --maxprocesses 4 --dist loadgroup

# Lint, then the whole test suite (real endpoint process, real Streamlit app, headless Chromium).
test: lint tools
	$(PY) -m pytest $(PYTEST_ARGS)

# For local work: the same without the headless-Chromium tests (marker `browser`); CI runs `make test`.
test-fast: lint tools
	$(PY) -m pytest $(PYTEST_ARGS) -m "not browser"
