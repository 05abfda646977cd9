#!/usr/bin/env bash
# The installed package as an app's build sees it: `cmake --install` a build tree, then build
# examples/c_api against the install via find_package (shared and static) and via pkg-config, and
# run each on a quantized lenet. Usage: .ci/c-api.sh [host|aarch64] BUILD_DIR (aarch64: under qemu).
set -euo pipefail
cd "$(dirname "$0")/.."
arch="${1:-host}"; build="${2:-build}"
prefix="$PWD/$build/install"
rm -rf "$prefix"
cmake --install "$build" --prefix "$prefix" >/dev/null
model=build/c-api/lenet.w8a8.tqm
mkdir -p build/c-api
[ -f "$model" ] || ./build/bin/tq quantize examples/fashion_mnist/models/lenet.onnx --method rtn --wbits 8 --abits 8 \
  --calib-size 100 -o "$model" 2>/dev/null
cross=(); run=()
if [ "$arch" = aarch64 ]; then
  triple=aarch64-linux-gnu
  sysroot="${TQ_SYSROOT:-$PWD/build-sysroot/$triple}"
  cross=(-DCMAKE_TOOLCHAIN_FILE="$PWD/toolchains/aarch64-linux-gnu.toolchain.cmake")
  run=(qemu-aarch64 -L "/usr/$triple" -E "LD_LIBRARY_PATH=$prefix/lib:$sysroot/usr/lib/$triple:$sysroot/lib/$triple:$sysroot/usr/lib/lp_solve")
fi
libdir=$(cd "$prefix" && ls -d lib*/cmake/tinyquant | head -1)
for way in cmake-shared cmake-static pkgconfig; do
  out="build/c-api/$arch-$way"
  rm -rf "$out"
  case "$way" in
    # tinyquant_DIR rather than CMAKE_PREFIX_PATH: a cross toolchain re-roots prefixes in its sysroot.
    cmake-shared) cmake -S examples/c_api -B "$out" -G Ninja "${cross[@]}" -Dtinyquant_DIR="$prefix/$libdir" >/dev/null ;;
    cmake-static) cmake -S examples/c_api -B "$out" -G Ninja "${cross[@]}" -Dtinyquant_DIR="$prefix/$libdir" -DTQ_STATIC=ON >/dev/null ;;
    pkgconfig) PKG_CONFIG_LIBDIR="$prefix/$(dirname "$(dirname "$libdir")")/pkgconfig" \
                 cmake -S examples/c_api -B "$out" -G Ninja "${cross[@]}" -DTQ_FIND=pkgconfig >/dev/null ;;
  esac
  cmake --build "$out" >/dev/null
  echo "examples/c_api ($arch, $way):"
  "${run[@]}" "$out/classify" "$model" | sed 's/^/  /'
  if [ "$way" = cmake-static ] && readelf -d "$out/classify" | grep -q 'libtinyquant'; then
    echo "the static build links libtinyquant.so" >&2; exit 1
  fi
done
# The drift demo builds against the installed package too (find_package(tinyquant), zlib).
if [ "$arch" = host ]; then
  out=build/c-api/host-drift-demo
  rm -rf "$out"
  cmake -S examples/on_device_recalibration -B "$out" -G Ninja -Dtinyquant_DIR="$prefix/$libdir" >/dev/null
  cmake --build "$out" >/dev/null
  "$out/drift_demo" --header >/dev/null
  echo "examples/on_device_recalibration: built against the install"
fi
