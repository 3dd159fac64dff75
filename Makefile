# rx — developer entry points.  `make demo` and `make test` are all a newcomer needs.

PYTHON ?= python3
VENV   := .venv
STAMP  := $(VENV)/.installed

# The demo master listens on 127.0.0.1 only; change the ports if they are taken.
DEMO_PUB_PORT ?= 24505
DEMO_RET_PORT ?= 24506
export DEMO_PUB_PORT DEMO_RET_PORT

PYTEST_ARGS ?=

.PHONY: help venv demo stop clean-demo test bench docs pg-server

help:
	@echo "make demo        venv + a sandbox master and 3 minions under .demo/, then rx '*' test.ping"
	@echo "make stop        stop the sandbox daemons (keeps .demo/)"
	@echo "make clean-demo  stop the sandbox and remove .demo/"
	@echo "make test        run the test suite (PYTEST_ARGS='-x -k codec' to pass options)"
	@echo "make bench       run the benchmarks (python -m bench)"
	@echo "make docs        regenerate docs/config.md (config.py), docs/modules.md and docs/runners.md (the docstrings), docs/metrics.md"
	@echo "make venv        create .venv and pip install -e '.[test]'"
	@echo "make pg-server   install Debian's postgresql (as root, when initdb is missing) for the PostgreSQL tests"

venv: $(STAMP)

# Re-install only when the packaging metadata changes.
$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -e '.[test]'
	@touch $@

# The sandbox is tests/support/demo.py, on the harness the tests and benchmarks use.
DEMO := $(VENV)/bin/python -m tests.support.demo

demo: venv
	@$(DEMO) start

stop:
	@$(if $(wildcard $(VENV)/bin/python),$(DEMO) stop,echo "No $(VENV) here: nothing to stop (make demo creates it).")

clean-demo:
	@$(if $(wildcard $(VENV)/bin/python),$(DEMO) clean,echo "No $(VENV) here: nothing to clean (make demo creates it).")

# The PostgreSQL job-store tests start a real server (tests/support/postgres.py); without one they skip and
# say why (-rs).
test: venv pg-server
	$(VENV)/bin/python -m pytest -q -rs tests $(PYTEST_ARGS)

pg-server:
	@sh tests/support/install_postgres.sh

bench: venv
	$(VENV)/bin/python -m bench

# docs/config.md is generated from config.py, docs/modules.md and docs/runners.md from the docstrings;
# docs/metrics.md from master/metrics/catalog.py; tests/unit/test_config.py, test_moduledocs.py,
# test_runner_docs.py and test_metrics.py fail when they are stale.
docs: venv
	$(VENV)/bin/python -m rx.config --markdown > docs/config.md
	$(VENV)/bin/python -m rx.minion.moduledocs --markdown > docs/modules.md
	$(VENV)/bin/python -m rx.client.runnerdocs --markdown > docs/runners.md
	$(VENV)/bin/python -m rx.master.metrics --markdown > docs/metrics.md
