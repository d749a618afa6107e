#!/usr/bin/env bash
# The wheels scripts/gpu_check.sh needs on a bare GPU machine (Python 3.12, x86-64, torch / transformers /
# accelerate / peft present, nothing else of afcot's), downloaded into .whl/ here, where the registries answer.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 \
         manylinux1_x86_64; do platforms+=(--platform "$p"); done
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${platforms[@]}" \
  -d .whl msgspec structlog soundfile soxr webdataset braceexpand tomli-w cffi pycparser
du -sh .whl
