# Developer tasks. `make demo` and `make test` are the two commands of the README.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_EVENTS ?= 1000000

.PHONY: setup demo test lint bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# The main job on realistic data: a month of dirty events, one gzip file per day.
demo: setup
	rm -rf data/demo warehouse
	$(BIN)/eventpipe generate --events $(DEMO_EVENTS) --days 30 --per-day --gzip --dirty --out data/demo
	$(BIN)/eventpipe ingest --source data/demo --warehouse warehouse
	$(BIN)/eventpipe query --warehouse warehouse \
		"SELECT count(*) AS bronze_rows, count(DISTINCT _source_file) AS files FROM bronze_events"

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

test: setup lint
	$(BIN)/pytest

bench: setup
	$(BIN)/python benchmarks/ingest_bench.py

clean:
	rm -rf $(VENV) data warehouse .pytest_cache .ruff_cache
