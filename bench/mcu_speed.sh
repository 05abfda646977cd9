#!/usr/bin/env bash
# bench/mcu_speed.sh — instructions per multiply-accumulate of the Cortex-M kernels, per layer type
# and per model, next to the portable C kernels, measured under emulation.
#
#   bash bench/mcu_speed.sh [--target cortex-m4|cortex-m7|all] [--bits "8 4 2"] [--models "lenet resnet20 mobilenetv2"]
#
# Each model is quantized RTN W{bits}A8 on the host, embedded with 2 test images (tq embed) and
# built for the target (build-<target>-speed); the program (examples/mcu_inference) runs under
#   qemu-system-arm -M mps2-an386|mps2-an500 -icount shift=0
# where each guest instruction advances virtual time by exactly 1 ns, and times every op on image
# 0 with the board's 25 MHz timer twice: with the Cortex-M kernels, then with the portable ones
# (same outputs required). Instructions = ticks * (instructions per tick), the latter measured in
# the same run on a loop of known length (2 000 000 instructions; 40 per tick expected).
# Instruction counts are not cycles: see bench/README.md ("Cortex-M speed").
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TARGETS="cortex-m4"; BITS="8 4 2"; MODELS="lenet resnet20 mobilenetv2"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --target) [[ "$2" == all ]] && TARGETS="cortex-m4 cortex-m7" || TARGETS="$2"; shift 2 ;;
    --bits) BITS="$2"; shift 2 ;;
    --models) MODELS="$2"; shift 2 ;;
    -h|--help) sed -n 2,15p "$0"; exit 0 ;;
    *) echo "mcu_speed.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
for t in $TARGETS; do
  [[ "$t" == cortex-m4 || "$t" == cortex-m7 ]] || { echo "mcu_speed.sh: unknown target $t" >&2; exit 2; }
done
for b in $BITS; do
  [[ "$b" =~ ^[2-8]$ ]] || { echo "mcu_speed.sh: --bits takes widths 2..8, got '$b'" >&2; exit 2; }
done

[[ -f build/build.ninja ]] || cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build --target tq >/dev/null
TQ="$ROOT/build/bin/tq"
WORK="$ROOT/build/mcu-speed"
mkdir -p "$WORK/src"
SOURCES=(); PROGRAMS=()
for m in $MODELS; do
  for b in $BITS; do
    name="${m}_w${b}a8"
    tqm="$WORK/$name.tqm"
    if [[ ! -f "$tqm" || "$TQ" -nt "$tqm" ]]; then
      "$TQ" quantize "examples/fashion_mnist/models/$m.onnx" --method rtn --wbits "$b" --abits 8 -o "$tqm" \
        >"$WORK/$name.quantize.log" 2>&1 || { cat "$WORK/$name.quantize.log" >&2; exit 1; }
    fi
    mkdir -p "$WORK/new"
    "$TQ" embed "$tqm" --data fashion-mnist:test --count 2 -o "$WORK/new/$name" 2>"$WORK/$name.embed.log" ||
      { cat "$WORK/$name.embed.log" >&2; exit 1; }
    cmp -s "$WORK/new/$name.cc" "$WORK/src/$name.cc" || mv "$WORK/new/$name.cc" "$WORK/src/$name.cc"
    rm -f "$WORK/new/$name.cc"
    SOURCES+=("$WORK/src/$name.cc"); PROGRAMS+=("$name")
  done
done
LIST="$(IFS=';'; echo "${SOURCES[*]}")"

