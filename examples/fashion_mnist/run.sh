#!/usr/bin/env bash
# The README's main command: set up, build, then do the product's main job on its embedded
# defaults — quantize the bundled reference models (round-to-nearest W8A8 and W4A4, and W4A4
# AdaQuant sequential + statistics tuning, and mixed precision from the light pipeline at 13% of the
# float32 weight bytes; 1000 calibration images from the Fashion-MNIST train split, seed 0), evaluate float and integer models on the bundled test split (all 10 000 images)
# on XNNPACK, and print one table: top-1, file sizes and batch-1 latency, float vs quantized.
#   bash examples/fashion_mnist/run.sh [--limit N] [--threads N] [--iters N] [--quick]
# --limit N evaluates the first N test images only; --threads sets the evaluation threads
# (latency is always measured at batch 1 on one thread); --iters sets AdaQuant's Adam steps per
# layer (default 100, which keeps the whole job near 10 minutes on 2 cores; the library's
# default is 1000); --quick = --iters 20 --limit 1000.
set -euo pipefail
cd "$(dirname "$0")/../.."
LIMIT=0; THREADS=$(nproc); ITERS=100; LANGID_ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --limit) LIMIT="$2"; LANGID_ARGS+=(--limit "$2"); shift 2 ;;
    --threads) THREADS="$2"; shift 2 ;;
    --iters) ITERS="$2"; shift 2 ;;
    --quick) ITERS=20; LIMIT=1000; LANGID_ARGS+=(--quick); shift ;;
    *) echo "usage: $0 [--limit N] [--threads N] [--iters N] [--quick]" >&2; exit 2 ;;
  esac
done
bash .ci/install-deps.sh
bash .ci/build.sh
TQ=build/bin/tq
BENCH=build/bin/tq_bench_latency
MODELS=examples/fashion_mnist/models
OUT=build/fashion_mnist
mkdir -p "$OUT"
LIMIT_ARG=(); [ "$LIMIT" -gt 0 ] && LIMIT_ARG=(--limit "$LIMIT")
eval_json() {  # MODEL OUT.json
  "$TQ" eval "$1" --data fashion-mnist --split test --backend xnnpack --threads "$THREADS" \
    "${LIMIT_ARG[@]}" --json > "$2"
}
latency_json() {  # MODEL OUT.json
  "$BENCH" "$1" --batch 1 --threads 1 --seconds 1 --backends xnnpack > "$2"
}
adaquant_w4a4() {  # MODEL TAG WHAT [EXTRA tq quantize ARGS...]: W4A4 AdaQuant seq + stats -> $OUT/MODEL.w4a4.TAG.*
  local m="$1" tag="$2" what="$3"; shift 3
  local q="$OUT/$m.w4a4.$tag.tqm" report="$OUT/$m.w4a4.$tag.report.txt"
  echo "   quantize W4A4 AdaQuant, $what -> $q (report: $report)" >&2
  "$TQ" quantize "$MODELS/$m.onnx" --method adaquant --sequential --stats-tuning --iters "$ITERS" \
    --wbits 4 --abits 4 "$@" --calib fashion-mnist:train --calib-size 1000 --seed 0 -o "$q" \
    --report "$OUT/$m.w4a4.$tag.report.json" > "$report" 2>&1 || { cat "$report" >&2; exit 1; }
  tail -1 "$report" >&2
  eval_json "$q" "$OUT/$m.w4a4.$tag.json"
}
for m in lenet resnet20 mobilenetv2; do
  echo "== $m" >&2
  "$TQ" import "$MODELS/$m.onnx" -o "$OUT/$m.tqm" >&2
  eval_json "$OUT/$m.tqm" "$OUT/$m.float.json"
  latency_json "$OUT/$m.tqm" "$OUT/$m.float.latency.json"
  for b in 8 4; do
    q="$OUT/$m.w${b}a${b}.tqm"
    report="$OUT/$m.w${b}a${b}.report.txt"
    echo "   quantize W${b}A${b} -> $q (report: $report)" >&2
    "$TQ" quantize "$MODELS/$m.onnx" --method rtn --wbits "$b" --abits "$b" \
      --calib fashion-mnist:train --calib-size 1000 --seed 0 -o "$q" > "$report" 2>&1 ||
      { cat "$report" >&2; exit 1; }
    eval_json "$q" "$OUT/$m.w${b}a${b}.json"
  done
  adaquant_w4a4 "$m" adaquant "sequential + stats tuning, $ITERS iterations"
  adaquant_w4a4 "$m" adaquant.fl8 "the same with the first and last weighted layers at 8 bits" --keep-first-last-8bit
  q="$OUT/$m.light13.tqm"; report="$OUT/$m.light13.report.txt"
  echo "   quantize mixed precision, light pipeline at 13% of the float32 weights -> $q (report: $report)" >&2
  "$TQ" quantize "$MODELS/$m.onnx" --pipeline light --budget 13% --calib fashion-mnist:train --calib-size 1000 \
    --seed 0 -o "$q" > "$report" 2>&1 || { cat "$report" >&2; exit 1; }
  tail -1 "$report" >&2
  eval_json "$q" "$OUT/$m.light13.json"
  latency_json "$OUT/$m.w8a8.tqm" "$OUT/$m.w8a8.latency.json"
