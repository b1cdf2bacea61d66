# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

.PHONY: run test lint install migrate seed worker web clean

# Bytecode compiled once here: where PYTHONDONTWRITEBYTECODE is set (as here),
# every process would otherwise compile Django and the rest at start (3.4 s
# against 1.2 for manage.py check), and the tests start many.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade uv
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

# Local run: DEBUG on, SQLite and the filesystem broker unless DATABASE_URL and
# REDIS_URL say otherwise. seed_demo keeps the demo customers that exist, so
# the data is seeded once however often this runs.
run: export DEBUG ?= true
run: install
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py seed_demo
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho start

# Files in git over 1 MB (generated data, dumps, spreadsheets) fail the lint:
# the history keeps them forever, and every clone downloads them.
MAX_FILE_BYTES = 1048576

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@git ls-files -z 2>/dev/null | xargs -0 -r stat -c '%s %n' -- 2>/dev/null \
	  | awk '$$1 > $(MAX_FILE_BYTES) { sub(/^[0-9]+ /, ""); print "Too large for git (over $(MAX_FILE_BYTES) bytes): " $$0; big = 1 } END { exit big }'

test: install lint
	$(BIN)/python manage.py makemigrations --check --dry-run --settings=cim.settings_test
	$(BIN)/pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) var
