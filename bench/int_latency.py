#!/usr/bin/python3
"""Integer (int8) inference latency: tinyquant vs a raw XNNPACK chain vs Debian PyTorch, one run, one table.

    /usr/bin/python3 bench/int_latency.py [--models lenet,resnet20,mobilenetv2] [--threads 1,2]
        [--batches 1,64] [--seconds 0.5] [--rounds 3] [--stat median|p10] [--json OUT.json]

Engines, per model, batch and thread count (median ms per batch):
  tq-i8-xnn   tinyquant int8 on XNNPACK   (tq_bench_latency on the W8A8 RTN .tqm)
  tq-i8-ref   tinyquant int8 on its portable reference kernels (same .tqm)
  raw-xnn     the same int8 network as a bare chain of XNNPACK QC8/QS8/S8 operators
              (tq_bench_raw_xnnpack: no interpreter, no planner; the floor for our overhead;
              checked bit-exact against tq-i8-xnn once per batch)
  tq-f32-xnn  tinyquant float on XNNPACK  (the .onnx)
  pt-i8       PyTorch quantized CPU backend (engine qnnpack; FX static quantization, default
              qnnpack qconfig: per-tensor quint8 activations and weights; calibrated on random
              batches; TorchScript-frozen)
  pt-f32      PyTorch float (TorchScript-frozen, batch norm folded)
PyTorch runs train.py's classes with random weights (we keep no PyTorch weights; latency does not
depend on their values). The W8A8 .tqm files are made with `tq quantize --method rtn` into
build/bench/ when missing or older than the .onnx. Every engine is measured once per round, all
engines of a model back to back, and each figure is the median over --rounds of per-round medians,
so machine noise hits all engines alike.
"""
import argparse, importlib.util, json, os, statistics, subprocess, sys, time, warnings

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = os.path.join(ROOT, "examples", "fashion_mnist", "models")
ENGINES = ["tq-i8-xnn", "tq-i8-ref", "raw-xnn", "tq-f32-xnn", "pt-i8", "pt-f32"]


