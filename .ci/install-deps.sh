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
  dataset-fashion-mnist zlib1g-dev libcli11-dev nlohmann-json3-dev libopenblas-dev
  python3 python3-numpy python3-torch python3-torchvision python3-onnx
)
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
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing ${missing[*]}"
# A mirror mid-sync can fail one index; apt-get install below then says what is really missing.
$SUDO apt-get update -q || echo "install-deps: apt-get update reported errors; trying the install anyway" >&2
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
