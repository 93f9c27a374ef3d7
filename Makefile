# The two commands a new user needs (see README): `make run` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: run test lint

$(VENV)/.installed: requirements.txt requirements-dev.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -r requirements-dev.txt
	touch $@

# Local endpoint (azmlinfsrv) + dashboard; trains a model on generated data first if none exists.
run: $(VENV)/.installed
	$(PY) -m deploy.run_local

# Lint, then the whole test suite (real endpoint process, real Streamlit app, headless Chromium).
test: $(VENV)/.installed
	$(PY) -m ruff check .
	$(PY) -m pytest
