#!/usr/bin/python3
"""Builds the "models from the wild" test set and ONNX Runtime's outputs for it.

    /usr/bin/python3 tests/onnx/wild/make_models.py OUT_DIR ORT_DIR [NAME ...]

For every model: OUT_DIR/NAME.onnx, its inputs OUT_DIR/NAME.in.K.npy (float32, fixed seed) and
ONNX Runtime's outputs OUT_DIR/NAME.ort.K.npy (tests/onnx/wild/ort_run.js with the onnxruntime-node
package installed under ORT_DIR), and one line per model in OUT_DIR/manifest.tsv:
name, opset, inputs, outputs, Transpose nodes in the ONNX graph, what the model exercises.

Two kinds of model, the forms other exporters write:
  * PyTorch exports (Debian's torch 1.13) of small nets at opsets 9, 11, 13 and 17;
  * graphs written with the onnx helper as tf2onnx and other converters emit them: NHWC input with
    Transpose sandwiches around every conv, opset-7/9 attribute forms (Clip min/max, Pad pads,
    BatchNormalization spatial, Dropout ratio), opset-18+ input forms, shape subgraphs.
Weights are random with a fixed seed; the graphs are small, so the whole set builds in seconds.
"""
import os
import subprocess
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(0)


def const(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def weights(name, *shape, scale=None):
    fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    s = scale if scale is not None else 1.0 / np.sqrt(fan_in)
    return const(name, (rng.standard_normal(shape) * s).astype(np.float32))


def model_of(nodes, inputs, outputs, inits, opset, name):
    g = helper.make_graph(nodes, name, [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
                          [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], producer_name="tinyquant-tests")
    m.ir_version = 8 if opset <= 17 else 9
    return m


# ---------------------------------------------------------------- helper-written graphs

def tf_sandwich(opset):
    """NHWC input, each conv wrapped in NHWC->NCHW / NCHW->NHWC Transposes (tf2onnx without its
    optimizer), NHWC output: every Transpose folds away."""
    n = helper.make_node
    nodes = [
        n("Transpose", ["x"], ["t0"], perm=[0, 3, 1, 2]),
        n("Conv", ["t0", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        n("Relu", ["c1"], ["r1"]),
        n("Transpose", ["r1"], ["t1"], perm=[0, 2, 3, 1]),
        n("Transpose", ["t1"], ["t2"], perm=[0, 3, 1, 2]),
        n("Conv", ["t2", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1], strides=[2, 2]),
        n("Transpose", ["c2"], ["t3"], perm=[0, 2, 3, 1]),
        n("Add", ["t3", "bias_nhwc"], ["a3"]),  # a bias added in NHWC space, as TF does
        n("Relu", ["a3"], ["y"]),
    ]
    if opset < 11:  # Clip's attribute form
        nodes[-1] = n("Clip", ["a3"], ["y"], min=0.0, max=6.0)
    inits = [weights("w1", 8, 3, 3, 3), const("b1", rng.standard_normal(8).astype(np.float32) * 0.1),
             weights("w2", 16, 8, 3, 3), const("b2", np.zeros(16, np.float32)),
             const("bias_nhwc", rng.standard_normal(16).astype(np.float32) * 0.1)]
    return model_of(nodes, [("x", [1, 16, 16, 3])], ["y"], inits, opset, "tf_sandwich")


def tf_classifier(opset):
    """tf2onnx-style classifier: NHWC input, Transpose, conv stack, global average pooling as
    ReduceMean over H, W in NHWC space, Reshape/MatMul/Add head, Softmax; keepdims=0."""
    n = helper.make_node
    reduce_axes = [1, 2]
    nodes = [
        n("Transpose", ["x"], ["t0"], perm=[0, 3, 1, 2]),
        n("Conv", ["t0", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        n("Relu", ["c1"], ["r1"]),
        n("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        n("Conv", ["p1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1]),
        n("Relu", ["c2"], ["r2"]),
        n("Transpose", ["r2"], ["t2"], perm=[0, 2, 3, 1]),
    ]
    if opset >= 18:
        nodes.append(n("ReduceMean", ["t2", "axes"], ["m"], keepdims=0))
    else:
        nodes.append(n("ReduceMean", ["t2"], ["m"], axes=reduce_axes, keepdims=0))
    nodes += [n("MatMul", ["m", "fc_w"], ["mm"]), n("Add", ["mm", "fc_b"], ["logits"]),
              n("Softmax", ["logits"], ["y"], axis=-1 if opset >= 13 else 1)]
    inits = [weights("w1", 8, 3, 3, 3), const("b1", np.zeros(8, np.float32)), weights("w2", 12, 8, 3, 3),
             const("b2", rng.standard_normal(12).astype(np.float32) * 0.1), weights("fc_w", 12, 5),
             const("fc_b", rng.standard_normal(5).astype(np.float32))]
    if opset >= 18:
        inits.append(const("axes", np.array(reduce_axes, np.int64)))
    return model_of(nodes, [("x", [1, 20, 20, 3])], ["y"], inits, opset, "tf_classifier")


def real_transpose(opset):
    """A Transpose that really permutes data (H and W swapped between two convs) stays and runs."""
    n = helper.make_node
    nodes = [
        n("Conv", ["x", "w1"], ["c1"], pads=[0, 1, 0, 1]),
        n("Transpose", ["c1"], ["t"], perm=[0, 1, 3, 2]),
        n("Conv", ["t", "w2"], ["y"]),
    ]
    inits = [weights("w1", 4, 2, 3, 3), weights("w2", 3, 4, 1, 1)]
    return model_of(nodes, [("x", [2, 2, 9, 6])], ["y"], inits, opset, "real_transpose")


def legacy_forms(opset):
    """The attribute forms of opsets 7-10: BatchNormalization(spatial=1), Dropout(ratio), Clip and
    Pad with attributes, Flatten, Gemm, Softmax(axis=1 of a 2-D input)."""
    n = helper.make_node
    nodes = [
        n("Pad", ["x"], ["p"], pads=[0, 0, 1, 1, 0, 0, 1, 1], mode="constant", value=0.0),
        n("Conv", ["p", "w1"], ["c1"]),
        n("BatchNormalization", ["c1", "bn_s", "bn_b", "bn_m", "bn_v"], ["bn"], epsilon=1e-5, spatial=1),
        n("Clip", ["bn"], ["r1"], min=0.0, max=6.0),
        n("Dropout", ["r1"], ["d"], ratio=0.25),
        n("AveragePool", ["d"], ["ap"], kernel_shape=[2, 2], strides=[2, 2]),
        n("Flatten", ["ap"], ["f"], axis=1),
        n("Gemm", ["f", "fc_w", "fc_b"], ["g"], transB=1),
        n("Softmax", ["g"], ["y"], axis=1),
    ]
    if opset >= 9:  # no 'spatial' from opset 9
        nodes[2] = n("BatchNormalization", ["c1", "bn_s", "bn_b", "bn_m", "bn_v"], ["bn"], epsilon=1e-5)
    inits = [weights("w1", 6, 3, 3, 3), const("bn_s", rng.uniform(0.5, 1.5, 6).astype(np.float32)),
             const("bn_b", rng.uniform(-0.2, 0.2, 6).astype(np.float32)),
             const("bn_m", rng.uniform(-0.2, 0.2, 6).astype(np.float32)),
             const("bn_v", rng.uniform(0.5, 1.5, 6).astype(np.float32)), weights("fc_w", 4, 6 * 4 * 4),
             const("fc_b", np.zeros(4, np.float32))]
    return model_of(nodes, [("x", [1, 3, 8, 8])], ["y"], inits, opset, "legacy_forms")


def modern_forms(opset):
    """Opset 18-21 forms: Pad with pads (and axes) as inputs, Clip with min/max inputs,
    Squeeze/Unsqueeze with an axes input, ReduceMean with an axes input, keepdims=1."""
    n = helper.make_node
    nodes = [
        n("Pad", ["x", "pads", "", "pad_axes"], ["p"], mode="constant"),
        n("Conv", ["p", "w1", "b1"], ["c1"]),
        n("Clip", ["c1", "lo", "hi"], ["r1"]),
        n("ReduceMean", ["r1", "axes"], ["m"], keepdims=1),
        n("Squeeze", ["m", "sq_axes"], ["s"]),
        n("Unsqueeze", ["s", "usq_axes"], ["u"]),
        n("Flatten", ["u"], ["f"]),
        n("Gemm", ["f", "fc_w", "fc_b"], ["y"], transB=1),
    ]
    inits = [const("pads", np.array([1, 1, 1, 1], np.int64)), const("pad_axes", np.array([2, 3], np.int64)),
             weights("w1", 6, 3, 3, 3), const("b1", rng.standard_normal(6).astype(np.float32) * 0.1),
             const("lo", np.array(0.0, np.float32)), const("hi", np.array(6.0, np.float32)),
             const("axes", np.array([2, 3], np.int64)), const("sq_axes", np.array([2, 3], np.int64)),
             const("usq_axes", np.array([1], np.int64)), weights("fc_w", 4, 6),
             const("fc_b", np.zeros(4, np.float32))]
    return model_of(nodes, [("x", [1, 3, 10, 10])], ["y"], inits, opset, "modern_forms")


def squeeze_attr_forms(opset):
    """Squeeze / Unsqueeze with the axes attribute (opsets < 13) around a flatten-free head, and
    ReduceMean with keepdims=1 over the spatial axes of an NCHW value."""
    n = helper.make_node
    nodes = [
        n("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        n("Relu", ["c1"], ["r1"]),
        n("ReduceMean", ["r1"], ["m"], axes=[2, 3], keepdims=1),
        n("Squeeze", ["m"], ["s"], axes=[2, 3]),
        n("Unsqueeze", ["s"], ["u"], axes=[0]),
        n("Squeeze", ["u"], ["s2"], axes=[0]),
        n("Gemm", ["s2", "fc_w", "fc_b"], ["y"], transB=1),
    ]
    inits = [weights("w1", 8, 3, 3, 3), const("b1", np.zeros(8, np.float32)), weights("fc_w", 5, 8),
             const("fc_b", rng.standard_normal(5).astype(np.float32))]
    return model_of(nodes, [("x", [1, 3, 12, 12])], ["y"], inits, opset, "squeeze_attr_forms")


def shape_subgraph(opset):
    """The shape arithmetic exporters emit for x.view(x.size(0), -1) on a static shape:
    Shape -> Gather -> Unsqueeze -> Concat -> Reshape, evaluated at import."""
    n = helper.make_node
    nodes = [
        n("Conv", ["x", "w1"], ["c1"], strides=[2, 2]),
        n("Shape", ["c1"], ["shape"]),
        n("Gather", ["shape", "zero"], ["batch"], axis=0),
        n("Unsqueeze", ["batch"] + (["ax0"] if opset >= 13 else []), ["batch1"], **({} if opset >= 13 else {"axes": [0]})),
        n("Concat", ["batch1", "minus1"], ["target"], axis=0),
        n("Reshape", ["c1", "target"], ["flat"]),
        n("MatMul", ["flat", "fc_w"], ["y"]),
    ]
    inits = [weights("w1", 4, 1, 3, 3), const("zero", np.array(0, np.int64)), const("minus1", np.array([-1], np.int64)),
             weights("fc_w", 4 * 4 * 4, 3)]
    if opset >= 13:
        inits.append(const("ax0", np.array([0], np.int64)))
    return model_of(nodes, [("x", [2, 1, 9, 9])], ["y"], inits, opset, "shape_subgraph")


def unary_zoo(opset):
    """Every elementwise op the importer maps to Unary, as the ONNX operators themselves (HardSwish
    from opset 14, Gelu from 20), the Mul(x, HardSigmoid(x)) HardSwish pattern, and Pow."""
    n = helper.make_node
    nodes = [
        n("Conv", ["x", "w1", "b1"], ["c"], pads=[1, 1, 1, 1]),
        n("HardSigmoid", ["c"], ["hs"], alpha=1.0 / 6.0, beta=0.5),
        n("Mul", ["c", "hs"], ["hswish"]),
        n("HardSwish", ["hswish"], ["hswish2"]),
        n("Elu", ["hswish2"], ["elu"], alpha=0.7),
        n("Abs", ["elu"], ["abs"]),
        n("Pow", ["abs", "half"], ["sqrt"]),
        n("Neg", ["sqrt"], ["neg"]),
        n("Exp", ["neg"], ["exp"]),
        n("Log", ["exp"], ["log"]),
        n("Erf", ["log"], ["erf"]),
        n("Pow", ["erf", "three"], ["cube"]),
        n("Add", ["cube", "two"], ["two_plus"]),
        n("Reciprocal", ["two_plus"], ["recip"]),
        n("Gelu", ["recip"], ["gelu"], approximate="tanh"),
        n("Softplus", ["gelu"], ["sp"]),
        n("HardSigmoid", ["sp"], ["y"], alpha=0.3, beta=0.4),
    ]
    inits = [weights("w1", 4, 2, 3, 3), const("b1", rng.standard_normal(4).astype(np.float32) * 0.1),
             const("half", np.array(0.5, np.float32)), const("three", np.array(3.0, np.float32)),
             const("two", np.array(2.0, np.float32))]
    return model_of(nodes, [("x", [1, 2, 7, 7])], ["y"], inits, opset, "unary_zoo")


def upsample_forms(opset):
    """Upsample (opset 7: scales attribute; 9: scales input) and Resize (10: scales; 11+: sizes and
    coordinate modes; 18: axes), Split with the split attribute (< 13), input (13-17) or
    num_outputs (18+), Slice with attributes (< 10)."""
    n = helper.make_node
    inits = [weights("w1", 4, 2, 3, 3)]
    nodes = [n("Conv", ["x", "w1"], ["c"], pads=[1, 1, 1, 1])]
    if opset < 9:
        nodes.append(n("Upsample", ["c"], ["u"], mode="nearest", scales=[1.0, 1.0, 2.0, 2.0]))
    elif opset == 9:
        nodes.append(n("Upsample", ["c", "sc"], ["u"], mode="linear"))
        inits.append(const("sc", np.array([1, 1, 2, 3], np.float32)))
    elif opset == 10:
        nodes.append(n("Resize", ["c", "sc"], ["u"], mode="nearest"))
        inits.append(const("sc", np.array([1, 1, 2, 2], np.float32)))
    elif opset < 18:
        nodes.append(n("Resize", ["c", "", "", "sz"], ["u"], mode="linear", coordinate_transformation_mode="align_corners"))
        inits.append(const("sz", np.array([1, 4, 9, 13], np.int64)))
    else:
        nodes.append(n("Resize", ["c", "", "sc"], ["u"], mode="nearest", axes=[2, 3],
                       coordinate_transformation_mode="half_pixel", nearest_mode="round_prefer_ceil"))
        inits.append(const("sc", np.array([1.5, 2.5], np.float32)))
    if opset < 13:
        nodes.append(n("Split", ["u"], ["s0", "s1"], axis=1, split=[1, 3]))
    elif opset < 18:
        nodes.append(n("Split", ["u", "split"], ["s0", "s1"], axis=1))
        inits.append(const("split", np.array([1, 3], np.int64)))
    else:
        nodes.append(n("Split", ["u"], ["s0", "s1"], axis=1, num_outputs=2))
    if opset < 10:
        nodes.append(n("Slice", ["s1"], ["y"], starts=[1, 1], ends=[1000, -1], axes=[2, 3]))
    else:
        nodes.append(n("Slice", ["s1", "st", "en", "ax", "stp"], ["y"]))
        inits += [const("st", np.array([1, 0], np.int64)), const("en", np.array([-1, 1 << 30], np.int64)),
                  const("ax", np.array([2, 3], np.int64)), const("stp", np.array([1, 2], np.int64))]
    nodes.append(n("Relu", ["s0"], ["y0"]))
    return model_of(nodes, [("x", [1, 2, 5, 6])], ["y", "y0"], inits, opset, "upsample_forms")


def patterns(opset):
    """Forms converters emit: HardSwish as x * Clip(x + 3, 0, 6) / 6, Gather of channels with
    constant indices (evenly spaced, uneven, a scalar), Range and int64 arithmetic on shapes,
    Cast to float of a float value."""
    n = helper.make_node
    clip = (n("Clip", ["a3"], ["r6"], min=0.0, max=6.0) if opset < 11 else n("Clip", ["a3", "zero_f", "six"], ["r6"]))
    nodes = [
        n("Conv", ["x", "w1", "b1"], ["c"], pads=[1, 1, 1, 1]),
        n("Add", ["c", "three"], ["a3"]), clip, n("Mul", ["c", "r6"], ["m"]), n("Div", ["m", "six"], ["hs"]),
        n("Range", ["r0", "r4", "r1"], ["idx"]),                     # [0, 1, 2, 3]
        n("Gather", ["hs", "idx"], ["even"], axis=1),
        n("Gather", ["hs", "uneven"], ["odd"], axis=1),
        n("Concat", ["even", "odd"], ["cat"], axis=1),
        n("Cast", ["cat"], ["catf"], to=TensorProto.FLOAT),
        n("Gather", ["catf", "two"], ["row"], axis=2),                # a scalar index drops H
        n("Shape", ["row"], ["shp"]),
        n("Gather", ["shp", "last2"], ["cw"]),                        # [C, W]
        n("Mul", ["cw", "ones"], ["cw1"]),
        n("Concat", ["one", "cw1"], ["tgt"], axis=0),
        n("Reshape", ["row", "tgt"], ["y"]),
    ]
    inits = [weights("w1", 6, 3, 3, 3), const("b1", rng.standard_normal(6).astype(np.float32)),
             const("three", np.array(3.0, np.float32)), const("six", np.array(6.0, np.float32)),
             const("zero_f", np.array(0.0, np.float32)), const("r0", np.array(0, np.int64)),
             const("r4", np.array(4, np.int64)), const("r1", np.array(1, np.int64)),
             const("uneven", np.array([5, 0, 2], np.int64)), const("two", np.array(2, np.int64)),
             const("last2", np.array([1, 2], np.int64)), const("ones", np.array([1, 1], np.int64)),
             const("one", np.array([1], np.int64))]
    return model_of(nodes, [("x", [1, 3, 5, 7])], ["y"], inits, opset, "patterns")


def two_inputs_outputs(opset):
    """Two graph inputs (one NHWC behind a Transpose), two outputs."""
    n = helper.make_node
    nodes = [
        n("Conv", ["a", "wa"], ["ca"], pads=[1, 1, 1, 1]),
        n("Transpose", ["b_nhwc"], ["b"], perm=[0, 3, 1, 2]),
        n("Conv", ["b", "wb"], ["cb"], pads=[1, 1, 1, 1]),
        n("Add", ["ca", "cb"], ["sum"]),
        n("Relu", ["sum"], ["y0"]),
        n("GlobalAveragePool", ["y0"], ["g"]),
        n("Flatten", ["g"], ["y1"]),
    ]
    inits = [weights("wa", 4, 2, 3, 3), weights("wb", 4, 3, 3, 3)]
    return model_of(nodes, [("a", [1, 2, 6, 6]), ("b_nhwc", [1, 6, 6, 3])], ["y0", "y1"], inits, opset,
                    "two_inputs_outputs")


# ---------------------------------------------------------------- PyTorch exports

def torch_cnn(opset):
    """Conv-BN-ReLU / ReLU6 / max and average pooling, a flatten via x.view(x.size(0), -1) with a
    dynamic batch, Linear, Dropout."""
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.b1 = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8)
            self.c2, self.b2 = nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.BatchNorm2d(8)
            self.c3 = nn.Conv2d(8, 12, 1)
            self.fc, self.drop = nn.Linear(12 * 4 * 4, 6), nn.Dropout(0.2)

        def forward(self, x):
            x = torch.relu(self.b1(self.c1(x)))
            x = nn.functional.max_pool2d(x, 2)
            x = nn.functional.relu6(self.b2(self.c2(x)))
            x = nn.functional.avg_pool2d(self.c3(x), 2)
            return self.fc(self.drop(x.view(x.size(0), -1)))

    torch.manual_seed(opset)
    net = Net().eval()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    return net, [(1, 3, 16, 16)], {"dynamic_batch": True}


def torch_activations(opset):
    """A mobile-style net: HardSwish, a squeeze-excite block (GAP, 1x1 convs, HardSigmoid, Mul),
    Sigmoid, Tanh, LeakyReLU, ELU, GELU, Softplus, x*x, sqrt, arithmetic with constants (Sub, Div)."""
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(3, 8, 3, padding=1)
            self.se1, self.se2 = nn.Conv2d(8, 4, 1), nn.Conv2d(4, 8, 1)
            self.c2 = nn.Conv2d(8, 8, 3, padding=1, groups=8)
            self.c3, self.c4 = nn.Conv2d(8, 6, 1), nn.Conv2d(8, 6, 1)
            self.fc = nn.Linear(6, 4)

        def forward(self, x):
            x = nn.functional.hardswish(self.c1(x))
            s = nn.functional.hardsigmoid(self.se2(torch.relu(self.se1(x.mean((2, 3), keepdim=True)))))
            x = x * s
            x = torch.sigmoid(self.c2(x)) * torch.tanh(x)
            x = nn.functional.leaky_relu(x - 0.25, 0.1) / 1.5
            x = nn.functional.elu(self.c3(x)) + nn.functional.gelu(self.c4(x))
            x = nn.functional.softplus(x) + torch.sqrt(x * x + 1.0)
            return self.fc(nn.functional.adaptive_avg_pool2d(x, 1).flatten(1))

    torch.manual_seed(100 + opset)
    return Net().eval(), [(1, 3, 12, 12)], {}


def torch_detector(opset):
    """An FPN-style detector head: strided convs, nearest and bilinear upsampling (F.interpolate,
    align_corners False and True), PReLU, channel slicing and torch.split, concatenation."""
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.c2 = nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.Conv2d(8, 12, 3, stride=2, padding=1)
            self.act = nn.PReLU(8)
            self.lat = nn.Conv2d(12, 8, 1)
            self.head = nn.Conv2d(8, 6, 3, padding=1)

        def forward(self, x):
            f1 = self.act(self.c1(x))
            f2 = self.lat(torch.relu(self.c2(f1)))
            up = nn.functional.interpolate(f2, scale_factor=2.0, mode="nearest")
            up2 = nn.functional.interpolate(f2, size=(f1.shape[2], f1.shape[3]), mode="bilinear", align_corners=False)
            up3 = nn.functional.interpolate(f2, scale_factor=2.0, mode="bilinear", align_corners=True)
            y = self.head(f1 + up + up2 - up3)
            y = y * torch.sigmoid(y.mean(1, keepdim=True))  # spatial attention from the channel mean
            a, b = torch.split(y, [2, 4], dim=1)
            return torch.cat([torch.sigmoid(a), b[:, 1:3] * 2.0], dim=1)

    torch.manual_seed(200 + opset)
    return Net().eval(), [(1, 3, 16, 16)], {}


def torch_text_block(opset):
    """A transformer-style MLP block on [N, T, C]: LayerNorm (opset 17: LayerNormalization), Linear on
    every token (MatMul of a 3-D input), GELU (Div/Erf/Add/Mul/Mul before opset 20), residual, a
    slice of the tokens; dynamic batch."""
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm = nn.LayerNorm(16)
            self.fc1, self.fc2 = nn.Linear(16, 32), nn.Linear(32, 16)

        def forward(self, x):
            h = self.fc2(nn.functional.gelu(self.fc1(self.norm(x))))
            y = (x + h)[:, 1:]
            return torch.cat([y.mean(1), y.mean(2)], dim=1)  # mean-pool over tokens / over features

    torch.manual_seed(300 + opset)
    return Net().eval(), [(2, 5, 16)], {"dynamic_batch": True}


def torch_gelu_mlp(opset):
    """Linear -> GELU -> Linear as PyTorch exports GELU before opset 20 (x * 0.5 * (1 + erf(x / sqrt 2)))."""
    import torch
    from torch import nn
    torch.manual_seed(400 + opset)
    return nn.Sequential(nn.Linear(12, 24), nn.GELU(), nn.Linear(24, 5)).eval(), [(3, 12)], {"dynamic_batch": True}


TORCH_MODELS = {f"torch_cnn_op{o}": (torch_cnn, o) for o in (9, 11, 13, 17)}
TORCH_MODELS.update({f"torch_detector_op{o}": (torch_detector, o) for o in (11, 13, 17)})
def torch_decoder(opset):
    """A segmentation-style decoder: ConvTranspose (stride 2, padding, output_padding, groups),
    BatchNorm after it, ReLU, nearest upsampling."""
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = nn.Conv2d(3, 8, 3, stride=2, padding=1)
            self.up1 = nn.ConvTranspose2d(8, 6, 3, stride=2, padding=1, output_padding=1)
            self.bn = nn.BatchNorm2d(6)
            self.up2 = nn.ConvTranspose2d(6, 4, 4, stride=2, padding=1, groups=2, bias=False)
            self.dil = nn.ConvTranspose2d(4, 2, 3, dilation=2)

        def forward(self, x):
            y = torch.relu(self.bn(self.up1(torch.relu(self.enc(x)))))
            return self.dil(torch.relu(self.up2(y)))

    torch.manual_seed(500 + opset)
    net = Net().eval()
    with torch.no_grad():
        net.bn.running_mean.uniform_(-0.2, 0.2)
        net.bn.running_var.uniform_(0.5, 1.5)
    return net, [(1, 3, 10, 12)], {}


TORCH_MODELS["torch_decoder_op11"] = (torch_decoder, 11)
TORCH_MODELS["torch_decoder_op17"] = (torch_decoder, 17)
TORCH_MODELS["torch_text_block_op17"] = (torch_text_block, 17)
TORCH_MODELS["torch_text_block_op13"] = (torch_text_block, 13)  # LayerNorm decomposed
TORCH_MODELS["torch_gelu_mlp_op13"] = (torch_gelu_mlp, 13)
TORCH_MODELS.update({f"torch_activations_op{o}": (torch_activations, o) for o in (11, 13, 17)})

HELPER_MODELS = {
    "tf_sandwich_op9": (tf_sandwich, 9),
    "tf_sandwich_op13": (tf_sandwich, 13),
    "tf_classifier_op11": (tf_classifier, 11),
    "tf_classifier_op18": (tf_classifier, 18),
    "real_transpose_op13": (real_transpose, 13),
    "legacy_forms_op7": (legacy_forms, 7),
    "legacy_forms_op10": (legacy_forms, 10),
    "modern_forms_op18": (modern_forms, 18),
    "modern_forms_op21": (modern_forms, 21),
    "squeeze_attr_forms_op11": (squeeze_attr_forms, 11),
    "shape_subgraph_op9": (shape_subgraph, 9),
    "shape_subgraph_op13": (shape_subgraph, 13),
    "two_inputs_outputs_op15": (two_inputs_outputs, 15),
    "unary_zoo_op20": (unary_zoo, 20),
    "patterns_op11": (patterns, 11),
    "patterns_op13": (patterns, 13),
    "upsample_forms_op7": (upsample_forms, 7),
    "upsample_forms_op9": (upsample_forms, 9),
    "upsample_forms_op10": (upsample_forms, 10),
    "upsample_forms_op13": (upsample_forms, 13),
    "upsample_forms_op19": (upsample_forms, 19),
}


def export_torch(name, fn, opset, out):
    import torch
    net, shapes, opts = fn(opset)
    xs = tuple(torch.from_numpy(rng.standard_normal(s).astype(np.float32)) for s in shapes)
    names = [f"x{i}" for i in range(len(xs))]
    dyn = {n: {0: "N"} for n in names} if opts.get("dynamic_batch") else None
    if dyn:
        dyn["y"] = {0: "N"}
    path = os.path.join(out, name + ".onnx")
    torch.onnx.export(net, xs, path, opset_version=opset, input_names=names, output_names=["y"], dynamic_axes=dyn)
    return onnx.load(path), [x.numpy() for x in xs]


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    out, ort_dir, only = sys.argv[1], sys.argv[2], set(sys.argv[3:])
    os.makedirs(out, exist_ok=True)
    lines = []
    for name in list(HELPER_MODELS) + list(TORCH_MODELS):
        if only and name not in only:
            continue
        if name in HELPER_MODELS:
            fn, opset = HELPER_MODELS[name]
            model = fn(opset)
            path = os.path.join(out, name + ".onnx")
            onnx.save(model, path)
            inputs = []
            for vi in model.graph.input:
                shape = [d.dim_value for d in vi.type.tensor_type.shape.dim]
                inputs.append(rng.standard_normal(shape).astype(np.float32))
        else:
            fn, opset = TORCH_MODELS[name]
            model, inputs = export_torch(name, fn, opset, out)
            path = os.path.join(out, name + ".onnx")
        doc = (fn.__doc__ or "").split("\n")[0].strip()
        in_files = []
        for k, x in enumerate(inputs):
            f = os.path.join(out, f"{name}.in.{k}.npy")
            np.save(f, x)
            in_files.append(f)
        subprocess.run(["node", os.path.join(HERE, "ort_run.js"), ort_dir, path, os.path.join(out, name + ".ort")] +
                       in_files, check=True)
        transposes = sum(1 for nd in model.graph.node if nd.op_type == "Transpose")
        lines.append("\t".join([name, str(opset), str(len(inputs)), str(len(model.graph.output)), str(transposes), doc]))
        print(name, "built", flush=True)
    with open(os.path.join(out, "manifest.tsv"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
