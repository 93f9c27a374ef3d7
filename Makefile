# The two commands a new user needs (see README): `make run` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: run test

$(VENV)/.installed: requirements.txt requirements-dev.txt
	python3 -m venv $(VENV)
	@echo "installing pinned packages into $(VENV) (log: $(VENV)/pip.log)"
	@$(PY) -m pip install --disable-pip-version-check -r requirements.txt -r requirements-dev.txt \
		> $(VENV)/pip.log 2>&1 || (tail -40 $(VENV)/pip.log; exit 1)
	touch $@

# Local endpoint (azmlinfsrv) + dashboard; trains a model on the bundled real CDC extract first if none exists.
run: $(VENV)/.installed
	$(PY) -m deploy.run_local

# Lint and format check, then the whole test suite (real endpoint process, real Streamlit app, headless Chromium).
test: $(VENV)/.installed
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest
