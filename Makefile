# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
ADMIN_EMAIL ?= admin@confrere.local
FUZZ_EXAMPLES ?= 100
# Benchmarks (docs/benchmarks.md): a database of their own, emptied by every run.
BENCH_PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test_bench
# The web client (web/, docs/web-client.md) builds where Node.js is installed; its tests need it.
NODE := $(shell command -v node 2>/dev/null)
WEB_DEPS := web/node_modules/.package-lock.json
# Redocly's recommended lint of the contract, pinned in tools/openapi-lint/package.json (npm).
LINT_DEPS := tools/openapi-lint/node_modules/.package-lock.json
REDOCLY := tools/openapi-lint/node_modules/.bin/redocly
# The browser end-to-end tests (tests/test_web_e2e.py) drive this Chromium; without it they are skipped.
CHROMIUM := /usr/bin/chromium
# `make run HOST=0.0.0.0 PORT=8080`: where the development server listens.
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: venv run test test-pg test-multinode lint lint-openapi format openapi clean web web-screenshots fuzz bench \
	bench-pg bench-scale bench-scale-pg wrk

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python 3.11+ is required"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# The tokens' issuer follows the address, unless CONFRERE_PUBLIC_URL says otherwise.
run: export CONFRERE_PUBLIC_URL ?= http://$(HOST):$(PORT)
run: $(STAMP) $(if $(NODE),web)
	$(BIN)/confrere migrate
	$(BIN)/confrere create-admin --email $(ADMIN_EMAIL) --if-missing
	$(BIN)/confrere serve --host $(HOST) --port $(PORT)

test: lint $(if $(NODE),web lint-openapi)
	@test -n "$(NODE)" || echo "*** WARNING: Node.js is missing: the OpenAPI lint, the web client build and its tests are SKIPPED ***"
	@test -x $(CHROMIUM) || echo "*** WARNING: $(CHROMIUM) is missing: the browser end-to-end tests will be SKIPPED (apt-get install chromium) ***"
	$(BIN)/python -m pytest -q -rs $(PYTEST_ARGS)
	@test -x $(CHROMIUM) || echo "*** WARNING: the browser end-to-end tests were SKIPPED: $(CHROMIUM) is missing (apt-get install chromium) ***"

# Contract fuzzing, deeper than the few examples `make test` runs (docs/reliability.md). On PostgreSQL:
# CONFRERE_TEST_DATABASE_URL=$(PG_URL) make fuzz
fuzz: $(STAMP)
	CONFRERE_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest -q -s tests/test_fuzz.py

test-pg: $(STAMP)
	CONFRERE_TEST_DATABASE_URL=$(PG_URL) $(MAKE) test

# Several nodes as one service (docs/deployment.md): three API processes, an audit sequencer, PostgreSQL and an
# S3-compatible server (moto), with a longer load than the run `make test` does on PostgreSQL.
MULTINODE_LOAD_SECONDS ?= 20
test-multinode: $(STAMP)
	CONFRERE_TEST_DATABASE_URL=$(PG_URL) CONFRERE_MULTINODE_LOAD_SECONDS=$(MULTINODE_LOAD_SECONDS) \
		$(BIN)/python -m pytest -q tests/test_multinode.py tests/test_shared_limits.py tests/test_startup.py \
		tests/test_blobstore.py

# wrk 4.1, the load generator of the benchmarks: `apt-get install -y wrk` on Debian.
wrk:
	@command -v wrk >/dev/null || { echo "the benchmarks need wrk: apt-get install -y wrk"; exit 1; }

# A few minutes on SQLite at 10,000 cases; BENCH_ARGS passes options (python -m bench.run --help).
bench: $(STAMP) wrk
	$(BIN)/python -m bench.run $(BENCH_ARGS)

bench-pg: $(STAMP) wrk
	$(BIN)/python -m bench.run --database-url $(BENCH_PG_URL) $(BENCH_ARGS)

# 10,000 -> 100,000 -> 1,000,000 cases and 1,000,000 audit records: about an hour each.
bench-scale: $(STAMP) wrk
	$(BIN)/python -m bench.run --scale full $(BENCH_ARGS)

bench-scale-pg: $(STAMP) wrk
	$(BIN)/python -m bench.run --scale full --database-url $(BENCH_PG_URL) $(BENCH_ARGS)

# Style, the layers of DESIGN.md as import-linter contracts, and types (mypy), all set in pyproject.toml.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

openapi: $(STAMP)
	$(BIN)/confrere openapi

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache web/dist web/node_modules tools/openapi-lint/node_modules

$(LINT_DEPS): tools/openapi-lint/package.json tools/openapi-lint/package-lock.json
	cd tools/openapi-lint && npm ci --no-audit --no-fund
	touch $(LINT_DEPS)

lint-openapi: $(LINT_DEPS)
	$(REDOCLY) lint --extends=recommended openapi/openapi.json

# npm ci installs exactly package-lock.json; the bundle is built, never committed.
$(WEB_DEPS): web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund
	touch $(WEB_DEPS)

web: $(WEB_DEPS)
	cd web && node build.mjs

# Refreshes docs/screenshots/ from the browser tests (the X-Wing run, the product tour, the trust screens and
# the circles, the registration of a nurse, a circle grant).
web-screenshots: $(STAMP) web
	CONFRERE_WEB_SCREENSHOTS=docs/screenshots $(BIN)/python -m pytest -q tests/test_web_e2e.py tests/test_web_product.py \
		tests/test_web_trust.py tests/test_web_circles.py tests/test_web_register.py tests/test_web_circle_grant.py \
		-k "xwing or product or trust_in_the_browser or share_a_circle or adeli or grant"
