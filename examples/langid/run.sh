#!/usr/bin/env bash
# The text model's table (issue 13): the reference transformer of examples/langid (language of a
# word, 11 languages, Debian word lists) through tinyquant and through PyTorch, side by side in one
# run: top-1 on the full test split (11 000 words) of float, W8A8 / W4A8 / W4A4 round-to-nearest
# and W4A8 / W4A4 AdaQuant (sequential + statistics tuning, attention input quantizers learned),
# .tqm file sizes, batch-1 latency float vs int8 (XNNPACK, one thread), and PyTorch's float and
# dynamic int8 (torch.ao.quantization.quantize_dynamic on nn.Linear, qnnpack) with their latency.
#   bash examples/langid/run.sh [--limit N] [--iters N] [--calib-size N] [--quick]
# --limit N evaluates the first N test words only; --iters sets AdaQuant's Adam steps per layer
# (default 1000, the library's default: about 25 s per AdaQuant model on 2 cores);
# --quick = --iters 100 --limit 2000. Everything lands in build/langid/.
set -euo pipefail
cd "$(dirname "$0")/../.."
LIMIT=0; ITERS=1000; CALIB=1000
while [ $# -gt 0 ]; do
  case "$1" in
    --limit) LIMIT="$2"; shift 2 ;;
    --iters) ITERS="$2"; shift 2 ;;
    --calib-size) CALIB="$2"; shift 2 ;;
    --quick) ITERS=100; LIMIT=2000; shift ;;
    *) echo "usage: $0 [--limit N] [--iters N] [--calib-size N] [--quick]" >&2; exit 2 ;;
  esac
done
bash .ci/install-deps.sh
bash .ci/build.sh
TQ=build/bin/tq
BENCH=build/bin/tq_bench_latency
MODEL=examples/langid/models/langid.onnx
OUT=build/langid
mkdir -p "$OUT"
LIMIT_ARG=(); [ "$LIMIT" -gt 0 ] && LIMIT_ARG=(--limit "$LIMIT")
eval_json() {  # MODEL OUT.json
  "$TQ" eval "$1" --data langid --split test --backend xnnpack --threads "$(nproc)" "${LIMIT_ARG[@]}" --json > "$2"
}
latency_json() {  # MODEL OUT.json
  "$BENCH" "$1" --batch 1 --threads 1 --seconds 2 --backends xnnpack > "$2"
}
quantize() {  # TAG WHAT ARGS...: -> $OUT/langid.TAG.tqm, its report and evaluation
  local tag="$1" what="$2"; shift 2
  local q="$OUT/langid.$tag.tqm" report="$OUT/langid.$tag.report.txt"
  echo "   quantize $what -> $q (report: $report)" >&2
  "$TQ" quantize "$MODEL" "$@" --calib langid:train --calib-size "$CALIB" --seed 0 -o "$q" \
    --report "$OUT/langid.$tag.report.json" > "$report" 2>&1 || { cat "$report" >&2; exit 1; }
  tail -1 "$report" >&2
  eval_json "$q" "$OUT/langid.$tag.json"
}
echo "== langid (tinyquant)" >&2
"$TQ" import "$MODEL" -o "$OUT/langid.tqm" >&2
eval_json "$OUT/langid.tqm" "$OUT/langid.float.json"
quantize w8a8 "W8A8 round-to-nearest" --method rtn --wbits 8 --abits 8
quantize w4a8 "W4A8 round-to-nearest" --method rtn --wbits 4 --abits 8
quantize w4a4 "W4A4 round-to-nearest" --method rtn --wbits 4 --abits 4
quantize w4a8.aq "W4A8 AdaQuant, sequential + stats, $ITERS iterations" --method adaquant --sequential \
  --stats-tuning --iters "$ITERS" --wbits 4 --abits 8
quantize w4a4.aq "W4A4 AdaQuant, sequential + stats, $ITERS iterations" --method adaquant --sequential \
  --stats-tuning --iters "$ITERS" --wbits 4 --abits 4
