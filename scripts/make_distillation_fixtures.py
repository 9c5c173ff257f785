#!/usr/bin/python3
"""Writes Tests/DistillationTests/Fixtures: MMKD's hypergradient and the baselines' teacher weights
computed by the independent PyTorch implementation in mmkd_torch.py.

    /usr/bin/python3 scripts/make_distillation_fixtures.py     (Debian python3-torch, python3-sklearn)

Setting: student resnet8, teachers resnet14 and resnet8 (10 classes, 16x16 inputs, batch 8), one
regular MMKD step (SGD Nesterov, lr 0.05, momentum 0.9, weight decay 5e-4) on batch x, then the meta
step on a second batch x_h standing for a hard-buffer draw; for the 1x1 and the convs regressors.
distillation.pth holds every module's starting state and the inputs (float32); distillation.json the
expected values, computed in float64 from those float32 values (FIXTURE_DTYPE=float32 computes them
in float32 instead, to measure PyTorch's own rounding error against the float64 truth).

Conditioning experiments (scripts/hypergradient_conditioning.sh): FIXTURE_OUT=DIR writes elsewhere,
FIXTURE_SEEDS=t0,t1,data,student picks other seeds (default 1,2,3,10), and
FIXTURE_PERTURB=SCALE:SEED multiplies every learner parameter by (1 + SCALE·N(0,1)) before the
regular step.
"""
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_kernels_torch import make_model  # noqa: E402
import mmkd_torch as M  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests/DistillationTests/Fixtures")
torch.set_num_threads(1)
torch.manual_seed(0)

B, C, K = 8, 10, 2
DT = torch.float32 if os.environ.get("FIXTURE_DTYPE") == "float32" else torch.float64
LR, MOM, WD = 0.05, 0.9, 5e-4


def frozen(arch, seed):
    torch.manual_seed(seed)
    m = make_model(arch, C)
    m.train()
    with torch.no_grad():
        for _ in range(3):
            m(torch.randn(16, 3, 16, 16))  # non-trivial running statistics
    m.eval()
    for p in m.parameters():
        p.requires_grad_(False)
    return m


SEEDS = [int(v) for v in os.environ.get("FIXTURE_SEEDS", "1,2,3,10").split(",")]
teachers = [frozen("resnet14", SEEDS[0]), frozen("resnet8", SEEDS[1])]
state = {}
for i, t in enumerate(teachers):
    state.update({f"teacher{i}.{k}": v.clone() for k, v in t.state_dict().items()})
    t.to(DT)

torch.manual_seed(SEEDS[2])
x = torch.randn(B, 3, 16, 16)
y = torch.randint(0, C, (B,))
xh = torch.randn(B, 3, 16, 16)
yh = torch.randint(0, C, (B,))
state.update({"x": x, "y": y, "xh": xh, "yh": yh})
x, xh = x.to(DT), xh.to(DT)
t_x = M.teacher_outputs(teachers, x)
t_h = M.teacher_outputs(teachers, xh)
hyper = {"tau": 4.0, "gamma": 1.0, "alpha": 1.0, "beta": 100.0}
expected = {"setting": {"batch": B, "classes": C, "teachers": ["resnet14", "resnet8"], "student": "resnet8",
                        "lr": LR, "momentum": MOM, "weight_decay": WD, "hyper": hyper}}

