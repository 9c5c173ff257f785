#!/usr/bin/python3
"""PyTorch 1.13 side of `mmkd bench distill`: the reference MMKD workload per iteration.

Usage: bench_distill_torch.py SPEC.json OUT.json (the protocol of bench_kernels_torch.py). Cases of
kind "distill_ordinary" (three teacher forwards without gradients, the student's MMKD loss, backward,
SGD step, hard-buffer update) and "distill_meta" (the official meta step: buffer draw, snapshot, two
look-ahead steps on the matching loss and one on cross-entropy with the teachers re-run for each
matching loss, Reverse-HG replay recomputing every step, Adam on the meta networks, rollback), as
the official code does them. A case's "config" is paper, paper-vgg, small or TEACHER:STUDENT (any two
architectures of bench_kernels_torch.make_model). OUT also receives "peak_rss_bytes <config>": [bytes]. 2 threads.
"""
import copy
import json
import resource
import statistics
import sys

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    sys.exit(3)

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from bench_kernels_torch import make_model  # noqa: E402
from bench_timing import time_calls  # noqa: E402
import mmkd_torch as M  # noqa: E402

torch.set_num_threads(2)
CONFIGS = {"paper": ("resnet32x4", "resnet8x4"), "paper-vgg": ("vgg13", "vgg8"), "small": ("resnet20", "resnet8")}
B, C, K = 64, 100, 3
HYPER = {"tau": 4.0, "gamma": 1.0, "alpha": 1.0, "beta": 100.0}


class Workload:
    def __init__(self, config):
        torch.manual_seed(0)
        t_arch, s_arch = CONFIGS[config] if config in CONFIGS else config.split(":")
        self.teachers = [make_model(t_arch, C).eval() for _ in range(K)]
        for t in self.teachers:
            for p in t.parameters():
                p.requires_grad_(False)
        student = make_model(s_arch, C)
        x = torch.randn(2, 3, 32, 32)
        with torch.no_grad():
            student.eval()
            sc = student.features(x)[0][-2].shape[1]
            tc = self.teachers[0].features(x)[0][-2].shape[1]
            student.train()
        self.learner = M.Learner(student, [M.Regressor(sc, tc) for _ in range(K)]).train()
        self.meta = M.MetaNetworks(K, C, B)
        self.opt = torch.optim.SGD(self.learner.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=True)
        self.meta_opt = torch.optim.Adam(self.meta.parameters(), lr=1e-3, weight_decay=1e-4)
        self.x = torch.randn(B, 3, 32, 32)
        self.y = torch.randint(0, C, (B,))
        self.buffer_x = torch.randn(256, 3, 32, 32)
        self.buffer_y = torch.randint(0, C, (256,))
        self.ordinary()  # momentum buffers exist before the first meta step

    def ordinary(self):
        t = M.teacher_outputs(self.teachers, self.x)
        loss, info = M.terms("mmkd", HYPER, self.learner, self.teachers, self.meta, self.x, self.y, t)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        with torch.no_grad():  # the buffer's update: misclassified samples replace random slots
            wrong = (info["logits"].argmax(1) != self.y).nonzero().flatten()
            slots = torch.randperm(256)[:len(wrong)]
            self.buffer_x[slots] = self.x[wrong[:len(slots)]]
            self.buffer_y[slots] = self.y[wrong[:len(slots)]]

    def meta_step(self):
        idx = torch.randperm(256)[:B]
        xh, yh = self.buffer_x[idx], self.buffer_y[idx]
        saved = copy.deepcopy(self.learner.state_dict())
        saved_opt = copy.deepcopy(self.opt.state_dict())
        bufs = [self.opt.state[p]["momentum_buffer"] for p in self.learner.parameters()]
        grads = M.meta_gradients(HYPER, self.learner, self.teachers, self.meta, xh, yh,
                                 lambda: M.teacher_outputs(self.teachers, xh), bufs, 0.05, 0.9, 5e-4)
        self.meta_opt.zero_grad()
        for p, g in zip(self.meta.parameters(), grads):
            p.grad = g
        self.meta_opt.step()
        self.learner.load_state_dict(saved)
        self.opt.load_state_dict(saved_opt)


def peak_rss():
    """This process's resident high-water mark (VmHWM; ru_maxrss would include the parent's peak,
    which Linux carries across fork and exec)."""
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return float(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024.0


def main():
    spec = json.load(open(sys.argv[1]))
    repeats = spec["repeats"]
    out, workloads = {}, {}
    for c in spec["cases"]:
        w = workloads.setdefault(c["config"], Workload(c["config"]))
        fn = w.ordinary if c["kind"] == "distill_ordinary" else w.meta_step
        times = time_calls(fn, c.get("warmup", 1), repeats)
        out[c["name"]] = times
        out["peak_rss_bytes " + c["config"]] = [peak_rss()]
        print(f"  torch {c['name']}: {statistics.median(times) * 1e3:.1f} ms", file=sys.stderr)
    json.dump(out, open(sys.argv[2], "w"))


if __name__ == "__main__":
    main()
