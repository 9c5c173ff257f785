#!/usr/bin/python3
"""PyTorch 1.13 side of `mmkd bench kernels`: times the same cases the Swift suite runs.

Usage: bench_kernels_torch.py SPEC.json OUT.json. SPEC holds {"repeats": n, "cases": [...]}, each
case a dict with "name", "kind" and its shape parameters; OUT receives {name: [seconds of each timed run]}.
Exits with status 3 when PyTorch is not importable. Runs on 2 threads, as the Swift side does.
"""
import json
import statistics
import sys

from bench_timing import time_calls

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:
    sys.exit(3)

torch.set_num_threads(2)
torch.manual_seed(0)


class BasicBlock(nn.Module):
    def __init__(self, inplanes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class CIFARResNet(nn.Module):
    """RepDistiller's CIFAR ResNet (resnet8 … resnet110, resnet8x4 …)."""

    def __init__(self, depth, widths, classes):
        super().__init__()
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(3, widths[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        layers, inplanes = [], widths[0]
        for planes, stride in zip(widths[1:], [1, 2, 2]):
            blocks = []
            for i in range(n):
                blocks.append(BasicBlock(inplanes, planes, stride if i == 0 else 1))
                inplanes = planes
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = layers
        self.fc = nn.Linear(widths[3], classes)

    def forward(self, x):
        return self.features(x)[1]

    def features(self, x):
        """RepDistiller's forward(is_feat=True): ([stem, layer1, layer2, layer3, pooled], logits)."""
        f0 = F.relu(self.bn1(self.conv1(x)))
        f1 = self.layer1(f0)
        f2 = self.layer2(f1)
        f3 = self.layer3(f2)
        pooled = F.adaptive_avg_pool2d(f3, 1).flatten(1)
        return [f0, f1, f2, f3, pooled], self.fc(pooled)

    def classify(self, penultimate):
        return self.fc(F.adaptive_avg_pool2d(penultimate, 1).flatten(1))


class VGG(nn.Module):
    """RepDistiller's CIFAR VGG with batch norm (vgg8/11/13/16/19)."""

    CFG = {
        "vgg8": [[64], [128], [256], [512], [512]],
        "vgg11": [[64], [128], [256, 256], [512, 512], [512, 512]],
        "vgg13": [[64, 64], [128, 128], [256, 256], [512, 512], [512, 512]],
        "vgg16": [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]],
        "vgg19": [[64, 64], [128, 128], [256, 256, 256, 256], [512, 512, 512, 512], [512, 512, 512, 512]],
    }

    def __init__(self, arch, classes):
        super().__init__()
        cin, blocks = 3, []
        for widths in self.CFG[arch]:
            layers = []
            for w in widths:
                layers += [nn.Conv2d(cin, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
                cin = w
            blocks.append(nn.Sequential(*layers[:-1]))
        self.block0, self.block1, self.block2, self.block3, self.block4 = blocks
        self.classifier = nn.Linear(512, classes)

    def forward(self, x):
        return self.features(x)[1]

    def features(self, x):
        f0 = F.relu(self.block0(x))
        f1 = F.relu(self.block1(F.max_pool2d(f0, 2)))
        f2 = F.relu(self.block2(F.max_pool2d(f1, 2)))
        f3 = F.relu(self.block3(F.max_pool2d(f2, 2)))
        f4 = F.relu(self.block4(f3))
        pooled = F.adaptive_avg_pool2d(f4, 1).flatten(1)
        return [f0, f1, f2, f3, f4, pooled], self.classifier(pooled)

    def classify(self, penultimate):
        return self.classifier(F.adaptive_avg_pool2d(penultimate, 1).flatten(1))


def make_model(arch, classes):
    if arch.startswith("vgg"):
        return VGG(arch, classes)
    if arch.endswith("x4"):
        return CIFARResNet(int(arch[6:-2]), [32, 64, 128, 256], classes)
    return CIFARResNet(int(arch[6:]), [16, 16, 32, 64], classes)


def case_fn(c):
    kind = c["kind"]
    if kind.startswith("conv"):
        b, cin, cout, hw, k, s, p, g = (c[key] for key in ("batch", "in", "out", "hw", "kernel", "stride", "padding", "groups"))
        x = torch.randn(b, cin, hw, hw)
        w = torch.randn(cout, cin // g, k, k) * 0.1
        y = F.conv2d(x, w, None, s, p, 1, g)
        gy = torch.randn_like(y)
        if kind == "conv_fwd":
            return lambda: F.conv2d(x, w, None, s, p, 1, g)
        mask = [True, False, False] if kind == "conv_bwd_data" else [False, True, False]
        # The kernel autograd itself calls for a convolution's backward.
        return lambda: torch.ops.aten.convolution_backward(gy, x, w, None, [s, s], [p, p], [1, 1], False, [0, 0], g, mask)
    if kind in ("bn_fwd", "bn_bwd"):
        b, ch, hw = c["batch"], c["channels"], c["hw"]
        x = torch.randn(b, ch, hw, hw)
        gamma, beta = torch.ones(ch), torch.zeros(ch)
        rm, rv = torch.zeros(ch), torch.ones(ch)
        if kind == "bn_fwd":
            return lambda: torch.native_batch_norm(x, gamma, beta, rm, rv, True, 0.1, 1e-5)
        y, mean, invstd = torch.native_batch_norm(x, gamma, beta, rm, rv, True, 0.1, 1e-5)
        gy = torch.randn_like(y)
        return lambda: torch.ops.aten.native_batch_norm_backward(gy, x, gamma, rm, rv, mean, invstd, True, 1e-5, [True, True, True])
    if kind == "train_step":
        model = make_model(c["arch"], c["classes"])
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=True)
        x = torch.randn(c["batch"], 3, 32, 32)
        y = torch.randint(0, c["classes"], (c["batch"],))

        def step():
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
        return step
    if kind == "inference":
        model = make_model(c["arch"], c["classes"])
        model.eval()
        x = torch.randn(c["batch"], 3, 32, 32)
        return lambda: model(x)
    raise ValueError(f"unknown case kind {kind}")


def main():
    spec = json.load(open(sys.argv[1]))
    repeats = spec["repeats"]
    out = {}
    for c in spec["cases"]:
        grad = c["kind"] == "train_step"
        with torch.set_grad_enabled(grad):
            times = time_calls(case_fn(c), 3, repeats)
        out[c["name"]] = times
        print(f"  torch {c['name']}: {statistics.median(times) * 1e3:.3f} ms", file=sys.stderr)
    json.dump(out, open(sys.argv[2], "w"))


if __name__ == "__main__":
    main()
