#!/usr/bin/python3
"""Train tinyquant's reference models on Fashion-MNIST and export them to ONNX.

Run with Debian's interpreter (its torch/torchvision/onnx import only there):
    /usr/bin/python3 examples/fashion_mnist/train.py [--models lenet,resnet20,mobilenetv2,zoo]

Preprocessing (the C++ loader in tools/ applies exactly the same):
    x = (pixel / 255 - 0.2860) / 0.3530, float32, shape [N, 1, 28, 28] (NCHW as in ONNX).
Training-only augmentation: random horizontal flip and random translation by up to 2 pixels
(zero padding in pixel space, i.e. value (0 - 0.2860) / 0.3530).

Outputs, per model NAME, in examples/fashion_mnist/models/:
    NAME.onnx   opset 13, input "input" [N,1,28,28], output "logits" [N,10], dynamic batch
    NAME.json   {"model", "test_top1" (percent, all 10 000 test images, PyTorch eval mode),
                 "logits_first100" (100x10, PyTorch), "epochs", "seed", "torch", "mean", "std"}
Everything is seeded; the run is deterministic for a given torch build and thread count.
"""
import argparse, gzip, json, os, struct, sys, time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

MEAN, STD = 0.2860, 0.3530
DATA_DIR = "/usr/share/datasets/fashion-mnist"
HERE = os.path.dirname(os.path.abspath(__file__))


def load_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_split(data_dir, split):
    prefix = "train" if split == "train" else "t10k"
    def find(kind):
        for ext in ("-idx3-ubyte.gz", "-idx1-ubyte.gz", "-idx3-ubyte", "-idx1-ubyte"):
            p = os.path.join(data_dir, f"{prefix}-{kind}{ext}")
            if os.path.exists(p):
                return p
        sys.exit(f"train.py: no {prefix}-{kind} IDX file in {data_dir}")
    images = load_idx(find("images")).astype(np.float32)
    labels = load_idx(find("labels")).astype(np.int64)
    x = ((images / np.float32(255.0) - np.float32(MEAN)) / np.float32(STD)).astype(np.float32)
    return torch.from_numpy(x[:, None, :, :].copy()), torch.from_numpy(labels.copy())


# ---------------------------------------------------------------- models
class LeNet(nn.Module):
    """Plain CNN with a fully connected head."""
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 5, padding=2)
        self.conv2 = nn.Conv2d(32, 64, 5)
        self.fc1 = nn.Linear(64 * 5 * 5, 256)
        self.drop = nn.Dropout(0.3)
        self.fc2 = nn.Linear(256, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        return self.fc2(self.drop(F.relu(self.fc1(x))))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = None
        if stride != 1 or cin != cout:  # option B shortcut: 1x1 conv + BN
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.short is None else self.short(x)))


class ResNet20(nn.Module):
    """CIFAR-style ResNet-20 (3 stages x 3 basic blocks, 16/32/64 channels)."""
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 16, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        layers, cin = [], 16
        for cout, stride in ((16, 1), (32, 2), (64, 2)):
            for i in range(3):
                layers.append(BasicBlock(cin, cout, stride if i == 0 else 1))
                cin = cout
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        x = F.relu(self.bn(self.conv(x)))
        x = self.layers(x)
        x = F.adaptive_avg_pool2d(x, 1)
        return self.fc(torch.flatten(x, 1))


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, expand):
        super().__init__()
        hid = cin * expand
        layers = []
        if expand != 1:
            layers += [nn.Conv2d(cin, hid, 1, bias=False), nn.BatchNorm2d(hid), nn.ReLU6()]
        layers += [nn.Conv2d(hid, hid, 3, stride, 1, groups=hid, bias=False), nn.BatchNorm2d(hid), nn.ReLU6(),
                   nn.Conv2d(hid, cout, 1, bias=False), nn.BatchNorm2d(cout)]  # linear bottleneck
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.body(x)
        return x + y if self.residual else y


class MobileNetV2(nn.Module):
    """MobileNetV2-style net sized for 28x28 inputs."""
    CFG = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 2, 1))  # t, c, n, s

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU6())
        blocks, cin = [], 16
        for t, c, n, s in self.CFG:
            for i in range(n):
                blocks.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.Conv2d(cin, 256, 1, bias=False), nn.BatchNorm2d(256), nn.ReLU6())
        self.drop = nn.Dropout(0.2)
        self.fc = nn.Linear(256, 10)

    def forward(self, x):
        x = self.head(self.blocks(self.stem(x)))
        x = F.adaptive_avg_pool2d(x, 1)
        return self.fc(self.drop(torch.flatten(x, 1)))


