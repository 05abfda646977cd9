#!/usr/bin/env bash
# The reference models (Fashion-MNIST CNNs and the langid text transformer) on Cortex-M4/M7 under
# QEMU, checked bit for bit against the host.
#
#   bash examples/mcu_inference/run.sh [--target cortex-m4|cortex-m7|all] [--count N]
#                                      [--models "lenet resnet20 mobilenetv2 langid"] [--jobs N] [--no-host]
#
# 1. host build in build/ (builds tq if needed); quantize each model RTN W4A8 (build/mcu/M.tqm);
#    `tq embed` it with the first N test images (build/mcu/M_w4a8.cc);
# 2. cross builds build-<target> (toolchains/<target>.toolchain.cmake, TQ_MCU_MODELS = those
#    sources); QEMU checks of the startup code (exit status 3 comes out as 3, a fault is nonzero)
#    and the runtime's doctest suites on the target (tests/mcu);
# 3. runs every program under qemu-system-arm (mps2-an386 for M4, mps2-an500 for M7) with
#    semihosting, and `tq eval M.tqm --backend reference --limit N --json` on the host;
# 4. fails (exit 1) unless, for every model and target, correct count, top-1 and the FNV-1a output
#    checksum equal the host's and invoke() allocated nothing; prints the result table and the size
#    report (bench/mcu_size.sh).
# Unless --no-host, the same main.cc is also built for the host (build-mcu-host, runtime + loader
# only, -fno-exceptions) and must print the same line.
# Builds run with -j1 by default (--jobs N to change).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="$(pwd)"
TARGETS="cortex-m4"; COUNT=200; MODELS="lenet resnet20 mobilenetv2 langid"; JOBS=1; HOST_CHECK=1
TIMEOUT="${TQ_QEMU_TIMEOUT:-1200}"
usage() { sed -n 4,5p "$0" | sed 's/^#  *//' >&2; exit 2; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --target)
      case "${2:-}" in cortex-m4|cortex-m7) TARGETS="$2" ;; all) TARGETS="cortex-m4 cortex-m7" ;; *) usage ;; esac
      shift 2 ;;
    --count) [[ "${2:-}" =~ ^[1-9][0-9]*$ ]] || usage; COUNT="$2"; shift 2 ;;
    --models) MODELS="${2:-}"; shift 2 ;;
    --jobs) JOBS="${2:-1}"; shift 2 ;;
    --no-host) HOST_CHECK=0; shift ;;
    *) usage ;;
  esac
done
for tool in cmake ninja arm-none-eabi-g++ qemu-system-arm timeout python3; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool not found (apt-get install gcc-arm-none-eabi \
libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib qemu-system-arm cmake ninja-build)" >&2; exit 1; }
done
qemu_machine() { [[ "$1" == cortex-m7 ]] && echo mps2-an500 || echo mps2-an386; }
# Semihosting console on stdout (QEMU 7.2 sends it to stderr without the chardev).
run_qemu() {  # TARGET ELF LOG -> exit status of the program
  local rc=0
  timeout "$TIMEOUT" qemu-system-arm -M "$(qemu_machine "$1")" -nographic -monitor none -serial none \
    -chardev stdio,id=sh0 -semihosting-config enable=on,target=native,chardev=sh0 -kernel "$2" >"$3" 2>&1 || rc=$?
  return $rc
}

