#!/usr/bin/env bash
# The AdaQuant accuracy table (bench/README.md): every quantize variant of every model and
# bit-width, top-1 of the integer model on the Fashion-MNIST test split, time and peak RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
MODELS=lenet,resnet20,mobilenetv2; BITS=8/8,4/8,4/4,2/4; ITERS=100; LIMIT=0; SEEDS=0; QDROP=0; FL8=0
while [ $# -gt 0 ]; do
  case "$1" in
    --models) MODELS="$2"; shift 2 ;;
    --bits) BITS="$2"; shift 2 ;;
    --iters) ITERS="$2"; shift 2 ;;
    --limit) LIMIT="$2"; shift 2 ;;
    --seeds) SEEDS="$2"; shift 2 ;;
    --qdrop) QDROP="$2"; shift 2 ;;
    --first-last-8bit) FL8=1; shift ;;
    *) echo "usage: $0 [--models a,b] [--bits W/A,...] [--iters N] [--limit N] [--seeds 0,1,...] [--qdrop P] [--first-last-8bit]" >&2; exit 2 ;;
  esac
done
TQ=build/bin/tq
OUT=build/bench/adaquant
mkdir -p "$OUT"
LIMIT_ARG=(); [ "$LIMIT" -gt 0 ] && LIMIT_ARG=(--limit "$LIMIT")
VARIANTS=("rtn" "rtn --stats-tuning" "adaquant" "adaquant --sequential" "adaquant --sequential --stats-tuning")
# --qdrop P adds the QDrop refinement as one more variant, measured in the same table.
[ "$QDROP" != 0 ] && VARIANTS+=("adaquant --sequential --stats-tuning --qdrop $QDROP")
# --first-last-8bit adds RTN and sequential + stats tuning with the first and last weighted
# layers at 8 bits (--keep-first-last-8bit).
[ "$FL8" = 1 ] && VARIANTS+=("rtn --keep-first-last-8bit" "adaquant --sequential --stats-tuning --keep-first-last-8bit")
printf "%-12s %-6s %-5s %-58s %8s %8s %9s %9s\n" model bits seed variant top1 drop "time s" "RSS MiB"
for m in ${MODELS//,/ }; do
  float=$("$TQ" eval "examples/fashion_mnist/models/$m.onnx" "${LIMIT_ARG[@]}" --json 2>/dev/null |
          /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['top1'])")
  printf "%-12s %-6s %-5s %-58s %8.2f %8s\n" "$m" float - "tinyquant float" "$float" -
  for wa in ${BITS//,/ }; do
    w=${wa%/*}; a=${wa#*/}
    for seed in ${SEEDS//,/ }; do
      for v in "${VARIANTS[@]}"; do
        tag="$m.w${w}a${a}.s$seed.$(echo "$v" | tr ' ' '_' | tr -d '-')"
        extra=(); [[ $v == adaquant* ]] && extra=(--iters "$ITERS")
        # shellcheck disable=SC2086
        "$TQ" quantize "examples/fashion_mnist/models/$m.onnx" --method $v "${extra[@]}" --wbits "$w" --abits "$a" \
          --calib-size 1000 --seed "$seed" -o "$OUT/$tag.tqm" --report "$OUT/$tag.json" > "$OUT/$tag.log" 2>&1 ||
          { echo "quantize failed: $tag (see $OUT/$tag.log)" >&2; continue; }
        top1=$("$TQ" eval "$OUT/$tag.tqm" "${LIMIT_ARG[@]}" --json 2>/dev/null |
               /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['top1'])")
        /usr/bin/python3 - "$OUT/$tag.json" "$m" "$w" "$a" "$seed" "$v" "$top1" "$float" <<'PY'
import json, sys
path, m, w, a, seed, v, top1, fl = sys.argv[1:]
r = json.load(open(path))
t = r.get("seconds", 0.0); rss = r.get("peak_rss_bytes", 0) / 1048576
print(f"{m:<12} W{w}A{a:<3} {seed:<5} {v:<58} {float(top1):>8.2f} {float(top1) - float(fl):>+8.2f} {t:>9.1f} {rss:>9.0f}")
PY
      done
    done
  done
done
