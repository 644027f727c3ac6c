#!/usr/bin/env bash
# Run HERE (a machine with a package registry), not on the GPU machine: download the wheels that
# benchmarks/device_check.sh installs there. The GPU machine has PyTorch+CUDA but no registry; its
# transformers (5.17 when last listed) is older than ours, and tvau.model leans on 5.x internals
# (transformers.vision_utils, get_rope_index with mm_token_type_ids); pydantic is not there at all.
# Versions are read from this checkout's .venv so the GPU run uses the transformers/peft the tests use. Wheels go to .cache/device-wheels (ignored by
# git, about 18 MB); pass that path in the device tool's `carry`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DEST=.cache/device-wheels
ver() { "$PY" -c "import importlib.metadata as m; print(m.version('$1'))"; }
pkgs=()
for p in transformers peft regex pydantic pydantic-core annotated-types typing-inspection typing-extensions; do
    pkgs+=("$p==$(ver "$p")")
done
rm -rf "$DEST" && mkdir -p "$DEST"
# The GPU machine's python3 is CPython 3.12 on x86-64 (KINDS.md).
"$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$DEST" "${pkgs[@]}"
ls -1 "$DEST"
du -sh "$DEST"