# ---- 1. host: tq, models, embedded sources ----
if [[ ! -f build/build.ninja && ! -f build/Makefile ]]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
fi
cmake --build build -j"$JOBS" --target tq
TQ="$ROOT/build/bin/tq"
WORK="$ROOT/build/mcu"
mkdir -p "$WORK"
SOURCES=()
for m in $MODELS; do
  # The Fashion-MNIST models, or langid (examples/langid: the text transformer, words as token ids).
  onnx="examples/fashion_mnist/models/$m.onnx"; data=fashion-mnist; calib=fashion-mnist:train
  if [[ "$m" == langid ]]; then onnx="examples/langid/models/langid.onnx"; data=langid; calib=langid:train; fi
  [[ -f "$onnx" ]] || { echo "run.sh: no $onnx" >&2; exit 1; }
  tqm="$WORK/$m.w4a8.tqm"
  if [[ ! -f "$tqm" || "$onnx" -nt "$tqm" || "$TQ" -nt "$tqm" ]]; then
    echo "== quantize $m (rtn W4A8) -> $tqm" >&2
    "$TQ" quantize "$onnx" --method rtn --wbits 4 --abits 8 --calib "$calib" -o "$tqm" >"$WORK/$m.quantize.log" 2>&1 ||
      { cat "$WORK/$m.quantize.log" >&2; exit 1; }
  fi
  # Embed into a scratch file; replace the source only when it changed (no needless cross rebuilds).
  mkdir -p "$WORK/new"
  "$TQ" embed "$tqm" --data "$data:test" --count "$COUNT" -o "$WORK/new/${m}_w4a8" 2>"$WORK/$m.embed.log" ||
    { cat "$WORK/$m.embed.log" >&2; exit 1; }
  if ! cmp -s "$WORK/new/${m}_w4a8.cc" "$WORK/${m}_w4a8.cc"; then mv "$WORK/new/${m}_w4a8.cc" "$WORK/${m}_w4a8.cc"; fi
  rm -f "$WORK/new/${m}_w4a8.cc"
  SOURCES+=("$WORK/${m}_w4a8.cc")
  "$TQ" eval "$tqm" --data "$data" --backend reference --limit "$COUNT" --json >"$WORK/$m.host.json"
done
MODEL_LIST="$(IFS=';'; echo "${SOURCES[*]}")"

FAILED=0
RESULTS="$WORK/results.txt"; : >"$RESULTS"
check_line() {  # TARGET MODEL LOG SECONDS RC
  local target="$1" m="$2" log="$3" secs="$4" rc="$5"
  python3 - "$target" "$m" "$log" "$WORK/$m.host.json" "$secs" "$rc" >>"$RESULTS" <<'PY' || FAILED=1
import json, re, sys
target, m, log, host_json, secs, rc = sys.argv[1:]
host = json.load(open(host_json))
line = next((l for l in open(log, errors="replace") if l.startswith("mcu_inference ")), None)
h = (host["correct"], "%.2f" % host["top1"], host["checksum"])
if line is None or rc != "0":
    print(f"{m:<12} {target:<10} {h[0]:>5} {h[1]:>6} {h[2]:>18} | {'-':>5} {'-':>6} {'-':>18} {'-':>5} {secs:>7} FAIL (exit {rc}, see {log})")
    sys.exit(1)
f = dict(kv.split("=", 1) for kv in line.split()[1:])
d = (int(f["correct"]), f["top1"], f["checksum"])
ok = d == h and f["images"] == str(host["samples"]) and f["heap_after_init"] == "0"
print(f"{m:<12} {target:<10} {h[0]:>5} {h[1]:>6} {h[2]:>18} | {d[0]:>5} {d[1]:>6} {d[2]:>18} {f['heap_after_init']:>5} {secs:>7} {'ok' if ok else 'MISMATCH'}")
sys.exit(0 if ok else 1)
PY
}

