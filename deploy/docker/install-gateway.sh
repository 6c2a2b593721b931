#!/bin/sh
# Installs the Tritone gateway into a fresh virtualenv: the gateway image's only install step
# (deploy/docker/gateway.Dockerfile), and what tests/unit/deploy/test_images.py runs in a
# temporary folder, so the image cannot drift from what CI checks.
#
#   usage: install-gateway.sh SOURCE_DIR VENV_DIR      (PYTHON: the interpreter, default python3)
#
# Binary wheels only (the image has no compiler), the [gateway] extra only: no torch and no
# nvidia-pytriton; the gateway talks to a Triton it did not start (--triton-url).
set -eu

src=$1
venv=$2
python=${PYTHON:-python3}

"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade "pip>=24"
# Build our wheel (the protobuf modules are generated during the build), then install it with
# its dependencies from binary wheels only.
wheels=$(mktemp -d)
"$venv/bin/python" -m pip wheel --quiet --no-deps --only-binary=:all: --wheel-dir "$wheels" "$src"
"$venv/bin/python" -m pip install --quiet --only-binary=:all: \
    "$(ls "$wheels"/tritone-*.whl)[gateway]"
rm -rf "$wheels"

# The serving path must not need torch (nor the local-Triton wheel): fail the build if it does.
if "$venv/bin/python" -m pip show --quiet torch >/dev/null 2>&1; then
    echo "install-gateway.sh: torch was installed; the gateway must not need it" >&2
    exit 1
fi
"$venv/bin/python" - <<'PY'
import sys

import tritone_server.app  # noqa: F401  (everything `python -m tritone_server` imports)

heavy = sorted(name for name in ("torch", "pytriton", "transformers") if name in sys.modules)
if heavy:
    sys.exit(f"install-gateway.sh: the serving path imported {heavy}")
PY
"$venv/bin/python" -m tritone_server --help >/dev/null
echo "install-gateway.sh: gateway installed in $venv"
