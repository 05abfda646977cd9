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
#            linker script) is not counted; heap_init is what load_model + prepare allocate at
#            their peak; graph / interp what the loaded Graph and the prepared Interpreter keep
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

printf '%-18s %-10s %9s %9s %9s %9s | %8s %8s %8s %9s %8s %8s %8s | %9s %9s\n' \
  model target flash code model images RAM .data .bss arena heap_init graph interp constants min_live
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
    heap="$(field heap_init "$line")"; hg="$(field heap_graph "$line")"; hi="$(field heap_interpreter "$line")"
    constants="$(field constants "$line")"; live="$(field min_live "$line")"
    printf '%-18s %-10s %9d %9d %9d %9d | %8d %8d %8d %9d %8s %8s %8s | %9s %9s\n' "$name" "$t" "$flash" "$code" \
      "$model" "$images" "$ram" "$data" "$bss" "$arena" "${heap:-?}" "${hg:-?}" "${hi:-?}" "${constants:-?}" "${live:-?}"
  done
done
# Code by part, from each program's linker map: what a model costs in flash besides itself.
echo
echo "Code by part (bytes of .text/.rodata/.ARM.ex* from the linker map; model, images, labels excluded):"
printf '%-18s %-10s %8s | %8s %8s %8s %8s | %8s %8s %8s %8s %8s\n' model target code runtime cortex-m loader port \
  libc libm libgcc libstdc++ program
for t in $TARGETS; do
  for map in "$ROOT/build-$t"/bin/mcu_inference_*.elf.map; do
    [[ -e "$map" ]] || continue
    prog="$(basename "$map" .elf.map)"
    python3 - "$map" "${prog#mcu_inference_}" "$t" <<'PY'
import re, sys, collections
path, name, target = sys.argv[1:]
text = open(path).read()
text = text[text.index("Linker script and memory map"):]
text = re.sub(r"\n(\s+\.\S+)\n\s+(0x)", r"\n\1 \2", text)  # a long section name wraps its line
part = collections.Counter()
for line in text.splitlines():
    m = re.match(r"^ (\.(?:text|rodata|ARM\.ex\S*|init_array)\S*)\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+(.*)$", line)
    if not m or int(m.group(2), 16) == 0:
        continue
    src, size = m.group(4), int(m.group(3), 16)
    if "kernels/cortex_m/" in src or re.search(r"\((conv_s8|depthwise_s8|dispatch)\.cc\.obj\)", src): key = "cortex-m"
    elif "libtq_runtime.a" in src: key = "runtime"
    elif "libtq_schema.a" in src: key = "loader"
    elif "libtq_ports.a" in src or "tq_baremetal" in src: key = "port"
    elif re.search(r"/libc\.a|libc_nano", src): key = "libc"
    elif "/libm.a" in src: key = "libm"
    elif "/libgcc.a" in src: key = "libgcc"
    elif "libstdc++" in src or "libsupc++" in src: key = "libstdc++"
    elif "main.cc" in src: key = "program"
    else: key = "model"  # the embedded model, images and labels source
    part[key] += size
code = sum(v for k, v in part.items() if k != "model")
cols = ["runtime", "cortex-m", "loader", "port", "libc", "libm", "libgcc", "libstdc++", "program"]
print("%-18s %-10s %8d | %8d %8d %8d %8d | %8d %8d %8d %8d %8d" % ((name, target, code) + tuple(part[c] for c in cols)))
PY
  done
done
echo "(runtime: tq_runtime without its Cortex-M kernels; port: ports/ incl. format.c, startup, syscalls)"
if [[ $found == 0 ]]; then
  echo "mcu_size.sh: no build-<target>/bin/mcu_inference_*.elf; run examples/mcu_inference/run.sh first" >&2
  exit 1
fi
echo "(bytes; RAM = .data + .bss incl. the arena, plus heap_init on the heap and the 64 KiB stack;"
echo " '?' = no run log: run examples/mcu_inference/run.sh)"
