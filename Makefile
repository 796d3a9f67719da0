# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
# Re-install only when a requirements file changes (the stamp is newer than both).
STAMP := $(VENV)/.installed

.PHONY: run test bench lint package clean chromium playground

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

# Demo mode is explicit (WATCHWORD_DEMO=true): `make run` asks for it only when no app registration is configured
# (neither in the environment nor in .env).
CONFIGURED := $(or $(WATCHWORD_CLIENT_ID),$(CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTID),$(shell grep -s '^WATCHWORD_CLIENT_ID=.' .env))
run: $(STAMP) playground
	$(if $(CONFIGURED),,WATCHWORD_DEMO=$${WATCHWORD_DEMO:-true}) $(PY) app.py $(ARGS)

# In one process. PYTEST_ARGS="-n 2 --dist loadfile" runs it on two pytest-xdist workers, each test file whole on
# one, in about half the time; not the default until it has been as reliable as one process (README: Tests).
test: $(STAMP) chromium playground
	$(PY) -m pytest $(PYTEST_ARGS)

# The console's browser tests drive Debian's Chromium: installed here when missing and we are root; otherwise
# those tests skip and say how to install it.
CHROMIUM := /usr/bin/chromium
chromium:
	@if [ -x $(CHROMIUM) ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "make: installing Chromium from Debian for the browser tests" >&2; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	    || echo "make: could not install Chromium; the browser tests will skip" >&2; \
	else echo "make: $(CHROMIUM) is missing; the browser tests will skip (as root: apt-get install -y chromium)" >&2; fi

# axe-core, the browser tests' accessibility scan, comes the same way (pinned beside it, never from a CDN).
# The Microsoft 365 Agents Playground (npm, pinned in package.json and package-lock.json): the Teams-like client
# `make run` opens on the bot in demo mode, and the Playground tests' client. Installed into ./node_modules when
# missing and npm is there (`npm ci`: exactly the lock file, which it never rewrites); otherwise make run starts
# without it and those tests skip.
PLAYGROUND := node_modules/@microsoft/m365agentsplayground/cli.js
AXE := node_modules/axe-core/axe.min.js
playground:
	@if [ -f $(PLAYGROUND) ] && [ -f $(AXE) ]; then :; \
	elif command -v npm >/dev/null 2>&1; then \
	  npm ci --no-audit --no-fund --loglevel=error \
	    || echo "make: could not install the Agents Playground; make run starts without it, its tests skip" >&2; \
	else echo "make: npm is missing: no Agents Playground (install Node.js 20 with npm); its tests will skip" >&2; fi

bench: $(STAMP)
	$(PY) -m bench

lint: $(STAMP)
	$(PY) -m ruff check .

# The Teams app package (build/watchword-teams.zip); options go in ARGS, e.g. ARGS="--version 1.0.1".
package: $(STAMP)
	$(PY) -m manifest $(ARGS)

clean:
	rm -rf $(VENV) var build .pytest_cache
