# The two commands a new user needs (see README): `make run` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: run test tools

$(VENV)/.installed: requirements.txt requirements-dev.txt
	python3 -m venv $(VENV)
	@echo "installing pinned packages into $(VENV) (log: $(VENV)/pip.log)"
	@$(PY) -m pip install --disable-pip-version-check -r requirements.txt -r requirements-dev.txt \
		> $(VENV)/pip.log 2>&1 || (tail -40 $(VENV)/pip.log; exit 1)
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

# Lint and format check, then the whole test suite (real endpoint process, real Streamlit app, headless Chromium).
test: $(VENV)/.installed tools
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest
