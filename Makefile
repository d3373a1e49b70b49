# pysteps — the two commands a newcomer runs: `make test` and `make demo`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TESTBED := testbed/testbed.sh
export PYSTEPS_CACHE ?= $(HOME)/.cache/pysteps

.PHONY: test demo venv testbed-up testbed-status testbed-down lint typecheck unit integration bench clean

test: venv testbed-up lint typecheck unit integration

$(VENV)/.installed: pyproject.toml setup.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

testbed-up: venv
	$(TESTBED) up

testbed-status:
	@$(TESTBED) status

testbed-down:
	$(TESTBED) down

lint: venv
	$(VENV)/bin/ruff check pysteps tests bench
	$(VENV)/bin/ruff format --check pysteps tests bench

typecheck: venv
	$(VENV)/bin/mypy pysteps

unit: venv
	$(VENV)/bin/pytest -q tests/unit

integration: venv
	$(VENV)/bin/pytest -q -m integration tests/integration

demo: venv testbed-up
	$(PY) examples/demo.py

bench: venv testbed-up
	@for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done
	@echo "== bench/bench_deploy.py --real-node"; $(PY) bench/bench_deploy.py --real-node

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache *.egg-info
