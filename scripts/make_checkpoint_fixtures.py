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
