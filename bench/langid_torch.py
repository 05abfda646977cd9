#!/usr/bin/python3
"""PyTorch's side of the langid comparison: float vs dynamic int8 (quantize_dynamic on nn.Linear).

    /usr/bin/python3 bench/langid_torch.py [--limit N] [--iters 200] [--warmup 20] \
        [--engine qnnpack|onednn|qnnpack,onednn] [--json]

The model is examples/langid's reference transformer. train.py keeps no PyTorch checkpoint, so
the LangID module (imported from examples/langid/train.py, as are the data functions) is rebuilt
and its weights are read back from models/langid.onnx: named initializers map 1:1 onto the
state_dict (tok_emb.weight, pos, pad_bias, LayerNorms, biases, head.weight of the Gemm), and
each anonymous MatMul initializer (onnx::MatMul_*, [in, out]) is the transposed weight of the
Linear named both by the node's scope (/blocks.0/wq/MatMul) and by the bias its Add reads
(blocks.0.wq.bias), which must agree. That is export_copy()'s model: the 1/sqrt(16) attention
scale is folded into wq's weight and bias, so every block's scale is set to None.

Checks (the script stops with an error when one fails):
  * the vocabulary in models/langid.vocab equals build_vocab() of the rebuilt train words;
  * the rebuilt test split's first 100 encodings equal models/langid.json's tokens_first100;
  * the rebuilt model's logits on them match logits_first100 within 1e-4;
  * its top-1 on all 11 000 test words equals the recorded test_top1 (always on the full split,
    even with --limit; batch 1000 as train.py evaluates).

Dynamic int8 = torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
with torch.backends.quantized.engine set first (weights are prepacked for that engine): the
13 Linears (wq, wk, wv, wo, w1, w2 in each block, and the head) run int8 with per-batch
dynamic activation ranges; embeddings, LayerNorm, attention matmuls, softmax and GELU stay
float. Debian's x86 torch has no fbgemm: the engines are qnnpack and onednn. The engine is set
once, before quantize_dynamic, and never changed. With several engines (comma list) the script
runs itself once per engine in a child process (each rebuilds the data and times float next to
its int8 model) and merges: the first engine fills the top-level JSON, "engines" holds each
child's object. Engines do not share a process: after a qnnpack-packed model had run with the
global engine set to onednn and vice versa, onednn batch-1 calls were ~3x slower (torch 1.13).
torch 1.13's dynamic Linear (version 4) always passes reduce_range=True: onednn honours it
(activations quantized to 7 bits); qnnpack ignores it (8 bits) but logs a glog warning on every
call (GLOG_minloglevel does not silence it), which would flood stderr and be timed. For qnnpack
the script therefore sets the quantized Linears' version to 3 (the same op without the
reduce_range argument) after checking that this gives bit-identical logits on the first 1000
evaluation words.

Latency: one thread (torch.set_num_threads(1), OPENBLAS_NUM_THREADS=OMP_NUM_THREADS=1; the
process's thread count is printed), batch 1, test words taken in order and cycled;
--warmup calls, then --iters timed calls of every model interleaved word by word (a noisy
machine hits all alike); the figure is the median ms per word. The accuracy pass (batch 1000)
is timed too: median ms per 1000-word batch / 1000 (b1000 columns; --limit < 1000 makes a
single smaller batch).

Output: a table on stderr; with --json one JSON object on stdout:
  {"float_top1", "dynamic_int8_top1" (percent over the first --limit test words, all 11 000 by
   default), "float_ms", "dynamic_int8_ms" (median batch-1 ms per word), "engine", "threads",
   "samples", "param_bytes_float", "state_dict_bytes_dynamic" (len of torch.save(state_dict())
   into a BytesIO), plus "float_b1000_ms_per_word", "dynamic_int8_b1000_ms_per_word",
   "dynamic_int8_agreement" (percent of words where int8 and float predict the same class),
   "iters", "warmup", "torch", and "engines" {engine: {...}} when several engines ran}.
"""
import argparse, contextlib, ctypes, gc, importlib.util, io, json, os, platform, statistics, subprocess, sys, time

