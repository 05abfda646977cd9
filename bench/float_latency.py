#!/usr/bin/python3
"""Float inference latency: tinyquant (reference, XNNPACK) vs Debian PyTorch, same models, one run.

    /usr/bin/python3 bench/float_latency.py [--threads 1] [--seconds 2] [--json OUT.json]

tinyquant is timed by build/bin/tq_bench_latency (median of single invokes over --seconds);
PyTorch by the same loop in this process on the same architecture (train.py's classes, eval mode,
TorchScript-frozen so batch norm is folded like our importer does; weights are random — latency
does not depend on their values). Models are interleaved so machine noise hits all engines alike.
"""
import argparse, importlib.util, json, os, statistics, subprocess, sys, time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = os.path.join(ROOT, "examples", "fashion_mnist", "models")


def load_train_module():
    spec = importlib.util.spec_from_file_location("train", os.path.join(ROOT, "examples", "fashion_mnist", "train.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def time_torch(model, batch, seconds):
    x = torch.randn(batch, 1, 28, 28)
    with torch.no_grad():
        for _ in range(20):  # TorchScript's profiling executor optimises over the first runs
            model(x)
        times, start = [], time.perf_counter()
        while len(times) < 5 or time.perf_counter() - start < seconds:
            t0 = time.perf_counter()
            model(x)
            times.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="lenet,resnet20,mobilenetv2")
    ap.add_argument("--batches", default="1,64")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--bench", default=os.path.join(ROOT, "build", "bin", "tq_bench_latency"))
    ap.add_argument("--json", help="also write all rows to this file")
    args = ap.parse_args()
    if not os.path.exists(args.bench):
        sys.exit(f"float_latency.py: {args.bench} not found; build first (bash .ci/build.sh)")
    torch.set_num_threads(args.threads)
    train = load_train_module()
    rows = []
    for name in args.models.split(","):
        out = subprocess.run([args.bench, os.path.join(MODELS, name + ".onnx"), "--batch", args.batches,
                              "--threads", str(args.threads), "--seconds", str(args.seconds)],
                             check=True, capture_output=True, text=True).stdout
        tq = {(r["engine"], r["batch"]): r for r in map(json.loads, out.splitlines())}
        model = train.MODELS[name][0]().eval()
        model = torch.jit.freeze(torch.jit.script(model))
        for b in map(int, args.batches.split(",")):
            row = {"model": name, "batch": b, "threads": args.threads,
                   "tq_reference_ms": tq[("tinyquant-reference", b)]["median_ms"],
                   "tq_xnnpack_ms": tq[("tinyquant-xnnpack", b)]["median_ms"],
                   "torch_ms": time_torch(model, b, args.seconds)}
            rows.append(row)
    print(f"{'model':<12} {'batch':>5} {'thr':>3} {'tq reference':>13} {'tq xnnpack':>11} {'PyTorch':>9} "
          f"{'PyTorch/xnn':>11}   (median ms per batch)")
    for r in rows:
        print(f"{r['model']:<12} {r['batch']:>5} {r['threads']:>3} {r['tq_reference_ms']:>13.3f} "
              f"{r['tq_xnnpack_ms']:>11.3f} {r['torch_ms']:>9.3f} {r['torch_ms'] / r['tq_xnnpack_ms']:>10.2f}x")
    print(f"\n{os.uname().machine}, {os.cpu_count()} cores, torch {torch.__version__}, {time.strftime('%Y-%m-%d')}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
