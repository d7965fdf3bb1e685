# Freight developer tasks. `make test` and `make demo` install what they need first (into .venv),
# so each works alone on a fresh machine with Python 3.11+, Java 17+ and Maven.
SHELL := /bin/bash
comma := ,
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
# Re-install when the dependency list or the pinned versions change.
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt 2>/dev/null | cksum | cut -d' ' -f1)
EXTRAS := dev,torch,dask,rdma,otel,bench
JARS := infra/kafka/libs/.complete
PYTEST_ARGS ?=

.PHONY: lock install test test-long test-conformance test-wheel test-rdma test-unit test-integration test-faults demo lint bench dev-up dev-down clean

install: $(STAMP) $(JARS)

# uv installs the (large) dependency set in seconds from its cache; torch is the optional `torch` extra,
# NIXL (the tensor store's transfer engine) the optional `rdma` extra.
# constraints.txt pins every package at the version the suite passed with, so a new release of a dependency
# cannot change behaviour under us; `make lock` re-resolves it (keeping the pins that still satisfy).
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip uv
	$(UV) pip install --python $(BIN)/python -c constraints.txt -e '.[$(EXTRAS)]'
	$(BIN)/python -m freight.schemas.native_build || echo "note: the compiled event codec was not built;" \
		"the pure-Python codec runs (same bytes, slower); see docs/benchmarks.md"
	rm -f $(VENV)/.installed-*
	touch $@

$(JARS): $(STAMP) infra/kafka/pom.xml
	$(BIN)/python -c "from freight.dev.kafka_broker import ensure_jars; print('kafka jars in', ensure_jars())"

lock:
	test -x $(UV) || (test -x $(BIN)/python || $(PYTHON) -m venv $(VENV); $(BIN)/python -m pip install -q uv)
	$(UV) pip compile pyproject.toml $(foreach e,$(subst $(comma), ,$(EXTRAS)),--extra $(e)) \
		--python-version 3.11 -o constraints.txt

# The few tests over 20 s (marker `long`: broker kills, the whole bench suite, a full CLI session) run in
# `make test-long`, which CI runs after `make test`, so `make test` stays well under 20 minutes.
# The Protobuf tests compile .proto files in the test process with grpcio-tools, whose native library
# crashes a process that also loads NIXL (the tensor store's engine): they run in a process of their own.
PROTOBUF_TESTS := tests/integration/test_registry_protobuf.py tests/unit/registry/test_protobuf_schema.py

test: install
	$(BIN)/python -m pytest -m "not long and not conformance" $(foreach t,$(PROTOBUF_TESTS),--ignore=$(t)) $(PYTEST_ARGS)
	$(BIN)/python -m pytest -m "not long" $(PROTOBUF_TESTS) $(PYTEST_ARGS)

test-long: install
	$(BIN)/python -m pytest -m "long and not conformance" $(foreach t,$(PROTOBUF_TESTS),--ignore=$(t)) $(PYTEST_ARGS)

# Confluent's published schema-registry e2e suite (npm @confluentinc/schemaregistry) against Freight's
# registry and broker on localhost:8081 / :9092; needs Node.js 20+ and npm (docs/registry.md).
test-conformance: install
	$(BIN)/python -m pytest tests/conformance -m conformance -s $(PYTEST_ARGS)

# The tensor store's transfer engine, including the 1 GiB cross-process exchange (about 30 s).
test-rdma: install
	FREIGHT_TEST_1GIB=1 $(BIN)/python -m pytest tests/integration/test_tensor_transfer.py $(PYTEST_ARGS)

# A wheel built from the repo, installed without extras into a fresh venv, runs dev up + produce/consume.
test-wheel: install
	FREIGHT_TEST_WHEEL=1 $(BIN)/python -m pytest tests/packaging $(PYTEST_ARGS)

test-unit: install
	$(BIN)/python -m pytest -m unit $(PYTEST_ARGS)

test-integration: install
	$(BIN)/python -m pytest -m "integration or e2e" $(PYTEST_ARGS)

test-faults: install
	FREIGHT_FAULTS_FULL=1 $(BIN)/python -m pytest tests/faults $(PYTEST_ARGS)

demo: install
	$(BIN)/freight demo

lint: install
	$(BIN)/ruff check platform connectors schemas infra tests
	$(BIN)/ruff format --check platform connectors schemas infra tests
	rm -rf build/mypy && mkdir -p build/mypy/freight
	for f in platform/freight/*; do ln -s "$$PWD/$$f" build/mypy/freight/; done
	ln -s "$$PWD/connectors" build/mypy/freight/connectors
	$(BIN)/mypy
	# Import contracts (pyproject [tool.importlinter]); the overlay shows freight.connectors inside freight.
	PYTHONPATH=build/mypy $(BIN)/lint-imports --no-cache

bench: install
	$(BIN)/freight bench

# Optional: the event codec compiled with mypyc (schemas/native_build.py; the pure-Python codec runs without
# it, and whenever fastcodec.py changed since the build). About 20 s.
.PHONY: native
native: install
	$(BIN)/python -m freight.schemas.native_build

dev-up: install
	$(BIN)/freight dev up

dev-down:
	test -x $(BIN)/freight && $(BIN)/freight dev down || true

clean: dev-down
	rm -rf $(VENV) .freight build dist bench-results infra/kafka/libs platform/*.egg-info