# ---- 2./3. cross builds, startup checks, doctest on the target, the models ----
TEST_SUMMARY=()
for t in $TARGETS; do
  dir="build-$t"
  echo "== $t: configure + build $dir" >&2
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_TOOLCHAIN_FILE="$ROOT/toolchains/$t.toolchain.cmake" \
    -DTQ_MCU_MODELS="$MODEL_LIST" >"$WORK/$t.configure.log" || { cat "$WORK/$t.configure.log" >&2; exit 1; }
  cmake --build "$dir" -j"$JOBS" >"$WORK/$t.build.log" 2>&1 || { tail -50 "$WORK/$t.build.log" >&2; exit 1; }
  mkdir -p "$dir/mcu_logs"
  # The startup code: main's status reaches the host; a fault is never a success.
  rc=0; run_qemu "$t" "$dir/bin/tq_mcu_exit3.elf" "$dir/mcu_logs/tq_mcu_exit3.log" || rc=$?
  if [[ $rc != 3 ]]; then echo "FAIL $t: tq_mcu_exit3 exited $rc, expected 3" >&2; FAILED=1; fi
  rc=0; run_qemu "$t" "$dir/bin/tq_mcu_fault.elf" "$dir/mcu_logs/tq_mcu_fault.log" || rc=$?
  if [[ $rc == 0 || $rc == 124 ]] || ! grep -q '\*\*\* fault' "$dir/mcu_logs/tq_mcu_fault.log"; then
    echo "FAIL $t: tq_mcu_fault exited $rc without a fault report" >&2; FAILED=1
  fi
  echo "   startup checks: exit 3 -> 3, fault -> $rc" >&2
  # The runtime's doctest suites on the target.
  rc=0; run_qemu "$t" "$dir/bin/tq_mcu_tests.elf" "$dir/mcu_logs/tq_mcu_tests.log" || rc=$?
  summary="$(grep -E '^\[doctest\] (test cases|assertions)' "$dir/mcu_logs/tq_mcu_tests.log" | tr -s ' ' | tr '\n' ' ')"
  TEST_SUMMARY+=("$t: exit $rc; $summary")
  if [[ $rc != 0 ]]; then echo "FAIL $t: tq_mcu_tests exited $rc (see $dir/mcu_logs/tq_mcu_tests.log)" >&2; FAILED=1; fi
  for m in $MODELS; do
    prog="mcu_inference_${m}_w4a8"
    echo "   qemu $(qemu_machine "$t"): $prog ($COUNT images)" >&2
    start=$(date +%s.%N); rc=0
    run_qemu "$t" "$dir/bin/$prog.elf" "$dir/mcu_logs/$prog.log" || rc=$?
    secs=$(python3 -c "print('%.1f' % ($(date +%s.%N) - $start))")
    check_line "$t" "$m" "$dir/mcu_logs/$prog.log" "$secs" "$rc"
  done
done

# ---- the same source on the host ----
if [[ $HOST_CHECK == 1 ]]; then
  echo "== host: build-mcu-host (runtime + loader, -fno-exceptions)" >&2
  cmake -S . -B build-mcu-host -G Ninja -DCMAKE_BUILD_TYPE=Release -DTQ_NO_EXCEPTIONS=ON \
    -DTQ_MCU_MODELS="$MODEL_LIST" >"$WORK/host.configure.log" || { cat "$WORK/host.configure.log" >&2; exit 1; }
  cmake --build build-mcu-host -j"$JOBS" >"$WORK/host.build.log" 2>&1 || { tail -50 "$WORK/host.build.log" >&2; exit 1; }
  mkdir -p build-mcu-host/mcu_logs
  for m in $MODELS; do
    prog="mcu_inference_${m}_w4a8"
    start=$(date +%s.%N); rc=0
    "build-mcu-host/bin/$prog" >"build-mcu-host/mcu_logs/$prog.log" 2>&1 || rc=$?
    secs=$(python3 -c "print('%.1f' % ($(date +%s.%N) - $start))")
    check_line host "$m" "build-mcu-host/mcu_logs/$prog.log" "$secs" "$rc"
  done
fi

echo
echo "first $COUNT test samples (Fashion-MNIST images; words for langid), RTN W4A8, reference kernels, batch 1"
echo "left: host tq eval --backend reference; right: the mcu_inference program (QEMU, or the host build)"
printf '%-12s %-10s %5s %6s %18s | %5s %6s %18s %5s %7s\n' model target correct top1 checksum correct top1 checksum \
  heap seconds
cat "$RESULTS"
echo "(heap = heap allocations during inference; seconds = wall time of the whole QEMU run)"
echo
echo "doctest on the target (tests/runtime/*_test.cc + tests/schema/model_io_test.cc):"
for s in "${TEST_SUMMARY[@]}"; do echo "  $s"; done
echo
echo "Size report (bench/mcu_size.sh):"
SIZE_TARGET=all; [[ "$TARGETS" == *" "* ]] || SIZE_TARGET="$TARGETS"
bash bench/mcu_size.sh --target "$SIZE_TARGET" || FAILED=1
if [[ $FAILED != 0 ]]; then
  echo "run.sh: FAILED (see above)" >&2
  exit 1
fi
echo "run.sh: all checks passed"
