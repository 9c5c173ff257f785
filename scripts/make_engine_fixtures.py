#!/usr/bin/python3
"""Writes the PyTorch fixtures that the Swift engine tests reproduce.

Needs PyTorch 1.13 (Debian: `apt-get install python3-torch`). Run from the repository root:

    /usr/bin/python3 scripts/make_engine_fixtures.py   (Debian's interpreter, which sees python3-torch)

It writes Tests/EngineTests/Fixtures/engine_fixtures.json and Tests/NNTests/Fixtures/nn_fixtures.json. Every input is generated here from a fixed seed
and stored in the file, so the Swift side needs no random generator of PyTorch's.
"""
import json
import os
import torch
import torch.nn.functional as F

torch.manual_seed(1234)
torch.set_num_threads(1)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def enc(t):
    t = t.detach().to(torch.float64)
    return {"shape": list(t.shape), "data": [float(v) for v in t.reshape(-1).tolist()]}


def op_case(fn, inputs, params=None, labels=None):
    """Records fn(*inputs) and the gradient of sum(out * R) for every input, plus the
    projection R itself."""
    leaves = [x.clone().requires_grad_(True) for x in inputs]
    out = fn(*leaves)
    proj = torch.randn_like(out)
    grads = torch.autograd.grad((out * proj).sum(), leaves, allow_unused=True)
    case = {
        "inputs": [enc(x) for x in leaves],
        "projection": enc(proj),
        "output": enc(out),
        "grads": [enc(g) if g is not None else None for g in grads],
    }
    if params:
        case["params"] = params
    if labels is not None:
        case["labels"] = labels
    return case


def conv_case(n, c, h, w, o, k, stride, pad, dil, groups, bias):
    x = torch.randn(n, c, h, w)
    wt = torch.randn(o, c // groups, k, k) * 0.3
    inputs = [x, wt] + ([torch.randn(o) * 0.1] if bias else [])
    fn = lambda x, w, *b: F.conv2d(x, w, b[0] if b else None, stride=stride, padding=pad, dilation=dil, groups=groups)
    return op_case(fn, inputs, params={"stride": stride, "padding": pad, "dilation": dil, "groups": groups})


def engine_fixtures():
    cases = {}
    cases["conv_basic"] = conv_case(2, 3, 7, 7, 4, 3, 1, 1, 1, 1, True)
    cases["conv_stride2"] = conv_case(2, 4, 8, 8, 6, 3, 2, 1, 1, 1, False)
    cases["conv_dilated"] = conv_case(1, 2, 9, 9, 3, 3, 1, 2, 2, 1, True)
    cases["conv_grouped"] = conv_case(2, 6, 6, 6, 4, 3, 1, 1, 1, 2, False)
    cases["conv_depthwise"] = conv_case(2, 5, 8, 8, 5, 3, 2, 1, 1, 5, False)
    cases["conv_1x1"] = conv_case(3, 8, 5, 5, 4, 1, 1, 0, 1, 1, True)

    x = torch.randn(4, 3, 5, 5) * 2 + 0.5
    cases["batch_norm_train"] = op_case(
        lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True, eps=1e-5),
        [x, torch.rand(3) + 0.5, torch.randn(3) * 0.1])
    rm, rv = torch.randn(3) * 0.1, torch.rand(3) + 0.5
    cases["batch_norm_eval"] = op_case(
        lambda x, w, b: F.batch_norm(x, rm, rv, w, b, training=False, eps=1e-5),
        [x, torch.rand(3) + 0.5, torch.randn(3) * 0.1])
    cases["batch_norm_eval"]["running"] = {"mean": enc(rm), "var": enc(rv)}

    cases["max_pool"] = op_case(lambda x: F.max_pool2d(x, 3, 2, 1), [torch.randn(2, 3, 9, 9)])
    cases["max_pool_2x2"] = op_case(lambda x: F.max_pool2d(x, 2), [torch.randn(2, 3, 8, 8)])
    cases["avg_pool"] = op_case(lambda x: F.avg_pool2d(x, 3, 2, 1), [torch.randn(2, 3, 9, 9)])
    cases["adaptive_avg_pool"] = op_case(lambda x: F.adaptive_avg_pool2d(x, (3, 2)), [torch.randn(2, 3, 7, 5)])
    cases["global_avg_pool"] = op_case(lambda x: F.adaptive_avg_pool2d(x, 1), [torch.randn(2, 3, 4, 4)])
    cases["linear"] = op_case(lambda x, w, b: F.linear(x, w, b), [torch.randn(5, 7), torch.randn(3, 7), torch.randn(3)])
    cases["matmul_batched"] = op_case(lambda a, b: a @ b, [torch.randn(2, 3, 4), torch.randn(2, 4, 5)])
    cases["softmax"] = op_case(lambda x: F.softmax(x, 1), [torch.randn(4, 6) * 3])
    cases["log_softmax"] = op_case(lambda x: F.log_softmax(x, 1), [torch.randn(4, 6) * 3])
    labels = [2, 0, 5, 1]
    y = torch.tensor(labels)
    cases["cross_entropy"] = op_case(lambda x: F.cross_entropy(x, y), [torch.randn(4, 6) * 2], labels=labels)
    cases["cross_entropy_per_sample"] = op_case(lambda x: F.cross_entropy(x, y, reduction="none"), [torch.randn(4, 6) * 2], labels=labels)
    T = 4.0
    cases["kd_kl"] = op_case(
        lambda s, t: F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction="batchmean") * T * T,
        [torch.randn(4, 6) * 3, torch.randn(4, 6) * 3], params={"temperature": T})
    cases["kd_kl_per_sample"] = op_case(
        lambda s, t: F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction="none").sum(1) * T * T,
        [torch.randn(4, 6) * 3, torch.randn(4, 6) * 3], params={"temperature": T})
    cases["mse"] = op_case(lambda a, b: F.mse_loss(a, b), [torch.randn(3, 2, 4), torch.randn(3, 2, 4)])
    cases["mse_per_sample"] = op_case(lambda a, b: ((a - b) ** 2).flatten(1).mean(1), [torch.randn(3, 2, 4), torch.randn(3, 2, 4)])

    cases["second_order"] = second_order_fixture()
    return cases


