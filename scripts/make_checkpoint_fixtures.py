#!/usr/bin/python3
"""Writes checkpoint fixtures for Tests/CheckpointsTests, independently of the Swift writer.

    /usr/bin/python3 scripts/make_checkpoint_fixtures.py

reference.safetensors is written by hand here from the format's specification (8-byte
little-endian header length, JSON header, little-endian data) with F32, F16, F64 and I64 tensors
and metadata; reference.json lists the expected values.
"""
import json
import os
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests/CheckpointsTests/Fixtures")

tensors = [
    ("conv.weight", "F32", [2, 1, 2, 2], [0.5, -1.25, 3.0, 0.0, 1e-3, -7.5, 2.25, 100.0]),
    ("bn.num_batches_tracked", "I64", [], [42]),
    ("half.values", "F16", [3], [1.5, -0.25, 65504.0]),
    ("double.values", "F64", [2], [3.141592653589793, -2.5]),
]
fmt = {"F32": "<f", "F16": "<e", "F64": "<d", "I64": "<q"}
header, blobs, offset = {"__metadata__": {"arch": "test", "epoch": "3"}}, b"", 0
for name, dtype, shape, values in tensors:
    data = b"".join(struct.pack(fmt[dtype], v) for v in values)
    header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
    blobs += data
    offset += len(data)
h = json.dumps(header).encode()
h += b" " * ((8 - len(h) % 8) % 8)
os.makedirs(OUT, exist_ok=True)
with open(os.path.join(OUT, "reference.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h + blobs)
with open(os.path.join(OUT, "reference.json"), "w") as f:
    json.dump({name: {"shape": shape, "values": values} for name, _, shape, values in tensors}, f)
print("wrote", OUT)

# PyTorch checkpoints (needs Debian's python3-torch 1.13): a RepDistiller-style teacher file and a
# bare state dict with a DataParallel prefix, a transposed (non-contiguous) tensor and float16.
import collections
import math
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_kernels_torch import make_model  # noqa: E402

torch.manual_seed(0)
model = make_model("resnet8", 10)
model.train()
with torch.no_grad():
    model(torch.randn(16, 3, 32, 32))  # give batch norm non-trivial running statistics
model.eval()
torch.save({"model": model.state_dict(), "epoch": 7, "best_acc": 71.5}, os.path.join(OUT, "resnet8.pth"))
x = torch.tensor([math.sin(0.013 * i) for i in range(2 * 3 * 32 * 32)], dtype=torch.float32).reshape(2, 3, 32, 32)
with torch.no_grad():
    logits = model(x)
with open(os.path.join(OUT, "resnet8_logits.json"), "w") as f:
    json.dump({"logits": logits.reshape(-1).tolist(), "shape": list(logits.shape)}, f)

bare = collections.OrderedDict()
bare["module.w"] = torch.arange(6.0).reshape(2, 3).t()
bare["module.h"] = torch.tensor([0.5, -2.0, 1024.0], dtype=torch.float16)
bare["module.n"] = torch.tensor(5, dtype=torch.int64)
torch.save(bare, os.path.join(OUT, "bare.pth"))
print("wrote the PyTorch checkpoints")
