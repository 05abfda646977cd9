#!/usr/bin/env bash
# The "models from the wild" table: one row per model of tests/onnx/wild/make_models.py — opset,
# Transposes in the ONNX graph -> executed after import, max abs / relative difference against ONNX
# Runtime on both backends, and the W8A8 round-to-nearest SQNR against float.
#   bash bench/wild_table.sh [BUILD_DIR]
# Needs the build (bash .ci/build.sh) and ONNX Runtime (bash .ci/install-deps.sh). ~15 s.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${1:-build}"
"$BUILD/bin/tq_tests" --source-file='*tests/wild/*' --no-intro 2>&1 |
  sed -n 's|^.*wild_test.cc:[0-9]*: MESSAGE: ||p'
