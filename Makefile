# Two entry points: `make demo` and `make test`. Both build .venv from scratch when it is missing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# The CPU build of torch lies on this disk; a bare `torch` requirement would pull a CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	# botorch compiles its fused qLogEHVI kernel (several objectives) on first use, about 30 s once per
	# machine; here, that wait is not in a user's first proposal nor in the test suite. Optional: without
	# a compiler botorch falls back to Python.
	@echo "Compiling botorch's fused qLogEHVI kernel (once per machine, about 30 s)"
	-$(BIN)/python -W ignore -c "from botorch.acquisition.multi_objective.logei import _try_load_fused_kernel as load; load()"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/valley demo

test: $(STAMP)
	# a worker per core (pytest-xdist), each test module on one; the slowest tests listed (keep the suite under 5 min on 2 cores)
	$(BIN)/python -m pytest -n auto --dist loadgroup --durations=15

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/valley benchmark safe

clean:
	rm -rf $(VENV) valley_demo build *.egg-info
