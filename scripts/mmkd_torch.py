#!/usr/bin/python3
"""An independent PyTorch 1.13 implementation of MMKD and the multi-teacher baselines' losses
(DESIGN.md sections 3 and 4), written the way the official code works: the Reverse-HG replay
restores each look-ahead step's parameters, recomputes its forward and its gradient with
create_graph=True, and differentiates the adjoint product with torch.autograd.grad.

Used by make_distillation_fixtures.py (fixtures the Swift tests compare with) and by
bench_distill_torch.py (the comparator of `mmkd bench distill`).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class Regressor(nn.Module):
    """1x1 conv (bias) -> BN -> ReLU, or the 'convs' bottleneck 1x1 -> 3x3 -> 1x1 (each BN, ReLU)."""

    def __init__(self, s, t, form="1x1"):
        super().__init__()
        if form == "1x1":
            self.layers = nn.Sequential(nn.Conv2d(s, t, 1), nn.BatchNorm2d(t), nn.ReLU())
        else:
            m = max(s // 2, 1)
            self.layers = nn.Sequential(
                nn.Conv2d(s, m, 1, bias=False), nn.BatchNorm2d(m), nn.ReLU(),
                nn.Conv2d(m, m, 3, padding=1, bias=False), nn.BatchNorm2d(m), nn.ReLU(),
                nn.Conv2d(m, t, 1, bias=False), nn.BatchNorm2d(t), nn.ReLU())

    def forward(self, x):
        return self.layers(x)


class MetaWeightNetwork(nn.Module):
    def __init__(self, k, width):
        super().__init__()
        self.fc1 = nn.Linear(width * (k + 1), width * (k + 1) // 2)
        self.fc2 = nn.Linear(width * (k + 1) // 2, k)

    def forward(self, teacher_inputs, student_input):
        x = torch.cat(list(teacher_inputs) + [student_input.detach()], 1)
        return F.softmax(self.fc2(F.relu(self.fc1(x))), 1)


class MetaNetworks(nn.Module):
    def __init__(self, k, classes, batch):
        super().__init__()
        self.logit = MetaWeightNetwork(k, classes)
        self.feature = MetaWeightNetwork(k, batch)


class Learner(nn.Module):
    def __init__(self, student, regressors):
        super().__init__()
        self.student = student
        self.regressors = nn.ModuleList(regressors)


def similarity(f, normalised=True):
    f = f.flatten(1)
    g = f @ f.t()
    return F.normalize(g, p=2, dim=1, eps=0) if normalised else g


def match(s, t):
    if s.shape[2:] == t.shape[2:]:
        return s, t
    if s.shape[2] * s.shape[3] > t.shape[2] * t.shape[3]:
        return F.adaptive_avg_pool2d(s, t.shape[2:]), t
    return s, F.adaptive_avg_pool2d(t, s.shape[2:])


def kl_per_sample(zs, zt, tau):
    log_ps = F.log_softmax(zs / tau, 1)
    pt = F.softmax(zt / tau, 1)
    return F.kl_div(log_ps, pt, reduction="none").sum(1) * tau * tau


def teacher_outputs(teachers, x):
    out = []
    with torch.no_grad():
        for t in teachers:
            feats, logits = t.features(x)
            out.append({"logits": logits, "penultimate": feats[-2], "hint": feats[2]})
    return out


def entropy_weights(logits):
    h = torch.stack([-(F.softmax(z, 1) * F.log_softmax(z, 1)).sum(1) for z in logits], 1)
    return 1 - h / h.sum(1, keepdim=True)


def confidence_weights(logits, y):
    ce = torch.stack([F.cross_entropy(z, y, reduction="none") for z in logits], 1)
    return (1 - F.softmax(ce, 1)) / (len(logits) - 1)


def svm_weights(vectors, c=0.6):
    """AEKD's weights with scikit-learn's OneClassSVM (linear kernel), as the AEKD code computes them."""
    from sklearn.svm import OneClassSVM
    import numpy as np
    k = len(vectors)
    nu = min(max(1.0 / (c * k), 1.0 / k), 1.0)
    x = np.stack([v.detach().double().reshape(-1).numpy() for v in vectors])
    svm = OneClassSVM(kernel="linear", nu=nu, tol=1e-10, shrinking=False)
    svm.fit(x)
    alpha = np.zeros(k)
    alpha[svm.support_] = svm.dual_coef_[0]
    return (alpha / (k * nu)).tolist()


def terms(method, h, learner, teachers, meta, x, y, t, part="full"):
    """The loss of `method` (hyper-parameters dict h) on batch x, y with teacher outputs t."""
    feats, zs = learner.student.features(x)
    ce = F.cross_entropy(zs, y)
    if part == "ce":
        return ce, {}
    k, b, tau = len(t), x.shape[0], h["tau"]
    kl = torch.stack([kl_per_sample(zs, o["logits"], tau) for o in t], 1)
    pen = feats[-2]

    def mse_of(student_map, key, hook=None):
        cols = []
        for i, o in enumerate(t):
            s, tt = match(student_map, o[key])
            p = learner.regressors[i](s)
            if hook:
                hook(i, p)
            cols.append(((p - tt) ** 2).flatten(1).mean(1))
        return torch.stack(cols, 1)

    info, feat = {"logits": zs}, None
    if method in ("aver", "kd"):
        div = kl.sum() / (b * k)
    elif method == "ebkd":
        w = entropy_weights([o["logits"] for o in t])
        div = (w * kl).sum() / (b * k)
        info["logit_weights"] = w
    elif method == "camkd":
        w = confidence_weights([o["logits"] for o in t], y)
        div = (w * kl).sum() / (b * k)
        info["logit_weights"] = w
        heads = [None] * k
        mse = mse_of(pen, "penultimate", lambda i, p: heads.__setitem__(i, teachers[i].classify(p)))
        wf = confidence_weights(heads, y)
        feat = (wf * mse).sum() / (b * k)
        info["feature_weights"] = wf
    elif method == "mmkd":
        wl = meta.logit([o["logits"] for o in t], zs)
        div = (wl * kl).sum() / b
        mse = mse_of(pen, "penultimate")
        norm = not h.get("official", False)
        wf = meta.feature([similarity(o["penultimate"], norm) for o in t], similarity(pen.detach(), norm))
        feat = (wf * mse).sum() / b
        info["logit_weights"], info["feature_weights"] = wl, wf
    else:
        raise ValueError(method)
    if part == "matching":
        total = h["alpha"] * div + (h["beta"] * feat if feat is not None else 0)
    else:
        total = h["gamma"] * ce + h["alpha"] * div + (h["beta"] * feat if feat is not None else 0)
    return total, info


def sgd_step(params, grads, bufs, lr, m, wd):
    """torch.optim.SGD(nesterov=True) on lists, returning new detached parameters and buffers."""
    new_p, new_b = [], []
    for p, g, buf in zip(params, grads, bufs):
        d = g + wd * p
        buf = d.clone() if buf is None else m * buf + d
        new_b.append(buf)
        new_p.append((p - lr * (d + m * buf)).detach())
    return new_p, new_b


def meta_gradients(h, learner, teachers, meta, xh, yh, t, momentum_buffers, lr, m, wd):
    """MMKD's hypergradient with the official Reverse-HG replay. Returns grads of meta params.
    `t` is the teachers' outputs on xh, or a function computing them: the official code re-runs the
    teachers for every matching-loss evaluation (two look-ahead steps, two replays)."""
    params = list(learner.parameters())
    outputs = t

    def terms(method, h, learner, teachers, meta, xh, yh, t, part):
        return globals()["terms"](method, h, learner, teachers, meta, xh, yh, outputs() if callable(outputs) and part != "ce" else outputs, part)
    meta_params = list(meta.parameters())

    def set_params(values):
        with torch.no_grad():
            for p, v in zip(params, values):
                p.copy_(v)

    steps = ["matching", "matching", "ce"]
    history, bufs = [], list(momentum_buffers)
    cur = [p.detach().clone() for p in params]
    for part in steps:
        history.append(cur)
        set_params(cur)
        loss, _ = terms("mmkd", h, learner, teachers, meta, xh, yh, t, part)
        g = torch.autograd.grad(loss, params, allow_unused=True)
        g = [torch.zeros_like(p) if gi is None else gi for p, gi in zip(params, g)]
        cur, bufs = sgd_step(cur, g, bufs, lr, m, wd)
    set_params(cur)
    loss, _ = terms("mmkd", h, learner, teachers, meta, xh, yh, t, "ce")
    a0 = [torch.zeros_like(p) if g is None else g.detach() for p, g in zip(params, torch.autograd.grad(loss, params, allow_unused=True))]
    a1 = [torch.zeros_like(p) for p in params]
    meta_grad = [torch.zeros_like(p) for p in meta_params]
    for j in reversed(range(len(steps))):
        set_params(history[j])
        loss, _ = terms("mmkd", h, learner, teachers, meta, xh, yh, t, steps[j])
        g = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
        x = sum((gi * (a1i - lr * a0i)).sum() for gi, a0i, a1i in zip(g, a0, a1) if gi is not None)
        out = torch.autograd.grad(x, params + meta_params, allow_unused=True)
        hvec = [torch.zeros_like(p) if o is None else o for p, o in zip(params, out[:len(params)])]
        for i, o in enumerate(out[len(params):]):
            if o is not None:
                meta_grad[i] += o
        a0, a1 = ([a0i * (1 - lr * wd) + wd * a1i + hi for a0i, a1i, hi in zip(a0, a1, hvec)],
                  [m * a1i - lr * m * a0i for a0i, a1i in zip(a0, a1)])
    set_params(history[0])
    return meta_grad
