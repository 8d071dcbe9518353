# Two commands: `make run` starts the platform, `make test` passes the tests.
# Each creates .venv and installs what it needs on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# test worker processes (pytest-xdist, idle workers steal queued tests): three on the CI
# machine's two cores, because about a third of the suite's time is tests waiting (servers
# starting, retries backing off, a receiver down for a minute) that a third worker fills;
# 0 runs the suite in one process. A test that hangs fails after 10 minutes with every
# thread's stack (pytest-timeout, pyproject.toml) instead of stalling the run.
PYTEST_WORKERS ?= 3

.PHONY: run test lint typecheck clean conformance bench

$(STAMP): pyproject.toml tests/interop/package-lock.json
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	# independent clients the tests run against us (tests/interop; needs Node.js and npm)
	if command -v npm >/dev/null 2>&1; then npm ci --silent --no-audit --no-fund --prefix tests/interop; fi
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/smartregion serve --demo --anonymous-writes

test: $(STAMP)
	$(BIN)/ruff check smartregion tests benchmarks scripts
	$(BIN)/ruff format --check smartregion tests benchmarks scripts
	$(BIN)/mypy
	$(BIN)/pytest -n $(PYTEST_WORKERS) $(if $(filter 0,$(PYTEST_WORKERS)),,--dist worksteal)

lint: $(STAMP)
	$(BIN)/ruff check smartregion tests benchmarks scripts
	$(BIN)/ruff format --check smartregion tests benchmarks scripts

typecheck: $(STAMP)
	$(BIN)/mypy

conformance: $(STAMP)
	scripts/conformance.sh

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
