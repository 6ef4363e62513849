# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1

.PHONY: run test lint unit e2e bench clean system-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(VENV)/.installed $@

# Debian packages the tests start for real: the Redis job store, and Chromium for the page at /.
system-deps:
	@command -v redis-server >/dev/null && command -v chromium >/dev/null || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq redis-server chromium; }

run: $(VENV)/.installed
	$(BIN)/python -m app

lint: $(VENV)/.installed-test
	$(BIN)/ruff check app tests bench scripts
	$(BIN)/ruff format --check app tests bench scripts
	$(BIN)/mypy

# Two workers: real servers' tests on one, the in-process model's on the other (tests/conftest.py).
test: lint system-deps
	$(BIN)/pytest -n 2 --dist loadgroup

unit: $(VENV)/.installed-test system-deps
	$(BIN)/pytest -m "not e2e"

e2e: $(VENV)/.installed-test system-deps
	$(BIN)/pytest -m e2e

bench: $(VENV)/.installed-test
	$(BIN)/python -m bench.overhead --out docs/performance.md
	$(BIN)/python -m bench.throughput --out docs/performance.md
	$(BIN)/python -m bench.chunked_latency --out docs/performance.md
	$(BIN)/python -m bench.long_file --out docs/performance.md
	$(BIN)/python -m bench.head_of_line --out docs/performance.md
	$(BIN)/python -m bench.batching --out docs/performance.md
	$(BIN)/python -m bench.peers --out docs/performance.md
	$(BIN)/python -m bench.grpc_vs_rest --out docs/performance.md
	$(BIN)/python -m bench.punctuation --out docs/performance.md
	$(BIN)/python -m bench.encoder_reuse --out docs/performance.md
	$(BIN)/python -m bench.encoder_padding --out docs/performance.md

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache *.egg-info
