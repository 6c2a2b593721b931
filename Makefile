# Every target works on a fresh clone: the first one that needs the virtualenv builds it.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Two stamps: the venv is rebuilt from scratch when the lock changes (nothing the lock dropped
# stays behind); the project alone is reinstalled when pyproject.toml or setup.py change.
LOCKED := $(VENV)/.locked
STAMP := $(VENV)/.installed
LOCK := locks/dev.txt
# The CPU build of torch (locks/dev.txt pins torch==2.13.0+cpu by hash) lies here on these
# machines; PyPI's Linux torch is a CUDA build of several GB.
TORCH_WHEELS ?= /opt/wheels
# Debian packages: real human speech and the synthesizers the model tests use; the
# speech-commands recipe also speaks with Festival's voices. The suite last ran with
# (Debian 12): pocketsphinx-testdata 0.8+5prealpha+1-15, espeak-ng 1.51+dfsg-10+deb12u2,
# flite 2.2-5, fillets-ng-data{,-cs,-nl} 1.0.1-1.1; for `make models` festival 1:2.5.0-9,
# festvox-kallpc16k 2.4-1, festvox-us-slt-hts 0.2010.10.25-4.
SYSTEM_PACKAGES := pocketsphinx-testdata espeak-ng flite fillets-ng-data fillets-ng-data-cs fillets-ng-data-nl
MODEL_PACKAGES := festival festvox-kallpc16k festvox-us-slt-hts
PROTO_OUT := protos/tritone_protos/audio_classification_pb2.py
PROTOS := $(wildcard protos/tritone/v1/*.proto)

.PHONY: install lock lock-check upgrade-check system-packages protos serve test lint typecheck unit integration models bench clean

install: lock-check $(STAMP) $(PROTO_OUT)

# Every package from the hashed lock, none of their declared dependencies beyond it: a fresh
# clone gets exactly what CI got. pyproject.toml's ranges are for `pip install tritone` users.
$(LOCKED): $(LOCK)
	@$(PYTHON) tools/lock.py --check
	$(PYTHON) -m venv --clear $(VENV)
	$(PY) -m pip install --quiet --require-hashes --no-deps --find-links $(TORCH_WHEELS) -r $(LOCK)
	touch $(LOCKED)

$(STAMP): $(LOCKED) pyproject.toml setup.py
	$(PY) tools/gen_protos.py >/dev/null
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

# One sentence, no install, when pyproject.toml's dependencies changed and the locks did not.
lock-check:
	@$(PYTHON) tools/lock.py --check

# Re-resolve every lock (uv pip compile --generate-hashes, newest versions pyproject allows).
lock: $(LOCKED)
	$(PY) tools/lock.py

# Not part of `make test`: the newest versions pyproject allows, in a throwaway venv over a copy
# of this tree, then ruff, mypy and the unit suite. Upstream breakage shows up here as a report.
upgrade-check:
	PYTHON=$(PYTHON) TORCH_WHEELS=$(TORCH_WHEELS) tools/upgrade_check.sh

# Only tests and recipes need these; `make serve` does not (and needs no root).
system-packages:
	@missing=$$(for p in $(SYSTEM_PACKAGES) $(EXTRA_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages: $$missing"; \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; } || \
		{ echo "make system-packages: could not install the Debian packages $$missing (apt-get needs root and Debian's archive); install them, then run make again" >&2; exit 1; }; \
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

test: lock-check lint typecheck system-packages
	$(VENV)/bin/pytest -q

models: install
	$(MAKE) system-packages EXTRA_PACKAGES="$(MODEL_PACKAGES)"
	$(PY) recipes/build_tones.py
	$(PY) recipes/build_voice_activity.py
	$(PY) recipes/build_speaker_embedding.py
	$(PY) -m recipes.speech_commands.synthesize
	$(PY) -m recipes.speech_commands.train
	$(PY) -m recipes.speech_commands.build
	$(PY) -m recipes.speech_commands.dscnn.build

# Each benchmark starts its own local Triton and gateway and appends its figures, the command
# and the machine to benchmarks/results.md, with the targets of issue 15 it missed.
bench: install system-packages
	$(PY) benchmarks/unary_load.py --seconds 3
	$(PY) benchmarks/stream_load.py --streams 100 500 --seconds 10
	$(PY) benchmarks/sequence_load.py --minutes 10
	$(PY) benchmarks/transport_floor.py --streams 100 500 --seconds 8

clean:
	rm -rf $(VENV) protos/tritone_protos build *.egg-info
