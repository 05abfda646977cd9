#!/usr/bin/env bash
# Target libraries for cross-building tinyquant for ARM Linux, without touching the host's packages.
#
#   bash toolchains/make-sysroot.sh aarch64|armhf [DEST]
#
# Downloads the Debian arm64/armhf packages of XNNPACK, pthreadpool, cpuinfo, lp_solve,
# FlatBuffers, protobuf, ONNX and zlib with `apt-get download PKG:ARCH` (and the header-only,
# Architecture: all doctest, CLI11 and nlohmann-json without the suffix), and unpacks each
# with `dpkg -x` into DEST (default: build-sysroot/<triple> in the source tree). Nothing is
# installed: `apt-get install` of a foreign-architecture -dev package would remove the host's own
# (the -dev packages are not Multi-Arch: same). The C library, libstdc++ and the compiler come from
# Debian's cross toolchain packages (g++-aarch64-linux-gnu / g++-arm-linux-gnueabihf, which put
# the target's libc in /usr/<triple>); the toolchain files in this folder point CMake at both.
#
# Needs the architecture known to dpkg (`dpkg --add-architecture arm64` + `apt-get update`); the
# script does that itself when it runs as root and the architecture is missing.
set -euo pipefail
arch="${1:-}"
case "$arch" in
  aarch64|arm64) debarch=arm64; triple=aarch64-linux-gnu ;;
  armhf|arm) debarch=armhf; triple=arm-linux-gnueabihf ;;
  *) echo "usage: $0 aarch64|armhf [DEST]" >&2; exit 2 ;;
esac
src="$(cd "$(dirname "$0")/.." && pwd)"
dest="${2:-$src/build-sysroot/$triple}"

pkgs=(
  libxnnpack-dev libxnnpack0 libpthreadpool-dev libpthreadpool0 libcpuinfo-dev libcpuinfo0
  liblpsolve55-dev libcolamd2 libsuitesparseconfig5
  libflatbuffers-dev
  libprotobuf-dev libprotobuf32 libonnx-dev libonnx1 libonnxifi
  zlib1g-dev zlib1g
)
# Architecture-independent headers are the same for every target.
indep=(doctest-dev libcli11-dev nlohmann-json3-dev)

stamp="$dest/.tq-sysroot"
want="$(printf '%s\n' "$debarch" "${pkgs[@]}" "${indep[@]}")"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "make-sysroot: $dest is up to date"
  exit 0
fi

if ! dpkg --print-foreign-architectures | grep -qx "$debarch"; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "make-sysroot: dpkg does not know $debarch; run: sudo dpkg --add-architecture $debarch && sudo apt-get update" >&2
    exit 1
  fi
  echo "make-sysroot: adding dpkg architecture $debarch"
  dpkg --add-architecture "$debarch"
  # A mirror mid-sync can fail one index (seen for bookworm-security armhf); the check below
  # says precisely which package is then missing.
  apt-get update -q || echo "make-sysroot: apt-get update reported errors; continuing with the indexes it has" >&2
fi

debs="$dest.debs"
rm -rf "$dest" "$debs"
mkdir -p "$dest" "$debs"
targets=()
for p in "${pkgs[@]}"; do targets+=("$p:$debarch"); done
targets+=("${indep[@]}")
echo "make-sysroot: downloading ${#targets[@]} packages for $debarch"
if ! (cd "$debs" && apt-get download -q "${targets[@]}"); then
  echo "make-sysroot: apt-get download failed for $debarch (is 'apt-get update' current?)" >&2
  exit 1
fi
for deb in "$debs"/*.deb; do dpkg -x "$deb" "$dest"; done
rm -rf "$debs"

# The -dev packages' .so links are absolute on some packages; make them relative to the sysroot.
find "$dest" -type l | while read -r link; do
  target="$(readlink "$link")"
  case "$target" in
    /*) ln -sfn "$dest$target" "$link" ;;
  esac
done
for f in usr/include/xnnpack.h usr/lib/$triple/libXNNPACK.so usr/include/onnx/onnx_pb.h \
         usr/include/CLI/CLI.hpp usr/include/nlohmann/json.hpp; do
  [ -e "$dest/$f" ] || { echo "make-sysroot: $dest/$f missing after unpacking" >&2; exit 1; }
done
echo "$want" > "$stamp"
echo "make-sysroot: $triple libraries in $dest ($(du -sh "$dest" | cut -f1))"
