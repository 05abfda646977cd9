#!/usr/bin/env bash
# On-device recalibration after a sensor drift: the table in README.md.
#
#   bash examples/on_device_recalibration/run.sh [--quick] [--shift gain|dim|blur|invert|none]
#                                                [--test-limit N] [--budget BYTES] [--threads N]
#
# 1. with build/bin/tq (the main build), in build/on_device_recalibration/: the float model
#    (tq import) and RTN W8A8 / W4A4 models with fp16 master weights (tq quantize --keep-master fp16),
#    calibrated on 1000 undrifted training images: the models "as shipped";
# 2. compiles drift_demo.c with gcc against build/lib/libtinyquant.so and capi/include (the
#    CMakeLists.txt beside it is for users of the installed package);
# 3. for lenet and resnet20 x W8A8, W4A4 x fast, full (full: 100 Adam steps per layer): evaluates
#    the float and the shipped model on the drifted test split, recalibrates a copy of the shipped
#    model on 1000 drifted training images within the memory budget, evaluates it again, and
#    prints the Markdown table (also written to build/on_device_recalibration/results-SHIFT.md,
#    results-SHIFT-quick.md with --quick;
#    each row's progress log is in build/on_device_recalibration/logs/).
# --quick: lenet only, the first 2000 test images. Defaults: --shift gain, the whole test split
# (10000 images), --budget 134217728 (128 MiB) for both models, 1 thread.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="$(pwd)"
QUICK=0; SHIFT=gain; TEST_LIMIT=""; BUDGET=134217728; THREADS=1
DATA_DIR="${TQ_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}"
usage() { sed -n 4,5p "$0" | sed 's/^#  *//' >&2; exit 2; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) QUICK=1; shift ;;
    --shift)
      case "${2:-}" in gain|dim|blur|invert|none) SHIFT="$2" ;; *) usage ;; esac
      shift 2 ;;
    --test-limit) [[ "${2:-}" =~ ^[1-9][0-9]*$ ]] || usage; TEST_LIMIT="$2"; shift 2 ;;
    --budget) [[ "${2:-}" =~ ^[0-9]+[KMG]?$ ]] || usage; BUDGET="$2"; shift 2 ;;
    --threads) [[ "${2:-}" =~ ^[1-9][0-9]*$ ]] || usage; THREADS="$2"; shift 2 ;;
    -h|--help) usage ;;
    *) usage ;;
  esac
done
if [[ $QUICK == 1 ]]; then MODELS="lenet"; TEST_LIMIT="${TEST_LIMIT:-2000}"; else MODELS="lenet resnet20"; fi
TEST_LIMIT="${TEST_LIMIT:-10000}"

TQ="$ROOT/build/bin/tq"
LIBDIR="$ROOT/build/lib"
if [[ ! -x "$TQ" || ! -e "$LIBDIR/libtinyquant.so" ]]; then
  echo "run.sh: $TQ or $LIBDIR/libtinyquant.so is missing: run the main build first" >&2
  echo "        (cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release && cmake --build build)" >&2
  exit 1
fi
command -v gcc >/dev/null || { echo "run.sh: gcc not found (apt-get install gcc zlib1g-dev)" >&2; exit 1; }
for f in train-images-idx3-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz; do
  [[ -f "$DATA_DIR/$f" ]] || { echo "run.sh: $DATA_DIR/$f not found (set TQ_FASHION_MNIST to the Fashion-MNIST directory)" >&2; exit 1; }
done

WORK="$ROOT/build/on_device_recalibration"
mkdir -p "$WORK/logs"
ZOO="$ROOT/examples/fashion_mnist/models"

# ---- 1. the models as shipped (remade when the ONNX file or tq is newer) ----
stale() { [[ ! -f "$1" || "$2" -nt "$1" || "$TQ" -nt "$1" ]]; }
for m in $MODELS; do
  onnx="$ZOO/$m.onnx"
  [[ -f "$onnx" ]] || { echo "run.sh: $onnx not found" >&2; exit 1; }
  if stale "$WORK/$m.float.tqm" "$onnx"; then
    "$TQ" import "$onnx" -o "$WORK/$m.float.tqm" >"$WORK/logs/$m.import.log" 2>&1 \
      || { cat "$WORK/logs/$m.import.log" >&2; exit 1; }
  fi
  for b in 8 4; do
    out="$WORK/$m.w${b}a${b}.tqm"
    if stale "$out" "$onnx"; then
      "$TQ" quantize "$onnx" --method rtn --wbits "$b" --abits "$b" --keep-master fp16 --calib-size 1000 \
        --data-dir "$DATA_DIR" -o "$out" >"$WORK/logs/$m.w${b}a${b}.quantize.log" 2>&1 \
        || { cat "$WORK/logs/$m.w${b}a${b}.quantize.log" >&2; exit 1; }
    fi
  done
done

# ---- 2. the demo, against the build tree ----
DEMO="$WORK/drift_demo"
gcc -std=c99 -O2 -Wall -Wextra -I"$ROOT/capi/include" "$ROOT/examples/on_device_recalibration/drift_demo.c" \
  -L"$LIBDIR" -ltinyquant -lz -Wl,-rpath,"$LIBDIR" -o "$DEMO"

# ---- 3. the table ----
RESULTS="$WORK/results-$SHIFT.md"; [[ $QUICK == 1 ]] && RESULTS="$WORK/results-$SHIFT-quick.md"
{
  echo "shift $SHIFT; first $TEST_LIMIT test images; 1000 drifted training images per recalibration; budget $BUDGET bytes; $(date -u +%Y-%m-%d)"
  echo
  "$DEMO" --header
} >"$RESULTS"
echo "run.sh: shift $SHIFT, $TEST_LIMIT test images, budget $BUDGET bytes (per-row logs in $WORK/logs)" >&2
START=$SECONDS
for m in $MODELS; do
  for b in 8 4; do
    for mode in fast full; do
      name="$m.w${b}a${b}"
      iters=200; [[ $mode == full ]] && iters=100
      log="$WORK/logs/$name.$mode.$SHIFT.log"
      echo "run.sh: $name $mode ..." >&2
      if ! "$DEMO" --float "$WORK/$m.float.tqm" --model "$WORK/$name.tqm" --mode "$mode" --shift "$SHIFT" \
          --count 1000 --test-limit "$TEST_LIMIT" --budget "$BUDGET" --iters "$iters" --seed 0 \
          --threads "$THREADS" --data-dir "$DATA_DIR" --name "$m W${b}A${b}" >>"$RESULTS" 2>"$log"; then
        cat "$log" >&2
        echo "run.sh: drift_demo failed for $name $mode (log: $log)" >&2
        exit 1
      fi
    done
  done
done
echo "run.sh: $((SECONDS - START)) s" >&2
echo
cat "$RESULTS"
