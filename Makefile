# Everything goes through .venv so a fresh clone needs only python3.11 and make.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP_DEV := $(VENV)/.installed-dev
STAMP_DEMO := $(VENV)/.installed-demo
DEMO_DB ?= $(CURDIR)/demo.sqlite
DEMO_ORDERS ?= 20000
N ?= 1000000

.PHONY: demo test lint bench bench-bulk clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP_DEMO): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[demo]'
	touch $@

$(STAMP_DEV): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@ $(STAMP_DEMO)

# A fresh demo database each time (about 5 s): the live payments of `demo live`
# pay orders that are still pending, which an earlier run has already paid.
# KEEP_DEMO=1 reopens the existing one instead.
demo: $(STAMP_DEMO)
	@if [ -z "$(KEEP_DEMO)" ] || [ ! -f $(DEMO_DB) ]; then \
		rm -f $(DEMO_DB) $(DEMO_DB)-wal $(DEMO_DB)-shm; \
		$(BIN)/pulse --db sqlite:///$(DEMO_DB) demo seed --orders $(DEMO_ORDERS) --seed 42; \
	fi
	$(BIN)/pulse --db sqlite:///$(DEMO_DB) --as demo demo live

lint: $(STAMP_DEV)
	$(BIN)/ruff check pulse_tui tests benchmarks
	$(BIN)/ruff format --check pulse_tui tests benchmarks
	$(BIN)/mypy pulse_tui/domain pulse_tui/services pulse_tui/gateways pulse_tui/mail

test: lint
	$(BIN)/pytest

bench: $(STAMP_DEV)
	$(PY) -m benchmarks.run --orders $(N)

# Bulk actions and export (issue 6): 10,000-order bulk transition beside raw SQL,
# and a 1,000,000-order CSV export (time and peak RSS). Uses the cached bench DBs.
bench-bulk: $(STAMP_DEV)
	$(PY) -m benchmarks.bulk --orders 100000
	$(PY) -m benchmarks.bulk --orders 1000000 --export --no-transition

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
