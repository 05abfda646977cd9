#!/usr/bin/python3
"""AdaQuant: tinyquant (`tq quantize --method adaquant`) vs the same algorithm written in PyTorch.

    /usr/bin/python3 bench/adaquant_torch.py [--models lenet,resnet20,mobilenetv2] [--iters 1000] \
        [--calib-size 1000] [--seed 0] [--threads 1] [--json OUT.json]

Both engines get the same calibration tensor (drawn here, written as .npy), the same settings
(W4A4, parallel mode, Adam with rates relative to each tensor's scale, cosine decay, mini-batch 50,
the last 10 % of the samples held out) and the same starting quantizers: the PyTorch side starts
from the range-calibrated scales / zero points tinyquant writes into its report (`init_*`).
Each engine runs in its own child process (wall time and peak RSS from wait4); top-1 is measured
on all 10 000 test images. See bench/README.md for what is and is not comparable.

Must run under Debian's /usr/bin/python3 (torch 1.13, onnx, numpy).
"""
import argparse
import gzip
import json
import math
import os
import platform
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
MEAN, STD = 0.2860, 0.3530
DATA_DIR = "/usr/share/datasets/fashion-mnist"
WEIGHTED_OPS = ("Conv", "Gemm")
# Ops whose output keeps its input's quantizer in tinyquant's integer graph (rtn.cc
# is_passthrough_op: MaxPool2D, Reshape, Transpose, Clamp; Flatten imports as Reshape, an unfused
# Relu / Clip as Clamp).
PASSTHROUGH_OPS = ("MaxPool", "Flatten", "Reshape", "Transpose", "Relu", "Clip", "Identity", "Dropout")


# ----------------------------------------------------------------------------------------------
# Data

