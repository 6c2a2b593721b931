# Every target works on a fresh clone: the first one that needs the virtualenv builds it.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Debian packages: real human speech and the synthesizers the model tests use; the
# speech-commands recipe also speaks with Festival's voices.
SYSTEM_PACKAGES := pocketsphinx-testdata espeak-ng flite fillets-ng-data fillets-ng-data-cs fillets-ng-data-nl
MODEL_PACKAGES := festival festvox-kallpc16k festvox-us-slt-hts
PROTO_OUT := client_sdk/tritone/_proto/audio_classification_pb2.py
PROTOS := $(wildcard protos/tritone/v1/*.proto)

.PHONY: install system-packages protos serve test lint typecheck unit integration models bench clean

install: $(STAMP) $(PROTO_OUT)

# torch is pinned here: any other torch requirement pulls a multi-GB CUDA build.
# Resemblyzer goes in with --no-deps: its metadata asks for webrtcvad (a source build) and the
# `typing` backport; webrtcvad-wheels (in the recipes extra) provides the module instead.
$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0 "numpy<2" grpcio-tools==1.81.1 "setuptools>=69"
	$(PY) tools/gen_protos.py >/dev/null
	$(PY) -m pip install --quiet --no-build-isolation -e ".[server,train,hf,dev,recipes,eval]"
	$(PY) -m pip install --quiet --no-deps Resemblyzer==0.1.4 openwakeword==0.4.0
	touch $(STAMP)

# Only tests and recipes need these; `make serve` does not (and needs no root).
system-packages:
	@missing=$$(for p in $(SYSTEM_PACKAGES) $(EXTRA_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages: $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

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

unit: install system-packages
	$(VENV)/bin/pytest -q tests/unit

integration: install system-packages
	$(VENV)/bin/pytest -q tests/integration

test: lint typecheck system-packages
	$(VENV)/bin/pytest -q

models: install
	$(MAKE) system-packages EXTRA_PACKAGES="$(MODEL_PACKAGES)"
	$(PY) recipes/build_tones.py
	$(PY) recipes/build_voice_activity.py
	$(PY) recipes/build_speaker_embedding.py
	$(PY) -m recipes.speech_commands.synthesize
	$(PY) -m recipes.speech_commands.train
	$(PY) -m recipes.speech_commands.build

# Each benchmark starts its own local Triton and gateway and appends its figures, the command
# and the machine to benchmarks/results.md, with the targets of issue 15 it missed.
bench: install system-packages
	$(PY) benchmarks/unary_load.py --seconds 3
	$(PY) benchmarks/stream_load.py --streams 100 500 --seconds 10
	$(PY) benchmarks/sequence_load.py --minutes 10
	$(PY) benchmarks/transport_floor.py --streams 100 500 --seconds 8

clean:
	rm -rf $(VENV) client_sdk/tritone/_proto/*_pb2*.py* build *.egg-info
