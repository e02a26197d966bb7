# tierkeeper: the two commands a newcomer needs are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup run test check deps mutation bench clean constraints

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

## setup: virtual environment with the service and its tools
setup: $(STAMP)

## run: start the service on embedded defaults (SQLite, Fernet, configs under ./var)
run: setup
	$(BIN)/tierkeeper serve

## deps: the real components the tests talk to that PyPI does not ship
deps: setup
	bash scripts/install-openclaw.sh >/dev/null
	bash scripts/install-chromium.sh
	bash scripts/install-pgbouncer.sh
	bash scripts/install-axe.sh

## check: lint, format, types, layering
check: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

## test: every check and every test (unit, contract, integration, http, browser)
test: deps check
	$(BIN)/pytest

## mutation: mutmut on domain/ against the unit tests; prints the score
mutation: setup
	rm -rf mutants
	$(BIN)/mutmut run --max-children 2 || true
	$(BIN)/python scripts/mutation_score.py

## bench: the admission benchmark on embedded PostgreSQL (see docs/benchmarks.md)
bench: setup
	$(BIN)/python bench/bench_admission.py

## constraints: pin every installed version again (after a change to pyproject.toml)
constraints: setup
	{ sed -n '1,2p' constraints.txt; $(BIN)/python -m pip freeze --exclude-editable \
	  | grep -v '^granian=='; } > constraints.txt.new && mv constraints.txt.new constraints.txt

clean:
	rm -rf $(VENV) mutants .cache .pytest_cache .mypy_cache .ruff_cache
