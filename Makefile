# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
# Re-install only when a requirements file changes (the stamp is newer than both).
STAMP := $(VENV)/.installed

.PHONY: run test bench lint package clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

run: $(STAMP)
	$(PY) app.py $(ARGS)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) -m bench

lint: $(STAMP)
	$(PY) -m ruff check .

# The Teams app package (build/watchword-teams.zip); options go in ARGS, e.g. ARGS="--version 1.0.1".
package: $(STAMP)
	$(PY) -m manifest $(ARGS)

clean:
	rm -rf $(VENV) var build .pytest_cache
