#!/bin/sh
# Installs the Tritone gateway into a fresh virtualenv: the gateway image's only install step
# (deploy/docker/gateway.Dockerfile), and what tests/unit/deploy/test_images.py runs in a
# temporary folder, so the image cannot drift from what CI checks.
#
#   usage: install-gateway.sh SOURCE_DIR VENV_DIR      (PYTHON: the interpreter, default python3)
#
# Binary wheels only (the image has no compiler), the [gateway] extra only: no torch and no
# nvidia-pytriton; the gateway talks to a Triton it did not start (--triton-url). Every
# package comes pinned and hashed from locks/ (made by `make lock`), the same files CI installs.
set -eu

src=$1
venv=$2
python=${PYTHON:-python3}

# Our wheel is built in a venv of its own from locks/build.txt (pip and the build backend; the
# protobuf modules are generated during the build). That venv's pip also installs the gateway
# into a venv made without pip: the image holds the gateway lock and our wheel, nothing else.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$python" -m venv "$work/build"
pip="$work/build/bin/python -m pip"
$pip install --quiet --require-hashes --no-deps --only-binary=:all: -r "$src/locks/build.txt"
$pip wheel --quiet --no-deps --no-build-isolation --wheel-dir "$work/wheels" "$src"

"$python" -m venv --without-pip "$venv"
$pip --python "$venv/bin/python" install --quiet --require-hashes --no-deps --only-binary=:all: \
    -r "$src/locks/gateway.txt"
$pip --python "$venv/bin/python" install --quiet --no-deps "$(ls "$work"/wheels/tritone-*.whl)"

# The serving path must not need torch (nor the local-Triton wheel): fail the build if it does.
if $pip --python "$venv/bin/python" show --quiet torch >/dev/null 2>&1; then
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
