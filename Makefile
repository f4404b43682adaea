# One entry point for people and CI. `make test` and `make demo` work from a fresh clone.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv test demo bench lint clean

venv: $(STAMP)

# Re-install only when pyproject.toml changes (idempotent).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,torch]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q tests

demo: $(STAMP)
	$(BIN)/python -m nst_jax.demo

bench: $(STAMP)
	$(BIN)/python experiments/bench_vgg.py --quick
	$(BIN)/python experiments/bench_gatys.py --quick
	$(BIN)/python experiments/bench_adain.py --quick
	$(BIN)/python experiments/bench_fast.py --quick

lint: $(STAMP)
	$(BIN)/ruff check nst_jax tests experiments

clean:
	rm -rf $(VENV) build *.egg-info