def second_order_fixture():
    """A small conv → BN(train) → ReLU → max-pool → linear network with cross-entropy:
    (1) the Hessian-vector product H·v over all parameters, and (2) the mixed derivative
    ∂/∂φ ⟨∇θ L(θ, φ), v⟩ where L = mean_i φ_i · CE_i."""
    x = torch.randn(4, 3, 8, 8)
    labels = [1, 0, 3, 2]
    y = torch.tensor(labels)
    conv_w = (torch.randn(5, 3, 3, 3) * 0.3).requires_grad_(True)
    conv_b = (torch.randn(5) * 0.1).requires_grad_(True)
    bn_w = (torch.rand(5) + 0.5).requires_grad_(True)
    bn_b = (torch.randn(5) * 0.1).requires_grad_(True)
    fc_w = (torch.randn(4, 5 * 4 * 4) * 0.2).requires_grad_(True)
    fc_b = (torch.randn(4) * 0.1).requires_grad_(True)
    params = [conv_w, conv_b, bn_w, bn_b, fc_w, fc_b]
    phi = (torch.rand(4) + 0.5).requires_grad_(True)

    def per_sample_loss(ps):
        h = F.conv2d(x, ps[0], ps[1], padding=1)
        h = F.batch_norm(h, None, None, ps[2], ps[3], training=True)
        h = F.max_pool2d(F.relu(h), 2)
        return F.cross_entropy(F.linear(h.flatten(1), ps[4], ps[5]), y, reduction="none")

    v = [torch.randn_like(p) for p in params]
    loss = per_sample_loss(params).mean()
    g = torch.autograd.grad(loss, params, create_graph=True)
    hv = torch.autograd.grad(sum((gi * vi).sum() for gi, vi in zip(g, v)), params)

    loss_phi = (phi * per_sample_loss(params)).mean()
    g2 = torch.autograd.grad(loss_phi, params, create_graph=True)
    mixed = torch.autograd.grad(sum((gi * vi).sum() for gi, vi in zip(g2, v)), phi)[0]
    return {
        "x": enc(x), "labels": labels, "params": [enc(p) for p in params], "phi": enc(phi),
        "v": [enc(t) for t in v], "loss": float(loss), "grad": [enc(t) for t in g],
        "hvp": [enc(t) for t in hv], "mixed": enc(mixed),
    }


