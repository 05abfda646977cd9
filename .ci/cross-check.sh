#!/usr/bin/env bash
# The integer contract across targets: the same quantized .tqm gives the same outputs, bit for bit,
# on the build machine and on the target (under QEMU user mode), on both backends.
#   bash .ci/cross-check.sh aarch64|armhf BUILD_DIR [COUNT]
# Needs the host build in build/ (tq) and BUILD_DIR/bin/tq for the target. Compares, per model
# and backend, `tq eval --limit COUNT --json`'s correct count and output checksum (FNV-1a over
# every output byte); exits 1 on any difference.
set -euo pipefail
cd "$(dirname "$0")/.."
arch="$1"; target_build="$2"; count="${3:-200}"
case "$arch" in
  aarch64) triple=aarch64-linux-gnu; qemu=qemu-aarch64 ;;
  armhf) triple=arm-linux-gnueabihf; qemu=qemu-arm ;;
  *) echo "usage: $0 aarch64|armhf BUILD_DIR [COUNT]" >&2; exit 2 ;;
esac
sysroot="${TQ_SYSROOT:-$PWD/build-sysroot/$triple}"
libs="$sysroot/usr/lib/$triple:$sysroot/lib/$triple:$sysroot/usr/lib/lp_solve"
target_tq=("$qemu" -L "/usr/$triple" -E "LD_LIBRARY_PATH=$libs" "$target_build/bin/tq")
work=build/cross-check
mkdir -p "$work"

field() { sed -n "s/.*\"$1\": \"\{0,1\}\([^,\"}]*\).*/\1/p"; }
status=0
printf '%-28s %-10s %-30s %-30s %s\n' model backend host target result
for spec in lenet:4:8 resnet20:8:8 mobilenetv2:4:8 lenet:2:4 langid:4:8; do
  IFS=: read -r model wbits abits <<<"$spec"
  # langid: the text transformer (examples/langid), words of the Debian word lists as token ids.
  onnx="examples/fashion_mnist/models/$model.onnx"; data=fashion-mnist
  [ "$model" = langid ] && onnx=examples/langid/models/langid.onnx && data=langid
  q="$work/${model}_w${wbits}a${abits}.tqm"
  [ -s "$q" ] || ./build/bin/tq quantize "$onnx" --method rtn --calib "$data:train" \
    --wbits "$wbits" --abits "$abits" -o "$q" >"$q.log" 2>&1 || { cat "$q.log"; exit 1; }
  for backend in reference xnnpack; do
    h=$(./build/bin/tq eval "$q" --data "$data" --backend "$backend" --limit "$count" --json)
    t=$("${target_tq[@]}" eval "$q" --data "$data" --backend "$backend" --limit "$count" --json)
    hs="$(echo "$h" | field correct)/$count $(echo "$h" | field checksum)"
    ts="$(echo "$t" | field correct)/$count $(echo "$t" | field checksum)"
    if [ "$hs" = "$ts" ] && [ -n "$(echo "$h" | field checksum)" ]; then r=same; else r=DIFFERENT; status=1; fi
    printf '%-28s %-10s %-30s %-30s %s\n' "$(basename "$q")" "$backend" "$hs" "$ts" "$r"
  done
done
exit $status
