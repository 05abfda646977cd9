#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, runs every suite through CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/install-deps.sh
bash .ci/build.sh
cd build && ctest -j "$(nproc)" --output-on-failure --timeout 1800
