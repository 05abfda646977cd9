#!/usr/bin/env bash
# Installs every Debian package tinyquant needs to build, test, train its reference
# models and benchmark. Idempotent: safe to run on every README command and in CI.
set -euo pipefail
PKGS=(
  build-essential cmake ninja-build pkg-config
  libxnnpack-dev libpthreadpool-dev libcpuinfo-dev
  libflatbuffers-dev flatbuffers-compiler
  liblpsolve55-dev doctest-dev
  libonnx-dev libprotobuf-dev protobuf-compiler
  dataset-fashion-mnist zlib1g-dev libcli11-dev nlohmann-json3-dev libopenblas-dev libpng-dev libjpeg-dev
  python3 python3-numpy python3-torch python3-torchvision python3-onnx
  # Word lists: the text reference model (examples/langid) learns language identification from them.
  wamerican wfrench wngerman witalian wspanish wportuguese wdutch wswedish wdanish wpolish wcatalan
)
# Node.js runs ONNX Runtime, the tests' oracle for ONNX semantics (below). A machine whose node
# comes from elsewhere (it bundles npm) keeps it: Debian's npm would conflict with it.
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || PKGS+=(nodejs npm)
# --cross: also the ARM cross compilers and QEMU (toolchains/, examples/mcu_inference, .ci/run).
if [ "${1:-}" = "--cross" ]; then
  PKGS+=(
    g++-aarch64-linux-gnu g++-arm-linux-gnueabihf qemu-user
    gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib qemu-system-arm
  )
fi
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deps: all ${#PKGS[@]} packages present"
else
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "install-deps: installing ${missing[*]}"
  # A mirror mid-sync can fail one index; apt-get install below then says what is really missing.
  $SUDO apt-get update -q || echo "install-deps: apt-get update reported errors; trying the install anyway" >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# ONNX Runtime's CPU build, for tests only (tests/onnx/wild/ort_run.js), from the npm package
# onnxruntime-node into the user's cache (no root needed). --ignore-scripts: the package's install
# script would fetch a GPU build; the CPU libraries are already in the package. Pinned version.
ORT_VERSION=1.20.1
ORT_DIR="${TQ_ORT_DIR:-$HOME/.cache/tinyquant/ort}"
if ! grep -qs "\"version\": \"$ORT_VERSION\"" "$ORT_DIR/node_modules/onnxruntime-node/package.json"; then
  echo "install-deps: installing onnxruntime-node@$ORT_VERSION into $ORT_DIR"
  mkdir -p "$ORT_DIR"
  npm install --ignore-scripts --no-audit --no-fund --loglevel=error --prefix "$ORT_DIR" "onnxruntime-node@$ORT_VERSION"
fi
