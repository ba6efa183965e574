# Imaging Advisor: `make run` and `make test` set everything up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := requirements.lock
# Two processes (pytest-xdist) on this two-core machine; tests that must not overlap are grouped
# in tests/conftest.py (SERIAL_GROUPS). PYTEST_XDIST= runs everything in one process.
PYTEST_XDIST ?= -n 2 --dist loadgroup
# Coverage of decisions/, the lines not covered listed by file ([tool.coverage] in pyproject.toml).
# Its floor (fail_under there) holds for the whole suite only: a part (PYTEST_ARGS) covers less, so
# it is reported and not held to it. COVERAGE= runs without measuring.
COVERAGE ?= --cov=decisions --cov-report=term-missing:skip-covered $(if $(PYTEST_ARGS),--cov-fail-under=0)

.PHONY: install lock run test lint check migrate clean bench

# Installs exactly the versions in requirements.lock (checked against its hashes), then the
# project itself without resolving anything again; again whenever pyproject.toml or the lock change.
$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

# Resolves pyproject.toml's dependencies (with the dev extra) with uv, keeping the versions already
# in the lock where they still fit, and writes them with the hashes of every file PyPI has for them
# (every platform and Python, not only this machine's); then `make install` installs them.
# uv lives in a venv of its own: it is needed only here, not to run or test the app.
LOCK_TOOLS := .lock-tools
lock:
	test -x $(LOCK_TOOLS)/bin/uv || ($(PYTHON) -m venv $(LOCK_TOOLS) && $(LOCK_TOOLS)/bin/pip install --quiet 'uv>=0.5')
	$(LOCK_TOOLS)/bin/uv pip compile pyproject.toml --extra dev --generate-hashes --universal \
	  --python-version 3.11 --output-file $(LOCK)

migrate: install
	DEBUG=true $(BIN)/python manage.py migrate --noinput
	DEBUG=true $(BIN)/python manage.py kb_bootstrap

run: migrate
	CDS_HOOKS_VERIFY_JWT=false CDS_HOOKS_CORS_ORIGINS=https://sandbox.cds-hooks.org DEBUG=true $(BIN)/python manage.py runserver 127.0.0.1:8000

# Browser tests need Debian's chromium: installed here when missing and possible (root with
# apt), otherwise they are skipped with a notice (CI=true turns the skip into a failure).
test: install
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Installing Debian's chromium for the browser tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "WARNING: /usr/bin/chromium is missing and cannot be installed: browser tests will be SKIPPED"; \
	  fi; \
	fi
	DEBUG=true $(BIN)/pytest $(PYTEST_XDIST) $(COVERAGE) $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	DEBUG=true $(BIN)/mypy
	$(BIN)/lint-imports

check: install
	DEBUG=true $(BIN)/python manage.py check
	DEBUG=true $(BIN)/python manage.py makemigrations --check --dry-run
	DEBUG=false SECRET_KEY=check-deploy-only-$$(date +%s)-not-a-real-key-0123456789abcdef \
		ALLOWED_HOSTS=advisor.example.org $(BIN)/python manage.py check --deploy --fail-level WARNING

bench: install
	$(BIN)/python bench/run.py
	$(BIN)/python bench/cds_hooks.py
	$(BIN)/python bench/growth.py

clean:
	rm -rf $(VENV) staticfiles
