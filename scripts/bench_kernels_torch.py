#!/usr/bin/python3
"""PyTorch 1.13 side of `mmkd bench kernels`: times the same cases the Swift suite runs.

Usage: bench_kernels_torch.py SPEC.json OUT.json. SPEC holds {"repeats": n, "cases": [...]}, each
case a dict with "name", "kind" and its shape parameters; OUT receives {name: [seconds of each timed run]}.

Or bench_kernels_torch.py --serve: one case at a time, so that the Swift suite can time each case's
two sides back to back (this VM's speed drifts by 30% within minutes, longer than one side of a
whole suite takes). The first line on stdout is {"ready": version} once PyTorch is imported; then each line read from stdin is {"repeats": n, "case": {...}}; each reply, one line
on stdout, is {"name": ..., "times": [seconds of each timed run]}. Ends at the end of stdin.

Exits with status 3 when PyTorch is not importable. Runs on 2 threads, as the Swift side does.
"""
import json
import os
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


class ZooModel(nn.Module):
    """A zoo network: logits are features()'s last value; classify() applies the head to a pooled map."""

    def forward(self, x):
        return self.features(x)[1]

    def classify(self, penultimate):
        return self.head(F.adaptive_avg_pool2d(penultimate, 1).flatten(1))

    def three_stages(self, f0):
        """finish() of the stem output f0 and the maps of stages layer1, layer2, layer3 after it."""
        f1 = self.layer1(f0)
        f2 = self.layer2(f1)
        return self.finish([f0, f1, f2, self.layer3(f2)])

    def finish(self, maps):
        """(maps + [the last map pooled], the head's logits)."""
        pooled = F.adaptive_avg_pool2d(maps[-1], 1).flatten(1)
        return maps + [pooled], self.head(pooled)


class CIFARResNet(ZooModel):
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

    def features(self, x):
        """RepDistiller's forward(is_feat=True): ([stem, layer1, layer2, layer3, pooled], logits)."""
        return self.three_stages(F.relu(self.bn1(self.conv1(x))))

    @property
    def head(self):
        return self.fc


class VGG(ZooModel):
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

    def features(self, x):
        f0 = F.relu(self.block0(x))
        f1 = F.relu(self.block1(F.max_pool2d(f0, 2)))
        f2 = F.relu(self.block2(F.max_pool2d(f1, 2)))
        f3 = F.relu(self.block3(F.max_pool2d(f2, 2)))
        f4 = F.relu(self.block4(f3))
        return self.finish([f0, f1, f2, f3, f4])

    @property
    def head(self):
        return self.classifier


class WideBasicBlock(nn.Module):
    def __init__(self, inplanes, planes, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes)
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.convShortcut = None if inplanes == planes else nn.Conv2d(inplanes, planes, 1, stride, bias=False)

    def forward(self, x):
        a = F.relu(self.bn1(x))
        out = self.conv2(F.relu(self.bn2(self.conv1(a))))
        return (x if self.convShortcut is None else self.convShortcut(a)) + out


class WideResNet(ZooModel):
    """RepDistiller's wrn_16_1 … wrn_40_2 (pre-activation blocks)."""

    def __init__(self, depth, widen, classes):
        super().__init__()
        n = (depth - 4) // 6
        w = [16, 16 * widen, 32 * widen, 64 * widen]
        self.conv1 = nn.Conv2d(3, w[0], 3, padding=1, bias=False)
        self.block1, self.block2, self.block3 = [
            nn.Sequential(*[WideBasicBlock(w[i] if j == 0 else w[i + 1], w[i + 1], (1 if i == 0 else 2) if j == 0 else 1) for j in range(n)])
            for i in range(3)]
        self.bn1 = nn.BatchNorm2d(w[3])
        self.fc = nn.Linear(w[3], classes)

    def features(self, x):
        f0 = self.conv1(x)
        f1 = self.block1(f0)
        f2 = self.block2(f1)
        f3 = F.relu(self.bn1(self.block3(f2)))
        return self.finish([f0, f1, f2, f3])

    @property
    def head(self):
        return self.fc


def conv_bn_relu(cin, cout, kernel, stride=1, groups=1):
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, expansion):
        super().__init__()
        hidden = cin * expansion
        self.residual = stride == 1 and cin == cout
        self.conv = nn.Sequential(conv_bn_relu(cin, hidden, 1), conv_bn_relu(hidden, hidden, 3, stride, hidden),
                                  nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        return x + self.conv(x) if self.residual else self.conv(x)


class MobileNetV2(ZooModel):
    """RepDistiller's CIFAR MobileNetV2 (width 0.5, expansion 6)."""

    def __init__(self, classes, expansion=6, width=0.5):
        super().__init__()
        settings = [(1, 16, 1, 1), (expansion, 24, 2, 1), (expansion, 32, 3, 2), (expansion, 64, 4, 2),
                    (expansion, 96, 3, 1), (expansion, 160, 3, 2), (expansion, 320, 1, 1)]
        c = int(32 * width)
        self.conv1 = conv_bn_relu(3, c, 3, 2)
        blocks = []
        for t, ch, n, s in settings:
            out = int(ch * width)
            blocks.append(nn.Sequential(*[InvertedResidual(c if i == 0 else out, out, s if i == 0 else 1, t) for i in range(n)]))
            c = out
        self.blocks = nn.ModuleList(blocks)
        self.conv2 = conv_bn_relu(c, 1280, 1)
        self.classifier = nn.Sequential(nn.Linear(1280, classes))

    def features(self, x):
        f0 = self.conv1(x)
        f1 = self.blocks[1](self.blocks[0](f0))
        f2 = self.blocks[2](f1)
        f3 = self.blocks[4](self.blocks[3](f2))
        f4 = self.conv2(self.blocks[6](self.blocks[5](f3)))
        return self.finish([f0, f1, f2, f3, f4])

    @property
    def head(self):
        return self.classifier


def channel_shuffle(x, groups):
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).permute(0, 2, 1, 3, 4).reshape(n, c, h, w)