def read_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_split(data_dir, split):
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(os.path.join(data_dir, prefix + "-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(data_dir, prefix + "-labels-idx1-ubyte.gz"))
    return images, labels


def preprocess(images_u8):
    x = images_u8.astype(np.float32) / np.float32(255.0)
    x = (x - np.float32(MEAN)) / np.float32(STD)
    return x.reshape(-1, 1, 28, 28).astype(np.float32)


def write_calibration(data_dir, size, seed, path):
    images, _ = load_split(data_dir, "train")
    idx = np.random.default_rng(seed).choice(images.shape[0], size=size, replace=False)
    np.save(path, preprocess(images[idx]))


# ----------------------------------------------------------------------------------------------
# Child process measurement

def run_measured(cmd, stdout_path, stderr_path):
    """Runs cmd as a child; returns (returncode, wall seconds, peak RSS bytes of that child)."""
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=err)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else status
    return p.returncode, wall, ru.ru_maxrss * 1024  # Linux: KiB


def tail(path, n=15):
    try:
        with open(path, "r", errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


# ----------------------------------------------------------------------------------------------
# PyTorch side (imported in the worker processes only)

def torch_worker(argv):
    import onnx
    from onnx import numpy_helper
    import torch
    import torch.nn.functional as F

    ap = argparse.ArgumentParser(prog="adaquant_torch.py --_worker")
    ap.add_argument("mode", choices=["quantize", "eval"])
    ap.add_argument("--model", required=True)
    ap.add_argument("--report", required=True)
    ap.add_argument("--params", required=True)   # .npz written by quantize, read by eval
    ap.add_argument("--result", required=True)   # .json written by both
    ap.add_argument("--calib")
    ap.add_argument("--rtn-json")                # `tq quantize --method rtn --json` on the same data
    ap.add_argument("--iters", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--holdout", type=float, default=0.1)
    ap.add_argument("--act-quant", choices=["all", "weighted"], default="all")
    ap.add_argument("--data-dir", default=DATA_DIR)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)

    model = onnx.load(a.model)
    g = model.graph
    consts = {}
    for t in g.initializer:
        consts[t.name] = torch.from_numpy(numpy_helper.to_array(t).copy())
    for n in g.node:
        if n.op_type == "Constant":
            for at in n.attribute:
                if at.name == "value":
                    consts[n.output[0]] = torch.from_numpy(numpy_helper.to_array(at.t).copy())
    nodes = [n for n in g.node if n.op_type != "Constant"]
    graph_outputs = {o.name for o in g.output}
    input_name = [i.name for i in g.input if i.name not in consts][0]

    def attrs(n):
        return {at.name: onnx.helper.get_attribute_value(at) for at in n.attribute}

    readers = {}
    for i, n in enumerate(nodes):
        for x in n.input:
            if x:
                readers.setdefault(x, []).append(i)
    by_name = {n.name: i for i, n in enumerate(nodes)}
    producer = {o: i for i, n in enumerate(nodes) for o in n.output}

    def clip_bounds(n):
        at = attrs(n)
        lo, hi = at.get("min", -math.inf), at.get("max", math.inf)
        if len(n.input) > 1 and n.input[1]:
            lo = float(consts[n.input[1]].reshape(-1)[0])
        if len(n.input) > 2 and n.input[2]:
            hi = float(consts[n.input[2]].reshape(-1)[0])
        return lo, hi

    def fused_activation(i):
        """tinyquant's importer folds a Relu / Clip that is the sole reader of a Conv/Gemm output."""
        out = nodes[i].output[0]
        r = readers.get(out, [])
        if out not in graph_outputs and len(r) == 1 and nodes[r[0]].op_type in ("Relu", "Clip"):
            n = nodes[r[0]]
            lo, hi = (0.0, math.inf) if n.op_type == "Relu" else clip_bounds(n)
            return n.output[0], lo, hi
        return out, -math.inf, math.inf

    def apply_activation(z, lo, hi):
        # Gradient strictly inside (lo, hi), as ours: relu / hardtanh pass none at the bounds.
        if lo == -math.inf and hi == math.inf:
            return z
        if lo == 0.0 and hi == math.inf:
            return F.relu(z)
        if lo > -math.inf and hi < math.inf:
            return F.hardtanh(z, lo, hi)
        return torch.clamp(z, min=None if lo == -math.inf else lo, max=None if hi == math.inf else hi)

    def conv_args(n):
        at = attrs(n)
        if at.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            raise SystemExit("Conv %s: auto_pad is not supported" % n.name)
        pads = list(at.get("pads", [0, 0, 0, 0]))
        return dict(stride=tuple(at.get("strides", [1, 1])), dilation=tuple(at.get("dilations", [1, 1])),
                    groups=int(at.get("group", 1)), pads=pads)

    def conv(x, w, b, ca):
        p = ca["pads"]
        if p[0] == p[2] and p[1] == p[3]:
            return F.conv2d(x, w, b, ca["stride"], (p[0], p[1]), ca["dilation"], ca["groups"])
        x = F.pad(x, (p[1], p[3], p[0], p[2]))
        return F.conv2d(x, w, b, ca["stride"], 0, ca["dilation"], ca["groups"])

    def gemm_args(n):
        at = attrs(n)
        if int(at.get("transA", 0)):
            raise SystemExit("Gemm %s: transA is not supported" % n.name)
        return dict(alpha=float(at.get("alpha", 1.0)), beta=float(at.get("beta", 1.0)),
                    transB=int(at.get("transB", 0)))

    def gemm(x, w, b, ga):
        wt = w if ga["transB"] else w.t()
        y = F.linear(x, wt) if ga["alpha"] == 1.0 else ga["alpha"] * F.linear(x, wt)
        if b is not None:
            y = y + (b if ga["beta"] == 1.0 else ga["beta"] * b)
        return y

    def run_node(n, v, override=None):
        op = n.op_type
        ins = [(v[x] if x in v else consts.get(x)) if x else None for x in n.input]
        at = attrs(n)
        if override is not None and op in WEIGHTED_OPS:
            return override(n, ins[0])
        if op == "Conv":
            return conv(ins[0], ins[1], ins[2] if len(ins) > 2 else None, conv_args(n))
        if op == "Gemm":
            return gemm(ins[0], ins[1], ins[2] if len(ins) > 2 else None, gemm_args(n))
        if op == "MatMul":
            return torch.matmul(ins[0], ins[1])
        if op == "Relu":
            return F.relu(ins[0])
        if op == "Clip":
            lo, hi = clip_bounds(n)
            return torch.clamp(ins[0], min=None if lo == -math.inf else lo, max=None if hi == math.inf else hi)
        if op == "Add":
            return ins[0] + ins[1]
        if op == "Mul":
            return ins[0] * ins[1]
        if op == "MaxPool":
            k = at["kernel_shape"]
            p = at.get("pads", [0, 0, 0, 0])
            x = ins[0]
            if not (p[0] == p[2] and p[1] == p[3]):
                x = F.pad(x, (p[1], p[3], p[0], p[2]), value=-math.inf)
                p = [0, 0, 0, 0]
            return F.max_pool2d(x, k, at.get("strides", k), (p[0], p[1]), at.get("dilations", [1, 1]),
                                ceil_mode=bool(at.get("ceil_mode", 0)))
        if op == "AveragePool":
            k = at["kernel_shape"]
            p = at.get("pads", [0, 0, 0, 0])
            return F.avg_pool2d(ins[0], k, at.get("strides", k), (p[0], p[1]), ceil_mode=bool(at.get("ceil_mode", 0)),
                                count_include_pad=bool(at.get("count_include_pad", 0)))
        if op == "GlobalAveragePool":
            return ins[0].mean(dim=(2, 3), keepdim=True)
        if op == "ReduceMean":
            axes = at.get("axes") or (ins[1].tolist() if len(ins) > 1 and ins[1] is not None else None)
            keep = bool(at.get("keepdims", 1))
            return ins[0].mean(dim=tuple(axes), keepdim=keep) if axes else ins[0].mean()
        if op == "Flatten":
            ax = int(at.get("axis", 1))
            s = ins[0].shape
            return ins[0].reshape(int(np.prod(s[:ax])) if ax else 1, -1)
        if op == "Reshape":
            shape = [int(d) for d in ins[1].tolist()]
            shape = [ins[0].shape[i] if d == 0 else d for i, d in enumerate(shape)]
            return ins[0].reshape(shape)
        if op == "Transpose":
            return ins[0].permute(*at["perm"])
        if op == "Softmax":
            return torch.softmax(ins[0], dim=int(at.get("axis", -1)))
        if op in ("Identity", "Dropout"):
            return ins[0]
        raise SystemExit("ONNX op %s (%s) is not supported by this executor" % (op, n.name))

    last_use = {}
    for i, n in enumerate(nodes):
        for x in n.input:
            last_use[x] = i

    def forward(x, want=(), stop_after=None, override=None, post=None):
        """Runs the graph on batch x; returns {name: value} for `want` (stops once they exist).
        post: {tensor: fn} applied to a tensor as soon as it is produced."""
        v = {input_name: x}
        got = {w: v[w] for w in want if w in v}
        for i, n in enumerate(nodes):
            outs = run_node(n, v, override)
            if post is not None and n.output[0] in post:
                outs = post[n.output[0]](outs)
            v[n.output[0]] = outs
            for w in want:
                if w == n.output[0]:
                    got[w] = outs
            if stop_after is not None and len(got) == len(want):
                break
            for x_ in n.input:
                if last_use.get(x_) == i and x_ not in want and x_ != input_name:
                    v.pop(x_, None)
        if stop_after is None:
            return v[g.output[0].name]
        return got

    with open(a.report) as f:
        report = json.load(f)
    layers = report["layers"]
    names = [l["name"] for l in layers]
    for nm in names:
        if nm not in by_name or nodes[by_name[nm]].op_type not in WEIGHTED_OPS:
            raise SystemExit("report layer %r is not a Conv/Gemm node of %s" % (nm, a.model))

    # Root of each tensor through passthrough ops (the tensor whose quantizer a reader uses).
    root = {}

    def root_of(t):
        while t not in root:
            p = producer.get(t)
            if p is None or nodes[p].op_type not in PASSTHROUGH_OPS:
                root[t] = t
                break
            t_in = nodes[p].input[0]
            # A Relu/Clip folded into the Conv/Gemm that produces its input is that layer's own output.
            if nodes[p].op_type in ("Relu", "Clip") and producer.get(t_in) is not None and \
                    nodes[producer[t_in]].op_type in WEIGHTED_OPS + ("Add", "Mul") and \
                    len(readers.get(t_in, [])) == 1 and t_in not in graph_outputs:
                root[t] = t
                break
            root[t] = root_of(t_in)
        return root[t]

    layer_root = [root_of(nodes[by_name[nm]].input[0]) for nm in names]
    layer_out = [fused_activation(by_name[nm])[0] for nm in names]

    def range_quantizers(path):
        """{ONNX tensor: (scale, zero point, bits)}: the range-calibrated quantizer of every activation
        tensor our integer model quantizes, from `tq quantize --method rtn --json` on the same data
        (the same range calibration AdaQuant starts from). Passthrough outputs (MaxPool, Flatten)
        are listed under their root; "input:nhwc:q" / "logits:q" are the ONNX input / output."""
        if not path or not os.path.exists(path):
            return {}
        with open(path) as f:
            acts = json.load(f).get("activations", [])
        return {x["tensor"].split(":")[0]: (float(x["scale"]), float(x["zero_point"]), int(x["bits"])) for x in acts}

    range_q = range_quantizers(a.rtn_json)

    def weight_layout(n, w):
        if n.op_type == "Conv":
            return 0
        return 0 if gemm_args(n)["transB"] else 1

    def sview(s, w, axis):
        shape = [1] * w.dim()
        shape[axis] = -1
        return s.view(shape)

    def ste_round(t):
        return t + (torch.round(t) - t).detach()

    def fq_weights(w, s, bits, axis):
        lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        sb = sview(s, w, axis)
        return sb * ste_round(torch.clamp(w / sb, lo, hi))

    def fq_act(x, s, z, bits):
        """s·round(clamp(x/s, qmin − round(z), qmax − round(z))) = s·(clamp(round(x/s)+z', qmin, qmax) − z');
        STE for both roundings; torch.clamp with tensor bounds sends the clipped elements' gradient
        to the bounds (so to z and, through x/s = bound, to s) — LSQ's derivatives."""
        qmin, qmax = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        zr = ste_round(z)
        return s * ste_round(torch.clamp(x / s, min=qmin - zr, max=qmax - zr))

    def layer_apply(n, x, w, b):
        if n.op_type == "Conv":
            return conv(x, w, b, conv_args(n))
        return gemm(x, w, b, gemm_args(n))

    if a.mode == "quantize":
        calib = torch.from_numpy(np.load(a.calib))
        N = calib.shape[0]
        H = max(1, int(math.floor(N * a.holdout + 0.5)))  # std::lround
        T = N - H
        if T < a.batch:
            raise SystemExit("%d training samples < batch %d" % (T, a.batch))
        # s_out (the bias's learning-rate unit): the output tensor's range-calibrated scale.
        final = {}   # root tensor -> (s_x, z_x) after its first reader (torch's own result)
        out_params = {}
        results = []
        t_all = time.perf_counter()
        for k, nm in enumerate(names):
            t_layer = time.perf_counter()
            rep = layers[k]
            i = by_name[nm]
            n = nodes[i]
            ytensor, act_lo, act_hi = fused_activation(i)
            wbits, abits = int(rep["wbits"]), int(rep["abits"])
            if layer_root[k] in range_q:  # ours: the bits of the tensor read (logits etc. stay 8-bit)
                abits = range_q[layer_root[k]][2]
            # X (the float input) and the float target after the fused activation, all samples.
            X = Y = None
            with torch.no_grad():
                for f0 in range(0, N, 100):
                    got = forward(calib[f0:f0 + 100], want=(n.input[0], ytensor), stop_after=True)
                    gx, gy = got[n.input[0]], got[ytensor]
                    if X is None:  # preallocated: no second copy from a concatenation
                        X = torch.empty((N,) + tuple(gx.shape[1:]))
                        Y = torch.empty((N,) + tuple(gy.shape[1:]))
                    X[f0:f0 + gx.shape[0]] = gx
                    Y[f0:f0 + gy.shape[0]] = gy
                    del got, gx, gy
            W0 = consts[n.input[1]].float()
            B0 = consts[n.input[2]].float() if len(n.input) > 2 and n.input[2] else \
                torch.zeros(W0.shape[weight_layout(n, W0)])
            axis = weight_layout(n, W0)
            sw0 = torch.tensor(rep["init_weight_scales"], dtype=torch.float32)
            if sw0.numel() != W0.shape[axis]:
                raise SystemExit("%s: %d weight scales for %d channels" % (nm, sw0.numel(), W0.shape[axis]))
            learn = bool(rep["learned_input_quantizer"])
            r = layer_root[k]
            note = ""
            if learn or r not in final:
                if not learn:
                    note = "input quantizer: report's init (no earlier reader of this tensor found here)"
                sx0, zx0 = float(rep["init_input_scale"]), float(rep["init_input_zero_point"])
            else:
                sx0, zx0 = final[r]
            if learn and r in range_q and abs(range_q[r][0] - sx0) > 1e-6 * sx0:
                note = "report init_input_scale %.9g != range calibration %.9g" % (sx0, range_q[r][0])
            # s_out, the bias's learning-rate unit (ours: the output tensor's range-calibrated scale,
            # not in our report): (1) the range calibration of the same data (`tq quantize --method
            # rtn --json`), exact; (2) a later layer that learns that tensor's quantizer: its
            # init_input_scale, also exact; (3) the float target's range / (2^abits − 1).
            s_out, s_out_src = None, ""
            if layer_out[k] in range_q:
                s_out, s_out_src = range_q[layer_out[k]][0], "rtn"
            for j in range(k + 1, len(names)):
                if s_out is None and layer_root[j] == layer_out[k] and layers[j]["learned_input_quantizer"]:
                    s_out, s_out_src = float(layers[j]["init_input_scale"]), "reader:" + names[j]
            if s_out is None:
                lo_, hi_ = min(float(Y.min()), 0.0), max(float(Y.max()), 0.0)
                s_out, s_out_src = max((hi_ - lo_) / (2 ** abits - 1), 1e-12), "range"
            qmin, qmax = -(2 ** (abits - 1)), 2 ** (abits - 1) - 1

            w = W0.clone().requires_grad_(True)
            b = B0.clone().requires_grad_(True)
            sw = sw0.clone().requires_grad_(True)
            sx = torch.tensor(sx0, requires_grad=learn)
            zx = torch.tensor(zx0, requires_grad=learn)
            init = (W0.clone(), B0.clone(), sw0.clone(), sx0, zx0)

            def mse(idx0, idx1, w, b, sw, sx, zx):
                with torch.no_grad():
                    tot, cnt = 0.0, 0
                    for f0 in range(idx0, idx1, a.batch):
                        f1 = min(f0 + a.batch, idx1)
                        xq = fq_act(X[f0:f1], sx, zx, abits)
                        y = apply_activation(layer_apply(n, xq, fq_weights(w, sw, wbits, axis), b), act_lo, act_hi)
                        tot += float(((y - Y[f0:f1]) ** 2).sum(dtype=torch.float64))
                        cnt += Y[f0:f1].numel()
                    return tot / cnt

            mse_before = mse(T, N, w, b, sw, torch.tensor(sx0), torch.tensor(zx0))
            lr_w = sview(1e-2 * sw0, W0, axis)
            lr_b = 1e-2 * s_out
            lr_s = 1e-3 * sw0
            lr_sx, lr_zx = 1e-3 * sx0, 1e-2
            params = [(w, lr_w), (b, lr_b), (sw, lr_s)] + ([(sx, lr_sx), (zx, lr_zx)] if learn else [])
            state = [(torch.zeros_like(p), torch.zeros_like(p)) for p, _ in params]
            b1, b2, eps = 0.9, 0.999, 1e-8
            rng = np.random.default_rng([a.seed, k])
            diverged = False
            it = 0
            for it in range(1, a.iters + 1):
                idx = torch.from_numpy(rng.choice(T, size=a.batch, replace=False))
                xb = X.index_select(0, idx)
                yb = Y.index_select(0, idx)
                if learn:
                    xq = fq_act(xb, sx, zx, abits)
                else:
                    with torch.no_grad():
                        xq = fq_act(xb, sx, zx, abits)
                y = apply_activation(layer_apply(n, xq, fq_weights(w, sw, wbits, axis), b), act_lo, act_hi)
                loss = torch.mean((y - yb) ** 2)
                if not math.isfinite(float(loss)):
                    diverged = True
                    break
                grads = torch.autograd.grad(loss, [p for p, _ in params])
                decay = 0.5 * (1.0 + math.cos(math.pi * (it - 1) / a.iters))
                c1, c2 = 1.0 - b1 ** it, 1.0 - b2 ** it
                with torch.no_grad():
                    for (p, lr), (m, v), gr in zip(params, state, grads):
                        m.mul_(b1).add_(gr, alpha=1 - b1)
                        v.mul_(b2).addcmul_(gr, gr, value=1 - b2)
                        step = (m / c1) / ((v / c2).sqrt_().add_(eps))
                        p.sub_(step.mul_(lr), alpha=decay) if torch.is_tensor(lr) else p.sub_(step, alpha=decay * lr)
                    sw.clamp_(min=1e-12)
                    if learn:
                        sx.clamp_(min=1e-12)
                        zx.clamp_(qmin, qmax)
            if diverged:
                mse_after, reverted = mse_before, True
                note = "loss became NaN/Inf at iteration %d" % it
            else:
                mse_after = mse(T, N, w, b, sw, sx.detach(), zx.detach())
                reverted = not (mse_after < mse_before)
            if reverted:
                wf, bf, swf, sxf, zxf = init
                mse_after = mse_before
            else:
                wf, bf, swf = w.detach(), b.detach(), sw.detach()
                sxf, zxf = float(sx), float(zx)
            zx_int = float(np.round(zxf))  # round half to even, as ours
            if learn:
                final[r] = (sxf if not reverted else sx0, zx_int if not reverted else zx0)
            elif r not in final:
                final[r] = (sx0, zx0)
            out_params["w%d" % k] = wf.numpy()
            out_params["b%d" % k] = bf.numpy()
            out_params["sw%d" % k] = swf.numpy()
            s_in_final, z_in_final = final[r]
            out_params["sx%d" % k] = np.float32(s_in_final)
            out_params["zx%d" % k] = np.float32(z_in_final)
            out_params["ab%d" % k] = np.int32(abits)
            secs = time.perf_counter() - t_layer
            results.append(dict(name=nm, mse_before=mse_before, mse_after=mse_after, reverted=bool(reverted),
                                iterations=it, learned_input_quantizer=learn, seconds=secs, s_out=s_out,
                                s_out_source=s_out_src, init_input_scale=sx0, init_input_zero_point=zx0,
                                final_input_scale=s_in_final, final_input_zero_point=z_in_final,
                                cache_bytes=int((X.numel() + Y.numel()) * 4), note=note))
            print("torch %-40s mse %.4g -> %.4g%s  %.1fs" % (nm, mse_before, mse_after, " (reverted)" if reverted else "",
                                                         secs), flush=True)
            del X, Y
        np.savez(a.params, **out_params)
        with open(a.result, "w") as f:
            json.dump(dict(layers=results, adaquant_seconds=time.perf_counter() - t_all,
                           train_samples=T, holdout_samples=H, threads=a.threads,
                           torch=torch.__version__), f, indent=1)
        return 0

    # eval: the fake-quant model (weighted layers' quantizers only), all test images.
    P = np.load(a.params)
    qlayers = {}
    for k, nm in enumerate(names):
        n = nodes[by_name[nm]]
        w = torch.from_numpy(P["w%d" % k])
        axis = weight_layout(n, w)
        sw = torch.from_numpy(P["sw%d" % k])
        sx, zx = float(P["sx%d" % k]), float(P["zx%d" % k])
        wq = fq_weights(w, sw, int(layers[k]["wbits"]), axis)
        bs = sx * sw.double()  # the int32 bias the integer model stores: round(b / (s_x·s_w))·s_x·s_w
        bq = (torch.round(torch.from_numpy(P["b%d" % k]).double() / bs) * bs).float()
        qlayers[nm] = (wq, bq, torch.tensor(sx), torch.tensor(zx), int(P["ab%d" % k]))

    def override(n, x):
        if n.name not in qlayers:
            return run_node(n, {n.input[0]: x})
        wq, bq, sx, zx, abits = qlayers[n.name]
        return layer_apply(n, fq_act(x, sx, zx, abits), wq, bq)

    # --act-quant all: also fake-quantize every other activation tensor our integer model quantizes
    # (Add, pooling, logits, ...). Tensors whose quantizer a weighted layer reads take the PyTorch
    # side's own learned s_x / z_x; the rest are never learned by either engine, so they keep the
    # range-calibrated quantizer (`tq quantize --method rtn --json` on the same data). Each node
    # output whose root has a quantizer is fake-quantized (after a folded Relu / Clip: the raw
    # Conv output of a fused layer has none).
    post, act_mode = None, a.act_quant
    if act_mode == "all":
        if not range_q:
            act_mode = "weighted (no --rtn-json activations)"
        else:
            learned = {layer_root[k]: (float(P["sx%d" % k]), float(P["zx%d" % k])) for k in range(len(names))}
            post = {}
            for n in nodes:
                r_ = root_of(n.output[0])
                if r_ in range_q:
                    s_, z_, b_ = range_q[r_]
                    s_, z_ = learned.get(r_, (s_, z_))
                    post[n.output[0]] = (lambda s_, z_, b_: lambda y: fq_act(y, torch.tensor(s_), torch.tensor(z_), b_))(
                        s_, z_, b_)

    images, labels = load_split(a.data_dir, "test")
    x_all = torch.from_numpy(preprocess(images))
    correct = 0
    t0 = time.perf_counter()
    with torch.no_grad():
        for f0 in range(0, x_all.shape[0], 500):
            logits = forward(x_all[f0:f0 + 500], override=override, post=post)
            correct += int((logits.argmax(dim=1).numpy() == labels[f0:f0 + 500]).sum())
    with open(a.result, "w") as f:
        json.dump(dict(top1=100.0 * correct / len(labels), correct=correct, samples=int(len(labels)),
                       seconds=time.perf_counter() - t0, act_quant=act_mode,
                       quantized_tensors=len(post) if post else 0), f)
    return 0


# ----------------------------------------------------------------------------------------------
# Driver

def mean_ratio(layers):
    r = [l["mse_after"] / l["mse_before"] for l in layers if l["mse_before"] > 0]
    return sum(r) / len(r) if r else float("nan")


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--_worker":
        return torch_worker(sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="lenet,resnet20,mobilenetv2")
    ap.add_argument("--models-dir", default=os.path.join(REPO, "examples", "fashion_mnist", "models"))
    ap.add_argument("--iters", type=int, default=1000, help="Adam steps per layer (both engines)")
    ap.add_argument("--batch", type=int, default=50, help="samples per step (both engines)")
    ap.add_argument("--wbits", type=int, default=4)
    ap.add_argument("--abits", type=int, default=4)
    ap.add_argument("--calib-size", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads = tq --gemm-threads (default 1)")
    ap.add_argument("--tq", default=os.path.join(REPO, "build", "bin", "tq"))
    ap.add_argument("--tq-args", default="", help="extra arguments for `tq quantize` (space separated)")
    ap.add_argument("--data-dir", default=DATA_DIR)
    ap.add_argument("--work-dir", default=os.path.join(REPO, "build", "bench", "adaquant_torch"))
    ap.add_argument("--act-quant", choices=["all", "weighted"], default="all",
                    help="PyTorch top-1: fake-quantize every activation our integer model quantizes (all) "
                         "or only the weighted layers' inputs (weighted)")
    ap.add_argument("--tta", default="",
                    help="time to accuracy: extra tq settings run after PyTorch on each model, "
                         "'NAME=TQ QUANTIZE ARGS;NAME=...' (e.g. 'seq+stats 25=--method adaquant --sequential --stats-tuning --iters 25'); "
                         "each one's wall time and top-1 against the PyTorch version's")
    ap.add_argument("--json", help="write all results here")
    a = ap.parse_args()
    tta = []
    for item in [x for x in a.tta.split(";") if x.strip()]:
        if "=" not in item:
            raise SystemExit("--tta: '%s' is not NAME=ARGS" % item)
        name, args = item.split("=", 1)
        tta.append((name.strip(), args.split()))
    tta_rows = []

    os.makedirs(a.work_dir, exist_ok=True)
    calib = os.path.join(a.work_dir, "calib_%d_seed%d.npy" % (a.calib_size, a.seed))
    write_calibration(a.data_dir, a.calib_size, a.seed, calib)
    load0 = os.getloadavg()[0]
    rows, notes, all_results = [], [], {}
    for m in [s for s in a.models.split(",") if s]:
        onnx_path = os.path.join(a.models_dir, m + ".onnx")
        if not os.path.exists(onnx_path):
            notes.append("%s: %s missing, skipped" % (m, onnx_path))
            continue
        d = os.path.join(a.work_dir, m)
        os.makedirs(d, exist_ok=True)
        tqm, report = os.path.join(d, "tq.tqm"), os.path.join(d, "report.json")
        for f in (tqm, report):
            if os.path.exists(f):
                os.remove(f)
        cmd = [a.tq, "quantize", onnx_path, "--method", "adaquant", "--wbits", str(a.wbits), "--abits", str(a.abits),
               "--iters", str(a.iters), "--batch", str(a.batch), "--calib", "npy:" + calib, "--seed", str(a.seed),
               "-o", tqm, "--report", report, "--gemm-threads", str(a.threads)] + a.tq_args.split()
        print("[%s] tinyquant: %s" % (m, " ".join(cmd)), flush=True)
        rc, wall_tq, rss_tq = run_measured(cmd, os.path.join(d, "tq_quantize.out"), os.path.join(d, "tq_quantize.err"))
        if rc != 0:
            print(tail(os.path.join(d, "tq_quantize.err")), file=sys.stderr)
            raise SystemExit("%s: tq quantize failed (exit %d); see %s" % (m, rc, d))
        with open(report) as f:
            rep = json.load(f)
        ev = subprocess.run([a.tq, "eval", tqm, "--data", "fashion-mnist", "--split", "test", "--data-dir", a.data_dir,
                             "--json"], capture_output=True, text=True)
        if ev.returncode != 0:
            raise SystemExit("%s: tq eval failed: %s" % (m, ev.stderr))
        top1_tq = json.loads(ev.stdout)["top1"]
        ev = subprocess.run([a.tq, "eval", tqm, "--data", "fashion-mnist", "--split", "test", "--data-dir", a.data_dir,
                             "--json", "--simulate"], capture_output=True, text=True)
        sim_tq = json.loads(ev.stdout)["top1"] if ev.returncode == 0 else float("nan")
        # Range calibration alone on the same data (not timed): the exact range-calibrated
        # quantizer of every activation tensor, which our report does not list.
        rtn_json = os.path.join(d, "rtn.json")
        # The bit-width options of --tq-args (--keep-first-last-8bit, --output-abits B) apply to it
        # too, so the PyTorch side quantizes every tensor at the bits ours does.
        rtn_args, extra = [], a.tq_args.split()
        for j, x in enumerate(extra):
            if x == "--keep-first-last-8bit":
                rtn_args.append(x)
            elif x == "--output-abits" and j + 1 < len(extra):
                rtn_args += [x, extra[j + 1]]
        with open(rtn_json, "w") as f:
            rc = subprocess.run([a.tq, "quantize", onnx_path, "--method", "rtn", "--wbits", str(a.wbits),
                                 "--abits", str(a.abits), "--calib", "npy:" + calib, "--seed", str(a.seed),
                                 "--batch", "50", "-o", os.path.join(d, "rtn.tqm"), "--json"] + rtn_args,
                                stdout=f, stderr=subprocess.DEVNULL).returncode
        if rc != 0:
            notes.append("%s: tq quantize --method rtn --json failed; pytorch top-1 quantizes weighted inputs only" % m)
            os.remove(rtn_json)

        params, res_q, res_e = (os.path.join(d, x) for x in ("torch_params.npz", "torch_quantize.json", "torch_eval.json"))
        base = [sys.executable, os.path.abspath(__file__), "--_worker"]
        common = ["--model", onnx_path, "--report", report, "--params", params, "--data-dir", a.data_dir,
                  "--threads", str(a.threads)]
        cmd = base + ["quantize"] + common + ["--result", res_q, "--calib", calib, "--rtn-json", rtn_json,
                                              "--iters", str(a.iters), "--batch", str(a.batch), "--seed", str(a.seed)]
        print("[%s] pytorch:   adaquant_torch.py --_worker quantize ... (threads %d)" % (m, a.threads), flush=True)
        rc, wall_pt, rss_pt = run_measured(cmd, os.path.join(d, "torch_quantize.out"), os.path.join(d, "torch_quantize.err"))
        if rc != 0:
            print(tail(os.path.join(d, "torch_quantize.err")), file=sys.stderr)
            raise SystemExit("%s: the PyTorch AdaQuant failed (exit %d); see %s" % (m, rc, d))
        rc = subprocess.run(base + ["eval"] + common + ["--result", res_e, "--rtn-json", rtn_json,
                                                        "--act-quant", a.act_quant]).returncode
        if rc != 0:
            raise SystemExit("%s: the PyTorch evaluation failed (exit %d)" % (m, rc))
        with open(res_q) as f:
            pt = json.load(f)
        with open(res_e) as f:
            pte = json.load(f)
        n_layers = len(rep["layers"])
        rows.append(dict(model=m, engine="tinyquant", wall_s=wall_tq, adaquant_s=rep.get("adaquant_seconds"),
                         peak_rss_mib=rss_tq / 2 ** 20, top1=top1_tq, fq_top1=sim_tq, mse_ratio=mean_ratio(rep["layers"]),
                         reverted=sum(1 for l in rep["layers"] if l.get("reverted")), layers=n_layers))
        rows.append(dict(model=m, engine="pytorch", wall_s=wall_pt, adaquant_s=pt["adaquant_seconds"],
                         peak_rss_mib=rss_pt / 2 ** 20, top1=pte["top1"], fq_top1=pte["top1"], mse_ratio=mean_ratio(pt["layers"]),
                         reverted=sum(1 for l in pt["layers"] if l["reverted"]), layers=n_layers))
        all_results[m] = dict(tinyquant_report=rep, pytorch=pt, pytorch_eval=pte, tinyquant_top1=top1_tq,
                              tinyquant_wall_s=wall_tq, pytorch_wall_s=wall_pt,
                              tinyquant_peak_rss_bytes=rss_tq, pytorch_peak_rss_bytes=rss_pt)
        for k, (name, args) in enumerate(tta):  # time to accuracy: other tq settings, same data
            tq_k = os.path.join(d, "tta%d.tqm" % k)
            cmd = [a.tq, "quantize", onnx_path, "--wbits", str(a.wbits), "--abits",
                   str(a.abits), "--batch", str(a.batch), "--calib", "npy:" + calib, "--seed", str(a.seed),
                   "-o", tq_k, "--gemm-threads", str(a.threads)] + rtn_args + args
            print("[%s] tinyquant (%s): %s" % (m, name, " ".join(cmd)), flush=True)
            rc, wall_k, rss_k = run_measured(cmd, os.path.join(d, "tta%d.out" % k), os.path.join(d, "tta%d.err" % k))
            if rc != 0:
                notes.append("%s: time-to-accuracy setting '%s' failed (exit %d)" % (m, name, rc))
                continue
            ev = subprocess.run([a.tq, "eval", tq_k, "--data", "fashion-mnist", "--split", "test", "--data-dir",
                                 a.data_dir, "--json"], capture_output=True, text=True)
            top1_k = json.loads(ev.stdout)["top1"] if ev.returncode == 0 else float("nan")
            tta_rows.append(dict(model=m, setting=name, args=" ".join(args), wall_s=wall_k, peak_rss_mib=rss_k / 2 ** 20,
                                 top1=top1_k, pytorch_top1=pte["top1"], pytorch_wall_s=wall_pt))
        for l in pt["layers"]:
            if l["note"]:
                notes.append("%s %s: %s" % (m, l["name"], l["note"]))
        srcs = sorted({l["s_out_source"].split(":")[0] for l in pt["layers"]})
        notes.append("%s: bias learning-rate unit s_out from %s; pytorch top-1 fake-quantizes %s" % (
            m, ", ".join(srcs), pte["act_quant"] + (" (%d tensors)" % pte["quantized_tensors"]
                                                     if pte["quantized_tensors"] else "")))

    print()
    print("AdaQuant W%dA%d parallel, %d iterations/layer, batch %d, %d calibration images (seed %d), threads %d (torch / tq --gemm-threads)"
          % (a.wbits, a.abits, a.iters, a.batch, a.calib_size, a.seed, a.threads))
    hdr = "%-12s %-10s %8s %8s %9s %7s %8s %10s %9s" % ("model", "engine", "wall s", "adaq s", "RSS MiB", "top-1",
                                                        "fq top-1", "mse a/b", "reverted")
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        print("%-12s %-10s %8.2f %8.2f %9.1f %7.2f %8.2f %10.4f %5d/%-3d" % (
            r["model"], r["engine"], r["wall_s"], r["adaquant_s"] if r["adaquant_s"] is not None else float("nan"),
            r["peak_rss_mib"], r["top1"], r["fq_top1"], r["mse_ratio"], r["reverted"], r["layers"]))
    print()
    verdicts = {}
    for i in range(0, len(rows), 2):
        t, p = rows[i], rows[i + 1]
        speed = p["wall_s"] / t["wall_s"]
        adaq = p["adaquant_s"] / t["adaquant_s"] if t["adaquant_s"] else float("nan")
        dacc = t["top1"] - p["top1"]
        dfq = t["fq_top1"] - p["fq_top1"]
        verdicts[t["model"]] = dict(speed_ratio_wall=speed, speed_ratio_adaquant=adaq, top1_delta_pt=dacc,
                                    fq_top1_delta_pt=dfq)
        print("%-12s speed pytorch/tinyquant: wall %.2fx, adaquant only %.2fx: %s (target >= 2x)" % (
            t["model"], speed, adaq, "MET" if speed >= 2.0 else "NOT MET"))
        print("%-12s top-1 tinyquant - pytorch: %+.2f pt (integer vs fake-quant), %+.2f pt (fake-quant both): %s "
              "(target within 0.3 pt)" % ("", dacc, dfq, "MET" if abs(dacc) <= 0.3 else "NOT MET"))
    if tta_rows:
        print()
        print("Time to accuracy: tq settings against the PyTorch version above (its wall time and top-1)")
        hdr = "%-12s %-22s %8s %9s %7s %8s %7s" % ("model", "tq setting", "wall s", "RSS MiB", "top-1", "reached",
                                                   "pt/tq")
        print(hdr)
        print("-" * len(hdr))
        for r in tta_rows:
            r["reached"] = r["top1"] >= r["pytorch_top1"]
            r["speed_ratio_wall"] = r["pytorch_wall_s"] / r["wall_s"]
            print("%-12s %-22s %8.2f %9.1f %7.2f %8s %6.2fx" % (r["model"], r["setting"][:22], r["wall_s"],
                                                            r["peak_rss_mib"], r["top1"], "yes" if r["reached"] else "no",
                                                            r["speed_ratio_wall"]))
        for m in sorted({r["model"] for r in tta_rows}, key=[r["model"] for r in tta_rows].index):
            ok = [r for r in tta_rows if r["model"] == m and r["reached"]]
            if ok:
                best = max(ok, key=lambda r: r["speed_ratio_wall"])
                verdicts.setdefault(m, {})["time_to_accuracy"] = dict(setting=best["setting"], ratio=best["speed_ratio_wall"])
                print("%-12s time to the PyTorch version's top-1: %.2fx sooner (%s): %s (target >= 5x)" % (
                    m, best["speed_ratio_wall"], best["setting"], "MET" if best["speed_ratio_wall"] >= 5 else "NOT MET"))
            else:
                print("%-12s time to accuracy: no setting reached the PyTorch version's top-1: NOT MET" % m)
    print()
    print("wall s: the child process (tq quantize, incl. range calibration and writing the .tqm / the PyTorch")
    print("  worker, incl. import torch and loading the ONNX; it takes range calibration from our report).")
    print("adaq s: the AdaQuant stage alone (per-layer capture + optimisation). RSS: each child's ru_maxrss.")
    print("mse a/b: mean over layers of held-out MSE after / before (reverted layers count 1).")
    print("top-1 (10 000 test images): tinyquant = the integer model (`tq eval`); pytorch = a float fake-quant")
    print("  simulation (weights, int32-rounded bias, the activations named in the note), not integer kernels,")
    print("  so small differences are expected. fq top-1: tinyquant = `tq eval --simulate` (its fake-quant twin).")
    for n in notes:
        print("note:", n)
    machine = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                machine = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load1 = os.getloadavg()[0]
    print("machine: %s, %d cpus, load %.2f -> %.2f, %s" % (machine, os.cpu_count(), load0, load1,
                                                          time.strftime("%Y-%m-%d %H:%M %Z")))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(dict(settings=vars(a), rows=rows, verdicts=verdicts, results=all_results, time_to_accuracy=tta_rows,
                           machine=machine, load=[load0, load1]), f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
