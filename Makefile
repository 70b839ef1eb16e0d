# caloray — `make run` and `make test` are the two commands of a fresh machine (see README).
PYTHON      ?= python3
VENV        ?= .venv
CONSTRAINTS ?= constraints.txt
OUT         ?= outputs/demo
BIN         := $(VENV)/bin
STAMP       := $(VENV)/.installed

.PHONY: install run test test-slow test-all lint bench bench-quick bench-gpu deploy-check cluster-up cluster-down \
	cluster-status image image-gpu clean

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first, from the pin, so no later resolver step can pick another build.
	$(BIN)/python -m pip install -q -c $(CONSTRAINTS) torch
	$(BIN)/python -m pip install -q -c $(CONSTRAINTS) -e '.[dev,cluster]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/caloray demo --out $(OUT)

test: $(STAMP)
	$(BIN)/python -m pytest

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow

test-all: $(STAMP)
	$(BIN)/python -m pytest -m ''

lint: $(STAMP)
	$(BIN)/ruff check caloray jobs tests bench

bench: $(STAMP)
	$(BIN)/python -m bench

bench-quick: $(STAMP)
	$(BIN)/python -m bench --quick --no-record

# Throughput figures on one GPU (< 8 min), appended to BENCHMARKS.md; exits 2 when no GPU is visible.
bench-gpu: $(STAMP)
	$(BIN)/python -m bench.gpu

deploy-check: $(STAMP)
	$(BIN)/python -m pytest tests/deploy -q

# Local cluster: PostgreSQL-backed MLflow server + Ray head and worker node (see deploy/local/README.md).
cluster-up: $(STAMP)
	deploy/local/start.sh

cluster-down:
	deploy/local/stop.sh

cluster-status:
	deploy/local/status.sh

# Container images (need a Docker engine; see deploy/README.md).
image:
	docker build -f deploy/docker/Dockerfile -t caloray-cpu:0.1.0 .

image-gpu:
	docker build -f deploy/docker/Dockerfile -t caloray-gpu:0.1.0 \
		--build-arg CONSTRAINTS=deploy/constraints-gpu.txt --build-arg TORCH_INDEX_URL=$(TORCH_INDEX_URL) .

clean:
	rm -rf $(VENV) outputs .pytest_cache