def load_train_module():
    spec = importlib.util.spec_from_file_location("train", os.path.join(ROOT, "examples", "fashion_mnist", "train.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def time_torch(model, batch, seconds):  # the loop of float_latency.py
    x = torch.randn(batch, 1, 28, 28)
    with torch.no_grad():
        for _ in range(3):
            model(x)
        times, start = [], time.perf_counter()
        while len(times) < 5 or time.perf_counter() - start < seconds:
            t0 = time.perf_counter()
            model(x)
            times.append((time.perf_counter() - t0) * 1000.0)
    times.sort()
    return {"median_ms": times[len(times) // 2], "p10_ms": times[len(times) // 10]}  # as latency.cc picks them


def torch_models(train, name):
    """(float, quantized or None, why quantization failed or None), both TorchScript-frozen."""
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx
    torch.manual_seed(0)
    model = train.MODELS[name][0]().eval()
    fp = torch.jit.freeze(torch.jit.script(model))
    try:
        torch.backends.quantized.engine = "qnnpack"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            prepared = prepare_fx(model, get_default_qconfig_mapping("qnnpack"),
                                  example_inputs=(torch.randn(1, 1, 28, 28),))
            with torch.no_grad():
                for _ in range(8):
                    prepared(torch.randn(32, 1, 28, 28))
            q = torch.jit.freeze(torch.jit.script(convert_fx(prepared)))
        with torch.no_grad():
            q(torch.randn(1, 1, 28, 28))
        return fp, q, None
    except Exception as e:  # report it in the table instead of dropping the model
        return fp, None, f"{type(e).__name__}: {e}"


def run_json(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def ensure_tqm(tq, onnx, tqm):
    if os.path.exists(tqm) and os.path.getmtime(tqm) >= os.path.getmtime(onnx):
        return
    os.makedirs(os.path.dirname(tqm), exist_ok=True)
    print(f"int_latency.py: quantizing {os.path.relpath(onnx, ROOT)} -> {os.path.relpath(tqm, ROOT)}", file=sys.stderr)
    subprocess.run([tq, "quantize", onnx, "--method", "rtn", "--wbits", "8", "--abits", "8", "--calib-size", "1000",
                    "-o", tqm], check=True, capture_output=True)


def fmt(v, width, spec=".3f"):
    return f"{'-':>{width}}" if v is None else f"{v:>{width}{spec}}"


def ratio(a, b):
    return None if a is None or b is None else a / b


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="lenet,resnet20,mobilenetv2")
    ap.add_argument("--batches", default="1,64")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--seconds", type=float, default=0.5, help="timing per engine, batch, threads and round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--stat", choices=("median", "p10"), default="median",
                    help="per-round figure of each engine: median (default) or 10th percentile of its single runs "
                         "(closer to the uncontended time when other processes share the cores)")
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"))
    ap.add_argument("--json", help="also write every row (and each round's figure) to this file")
    args = ap.parse_args()
    tq, bench, raw = (os.path.join(args.bin, b) for b in ("tq", "tq_bench_latency", "tq_bench_raw_xnnpack"))
    for b in (tq, bench, raw):
        if not os.path.exists(b):
            sys.exit(f"int_latency.py: {b} not found; build first "
                     "(cmake --build build --target tq tq_bench_latency tq_bench_raw_xnnpack)")
    train = load_train_module()
    batches = [int(b) for b in args.batches.split(",")]
    threads = [int(t) for t in args.threads.split(",")]
    sec = str(args.seconds)
    stat = args.stat + "_ms"

    models, notes = [], []
    for name in args.models.split(","):
        onnx = os.path.join(MODELS, name + ".onnx")
        if not os.path.exists(onnx):
            notes.append(f"{name}: skipped, {os.path.relpath(onnx, ROOT)} does not exist")
            continue
        tqm = os.path.join(ROOT, "build", "bench", name + "_w8a8.tqm")
        ensure_tqm(tq, onnx, tqm)
        fp, q, why = torch_models(train, name)
        if why:
            notes.append(f"{name}: PyTorch quantization failed ({why})")
        models.append((name, onnx, tqm, fp, q))

    load_start = os.getloadavg()[0]
    samples, exact = {}, {}  # (model, batch, threads, engine) -> [one figure per round, ms]
    for r in range(args.rounds):
        print(f"int_latency.py: round {r + 1}/{args.rounds}", file=sys.stderr)
        for name, onnx, tqm, fp, q in models:
            for t in threads:
                common = ["--batch", args.batches, "--threads", str(t), "--seconds", sec]
                rows = run_json([bench, tqm, "--backends", "xnnpack,reference"] + common)
                floats = run_json([bench, onnx, "--backends", "xnnpack"] + common)
                rows += [dict(x, engine="tq-f32-xnn") for x in floats]
                raws = run_json([raw, tqm] + common)
                for x in raws:
                    exact.setdefault((name, x["batch"]), []).append(x["bit_exact_vs_tinyquant_xnnpack"])
                rows += raws
                names = {"tinyquant-xnnpack": "tq-i8-xnn", "tinyquant-reference": "tq-i8-ref", "raw-xnnpack": "raw-xnn"}
                for x in rows:
                    samples.setdefault((name, x["batch"], t, names.get(x["engine"], x["engine"])), []).append(x[stat])
                torch.set_num_threads(t)
                for b in batches:
                    if q is not None:
                        samples.setdefault((name, b, t, "pt-i8"), []).append(time_torch(q, b, args.seconds)[stat])
                    samples.setdefault((name, b, t, "pt-f32"), []).append(time_torch(fp, b, args.seconds)[stat])

    table = []
    for name, *_ in models:
        for b in batches:
            for t in threads:
                row = {"model": name, "batch": b, "threads": t}
                for e in ENGINES:
                    s = samples.get((name, b, t, e))
                    row[e + "_ms"] = statistics.median(s) if s else None
                    row[e + "_rounds_ms"] = s
                row["xnn_over_raw"] = ratio(row["tq-i8-xnn_ms"], row["raw-xnn_ms"])
                row["int8_speedup_xnn"] = ratio(row["tq-f32-xnn_ms"], row["tq-i8-xnn_ms"])
                row["pt_i8_over_tq_i8"] = ratio(row["pt-i8_ms"], row["tq-i8-xnn_ms"])
                table.append(row)

    print(f"{'model':<12} {'batch':>5} {'thr':>3} " + " ".join(f"{e:>10}" for e in ENGINES) +
          f" {'xnn/raw':>8} {'i8 vs f32':>9} {'pt-i8/tq':>8}")
    for row in table:
        print(f"{row['model']:<12} {row['batch']:>5} {row['threads']:>3} " +
              " ".join(fmt(row[e + '_ms'], 10) for e in ENGINES) +
              f" {fmt(row['xnn_over_raw'], 8, '.3f')} {fmt(row['int8_speedup_xnn'], 8, '.2f')}x"
              f" {fmt(row['pt_i8_over_tq_i8'], 7, '.2f')}x")
    print(f"(ms per batch: median over rounds of each round's {args.stat} run; xnn/raw = tq-i8-xnn / raw-xnn;\n"
          " i8 vs f32 = tq-f32-xnn / tq-i8-xnn; pt-i8/tq = pt-i8 / tq-i8-xnn)")

    def verdict(label, rows, ok):
        bad = [f"{r['model']} b{r['batch']} t{r['threads']}" for r in rows if not ok(r)]
        print(f"  {label}: {'MET' if not bad else 'NOT MET (' + ', '.join(bad) + ')'}")
        return not bad

    print("\nTargets (issue 3):")
    b1 = [r for r in table if r["batch"] == 1]
    targets = {
        "xnn_over_raw_le_1.10_batch1": verdict("tinyquant XNNPACK <= 1.10x raw XNNPACK chain at batch 1", b1,
                                               lambda r: r["xnn_over_raw"] is not None and r["xnn_over_raw"] <= 1.10),
        "int8_faster_than_float": verdict("int8 faster than float (tinyquant XNNPACK, every row)", table,
                                          lambda r: r["int8_speedup_xnn"] is not None and r["int8_speedup_xnn"] > 1.0),
        "faster_than_pytorch_quantized_batch1": verdict(
            "tinyquant int8 faster than PyTorch quantized (qnnpack) at batch 1", b1,
            lambda r: r["pt_i8_over_tq_i8"] is not None and r["pt_i8_over_tq_i8"] > 1.0),
    }
    print("\nraw XNNPACK chain output == tinyquant XNNPACK output, bit for bit: " +
          ", ".join(f"{m} b{b} {'yes' if all(v) else 'NO'}" for (m, b), v in sorted(exact.items())))
    for n in notes:
        print("note: " + n)
    # Other processes on the machine show up here: with load near the core count, a second
    # thread waits for a scheduler tick and the 2-thread rows measure the neighbours, not us.
    machine = f"{os.uname().machine}, {os.cpu_count()} cores, torch {torch.__version__} " \
              f"(quantized engine {torch.backends.quantized.engine}), " \
              f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, " \
              f"1-min load average {load_start:.2f} at start, {os.getloadavg()[0]:.2f} at end"
    print(machine)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": table, "targets": targets, "notes": notes, "machine": machine,
                       "bit_exact": {f"{m}/b{b}": all(v) for (m, b), v in exact.items()},
                       "rounds": args.rounds, "seconds": args.seconds, "stat": args.stat}, f, indent=1)


if __name__ == "__main__":
    main()
