# Minga: `make run` serves the demo, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export FLASK_APP := coop:create_app

.PHONY: run demo-season test install translations migrate seed lint bench bench-deps e2e-deps lighthouse clean

$(BIN)/.installed: requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

install: $(BIN)/.installed

translations: install
	$(BIN)/pybabel compile --use-fuzzy -d translations

migrate: install
	$(BIN)/flask db upgrade heads

seed: migrate
	$(BIN)/flask seed-demo

# The development server and the Stripe sandbox live in devtools/, outside the app's package.
run: translations seed
	$(BIN)/python -m devtools.devserver

# A scripted season on the demo data, against the local Stripe sandbox without a Stripe key.
demo-season: translations seed
	$(BIN)/python -m devtools.demo_season

# The whole suite, the real-browser tests of tests/e2e included (in both passes: about a minute
# each): first on SQLite (TEST_DATABASE_URL emptied for it, even when .ci/run exports it), then
# on TEST_DATABASE_URL's PostgreSQL when it is set. Their browser and axe-core come from
# e2e-deps; without them the browser tests fail.
# TEST_WORKERS pytest-xdist processes share the tests, a module at a time, each worker on its
# own database; the browser suite goes whole to one worker (tests/conftest.py).
TEST_WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadscope
test: translations e2e-deps
	TEST_DATABASE_URL= $(PYTEST) tests
	@if [ -n "$$TEST_DATABASE_URL" ]; then \
		echo "== again on $$TEST_DATABASE_URL =="; \
		$(PYTEST) tests; \
	fi

bench: install
	$(BIN)/python -m bench.run_all

# Browser tools: Debian's chromium (no browser download from anywhere else) and the pinned npm
# packages of bench/package.json (lighthouse, axe-core) in bench/node_modules.
bench-deps:
	test -x /usr/bin/chromium || { apt-get update && apt-get install -y chromium; }
	test -x bench/node_modules/.bin/lighthouse -a -f bench/node_modules/axe-core/axe.min.js || \
		npm install --prefix bench --no-audit --no-fund

# What tests/e2e needs: the same two (Playwright for Python comes from requirements-dev.txt and
# drives /usr/bin/chromium; it never downloads a browser). Fails, and so stops `make test`, if
# chromium cannot be installed.
e2e-deps: bench-deps
	test -x /usr/bin/chromium
	test -f bench/node_modules/axe-core/axe.min.js

# Lighthouse (mobile, throttled) on the farmer pages and the catalog: bench/lighthouse-results.txt
lighthouse: translations bench-deps
	$(BIN)/python -m bench.lighthouse

clean:
	rm -rf $(VENV) instance/*.sqlite
