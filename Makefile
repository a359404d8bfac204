# Commands a newcomer needs; the README explains each.
VENV   ?= .venv
PY     := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: setup demo test fuzz mutate lint format bench bench-startup bench-pull bench-copy bench-inspect bench-sif bench-faults bench-sif-many bench-catalog clean

$(VENV)/.installed: pyproject.toml scripts/install-deps.sh
	bash scripts/install-deps.sh
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'
	touch $@ $(VENV)/.demo

# The demo needs less: the registry, the SIF tools, python3-venv, and regpeek with its demo extra.
$(VENV)/.demo: pyproject.toml scripts/install-deps.sh
	bash scripts/install-deps.sh demo
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[demo]'
	touch $@

setup: $(VENV)/.installed  ## system packages, a virtualenv, regpeek with its test extras

demo: $(VENV)/.demo  ## start two local registries, load sample images of every format, inspect and copy them
	$(PY) scripts/demo.py
	@echo "regpeek is in $(VENV)/bin: 'source $(VENV)/bin/activate', or 'pipx install .' / 'pip install --user .'"

test: setup  ## the whole test suite: unit tests and integration tests against a real registry
	$(PY) -m pytest $(PYTEST_ARGS)

fuzz: setup  ## a longer property-based fuzz run of every parser (FUZZ_EXAMPLES examples per property)
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-500} $(PY) -m pytest -q tests/unit/test_fuzz_parsers.py

mutate: setup  ## mutation testing of the verification-critical modules, a score per module (docs/testing.md)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test,mutate]'
	$(PY) scripts/mutate.py $(MUTATE_ARGS)

lint: setup  ## ruff, mypy, and the check that _sync/ is generated from _async/
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(PY) scripts/unasync.py --check

format: setup
	$(PY) scripts/unasync.py
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

bench: setup  ## issue 13's targets 1-5 in one table: start-up, inspect (TLS, plain HTTP), pull (BENCH_ARGS=--quick)
	$(PY) bench/all.py $(BENCH_ARGS)

bench-startup: setup  ## regpeek --version and a warm inspect --json: wall time, -X importtime top ten
	$(PY) bench/startup.py --rounds 15

bench-pull: setup  ## regpeek pull/unpack vs skopeo copy/umoci (raw) unpack (3 x 32 MiB)
	$(PY) bench/pull.py --rounds 5 --cache

bench-copy: setup  ## regpeek copy vs skopeo copy, registry to registry (3 x 32 MiB, 20 x 2 MiB)
	$(PY) bench/copy_speed.py --rounds 5

bench-inspect: setup  ## regpeek inspect vs skopeo (and python-dxf) through 25 ms of latency, TLS and plain HTTP
	$(PY) -m pip install -q --disable-pip-version-check python-dxf
	$(PY) bench/inspect_speed.py --rounds 5 --loop-rounds 3 --dxf

bench-sif: setup  ## regpeek sif vs skopeo copy + umoci unpack + mksquashfs + siftool (2 images)
	$(PY) bench/sif.py --rounds 3

bench-faults: setup  ## every fault scenario, as a table
	$(PY) bench/faults.py

bench-sif-many: setup  ## 50 SIFs from images sharing bases: --jobs 1 vs 2 vs a loop of single runs, peak RSS
	$(PY) bench/sif_many.py

bench-catalog: setup  ## a catalogue of 1,000 tags through 25 ms of latency vs a loop of skopeo inspect
	$(PY) bench/catalog.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info