for form in ["1x1", "convs"]:
    torch.manual_seed(SEEDS[3])
    student = make_model("resnet8", C)
    regs = [M.Regressor(64, 64, form) for _ in range(K)]
    learner = M.Learner(student, regs)
    meta = M.MetaNetworks(K, C, B)
    state.update({f"{form}.learner.{k}": v.clone() for k, v in learner.state_dict().items()})
    state.update({f"{form}.meta.{k}": v.clone() for k, v in meta.state_dict().items()})
    learner.to(DT)
    meta.to(DT)
    if os.environ.get("FIXTURE_PERTURB"):
        scale, seed = os.environ["FIXTURE_PERTURB"].split(":")
        g = torch.Generator().manual_seed(int(seed))
        with torch.no_grad():
            for p in learner.parameters():
                p.mul_(1 + float(scale) * torch.randn(p.shape, generator=g, dtype=p.dtype))
    learner.train()
    # The regular step.
    opt = torch.optim.SGD(learner.parameters(), lr=LR, momentum=MOM, weight_decay=WD, nesterov=True)
    loss, info = M.terms("mmkd", hyper, learner, teachers, meta, x, y, t_x)
    opt.zero_grad()
    loss.backward()
    opt.step()
    names = [n for n, _ in learner.named_parameters()]
    bufs = [opt.state[p]["momentum_buffer"] for p in learner.parameters()]
    after_regular = {n: v.detach().clone() for n, v in learner.state_dict().items()}
    grads = M.meta_gradients(hyper, learner, teachers, meta, xh, yh, t_h, bufs, LR, MOM, WD)
    meta_names = [n for n, _ in meta.named_parameters()]
    expected[form] = {
        "regular_loss": loss.item(),
        "logit_weights": info["logit_weights"].detach().reshape(-1).tolist(),
        "feature_weights": info["feature_weights"].detach().reshape(-1).tolist(),
        "after_regular": {n: v.reshape(-1)[:64].tolist() for n, v in after_regular.items()
                          if n.startswith("regressors.") or n in ["student.conv1.weight", "student.fc.bias"]},
        "meta_gradients": {n: g.reshape(-1).tolist() for n, g in zip(meta_names, grads)},
    }

# Baselines' teacher weights and losses on fixed teacher outputs, starting from the convs learner.
torch.manual_seed(SEEDS[3])
student = make_model("resnet8", C)
learner = M.Learner(student, [M.Regressor(64, 64, "convs") for _ in range(K)])
learner.load_state_dict({k[len("convs.learner."):]: v for k, v in state.items() if k.startswith("convs.learner.")})
learner.to(DT)
learner.train()
base = {}
logits_t = [o["logits"] for o in t_x]
base["ebkd_weights"] = M.entropy_weights(logits_t).reshape(-1).tolist()
base["camkd_logit_weights"] = M.confidence_weights(logits_t, y).reshape(-1).tolist()
for method, beta in [("aver", 0.0), ("ebkd", 0.0), ("camkd", 50.0)]:
    h = dict(hyper, beta=beta)
    loss, info = M.terms(method, h, learner, teachers, None, x, y, t_x)
    base[f"{method}_loss"] = loss.item()
    if "feature_weights" in info:
        base["camkd_feature_weights"] = info["feature_weights"].detach().reshape(-1).tolist()
# AEKD: gradient vectors w.r.t. the student's logits / penultimate map, batch-averaged.
feats, zs = learner.student.features(x)
kls = [M.kl_per_sample(zs, o["logits"], 4.0).mean() for o in t_x]
vecs = [torch.autograd.grad(kl, zs, retain_graph=True)[0].mean(0) for kl in kls]
base["aekd_logit_weights"] = M.svm_weights(vecs)
pen = feats[-2]
mses = []
for i, o in enumerate(t_x):
    s, tt = M.match(pen, o["penultimate"])
    mses.append(((learner.regressors[i](s) - tt) ** 2).mean())
fvecs = []
for mse in mses:
    g = torch.autograd.grad(mse, pen, retain_graph=True)[0].mean(0)
    fvecs.append(g / g.norm())
base["aekd_feature_weights"] = M.svm_weights(fvecs)
# A QP case with three points (one weight hits its bound), for the solver alone.
qp = [torch.tensor([1.0, 0.2, 0.0], dtype=DT), torch.tensor([0.1, 1.0, 0.3], dtype=DT), torch.tensor([3.0, -0.5, 0.2], dtype=DT)]
base["svm_vectors"] = [v.tolist() for v in qp]
base["svm_weights"] = M.svm_weights(qp)
expected["baselines"] = base

OUT = os.environ.get("FIXTURE_OUT", OUT)
os.makedirs(OUT, exist_ok=True)
torch.save(state, os.path.join(OUT, "distillation.pth"))
with open(os.path.join(OUT, "distillation.json"), "w") as f:
    json.dump(expected, f)
print("wrote", OUT)
