# Two commands do everything on a fresh Debian machine:
#   make run    install, migrate, seed the demo district, serve on http://127.0.0.1:$(PORT)
#   make test   install the test needs too (Chromium, PostgreSQL, poppler) and run every test
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 5000
HOST ?= 127.0.0.1
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# CJK fonts and HarfBuzz subsetting for WeasyPrint (without libharfbuzz-subset0
# WeasyPrint falls back to slow fontTools subsetting), plus Pango.
APT_RUN := fonts-noto-cjk libharfbuzz-subset0 libpango-1.0-0 libpangoft2-1.0-0 python3-venv
APT_TEST := chromium poppler-utils postgresql faketime redis-server nginx-light
export PATROL_BASE_URL ?= http://$(HOST):$(PORT)

.PHONY: run test install lock lint system-deps test-system-deps translations translations-update serve-prep bench bench-scale

define apt_install
	@missing=$$(for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then echo "Installing system packages: $$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; fi
endef

system-deps:
	$(call apt_install,$(APT_RUN))

test-system-deps: system-deps
	$(call apt_install,$(APT_TEST))

# Installs are reproducible: exact versions from requirements.lock (`make lock` after
# changing pyproject.toml's dependencies), then the project itself without resolving.
$(VENV)/.installed: pyproject.toml requirements.lock
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps -e .
	touch $@

lock: $(VENV)/.installed
	$(PY) -m pip install -q uv
	$(VENV)/bin/uv pip compile pyproject.toml --extra test --python-version 3.11 --no-header \
	  --quiet -o requirements.lock

install: system-deps $(VENV)/.installed translations

translations: $(VENV)/.installed
	@$(VENV)/bin/pybabel -q compile -d patrol/translations

# Re-extract messages from the code and templates and merge them into every catalogue;
# then translate the new entries in patrol/translations/*/LC_MESSAGES/messages.po.
translations-update: $(VENV)/.installed
	$(VENV)/bin/pybabel -q extract -F babel.cfg -k _l -k lazy_gettext --add-location=file --sort-output \
	  --project=patrol -o patrol/translations/messages.pot .
	$(VENV)/bin/pybabel -q update -i patrol/translations/messages.pot -d patrol/translations \
	  --no-fuzzy-matching --ignore-obsolete

serve-prep: install
	$(VENV)/bin/patrol db upgrade
	$(VENV)/bin/patrol seed-demo --if-empty
	@$(PY) -m patrol.demo_banner

# The job worker (notifications, poster batches, imports, exports; docs/jobs.md) runs
# beside gunicorn on the embedded queue (var/queue.db), never inside a web worker; it
# stops with the server.
run: serve-prep
	@$(VENV)/bin/patrol worker & worker=$$!; trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
	$(VENV)/bin/gunicorn -c python:patrol.gunicorn_conf --bind $(HOST):$(PORT) "patrol:create_app()"

# Lint and type check first: CI (.ci/run → make test) fails on either.
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check patrol tests bench scripts && $(VENV)/bin/mypy patrol

test: test-system-deps install lint
	@PG_URL=$$(bash scripts/pg-test-db.sh 2>/dev/null) || PG_URL=""; \
	if [ -n "$$PG_URL" ]; then echo "PostgreSQL tests use $$PG_URL"; else echo "No PostgreSQL server: PG tests will be skipped"; fi; \
	PATROL_TEST_PG_URL="$$PG_URL" $(PY) -m pytest -q $(PYTEST_ARGS)

bench: install
	$(PY) bench/lists.py

# Scale-out on one machine (issue 16): PostgreSQL, Redis, an S3-compatible server, three
# app instances and two workers behind nginx, all from deploy/, on loopback; about 4 minutes.
bench-scale: test-system-deps install
	$(PY) bench/scale_out.py
