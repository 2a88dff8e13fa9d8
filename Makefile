# The two commands of the README:
#   make demo   set up .venv and run the main job (generate, train ESMM, evaluate, export, reload)
#   make test   set up .venv and run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_ROWS ?= 1000000

.PHONY: demo test test-fast lint setup clean

$(BIN)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "mtrec needs Python 3.11, got " + sys.version'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,notebooks,serving]'
	touch $@

setup: $(BIN)/.installed

demo: $(BIN)/.installed
	$(BIN)/mtrec demo --rows $(DEMO_ROWS)

test: $(BIN)/.installed
	$(BIN)/python -m pytest -q -n 2 --dist loadscope --durations=15

test-fast: $(BIN)/.installed
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(BIN)/.installed
	$(BIN)/ruff check mtrec tests benchmarks serving
	$(BIN)/ruff format --check mtrec tests benchmarks serving

clean:
	rm -rf $(VENV) runs exports data/click_log_*.csv
