#!/usr/bin/python3
"""Exports torchvision architectures (random weights, fixed seed, randomised batch-norm statistics)
to ONNX, with PyTorch's output on a fixed random input, for tests/e2e/torchvision_test.cc.

    /usr/bin/python3 tests/e2e/export_torchvision.py OUT_DIR [model ...]

Writes OUT_DIR/NAME.onnx, OUT_DIR/NAME.input.npy ([2,3,64,64] float32) and NAME.output.npy.
These are models we did not design: the importer has to be general, not fitted to ours.
"""
import os, sys

import numpy as np
import torch
import torchvision

MODELS = {
    "resnet18": lambda: torchvision.models.resnet18(num_classes=10),
    "mobilenet_v2": lambda: torchvision.models.mobilenet_v2(num_classes=10),
    "squeezenet1_1": lambda: torchvision.models.squeezenet1_1(num_classes=10),
    "densenet121": lambda: torchvision.models.densenet121(num_classes=10),
}


def main():
    out = sys.argv[1]
    names = sys.argv[2:] or list(MODELS)
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(1)
    for name in names:
        torch.manual_seed(0)
        model = MODELS[name]().eval()
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, torch.nn.BatchNorm2d):  # non-trivial statistics to fold
                    m.running_mean.uniform_(-0.2, 0.2)
                    m.running_var.uniform_(0.5, 1.5)
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.uniform_(-0.2, 0.2)
        x = torch.randn(2, 3, 64, 64)
        with torch.no_grad():
            y = model(x)
        torch.onnx.export(model, x, os.path.join(out, name + ".onnx"), opset_version=13, input_names=["input"],
                          output_names=["logits"], dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}})
        np.save(os.path.join(out, name + ".input.npy"), x.numpy().astype(np.float32))
        np.save(os.path.join(out, name + ".output.npy"), y.numpy().astype(np.float32))
        print(name, "exported", flush=True)


if __name__ == "__main__":
    main()