LOGS=()
for t in $TARGETS; do
  dir="build-$t-speed"
  machine=mps2-an386; [[ "$t" == cortex-m7 ]] && machine=mps2-an500
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_TOOLCHAIN_FILE="$ROOT/toolchains/$t.toolchain.cmake" \
    -DTQ_MCU_MODELS="$LIST" >"$WORK/$t.configure.log" || { cat "$WORK/$t.configure.log" >&2; exit 1; }
  targets=(); for p in "${PROGRAMS[@]}"; do targets+=(--target "mcu_inference_$p"); done
  cmake --build "$dir" "${targets[@]}" >"$WORK/$t.build.log" 2>&1 || { tail -40 "$WORK/$t.build.log" >&2; exit 1; }
  for p in "${PROGRAMS[@]}"; do
    log="$WORK/$t.$p.log"
    timeout 1200 qemu-system-arm -M "$machine" -icount shift=0 -nographic -monitor none -serial none \
      -chardev stdio,id=sh0 -semihosting-config enable=on,target=native,chardev=sh0 \
      -kernel "$dir/bin/mcu_inference_$p.elf" >"$log" 2>&1 || { echo "mcu_speed.sh: $p on $t failed:" >&2; cat "$log" >&2; exit 1; }
    LOGS+=("$t:$log")
  done
done

python3 - "${LOGS[@]}" <<'PY'
import sys, collections
rows = []      # per op
models = []    # per program
for arg in sys.argv[1:]:
    target, log = arg.split(":", 1)
    ops, prof = [], None
    for line in open(log):
        parts = line.split()
        if not parts or parts[0] not in ("mcu_op", "mcu_profile"):
            continue
        f = dict(p.split("=", 1) for p in parts[1:])
        (ops.append(f) if parts[0] == "mcu_op" else None)
        if parts[0] == "mcu_profile":
            prof = f
    if prof is None or prof.get("same_outputs") != "1":
        sys.exit(f"mcu_speed.sh: {log}: no profile line, or the two kernel sets disagreed")
    ipt = int(prof["loop_instructions"]) / int(prof["loop_ticks"])
    for f in ops:
        rows.append((target, prof["model"], f["kind"], int(f["wbits"]), int(f["macs"]),
                     int(f["ticks"]) * ipt, int(f["ticks_portable"]) * ipt))
    models.append((target, prof["model"], int(prof["macs"]), int(prof["ticks"]) * ipt,
                   int(prof["ticks_portable"]) * ipt, ipt))

def layer_type(kind):
    if kind.startswith("dw"): return "depthwise " + kind[2:]
    if kind.startswith("conv"): return "conv " + kind[4:]
    return "fc"

print("Instructions per MAC, batch 1, image 0 (qemu-system-arm -icount shift=0; MACs include padding taps)")
print()
print("%-10s %-16s %5s %12s | %9s %9s %8s" % ("target", "layer type", "wbits", "MACs", "portable", "cortex-m", "speedup"))
agg = collections.OrderedDict()
for t, m, kind, wb, macs, fast, port in rows:
    key = (t, layer_type(kind), wb)
    a = agg.setdefault(key, [0, 0.0, 0.0])
    a[0] += macs; a[1] += fast; a[2] += port
for (t, lt, wb), (macs, fast, port) in sorted(agg.items(), key=lambda kv: (kv[0][0], kv[0][1], -kv[0][2])):
    print("%-10s %-16s %5d %12d | %9.2f %9.2f %7.1fx" % (t, lt, wb, macs, port / macs, fast / macs, port / fast))
print()
print("%-10s %-22s %12s | %14s %14s | %9s %9s %8s" % ("target", "model", "MACs", "instr portable", "instr cortex-m",
                                                     "portable", "cortex-m", "speedup"))
for t, m, macs, fast, port, ipt in models:
    print("%-10s %-22s %12d | %14.0f %14.0f | %9.2f %9.2f %7.1fx" % (t, m, macs, port, fast, port / macs, fast / macs,
                                                                    port / fast))
print("(whole network per MAC: every op, the non-weighted ones and the float input/output included)")
print()
print("Per layer (instructions per MAC):")
print("%-10s %-22s %-10s %10s | %9s %9s" % ("target", "model", "layer", "MACs", "portable", "cortex-m"))
for t, m, kind, wb, macs, fast, port in rows:
    print("%-10s %-22s %-10s %10d | %9.2f %9.2f" % (t, m, kind, macs, port / macs, fast / macs))
PY