done
/usr/bin/python3 - "$MODELS" "$OUT" "$ITERS" <<'PY'
import json, os, sys
models, out, iters = sys.argv[1], sys.argv[2], sys.argv[3]
def load(path): return json.load(open(path))
kb = lambda path: os.path.getsize(path) / 1024
print()
print(f"{'':<12} {'--------------------------- top-1 (%) ----------------------------':>74}   {'------------------- file (KB) -------------------':>49}   {'batch-1 latency (ms)':>24}")
print(f"{'model':<12} {'PyTorch':>8} {'float':>8} {'W8A8':>8} {'W4A4':>8} {'W4A4 AQ':>8} {'AQ gain':>8} {'AQ fl8':>8} {'mix 13%':>8}   {'float':>8} {'W8':>9} {'W4':>9} {'W4 fl8':>9} {'mix 13%':>9}   "
      f"{'float':>7} {'int8':>7} {'speedup':>8}")
samples = None
for m in ("lenet", "resnet20", "mobilenetv2"):
    rec = load(f"{models}/{m}.json")
    f, w8, w4, aq, fl8, mix = (load(f"{out}/{m}.{k}.json") for k in ("float", "w8a8", "w4a4", "w4a4.adaquant",
                                                                      "w4a4.adaquant.fl8", "light13"))
    lf, l8 = load(f"{out}/{m}.float.latency.json"), load(f"{out}/{m}.w8a8.latency.json")
    fk, k8, k4 = kb(f"{out}/{m}.tqm"), kb(f"{out}/{m}.w8a8.tqm"), kb(f"{out}/{m}.w4a4.tqm")
    kf, km = kb(f"{out}/{m}.w4a4.adaquant.fl8.tqm"), kb(f"{out}/{m}.light13.tqm")
    samples = f["samples"]
    print(f"{m:<12} {rec['test_top1']:>8.2f} {f['top1']:>8.2f} {w8['top1']:>8.2f} {w4['top1']:>8.2f} "
          f"{aq['top1']:>8.2f} {aq['top1'] - w4['top1']:>+8.2f} {fl8['top1']:>8.2f} {mix['top1']:>8.2f}   "
          f"{fk:>8.1f} {k8:>9.1f} {k4:>9.1f} {kf:>9.1f} {km:>9.1f}   {lf['median_ms']:>7.3f} {l8['median_ms']:>7.3f} "
          f"{lf['median_ms'] / l8['median_ms']:>7.2f}x")
print(f"\ntop-1 on {samples} Fashion-MNIST test images, tinyquant on XNNPACK ({f['threads']} threads); float = the "
      "imported float model,\nW8A8 / W4A4 = round-to-nearest integer models (1000 calibration images of the train "
      f"split, seed 0);\nW4A4 AQ = AdaQuant sequential + statistics tuning ({iters} Adam steps per layer, batch 50, same "
      "calibration images), AQ gain = W4A4 AQ - W4A4;\nAQ fl8 = the same with the first and last weighted layers at 8-bit weights and input (--keep-first-last-8bit);\nmix 13% = mixed precision, light pipeline: per-layer weight bits from {2,3,4,8} chosen by the integer program so\nthat weights + bias + scales fit 13% of the float32 weights, activations 8-bit, statistics tuning.\nPyTorch = float top-1 recorded by train.py on all 10 000. File sizes of the .tqm files; "
      "latency = median\nof single invokes at batch 1, 1 thread, XNNPACK (float vs W8A8). Models and reports in "
      f"{out}/.")
PY
# The text reference model's table (examples/langid: tinyquant float / RTN / AdaQuant against PyTorch
# float and dynamic int8). Set-up and build are already done, so they take no time there.
echo >&2
echo "== langid (the text reference model): examples/langid/run.sh ${LANGID_ARGS[*]}" >&2
bash examples/langid/run.sh "${LANGID_ARGS[@]}"
