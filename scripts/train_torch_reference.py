#!/usr/bin/python3
"""PyTorch 1.13 reference for `mmkd train`: the same recipe on the same image folders.

    /usr/bin/python3 scripts/train_torch_reference.py --arch resnet20 --data-root /path/cifar10-jpeg \
        --epochs 5 --milestones 3,4 --train-limit 10000 --seed 1 --out runs/torch-resnet20-seed1.json

Reads ROOT/train/<class>/* and ROOT/test/<class>/* with PIL, trains RepDistiller's architecture
(bench_kernels_torch.make_model) with SGD (momentum 0.9, Nesterov, weight decay 5e-4, batch 64,
multi-step schedule), random crop 32 with 4-pixel zero padding and horizontal flip, CIFAR-100
normalisation (as DESIGN.md), evaluates top-1 after every epoch and writes per-epoch metrics (with
training images/s) as JSON. 2 threads, as the Swift side.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_kernels_torch import make_model  # noqa: E402

MEAN = np.array([0.5071, 0.4867, 0.4408], dtype=np.float32)
STD = np.array([0.2675, 0.2565, 0.2761], dtype=np.float32)


def load_split(folder):
    classes = sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)))
    images, labels = [], []
    for label, name in enumerate(classes):
        for f in sorted(os.listdir(os.path.join(folder, name))):
            images.append(np.asarray(Image.open(os.path.join(folder, name, f)).convert("RGB"), dtype=np.uint8))
            labels.append(label)
    return np.stack(images), np.array(labels), classes


def normalise(batch):
    return torch.from_numpy(((batch.astype(np.float32) / 255 - MEAN) / STD).transpose(0, 3, 1, 2).copy())


def augment(batch, rng):
    n = len(batch)
    padded = np.zeros((n, 40, 40, 3), dtype=np.uint8)
    padded[:, 4:36, 4:36] = batch
    out = np.empty_like(batch)
    dx, dy, flip = rng.integers(0, 9, n), rng.integers(0, 9, n), rng.integers(0, 2, n)
    for i in range(n):
        crop = padded[i, dy[i]:dy[i] + 32, dx[i]:dx[i] + 32]
        out[i] = crop[:, ::-1] if flip[i] else crop
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--arch", required=True)
    p.add_argument("--data-root", required=True)
    p.add_argument("--epochs", type=int, default=240)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--milestones", default="150,180,210")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-limit", type=int)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    x_train, y_train, classes = load_split(os.path.join(a.data_root, "train"))
    x_test, y_test, _ = load_split(os.path.join(a.data_root, "test"))
    if a.train_limit:
        keep = np.sort(rng.permutation(len(x_train))[:a.train_limit])
        x_train, y_train = x_train[keep], y_train[keep]
    model = make_model(a.arch, len(classes))
    opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=0.9, weight_decay=5e-4, nesterov=True)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, [int(m) for m in a.milestones.split(",") if m], 0.1)
    metrics = []
    for epoch in range(a.epochs):
        model.train()
        order = rng.permutation(len(x_train))
        start, seen, correct, loss_sum = time.time(), 0, 0, 0.0
        for b in range(0, len(order), a.batch_size):
            idx = order[b:b + a.batch_size]
            x, y = normalise(augment(x_train[idx], rng)), torch.from_numpy(y_train[idx])
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            seen += len(idx)
            correct += (logits.argmax(1) == y).sum().item()
            loss_sum += loss.item() * len(idx)
        seconds = time.time() - start
        sched.step()
        model.eval()
        top1 = 0
        with torch.no_grad():
            for b in range(0, len(x_test), 256):
                top1 += (model(normalise(x_test[b:b + 256])).argmax(1) == torch.from_numpy(y_test[b:b + 256])).sum().item()
        metrics.append({"epoch": epoch + 1, "train_loss": loss_sum / seen, "train_top1": 100 * correct / seen,
                        "test_top1": 100 * top1 / len(x_test), "images_per_s": seen / seconds, "seconds": seconds})
        print(json.dumps(metrics[-1]), flush=True)
    tmp = a.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"arch": a.arch, "seed": a.seed, "epochs": metrics}, f, indent=1)
    os.replace(tmp, a.out)


if __name__ == "__main__":
    main()
