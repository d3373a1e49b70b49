# pysteps — the two commands a newcomer runs: `make test` and `make demo`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TESTBED := testbed/testbed.sh
export PYSTEPS_CACHE ?= $(HOME)/.cache/pysteps

.PHONY: test demo venv testbed-up testbed-status testbed-down lint typecheck unit integration bench clean groovy groovy-lint groovy-tools

test: venv testbed-up lint typecheck unit groovy groovy-lint integration

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

# Groovy side (vars/, jobs/, Jenkinsfile.example): JenkinsPipelineUnit tests + compile check,
# then CodeNarc. Maven's repository is cached outside the clone; offline once it is warm.
MVN := mvn -B -q -Dmaven.repo.local=$(PYSTEPS_CACHE)/maven -f tests/groovy/pom.xml
offline = $(shell test -f $(PYSTEPS_CACHE)/maven/.warm-$(1) && echo -o)

groovy-tools:
	@command -v mvn >/dev/null && command -v java >/dev/null || \
	  { source testbed/lib.sh && tb_apt maven default-jdk-headless; }

groovy: venv groovy-tools
	$(MVN) $(call offline,test) test -Dpysteps.python=$(CURDIR)/$(PY)
	touch $(PYSTEPS_CACHE)/maven/.warm-test

groovy-lint: groovy-tools
	$(MVN) $(call offline,lint) exec:java
	touch $(PYSTEPS_CACHE)/maven/.warm-lint

demo: venv testbed-up
	$(PY) examples/demo.py

bench: venv testbed-up
	@for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done
	@echo "== bench/bench_deploy.py --real-node"; $(PY) bench/bench_deploy.py --real-node

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache *.egg-info