class Block(torch.nn.Module):
    """A residual-style block whose state-dict names the Swift NN tests reproduce."""

    def __init__(self, cin, cout):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(cout)
        self.shortcut = torch.nn.Sequential(torch.nn.Conv2d(cin, cout, 1, bias=False), torch.nn.BatchNorm2d(cout))

    def forward(self, x):
        return torch.relu(self.bn1(self.conv1(x)) + self.shortcut(x))


class TinyNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.layer1 = torch.nn.Sequential(Block(3, 4), Block(4, 4))
        self.fc = torch.nn.Linear(4, 10)

    def forward(self, x):
        return self.fc(torch.nn.functional.adaptive_avg_pool2d(self.layer1(x), 1).flatten(1))


def nn_fixtures():
    out = optimizer_fixtures()
    # Running statistics after two training-mode calls of nn.BatchNorm2d.
    x1, x2 = torch.randn(4, 3, 5, 5) * 2 + 0.5, torch.randn(4, 3, 5, 5) - 0.3
    bn = torch.nn.BatchNorm2d(3)
    bn.train()
    bn(x1)
    bn(x2)
    out["batch_norm_running"] = {"inputs": [enc(x1), enc(x2)], "mean": enc(bn.running_mean), "var": enc(bn.running_var)}
    # State-dict keys and one train-mode SGD step of TinyNet from given weights.
    net = TinyNet()
    state = {k: v.clone() for k, v in net.state_dict().items()}
    out["tiny_net_keys"] = [[k, list(v.shape)] for k, v in state.items()]
    x = torch.randn(6, 3, 6, 6)
    labels = [1, 4, 9, 0, 3, 3]
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=True)
    loss = F.cross_entropy(net(x), torch.tensor(labels))
    opt.zero_grad()
    loss.backward()
    opt.step()
    out["tiny_net_step"] = {
        "x": enc(x), "labels": labels, "loss": float(loss),
        "before": {k: enc(v) for k, v in state.items()},
        "after": {k: enc(v) for k, v in net.state_dict().items()},
    }
    return out


def optimizer_fixtures():
    """Five steps of SGD (momentum 0.9, Nesterov, weight decay 5e-4) and of Adam (weight decay
    1e-4) on a small linear classifier with a fixed batch."""
    x = torch.randn(8, 5)
    labels = [0, 1, 2, 1, 0, 2, 2, 1]
    y = torch.tensor(labels)
    w0, b0 = torch.randn(3, 5) * 0.3, torch.randn(3) * 0.1
    out = {"x": enc(x), "labels": labels, "weight": enc(w0), "bias": enc(b0)}
    for name, make in [("sgd_nesterov", lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=True)),
                       ("sgd_plain_momentum", lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, dampening=0.1, weight_decay=1e-3)),
                       ("adam", lambda ps: torch.optim.Adam(ps, lr=1e-2, weight_decay=1e-4))]:
        w, b = w0.clone().requires_grad_(True), b0.clone().requires_grad_(True)
        opt = make([w, b])
        traj = []
        for _ in range(5):
            opt.zero_grad()
            F.cross_entropy(F.linear(x, w, b), y).backward()
            opt.step()
            traj.append({"weight": enc(w), "bias": enc(b)})
        out[name] = traj
    return out


def write(path, obj):
    full = os.path.join(ROOT, path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    tmp = full + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f)
    os.replace(tmp, full)
    print("wrote", path)


if __name__ == "__main__":
    assert torch.__version__.startswith("1.13"), f"fixtures are pinned to PyTorch 1.13, found {torch.__version__}"
    write("Tests/EngineTests/Fixtures/engine_fixtures.json", engine_fixtures())
    write("Tests/NNTests/Fixtures/nn_fixtures.json", nn_fixtures())
