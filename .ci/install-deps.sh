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
  dataset-fashion-mnist zlib1g-dev
  python3 python3-numpy python3-torch python3-torchvision python3-onnx
)
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
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