class Zoo(nn.Module):
    """A small net that exercises every op the importer supports which the three reference
    models do not: grouped and dilated conv, Clip, Mul, Concat, AveragePool,
    BatchNormalization that cannot be folded into a conv (after Concat), Reshape, MatMul,
    Gemm, Softmax, Identity/Dropout. It stands in for "a model trained elsewhere"."""
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 16, 3, padding=1)
        self.c2 = nn.Conv2d(16, 16, 3, padding=2, dilation=2, groups=4)
        self.c3 = nn.Conv2d(16, 16, 3, stride=2, padding=1)
        self.gate = nn.Conv2d(16, 16, 1)
        self.bn = nn.BatchNorm2d(32)
        self.c4 = nn.Conv2d(32, 32, 3, padding=1, groups=32)
        self.w = nn.Parameter(torch.randn(32 * 3 * 3, 64) * 0.05)
        self.fc = nn.Linear(64, 10)
        self.drop = nn.Dropout(0.1)

    def forward(self, x):
        x = F.relu(self.c1(x))
        x = torch.clamp(self.c2(x), 0.0, 6.0)                       # Clip
        x = F.relu(self.c3(x))                                       # 14x14
        g = self.gate(x)
        x = torch.cat([x, x * torch.clamp(g, 0.0, 1.0)], dim=1)      # Mul, Concat
        x = self.bn(x)                                               # standalone BN
        x = F.relu(self.c4(x))
        x = F.avg_pool2d(x, 2)                                       # 7x7
        x = F.max_pool2d(x, 3, 2)                                    # 3x3
        x = self.drop(x).reshape(-1, 32 * 3 * 3)                     # Reshape (constant shape)
        x = F.relu(x @ self.w)                                       # MatMul
        return self.fc(x)                                            # Gemm


MODELS = {"lenet": (LeNet, 8, 0.05), "resnet20": (ResNet20, 12, 0.1),
          "mobilenetv2": (MobileNetV2, 10, 0.1), "zoo": (Zoo, 4, 0.05)}


def augment(x, gen):
    n = x.shape[0]
    flip = torch.rand(n, generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    pad_val = (0.0 - MEAN) / STD
    xp = F.pad(x, (2, 2, 2, 2), value=pad_val)
    dy = torch.randint(0, 5, (n,), generator=gen)
    dx = torch.randint(0, 5, (n,), generator=gen)
    rows = (dy[:, None] + torch.arange(28)[None, :])            # n x 28
    cols = (dx[:, None] + torch.arange(28)[None, :])
    idx_n = torch.arange(n)[:, None, None]
    return xp[idx_n, 0, rows[:, :, None], cols[:, None, :]][:, None]


def evaluate(model, x, y, bs=1000):
    model.eval()
    correct, logits = 0, []
    with torch.no_grad():
        for i in range(0, x.shape[0], bs):
            out = model(x[i:i + bs])
            correct += (out.argmax(1) == y[i:i + bs]).sum().item()
            if i == 0:
                logits = out[:100].double().tolist()
    return 100.0 * correct / x.shape[0], logits


def train(name, xtr, ytr, xte, yte, out_dir, seed, epochs_override):
    cls, epochs, lr = MODELS[name]
    if epochs_override:
        epochs = epochs_override
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = cls()
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    bs = 128
    steps = epochs * ((xtr.shape[0] + bs - 1) // bs)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    t0 = time.time()
    for ep in range(epochs):
        model.train()
        perm = torch.randperm(xtr.shape[0], generator=gen)
        total, seen = 0.0, 0
        for i in range(0, xtr.shape[0], bs):
            idx = perm[i:i + bs]
            xb = augment(xtr[idx], gen) if name != "zoo" else xtr[idx]
            loss = F.cross_entropy(model(xb), ytr[idx], label_smoothing=0.0)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * idx.numel(); seen += idx.numel()
        acc, _ = evaluate(model, xte, yte)
        print(f"[{name}] epoch {ep + 1}/{epochs} loss {total / seen:.4f} test top-1 {acc:.2f}% "
              f"({time.time() - t0:.0f}s)", flush=True)
    model.eval()
    acc, logits = evaluate(model, xte, yte)
    os.makedirs(out_dir, exist_ok=True)
    onnx_path = os.path.join(out_dir, name + ".onnx")
    torch.onnx.export(model, xte[:1], onnx_path, opset_version=13, input_names=["input"],
                      output_names=["logits"], dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
                      do_constant_folding=True)
    rec = {"model": name, "test_top1": acc, "samples": int(xte.shape[0]), "epochs": epochs, "seed": seed,
           "torch": torch.__version__, "mean": MEAN, "std": STD, "logits_first100": logits}
    with open(os.path.join(out_dir, name + ".json"), "w") as f:
        json.dump(rec, f)
    print(f"[{name}] PyTorch test top-1 {acc:.2f}% -> {onnx_path}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="lenet,resnet20,mobilenetv2,zoo")
    ap.add_argument("--data-dir", default=DATA_DIR)
    ap.add_argument("--out", default=os.path.join(HERE, "models"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=0, help="override every model's epoch count")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    xtr, ytr = load_split(args.data_dir, "train")
    xte, yte = load_split(args.data_dir, "test")
    for name in args.models.split(","):
        if name not in MODELS:
            sys.exit(f"train.py: unknown model '{name}' (choose from {', '.join(MODELS)})")
        train(name, xtr, ytr, xte, yte, args.out, args.seed, args.epochs)


if __name__ == "__main__":
    main()