# One thread means one: Debian's torch does its float GEMMs in the system BLAS (OpenBLAS), whose
# own worker thread torch.set_num_threads does not reach. Left on, that thread spins next to the
# main one and, on a loaded 2-core machine, made float batch-1 calls up to 10x slower. Must be
# set before numpy / torch load the library.
os.environ["OPENBLAS_NUM_THREADS"] = "1"
os.environ["OMP_NUM_THREADS"] = "1"

import numpy as np
import torch
import torch.nn as nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LANGID = os.path.join(ROOT, "examples", "langid")
MODELS = os.path.join(LANGID, "models")
LOGIT_TOL = 1e-4


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def fail(msg):
    sys.exit("langid_torch.py: FAILED: " + msg)


def load_train_module():
    spec = importlib.util.spec_from_file_location("langid_train", os.path.join(LANGID, "train.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def read_vocab(path):
    with open(path, "rb") as f:
        text = f.read().decode("utf-8")                 # strict
    if not text.endswith("\n"):
        fail(f"{path}: last line has no newline")
    lines = text[:-1].split("\n")                       # one character per line; " " is a line
    if any(len(c) != 1 for c in lines):
        fail(f"{path}: a line is not exactly one character")
    return lines


# ---------------------------------------------------------------- ONNX -> LangID weights
def load_onnx_weights(model, path):
    """Fills model's state_dict from the ONNX export of train.export_copy(model)."""
    import onnx
    from onnx import numpy_helper

    g = onnx.load(path).graph
    inits = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    for n in g.node:                                    # constants could hide weights too
        if n.op_type == "Constant":
            for at in n.attribute:
                if at.name == "value":
                    inits[n.output[0]] = numpy_helper.to_array(at.t)
    sd = model.state_dict()
    linears = {name for name, m in model.named_modules() if isinstance(m, nn.Linear)}
    got, used = {}, set()

    def put(key, arr, src):
        if key not in sd:
            fail(f"ONNX initializer {src} maps to {key}, not in LangID's state_dict")
        if key in got:
            fail(f"{key} found twice in the ONNX graph ({src})")
        if tuple(arr.shape) != tuple(sd[key].shape):
            fail(f"{key}: ONNX {src} has shape {tuple(arr.shape)}, module wants {tuple(sd[key].shape)}")
        got[key] = torch.from_numpy(np.array(arr, dtype=np.float32))
        used.add(src)

    for name, arr in inits.items():                     # named: tok_emb.weight, pos, ln*.*, *.bias
        if name in sd:
            put(name, arr, name)

    def scope(node):                                    # "/blocks.0/wq/MatMul" -> "blocks.0.wq"
        parts = node.name.strip("/").split("/")
        return ".".join(parts[:-1])

    for n in g.node:
        if n.op_type == "MatMul" and n.input[1] in inits and n.input[1] not in sd:
            adds = [a for a in g.node if a.op_type == "Add" and n.output[0] in a.input]
            biases = [i for a in adds for i in a.input if i != n.output[0] and i.endswith(".bias") and i in sd]
            owner = biases[0][:-len(".bias")] if len(biases) == 1 else None
            sc = scope(n)
            if owner is None and sc in linears:
                owner = sc
            if owner is None or owner not in linears or (sc in linears and sc != owner):
                fail(f"cannot tell which Linear owns MatMul {n.name!r} (scope {sc!r}, bias {biases})")
            put(owner + ".weight", inits[n.input[1]].T, n.input[1])   # MatMul stores [in, out]
        elif n.op_type == "Gemm" and n.input[1] in inits:
            at = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
            if at.get("alpha", 1.0) != 1.0 or at.get("beta", 1.0) != 1.0 or at.get("transA", 0):
                fail(f"Gemm {n.name!r}: unexpected attributes {at}")
            w = inits[n.input[1]]
            if not at.get("transB", 0):
                w = w.T
            owner = scope(n)
            if len(n.input) > 2 and n.input[2].endswith(".bias"):
                owner = n.input[2][:-len(".bias")]
            if owner not in linears:
                fail(f"cannot tell which Linear owns Gemm {n.name!r}")
            if owner + ".weight" not in got:
                put(owner + ".weight", w, n.input[1])
            if len(n.input) > 2 and owner + ".bias" not in got:
                put(owner + ".bias", inits[n.input[2]], n.input[2])

    missing = [k for k in sd if k not in got]
    if missing == ["pad_bias"] or "pad_bias" in missing:
        missing.remove("pad_bias")                      # a constant buffer; the module builds it
    if missing:
        fail(f"no ONNX initializer for {missing}")
    if "pad_bias" in got and not torch.equal(got["pad_bias"], sd["pad_bias"]):
        fail("ONNX pad_bias differs from the module's (-30 for pad, 0 otherwise)")
    big_unused = [k for k, v in inits.items() if k not in used and v.size > 64]
    if big_unused:
        fail(f"ONNX initializers left unmapped: {big_unused}")
    for k, v in got.items():
        sd[k] = v
    model.load_state_dict(sd)
    for blk in model.blocks:
        blk.scale = None                                # folded into wq (train.export_copy)
    return model.eval()


# ---------------------------------------------------------------- measurement
def evaluate(model, x, bs=1000):
    """Predictions at batch bs (train.py's evaluate) and the per-batch times in ms."""
    preds, times = [], []
    with torch.no_grad():
        for i in range(0, x.shape[0], bs):
            t0 = time.perf_counter()
            out = model(x[i:i + bs])
            times.append((time.perf_counter() - t0) * 1e3)
            preds.append(out.argmax(1))
    return torch.cat(preds), times


@contextlib.contextmanager
def stderr_fd_silenced():
    """Drops what native code writes to fd 2 (glog) inside the block."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def drop_qnnpack_reduce_range(qm, x):
    """Version-3 call path for qnnpack's dynamic Linears (see the docstring); checks equality."""
    lins = [m for m in qm.modules() if isinstance(m, torch.ao.nn.quantized.dynamic.Linear)]
    with torch.no_grad(), stderr_fd_silenced():
        ref = qm(x)
    for m in lins:
        m.version = 3
    with torch.no_grad():
        got = qm(x)
    if not torch.equal(ref, got):
        fail("qnnpack: dynamic Linear without reduce_range gives different logits")
    return len(lins)


def state_dict_bytes(model):
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.getbuffer().nbytes


def batch1_latency(models, x, iters, warmup):
    """models: {label: module}. Interleaved per word; median ms per word for each label."""
    times = {k: [] for k in models}
    n = x.shape[0]
    with torch.no_grad():
        for it in range(warmup + iters):
            w = x[it % n:it % n + 1]
            for k, m in models.items():
                t0 = time.perf_counter()
                m(w)
                dt = (time.perf_counter() - t0) * 1e3
                if it >= warmup:
                    times[k].append(dt)
    return {k: statistics.median(v) for k, v in times.items()}


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=0, help="use the first N test words (default: all 11 000)")
    ap.add_argument("--iters", type=int, default=200, help="timed batch-1 calls per model")
    ap.add_argument("--warmup", type=int, default=20, help="untimed batch-1 calls per model first")
    ap.add_argument("--engine", default="qnnpack",
                    help="quantized engine for dynamic int8 (qnnpack, onednn); a comma list runs "
                         "one child process per engine")
    ap.add_argument("--dict-dir", default=None, help="word lists (default: train.py's /usr/share/dict)")
    ap.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    args = ap.parse_args()
    if args.iters < 1 or args.warmup < 0 or args.limit < 0:
        fail("--iters must be >= 1, --warmup and --limit >= 0")
    args.engines = [e.strip() for e in args.engine.split(",") if e.strip()]
    supported = torch.backends.quantized.supported_engines
    for e in args.engines:
        if e not in supported:
            fail(f"engine {e!r} not in this torch's supported engines {supported}")
    if not args.engines:
        fail("--engine is empty")
    return args


def table_header(n, iters, warmup):
    log("")
    log(f"langid, PyTorch {torch.__version__}, 1 thread, {n} test words, "
        f"batch-1 median of {iters} (after {warmup} warm-up)")
    log(f"{'model':<28} {'top-1 %':>8} {'agree %':>8} {'b1 ms/word':>11} {'b1000 ms/word':>14} {'state_dict B':>13}")


def table_rows(out, float_label="float"):
    log(f"{float_label:<28} {out['float_top1']:>8.3f} {'':>8} {out['float_ms']:>11.4f} "
        f"{out['float_b1000_ms_per_word']:>14.5f} {out['param_bytes_float']:>13}")
    log(f"{'dynamic int8 (' + out['engine'] + ')':<28} {out['dynamic_int8_top1']:>8.3f} "
        f"{out['dynamic_int8_agreement']:>8.2f} {out['dynamic_int8_ms']:>11.4f} "
        f"{out['dynamic_int8_b1000_ms_per_word']:>14.5f} {out['state_dict_bytes_dynamic']:>13}")


def table_footer(t_start):
    log(f"{platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}, "
        f"total {time.time() - t_start:.1f}s")


def run_engines(args, t_start):
    """One child per engine (engines never share a process, see the docstring); merged output."""
    results = {}
    for e in args.engines:
        cmd = [sys.executable, os.path.abspath(__file__), "--engine", e, "--json", "--limit", str(args.limit),
               "--iters", str(args.iters), "--warmup", str(args.warmup)]
        if args.dict_dir:
            cmd += ["--dict-dir", args.dict_dir]
        log(f"=== engine {e}: {' '.join(cmd[1:])}")
        p = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)   # its stderr streams through
        lines = [l for l in p.stdout.splitlines() if l.strip()]
        if p.returncode != 0 or not lines:
            results[e] = {"error": f"exit status {p.returncode}"}
            log(f"=== engine {e}: FAILED (exit status {p.returncode})")
            continue
        results[e] = json.loads(lines[-1])
    ok = [e for e in args.engines if "error" not in results[e]]
    if not ok:
        fail("dynamic int8 failed on every engine: " + json.dumps(results))
    n = results[ok[0]]["samples"]
    table_header(n, args.iters, args.warmup)
    for e in args.engines:
        if "error" in results[e]:
            log(f"{'dynamic int8 (' + e + ')':<28} failed: {results[e]['error']}")
        else:
            table_rows(results[e], f"float (in the {e} run)")
    table_footer(t_start)
    out = dict(results[ok[0]])
    out["engines"] = results
    return out


