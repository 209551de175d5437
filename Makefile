# The two commands a new user needs: `make demo` and `make test`. Everything else is for developers.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# One virtualenv; the trainer's heavy stack (torch, ms-swift, deepspeed) is added to it only by
# the targets that need it (`demo`, `test`).
STAMP := $(VENV)/.installed
TRAIN_STAMP := $(VENV)/.installed-train
EXTRAS := reward,dev,deploy,data

.PHONY: install install-train lint test check-deploy bench demo clean

install: $(STAMP)

install-train: $(TRAIN_STAMP)

# Reinstall when the pinned dependencies change.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $(STAMP)

# DS_BUILD_OPS=0: DeepSpeed installs without compiling CUDA ops (it builds them on first use).
$(TRAIN_STAMP): $(STAMP)
	DS_BUILD_OPS=0 $(BIN)/python -m pip install --quiet -e '.[$(EXTRAS),train]'
	touch $(TRAIN_STAMP)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The whole suite, the trainer's two-step GRPO run against a local reward stack included.
test: lint install-train
	$(BIN)/python -m pytest

# Compose, kustomize, Dockerfiles, Prometheus and Grafana files, and the stack under Docker.
check-deploy: install
	$(BIN)/python -m pytest tests/deploy

bench: install
	$(BIN)/python -m benchmarks

demo: install-train
	$(BIN)/trivia demo

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
