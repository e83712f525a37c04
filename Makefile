# newsradar — everything a fresh machine needs comes from here (Python venv from PyPI, Kafka from Maven Central).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CONFIG ?= config/default.yaml
PYTEST_ARGS ?=

.PHONY: setup run demo test test-fast kafka-fetch browser postgres fonts lint bench clean

# setup.py and the C source: `pip install -e .` also compiles grouping's core (processors/grouping/_core.c).
$(BIN)/newsradar: pyproject.toml setup.py processors/grouping/_core.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,bench,dev]'
	touch $@

setup: $(BIN)/newsradar   ## create .venv with the project and its test tools

run: setup fonts          ## run the daemon (CONFIG=config/demo.yaml for the offline try-out)
	$(BIN)/newsradar --config $(CONFIG) run

demo: setup fonts         ## one offline sweep of the demo sources, then today's demo digest
	$(BIN)/newsradar --config config/demo.yaml run --once
	$(BIN)/newsradar --config config/demo.yaml digest --send

kafka-fetch:              ## download Apache Kafka's jars through Maven (cached in ~/.m2 and deploy/kafka/lib)
	bash deploy/kafka/fetch.sh

browser:                  ## Debian's headless Chromium, chromedriver and CJK fonts for the browser tests (when missing)
	bash deploy/browser/ensure.sh

fonts:                    ## Debian's Noto Sans CJK for the digest chart's Korean labels (when missing; says so without root)
	bash deploy/fonts/ensure.sh

postgres:                 ## Debian's PostgreSQL server binaries (initdb, pg_ctl) for the state-store tests (when missing)
	bash deploy/postgres/ensure.sh

test: setup kafka-fetch browser postgres  ## every test; Kafka and PostgreSQL tests start (and stop) real servers
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: setup postgres ## tests without the Kafka broker
	$(BIN)/python -m pytest -m "not kafka" $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check newsradar collectors processors notifiers tests bench
	$(BIN)/mypy newsradar collectors processors notifiers

bench: setup              ## benchmarks print figures and ratios; they assert nothing
	for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b --quick || exit 1; done

clean:
	rm -rf var .pytest_cache