def run_single(args, t_start):
    engine = args.engines[0]
    torch.set_num_threads(1)
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(1)
    train = load_train_module()
    dict_dir = args.dict_dir or train.DICT_DIR
    for _, fname in train.LANGS:
        if not os.path.exists(os.path.join(dict_dir, fname)):
            fail(f"{os.path.join(dict_dir, fname)} missing: run bash .ci/install-deps.sh")
    with open(os.path.join(MODELS, "langid.json")) as f:
        rec = json.load(f)

    # ---- data: train.py's own functions (its progress lines go to stderr, not our JSON)
    t0 = time.time()
    with contextlib.redirect_stdout(sys.stderr):
        splits = train.build_dataset(dict_dir)
    chars = read_vocab(os.path.join(MODELS, "langid.vocab"))
    rebuilt = train.build_vocab(splits["train"][0])
    if chars != rebuilt:
        only_file = sorted(set(chars) - set(rebuilt))
        only_data = sorted(set(rebuilt) - set(chars))
        fail(f"models/langid.vocab ({len(chars)} chars) differs from build_vocab(train words) "
             f"({len(rebuilt)}): only in file {only_file!r}, only in data {only_data!r}")
    char_to_id = {c: i + 2 for i, c in enumerate(chars)}
    vocab = len(chars) + 2
    if vocab != rec["vocab_size"]:
        fail(f"vocab size {vocab} != recorded {rec['vocab_size']}")
    words, labels = splits["test"]
    xte = train.encode(words, char_to_id)
    yte = torch.tensor(labels, dtype=torch.int64)
    if xte.shape[0] != rec["samples"]:
        fail(f"rebuilt test split has {xte.shape[0]} words, recorded {rec['samples']}")
    tok100 = torch.tensor(rec["tokens_first100"], dtype=torch.int64)
    if not torch.equal(xte[:100], tok100):
        fail("rebuilt test encodings differ from langid.json's tokens_first100")
    # The word sets took ~3 GB: hand that memory back before measuring anything.
    del splits, rebuilt, words, labels
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    rss_mb = int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") >> 20
    log(f"data: vocab {vocab}, test {xte.shape[0]} words ({time.time() - t0:.1f}s; RSS now {rss_mb} MB, "
        f"{len(os.listdir('/proc/self/task'))} OS thread(s))")

    # ---- float model from the ONNX weights, checked against the record
    model = train.LangID(vocab)
    load_onnx_weights(model, os.path.join(MODELS, "langid.onnx"))
    params = sum(p.numel() for p in model.parameters())
    if params != rec["params"]:
        fail(f"{params} parameters, recorded {rec['params']}")
    with torch.no_grad():
        logits = model(tok100)
    diff = (logits.double() - torch.tensor(rec["logits_first100"], dtype=torch.float64)).abs().max().item()
    if not diff <= LOGIT_TOL:
        fail(f"logits on tokens_first100 differ from the record by {diff:.3g} (> {LOGIT_TOL})")
    pred_full, _ = evaluate(model, xte)
    correct_full = int((pred_full == yte).sum())
    top1_full = 100.0 * correct_full / xte.shape[0]
    if correct_full != round(rec["test_top1"] * xte.shape[0] / 100.0) or abs(top1_full - rec["test_top1"]) > 1e-9:
        fail(f"float test top-1 {top1_full:.4f}% ({correct_full}/{xte.shape[0]}) != recorded {rec['test_top1']:.4f}%")
    log(f"float model from langid.onnx: {params} parameters, max |logit diff| {diff:.2g} on the first 100, "
        f"test top-1 {top1_full:.3f}% = recorded")

    # ---- evaluation set: float
    n = min(args.limit, xte.shape[0]) if args.limit else xte.shape[0]
    x, y = xte[:n], yte[:n]
    pred_f, tb_f = evaluate(model, x)

    # ---- dynamic int8; the engine is set once, before packing, and never changed
    torch.backends.quantized.engine = engine
    try:
        qm = torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
        if engine == "qnnpack":
            k = drop_qnnpack_reduce_range(qm, x[:1000])
            log(f"qnnpack: {k} dynamic Linears called without reduce_range (logits bit-identical)")
        pred_q, tb_q = evaluate(qm, x)
    except Exception as ex:
        fail(f"dynamic int8 on engine {engine}: {type(ex).__name__}: {str(ex).splitlines()[0][:300]}")

    # ---- batch-1 latency, float and int8 interleaved word by word
    lat = batch1_latency({"float": model, "int8": qm}, x, args.iters, args.warmup)

    out = {"float_top1": 100.0 * (pred_f == y).double().mean().item(),
           "dynamic_int8_top1": 100.0 * (pred_q == y).double().mean().item(),
           "float_ms": lat["float"],
           "dynamic_int8_ms": lat["int8"],
           "engine": engine, "threads": torch.get_num_threads(), "samples": int(n),
           "param_bytes_float": state_dict_bytes(model),
           "state_dict_bytes_dynamic": state_dict_bytes(qm),
           "float_b1000_ms_per_word": statistics.median(tb_f) / min(1000, n),
           "dynamic_int8_b1000_ms_per_word": statistics.median(tb_q) / min(1000, n),
           "dynamic_int8_agreement": 100.0 * (pred_q == pred_f).double().mean().item(),
           "iters": args.iters, "warmup": args.warmup, "torch": torch.__version__}
    table_header(n, args.iters, args.warmup)
    table_rows(out)
    table_footer(t_start)
    return out


def main():
    t_start = time.time()
    args = parse_args()
    out = run_engines(args, t_start) if len(args.engines) > 1 else run_single(args, t_start)
    if args.json:
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
