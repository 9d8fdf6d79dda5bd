# `make run` and `make test` set everything up on first use (a .venv here), then do their job.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The npm packages the Studio's page checks run (axe-core, Lighthouse), pinned by the lock file.
NODE_STAMP := node_modules/.installed
# Without an NVIDIA GPU (CI, laptops, this kind of server) pin the CPU build of torch: an
# unpinned torch pulls several GB of CUDA packages. With a GPU, pip picks the normal build.
CONSTRAINTS := $(if $(shell command -v nvidia-smi 2>/dev/null),,-c constraints/cpu.txt)

.PHONY: setup system-deps run test lint format bench clean

# The virtualenv with Moviola and its development tools.
setup: $(STAMP)

$(STAMP): pyproject.toml constraints/cpu.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(CONSTRAINTS) -e '.[dev]'
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts
	touch $@

# The Debian packages the tests drive (Chromium, PostgreSQL, a font, Node), installed when missing;
# with all of them there it only looks at a few files. `moviola serve` needs none of them.
system-deps:
	scripts/system-deps

run: setup
	$(BIN)/moviola serve

test: setup system-deps $(NODE_STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/mypy

format: setup
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

bench: setup
	$(BIN)/python benchmarks/engine_overhead.py
	$(BIN)/python benchmarks/api_load.py
	$(BIN)/python benchmarks/studio_library.py
	$(BIN)/python benchmarks/provenance_cost.py
	$(BIN)/python benchmarks/audio_cost.py
	$(BIN)/python benchmarks/assistant.py
	$(BIN)/python benchmarks/cluster_throughput.py
	$(BIN)/python benchmarks/gpu.py --tiny

clean:
	rm -rf $(VENV) node_modules .pytest_cache .ruff_cache .mypy_cache .import_linter_cache src/*.egg-info
