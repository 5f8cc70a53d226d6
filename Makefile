# Developer tasks. `make demo` and `make test` are the two commands of the README.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_EVENTS ?= 1000000

# Debian's Chromium for the report's browser tests; sudo unless we are root
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup browser java demo test lint bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,airflow,spark]'
	touch $@

# The main job on realistic data: a month of dirty events, one gzip file per day,
# through bronze, silver and gold, then CSV exports.
demo: setup
	rm -rf data/demo warehouse exports
	$(BIN)/eventpipe generate --events $(DEMO_EVENTS) --days 30 --per-day --gzip --dirty --out data/demo
	$(BIN)/eventpipe run --source data/demo --warehouse warehouse
	$(BIN)/eventpipe export --warehouse warehouse --out exports
	$(BIN)/eventpipe query --warehouse warehouse "SELECT * FROM funnel ORDER BY level, step_number"

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

browser:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }

# Java for the Spark engine's tests (PySpark starts a JVM)
java:
	@command -v java >/dev/null || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq openjdk-17-jre-headless >/dev/null; }

test: setup lint browser java
	$(BIN)/pytest

bench: setup
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/ingest_bench.py
	$(BIN)/python benchmarks/compare_bench.py $(BENCH_ARGS)
	$(BIN)/python benchmarks/report_bench.py
	$(BIN)/python benchmarks/incremental_bench.py

clean:
	rm -rf $(VENV) data warehouse .pytest_cache .ruff_cache
