# The two commands of the README: `make demo` and `make test`. Both set up
# everything on a fresh machine: the virtual environment in .venv/, the project
# installed into it, the Kafka jars from Maven Central on first use.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test unit integration bench lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/flexstream demo

test: install
	bash infra/install_chromium.sh
	$(BIN)/python -m pytest -q -p no:cacheprovider

unit: install
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/unit

integration: install
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/integration

bench: install
	$(BIN)/python tests/benchmarks/bench_pipeline.py
	$(BIN)/python tests/benchmarks/bench_solver.py
	$(BIN)/python tests/benchmarks/bench_solver_fleet.py
	$(BIN)/python tests/benchmarks/bench_belief_state.py
	$(BIN)/python tests/benchmarks/bench_scheduling.py
	$(BIN)/python tests/benchmarks/bench_reports.py

lint: install
	$(BIN)/ruff check streams schemas solvers connectors infra tests
	$(BIN)/ruff format --check streams schemas solvers connectors infra tests

clean:
	rm -rf $(VENV) build *.egg-info
