# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ARGS ?=

.PHONY: install demo test lint typecheck unit soak fuzz clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,postgres,redis,sandbox]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/nexus demo $(ARGS)

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test: lint typecheck unit

# The consistency evidence (docs/consistency.md): the randomized simulation over 20,000 seeds,
# then the single-channel and four-channel demos over 100 seeds each. Prints runs and failures.
SOAK_RUNS ?= 20000
DEMO_RUNS ?= 100
soak: install
	$(BIN)/python tests/consistency/soak.py --runs $(SOAK_RUNS)
	$(BIN)/python tests/consistency/soak.py --runs $(SOAK_RUNS) --heavy
	$(BIN)/python tests/consistency/demo_soak.py --runs $(DEMO_RUNS)

# The webhook parser fuzzers (docs/consistency.md, "Fuzzed webhook parsers") as a soak: FUZZ_EXAMPLES mutated deliveries per
# property, 16 properties (1,500 x 16 = 24,000 examples); prints calls and refusals per channel.
FUZZ_EXAMPLES ?= 1500
fuzz: install
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest -q -p no:randomly tests/fuzz $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build src/*.egg-info
