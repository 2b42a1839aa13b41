# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup run test lint typecheck unit bench bench-quick bench-prepare clean

$(STAMP): pyproject.toml scripts/install-kcl.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[dev]'
	bash scripts/install-kcl.sh $(VENV)
	touch $(STAMP)

## setup: create .venv and install the project with its test tools
setup: $(STAMP)

## run: load the sample receipts, apply them, show status and one query
run: setup
	$(BIN)/chroma-journal demo load
	$(BIN)/chroma-journal run --until-caught-up
	$(BIN)/chroma-journal status
	$(BIN)/chroma-journal query words "ICED TEA" -n 5

## test: every check and test (what CI runs)
test: lint typecheck unit

lint: setup
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

typecheck: setup
	$(BIN)/mypy

unit: setup
	$(BIN)/python -m pytest

## bench: the first benchmark, delta merge against raw ChromaDB (full matrix)
bench: setup
	$(BIN)/python -m bench.delta_merge

## bench-quick: every benchmark at small sizes (about a minute each)
BENCHES := delta_merge updates write_amplification latency replay memory scaling
bench-quick: setup
	for b in $(BENCHES); do $(BIN)/python -m bench.$$b --quick || exit 1; done

## bench-prepare: build the cached base collections the full runs copy
bench-prepare: setup
	$(BIN)/python -m bench.prepare 384:10000,35000,70000 1536:35000,70000

## clean: remove the embedded default's data (./var)
clean:
	rm -rf var
