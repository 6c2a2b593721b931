# Every target works on a fresh clone: the first one that needs the virtualenv builds it.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PROTO_OUT := client_sdk/tritone/_proto/audio_classification_pb2.py
PROTOS := $(wildcard protos/tritone/v1/*.proto)

.PHONY: install protos serve test lint typecheck unit integration models bench clean

install: $(STAMP) $(PROTO_OUT)

# torch is pinned here: any other torch requirement pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0 "numpy<2" grpcio-tools==1.81.1 "setuptools>=69"
	$(PY) tools/gen_protos.py >/dev/null
	$(PY) -m pip install --quiet --no-build-isolation -e ".[server,dev]"
	touch $(STAMP)

$(PROTO_OUT): $(PROTOS) tools/gen_protos.py | $(STAMP)
	$(PY) tools/gen_protos.py >/dev/null

protos: $(STAMP)
	$(PY) tools/gen_protos.py

serve: install
	$(VENV)/bin/tritone serve

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(VENV)/bin/mypy

unit: install
	$(VENV)/bin/pytest -q tests/unit

integration: install
	$(VENV)/bin/pytest -q tests/integration

test: lint typecheck
	$(VENV)/bin/pytest -q

models: install
	$(PY) recipes/build_tones.py

bench: install
	$(PY) benchmarks/stream_load.py

clean:
	rm -rf $(VENV) client_sdk/tritone/_proto/*_pb2*.py* build *.egg-info
