#!/usr/bin/env bash
# The README's main command: set up, build, then run the bundled reference models through
# tinyquant on the bundled data (Fashion-MNIST test split, all 10 000 images) on both backends
# and print one table next to PyTorch's recorded accuracy.
#   bash examples/fashion_mnist/run.sh [--limit N] [--threads N]
set -euo pipefail
cd "$(dirname "$0")/../.."
LIMIT=0; THREADS=$(nproc)
while [ $# -gt 0 ]; do
  case "$1" in
    --limit) LIMIT="$2"; shift 2 ;;
    --threads) THREADS="$2"; shift 2 ;;
    *) echo "usage: $0 [--limit N] [--threads N]" >&2; exit 2 ;;
  esac
done
bash .ci/install-deps.sh
bash .ci/build.sh
TQ=build/bin/tq
MODELS=examples/fashion_mnist/models
OUT=build/fashion_mnist
mkdir -p "$OUT"
LIMIT_ARG=(); [ "$LIMIT" -gt 0 ] && LIMIT_ARG=(--limit "$LIMIT")
for m in lenet resnet20 mobilenetv2; do
  echo "== $m" >&2
  "$TQ" import "$MODELS/$m.onnx" -o "$OUT/$m.tqm"
  for b in reference xnnpack; do
    "$TQ" eval "$OUT/$m.tqm" --data fashion-mnist --split test --backend "$b" --threads "$THREADS" \
      "${LIMIT_ARG[@]}" --json > "$OUT/$m.$b.json"
  done
done
/usr/bin/python3 - "$MODELS" "$OUT" <<'PY'
import json, os, sys
models, out = sys.argv[1], sys.argv[2]
print()
print(f"{'model':<12} {'PyTorch':>8} {'tq ref':>8} {'tq xnn':>8} {'ref s':>7} {'xnn s':>7} {'onnx KB':>8} {'tqm KB':>8}")
for m in ("lenet", "resnet20", "mobilenetv2"):
    rec = json.load(open(f"{models}/{m}.json"))
    ref = json.load(open(f"{out}/{m}.reference.json"))
    xnn = json.load(open(f"{out}/{m}.xnnpack.json"))
    print(f"{m:<12} {rec['test_top1']:>7.2f}% {ref['top1']:>7.2f}% {xnn['top1']:>7.2f}% {ref['seconds']:>7.1f} "
          f"{xnn['seconds']:>7.1f} {os.path.getsize(f'{models}/{m}.onnx')/1024:>8.1f} "
          f"{os.path.getsize(f'{out}/{m}.tqm')/1024:>8.1f}")
print(f"\n(top-1 on {ref['samples']} Fashion-MNIST test images; PyTorch figures recorded by train.py on all 10 000)")
PY