class ShuffleBottleneck(nn.Module):
    def __init__(self, cin, cout, stride, groups):
        super().__init__()
        mid = cout // 4
        self.first_groups = 1 if cin == 24 else groups
        self.stride = stride
        self.conv1 = nn.Conv2d(cin, mid, 1, groups=self.first_groups, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, cout, 1, groups=groups, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)

    def forward(self, x):
        out = channel_shuffle(F.relu(self.bn1(self.conv1(x))), self.first_groups)
        out = self.bn3(self.conv3(F.relu(self.bn2(self.conv2(out)))))
        if self.stride == 2:
            return F.relu(torch.cat([out, F.avg_pool2d(x, 3, 2, 1)], 1))
        return F.relu(out + x)


class ShuffleNetV1(ZooModel):
    """RepDistiller's ShuffleV1 (groups 3, widths 240/480/960)."""

    def __init__(self, classes, widths=(240, 480, 960), blocks=(4, 8, 4), groups=3):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 24, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(24)
        cin, layers = 24, []
        for out, n in zip(widths, blocks):
            stage = []
            for i in range(n):
                stage.append(ShuffleBottleneck(cin, out - (cin if i == 0 else 0), 2 if i == 0 else 1, groups))
                cin = out
            layers.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3 = layers
        self.linear = nn.Linear(widths[2], classes)

    def features(self, x):
        return self.three_stages(F.relu(self.bn1(self.conv1(x))))

    @property
    def head(self):
        return self.linear


def make_model(arch, classes):
    """The comparator's zoo: the CIFAR ResNets and VGGs, the WRNs, MobileNetV2 and ShuffleV1."""
    if arch.startswith("wrn_"):
        _, depth, widen = arch.split("_")
        return WideResNet(int(depth), int(widen), classes)
    if arch == "MobileNetV2":
        return MobileNetV2(classes)
    if arch == "ShuffleV1":
        return ShuffleNetV1(classes)
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
        if kind == "conv_second_order":
            # The meta step's path: a weight gradient with its graph, differentiated again.
            x.requires_grad_()
            w.requires_grad_()
            v = torch.randn_like(w)

            def second_order():
                y = F.conv2d(x, w, None, s, p, 1, g)
                gw, = torch.autograd.grad((y * y).sum() * 0.5, w, create_graph=True)
                return torch.autograd.grad((gw * v).sum(), [x, w])
            return second_order
        y = F.conv2d(x, w, None, s, p, 1, g)
        gy = torch.randn_like(y)
        if kind == "conv_fwd":
            return lambda: F.conv2d(x, w, None, s, p, 1, g)
        mask = [True, False, False] if kind == "conv_bwd_data" else [False, True, False]
        # The kernel autograd itself calls for a convolution's backward.
        return lambda: torch.ops.aten.convolution_backward(gy, x, w, None, [s, s], [p, p], [1, 1], False, [0, 0], g, mask)
    if kind in ("shuffle_fwd", "shuffle_bwd"):
        x = torch.randn(c["batch"], c["channels"], c["hw"], c["hw"])
        if kind == "shuffle_fwd":
            return lambda: channel_shuffle(x, c["groups"])
        x.requires_grad_()
        y = channel_shuffle(x, c["groups"])
        gy = torch.randn_like(y)
        return lambda: torch.autograd.grad(y, x, gy, retain_graph=True)
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


def time_case(c, repeats):
    """Seconds of each of `repeats` timed runs of case `c` (after 3 warm-up runs)."""
    grad = c["kind"] in ("train_step", "conv_second_order", "shuffle_bwd")
    with torch.set_grad_enabled(grad):
        return time_calls(case_fn(c), 3, repeats)


def serve():
    # Replies keep the original stdout to themselves; whatever else writes to stdout (oneDNN's
    # ONEDNN_VERBOSE lines, for one) goes to stderr instead of into the protocol.
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    # PyTorch is imported: the Swift side waits for this line before timing anything, so that the
    # import does not share the cores with its first case.
    print(json.dumps({"ready": torch.__version__}), file=replies, flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        c = request["case"]
        print(json.dumps({"name": c["name"], "times": time_case(c, request["repeats"])}), file=replies, flush=True)


def main():
    if sys.argv[1:] == ["--serve"]:
        return serve()
    spec = json.load(open(sys.argv[1]))
    out = {}
    for c in spec["cases"]:
        times = time_case(c, spec["repeats"])
        out[c["name"]] = times
        print(f"  torch {c['name']}: {statistics.median(times) * 1e3:.3f} ms", file=sys.stderr)
    json.dump(out, open(sys.argv[2], "w"))


if __name__ == "__main__":
    main()
