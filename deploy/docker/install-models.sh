#!/bin/sh
# Copies a Triton model repository into the model image (deploy/docker/models.Dockerfile):
# the image's only install step, and what tests/unit/deploy/test_images.py runs.
#
#   usage: install-models.sh MODEL_REPOSITORY DEST
#
# Every model needs config.pbtxt and at least one numbered version folder; files end up
# readable by any user, since the Triton pod's init container copies them as a non-root user.
set -eu

src=$1
dest=$2
mkdir -p "$dest"
count=0
for config in "$src"/*/config.pbtxt; do
    [ -f "$config" ] || { echo "install-models.sh: no model in $src" >&2; exit 1; }
    model_dir=$(dirname "$config")
    model=$(basename "$model_dir")
    versions=$(find "$model_dir" -mindepth 1 -maxdepth 1 -type d -name '[0-9]*' | wc -l)
    if [ "$versions" -eq 0 ]; then
        echo "install-models.sh: $model has no version folder" >&2
        exit 1
    fi
    cp -R "$model_dir" "$dest/$model"
    count=$((count + 1))
done
chmod -R a+rX "$dest"
echo "install-models.sh: $count models in $dest"
