# Two commands do all the set-up from a fresh clone:
#   make serve   install into .venv and start the server on the embedded default stores
#   make test    install everything (Python, TF.js for Node, SeaweedFS) and run every test
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
PORT   ?= 8000
# mypy and import-linter read the package as pip installs it (modelshelf.service from
# service/, ...), which an editable install's import hook hides from them.
INSTALLED = build/installed

.PHONY: serve test install install-test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e ".[server]"

install-test: $(BIN)/python
	$(BIN)/pip install --quiet -e ".[server,test]"
	cd tests/js && npm ci --no-audit --no-fund --loglevel=error
	cd tests/clients/ts && npm ci --no-audit --no-fund --loglevel=error

serve: install
	$(BIN)/modelshelf serve --port $(PORT)

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	rm -rf $(INSTALLED)
	$(BIN)/pip install --quiet --no-deps --target $(INSTALLED) .
	cd $(INSTALLED) && $(abspath $(BIN))/mypy --config-file $(CURDIR)/pyproject.toml \
		--cache-dir $(CURDIR)/.mypy_cache -p modelshelf
	cd $(INSTALLED) && $(abspath $(BIN))/lint-imports $(CURDIR)/pyproject.toml

test: install-test lint
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest

bench: install-test
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python bench/storage_core.py
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python bench/service_throughput.py
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python bench/sdk_transfer.py
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python bench/model_json_memory.py
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python bench/concurrent_saves.py
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python bench/small_model_load.py
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python bench/version_scaling.py

clean:
	rm -rf $(VENV) build tests/js/node_modules .pytest_cache .mypy_cache .ruff_cache
