#!/usr/bin/env bash
# bench/mcu_size.sh — flash and RAM of the Cortex-M inference programs (examples/mcu_inference),
# per model and target, next to the floor a model needs whatever the runtime: its packed constant
# bytes (weights, biases) and the planner's minimum live activation bytes.
#
#   bash bench/mcu_size.sh [--target cortex-m4|cortex-m7|all] [--root DIR]
#
# Reads build-<target>/bin/mcu_inference_*.elf (arm-none-eabi-size -A, arm-none-eabi-nm) and the
# line each program printed under QEMU (build-<target>/mcu_logs/<program>.log, written by
# examples/mcu_inference/run.sh, which calls this script at its end).
#   flash  = .text + .rodata + .ARM.ex* + .init_array + the .data image (model and images included)
#   code   = flash - model - images - labels (runtime + loader + newlib + libstdc++ + startup)
#   RAM    = .data + .bss (the static arena is in .bss); the stack (64 KiB reserved by the
#            linker script) is not counted; heap_init is what load_model + prepare allocate
#            (peak live bytes of operator new; sbrk = the heap break newlib reached) — all of it
#            before the first invoke(), none after.
#   floor  = constants (packed weight + bias bytes of the model) and min_live (the planner's
#            largest set of simultaneously live activations): no runtime can need less.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGETS="cortex-m4 cortex-m7"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --target) [[ "$2" == all ]] && TARGETS="cortex-m4 cortex-m7" || TARGETS="$2"; shift 2 ;;
    --root) ROOT="$2"; shift 2 ;;
    -h|--help) sed -n 2,20p "$0"; exit 0 ;;
    *) echo "mcu_size.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }

printf '%-18s %-10s %9s %9s %9s %9s | %8s %8s %8s %9s %8s | %9s %9s\n' \
  model target flash code model images RAM .data .bss arena heap_init constants min_live
found=0
for t in $TARGETS; do
  dir="$ROOT/build-$t"
  for elf in "$dir"/bin/mcu_inference_*.elf; do
    [[ -e "$elf" ]] || continue
    found=1
    prog="$(basename "$elf" .elf)"
    name="${prog#mcu_inference_}"
    sz="$(arm-none-eabi-size -A "$elf")"
    sec() { awk -v s="$1" '$1 == s { print $2; f = 1 } END { if (!f) print 0 }' <<<"$sz"; }
    text=$(sec .text); rodata=$(sec .rodata); extab=$(sec .ARM.extab); exidx=$(sec .ARM.exidx)
    init=$(sec .init_array); data=$(sec .data); bss=$(sec .bss)
    syms="$(arm-none-eabi-nm -S "$elf")"
    sym() { local hex; hex="$(awk -v s="$1" '$4 == s { print $2 }' <<<"$syms")"; echo $((16#${hex:-0})); }
    model=$(sym _ZN11tq_embedded5modelE); images=$(sym _ZN11tq_embedded6imagesE)
    labels=$(sym _ZN11tq_embedded6labelsE); arena=$(sym _ZN11tq_embedded5arenaE)
    flash=$((text + rodata + extab + exidx + init + data))
    code=$((flash - model - images - labels))
    ram=$((data + bss))
    log="$dir/mcu_logs/$prog.log"
    line="$(grep -h '^mcu_inference ' "$log" 2>/dev/null || true)"
    heap="$(field heap_init "$line")"; constants="$(field constants "$line")"; live="$(field min_live "$line")"
    printf '%-18s %-10s %9d %9d %9d %9d | %8d %8d %8d %9d %8s | %9s %9s\n' "$name" "$t" "$flash" "$code" "$model" \
      "$images" "$ram" "$data" "$bss" "$arena" "${heap:-?}" "${constants:-?}" "${live:-?}"
  done
done
if [[ $found == 0 ]]; then
  echo "mcu_size.sh: no build-<target>/bin/mcu_inference_*.elf; run examples/mcu_inference/run.sh first" >&2
  exit 1
fi
echo "(bytes; RAM = .data + .bss incl. the arena, plus heap_init on the heap and the 64 KiB stack;"
echo " '?' = no run log: run examples/mcu_inference/run.sh)"