echo "== latency, batch 1, one thread: tinyquant float / W8A8 / W4A8 AdaQuant (XNNPACK), then PyTorch" >&2
latency_json "$OUT/langid.tqm" "$OUT/langid.float.latency.json"
latency_json "$OUT/langid.w8a8.tqm" "$OUT/langid.w8a8.latency.json"
latency_json "$OUT/langid.w4a8.aq.tqm" "$OUT/langid.w4a8.aq.latency.json"
echo "== PyTorch float and dynamic int8 (bench/langid_torch.py)" >&2
TORCH_LIMIT=(); [ "$LIMIT" -gt 0 ] && TORCH_LIMIT=(--limit "$LIMIT")
/usr/bin/python3 bench/langid_torch.py --json "${TORCH_LIMIT[@]}" > "$OUT/torch.json"
/usr/bin/python3 - "$OUT" "$ITERS" "$CALIB" <<'PY'
import json, os, sys
out, iters, calib = sys.argv[1], sys.argv[2], sys.argv[3]
def load(path): return json.load(open(path))
kb = lambda tag: os.path.getsize(f"{out}/langid.{tag}.tqm" if tag else f"{out}/langid.tqm") / 1024
rec = load("examples/langid/models/langid.json")
t = load(f"{out}/torch.json")
f = load(f"{out}/langid.float.json")
rows = [("float", "", f)] + [(name, tag, load(f"{out}/langid.{tag}.json")) for name, tag in (
    ("W8A8 RTN", "w8a8"), ("W4A8 RTN", "w4a8"), ("W4A8 AdaQuant", "w4a8.aq"), ("W4A4 RTN", "w4a4"),
    ("W4A4 AdaQuant", "w4a4.aq"))]
lat = {k: load(f"{out}/langid.{k}.latency.json")["median_ms"] for k in ("float", "w8a8", "w4a8.aq")}
print()
print(f"{'tinyquant':<16} {'top-1 %':>8} {'drop':>7} {'file KB':>8} {'b1 ms':>7}")
for name, tag, r in rows:
    ms = lat.get(tag or "float")
    print(f"{name:<16} {r['top1']:>8.2f} {f['top1'] - r['top1']:>+7.2f} {kb(tag):>8.1f} "
          f"{(f'{ms:.3f}' if ms else '-'):>7}")
print(f"{'PyTorch':<16} {'top-1 %':>8} {'drop':>7} {'state KB':>8} {'b1 ms':>7}")
print(f"{'float':<16} {t['float_top1']:>8.2f} {0:>+7.2f} {t['param_bytes_float'] / 1024:>8.1f} {t['float_ms']:>7.3f}")
print(f"{'dynamic int8':<16} {t['dynamic_int8_top1']:>8.2f} {t['float_top1'] - t['dynamic_int8_top1']:>+7.2f} "
      f"{t['state_dict_bytes_dynamic'] / 1024:>8.1f} {t['dynamic_int8_ms']:>7.3f}")
aq = {r[1]: r[2]['top1'] for r in rows}
print(f"\ntop-1 on {f['samples']} test words (PyTorch's record: {rec['test_top1']:.2f}% on all 11 000); tinyquant "
      f"on XNNPACK; drop = vs tinyquant float (PyTorch rows: vs PyTorch float).\n"
      f"RTN = round-to-nearest after range calibration; AdaQuant = sequential + statistics tuning, {iters} Adam steps "
      f"per layer, the\nattention products' input quantizers learned too; {calib} calibration words from the train "
      f"split, seed 0. Linear layers and embeddings at the\nweight bits; attention Q K^T / P V and their softmax int8; "
      f"LayerNorm float (tq inspect).\nb1 ms = median of single invokes at batch 1, one thread (tinyquant: XNNPACK, "
      f"W4A8 row = the W4A8 AdaQuant model;\nPyTorch: {t['engine']} dynamic int8). Models and reports in {out}/.")
print(f"targets: W8A8 drop {f['top1'] - aq['w8a8']:.2f} (<= 0.3), W4A8 AdaQuant drop {f['top1'] - aq['w4a8.aq']:.2f} "
      f"(<= 1.0), AdaQuant - RTN: W4A8 {aq['w4a8.aq'] - aq['w4a8']:+.2f}, W4A4 {aq['w4a4.aq'] - aq['w4a4']:+.2f} "
      f"(> 0), int8 / float latency {lat['w8a8'] / lat['float']:.2f} (<= 1)")
PY
