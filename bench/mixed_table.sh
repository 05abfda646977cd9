#!/usr/bin/env bash
# The mixed-precision table (bench/README.md "Mixed precision"): per model, float; uniform W8A8
# and W4A4 (round-to-nearest, and AdaQuant sequential + stats tuning) for comparison; the light
# and advanced pipelines at each budget (percent of the float32 weights) — top-1 of the integer
# model on the Fashion-MNIST test split, drop, the bytes the budget counts, the real file bytes,
# the per-layer bits, time and peak RSS. Each pipeline is one `tq sweep` (candidates and
# sensitivities once, then every budget), whose per-budget time is printed beside the shared one.
#   bash bench/mixed_table.sh [--models a,b] [--budgets 13,16,20,25] [--iters N] [--abits A] [--limit N]
#       [--pipelines light,advanced] [--sweep-args "--final-sequential ..."] [--no-uniform]
set -euo pipefail
cd "$(dirname "$0")/.."
MODELS=lenet,resnet20,mobilenetv2; BUDGETS=13,16,20,25; ITERS=100; ABITS=8; LIMIT=0; PIPELINES=light,advanced
SWEEP_ARGS=""; UNIFORM=1
while [ $# -gt 0 ]; do
  case "$1" in
    --models) MODELS="$2"; shift 2 ;;
    --budgets) BUDGETS="$2"; shift 2 ;;
    --iters) ITERS="$2"; shift 2 ;;
    --abits) ABITS="$2"; shift 2 ;;
    --limit) LIMIT="$2"; shift 2 ;;
    --pipelines) PIPELINES="$2"; shift 2 ;;
    --sweep-args) SWEEP_ARGS="$2"; shift 2 ;;
    --no-uniform) UNIFORM=0; shift ;;
    *) echo "usage: $0 [--models a,b] [--budgets 13,16,...] [--iters N] [--abits A] [--limit N] [--pipelines light,advanced] [--sweep-args ARGS] [--no-uniform]" >&2; exit 2 ;;
  esac
done
TQ=build/bin/tq
OUT=build/bench/mixed
mkdir -p "$OUT"
LIMIT_ARG=(); [ "$LIMIT" -gt 0 ] && LIMIT_ARG=(--limit "$LIMIT")
row() {  # model pipeline label top1 float bytes file_bytes fraction bits seconds rss_mib
  printf "%-12s %-9s %-10s %7.2f %+7.2f %10s %10s %7s %-22s %8s %8s\n" "$@"
}
printf "%-12s %-9s %-10s %7s %7s %10s %10s %7s %-22s %8s %8s\n" model pipeline budget top1 drop "bytes" "file B" "% fp32" \
  "bits (w:layers)" "time s" "RSS MiB"
for m in ${MODELS//,/ }; do
  onnx="examples/fashion_mnist/models/$m.onnx"
  float=$("$TQ" eval "$onnx" "${LIMIT_ARG[@]}" --json 2>/dev/null | /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['top1'])")
  row "$m" float - "$float" 0 - - - - - -
  # Uniform comparisons, each one tq quantize run.
  [ "$UNIFORM" = 1 ] && for v in "rtn --wbits 8 --abits 8" "rtn --wbits 4 --abits 4" "adaquant --sequential --stats-tuning --wbits 4 --abits 4 --iters $ITERS"; do
    tag="$m.$(echo "$v" | tr ' ' '_' | tr -d '-')"
    start=$(date +%s.%N)
    # shellcheck disable=SC2086
    "$TQ" quantize "$onnx" --method $v --calib-size 1000 -o "$OUT/$tag.tqm" --report "$OUT/$tag.json" > "$OUT/$tag.log" 2>&1 ||
      { echo "quantize failed: $tag (see $OUT/$tag.log)" >&2; continue; }
    secs=$(/usr/bin/python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$start" "$(date +%s.%N)")
    top1=$("$TQ" eval "$OUT/$tag.tqm" "${LIMIT_ARG[@]}" --json 2>/dev/null | /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['top1'])")
    read -r bytes frac bits < <("$TQ" inspect "$OUT/$tag.tqm" | /usr/bin/python3 -c "
import re, sys
t = sys.stdin.read()
m = re.search(r'at (\S+) bits in (\d+) layers .* = (\d+) bytes \(float32: (\d+) bytes', t)
print(m.group(3), f'{100 * int(m.group(3)) / int(m.group(4)):.2f}', f'{m.group(1)}:{m.group(2)}')")
    rss=$(/usr/bin/python3 -c "import json,sys; print(round(json.load(open(sys.argv[1])).get('peak_rss_bytes', 0) / 1048576))" "$OUT/$tag.json")
    label=$(echo "$v" | sed -E 's/--wbits ([0-9]) --abits ([0-9]).*/W\1A\2/; s/ --sequential --stats-tuning//; s/^adaquant/AQ/')
    row "$m" uniform "$label" "$top1" "$(/usr/bin/python3 -c "print($top1 - $float)")" "$bytes" "$(stat -c %s "$OUT/$tag.tqm")" "$frac" "$bits" "$secs" "$rss"
  done
  for p in ${PIPELINES//,/ }; do
    tag="$m.$p.a$ABITS$(echo "$SWEEP_ARGS" | tr ' ' '_' | tr -d '-')"
    extra=(); [ "$p" = advanced ] && extra=(--iters "$ITERS")
    # shellcheck disable=SC2206
    [ -n "$SWEEP_ARGS" ] && extra+=($SWEEP_ARGS)
    start=$(date +%s.%N)
    "$TQ" sweep "$onnx" --pipeline "$p" --abits "$ABITS" --budgets "$BUDGETS" --uniform none "${extra[@]}" \
      "${LIMIT_ARG[@]}" --calib-size 1000 --report "$OUT/$tag.json" --plot "$OUT/$tag.svg" > "$OUT/$tag.out" 2> "$OUT/$tag.log" ||
      { echo "sweep failed: $tag (see $OUT/$tag.log)" >&2; continue; }
    total=$(/usr/bin/python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$start" "$(date +%s.%N)")
    /usr/bin/python3 - "$OUT/$tag.json" "$m" "$p" "$total" "$SWEEP_ARGS" <<'PY'
import json, sys
path, m, p, total = sys.argv[1:5]
r = json.load(open(path))
shared = r["candidate_seconds"] + r["sensitivity_seconds"]
rss = r["peak_rss_bytes"] / 1048576
for q in r["points"]:
    print(f"{m:<12} {p:<9} {q['label']:<10} {q['top1']:>7.2f} {q['drop']:>+7.2f} {q['model_bytes']:>10} {q['file_bytes']:>10} "
          f"{100 * q['fraction']:>7.2f} {q['bits_summary']:<22} {q['seconds']:>8.1f} {rss:>8.0f}")
print(f"{m:<12} {p:<9} (A{r['activation_bits']}{' ' + sys.argv[5] if len(sys.argv) > 5 and sys.argv[5] else ''}; shared: candidates {r['candidate_seconds']:.1f} s + sensitivity {r['sensitivity_seconds']:.1f} s; "
      f"sweep wall time {float(total):.0f} s)")
PY
  done
done
