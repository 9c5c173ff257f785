#!/usr/bin/env python3
"""Checks ONNX files that `mmkd export` wrote, with the ONNX project's own checker and onnxruntime.

    check_onnx.py parity MODEL.onnx INPUT.f32 EXPECTED.f32
        onnx.checker.check_model(full_check=True), then the logits onnxruntime computes for the
        float32 batch in INPUT.f32 (shape [N, C, H, W], N from the file's size) against
        EXPECTED.f32 (mmkd's logits). Prints JSON: max_abs, max_rel = max|ort - mmkd| / max|mmkd|.

    check_onnx.py check MODEL.onnx
        The full check, then one onnxruntime run on a batch of two zero images. Prints JSON:
        checker, input and output (their shapes, the batch dimension by name), metadata.

    check_onnx.py top1 MODEL.onnx ROOT
        Test top-1 of a model exported with `--normalize` on the image folders ROOT/test/<class>/
        (the CIFAR-10 JPEG copy's layout), in mmkd's file order, labels from the model's
        `class_names` metadata. Prints JSON: images, correct, top1.

Needs onnx, onnxruntime, numpy (and pillow for top1); scripts/test.sh installs them into a venv.
"""
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime


def session(path):
    onnx.checker.check_model(onnx.load(path), full_check=True)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    return onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def parity(model_path, input_path, expected_path):
    s = session(model_path)
    dims = s.get_inputs()[0].shape[1:]
    x = np.fromfile(input_path, dtype="<f4").reshape([-1] + [int(d) for d in dims])
    expected = np.fromfile(expected_path, dtype="<f4").reshape(x.shape[0], -1)
    got = s.run(None, {s.get_inputs()[0].name: x})[0]
    if got.shape != expected.shape:
        raise SystemExit(f"check_onnx.py: logits of shape {got.shape}, mmkd's are {expected.shape}")
    diff = float(np.max(np.abs(got - expected)))
    print(json.dumps({"checker": "ok", "max_abs": diff, "max_rel": diff / float(np.max(np.abs(expected)))}))


def check(model_path):
    s = session(model_path)
    i, o = s.get_inputs()[0], s.get_outputs()[0]
    x = np.zeros([2] + [int(d) for d in i.shape[1:]], dtype=np.float32)
    logits = s.run(None, {i.name: x})[0]
    meta = {p.key: p.value for p in onnx.load(model_path).metadata_props}
    print(json.dumps({"checker": "ok", "input": [i.name, i.shape], "output": [o.name, o.shape, list(logits.shape)],
                      "opset": onnx.load(model_path).opset_import[0].version, "metadata": meta}))


def top1(model_path, root):
    from PIL import Image
    model = onnx.load(model_path)
    meta = {p.key: p.value for p in model.metadata_props}
    if "normalised by the graph" not in meta.get("input", ""):
        raise SystemExit("check_onnx.py: top1 needs a model exported with --normalize (it feeds RGB values in [0, 1])")
    names = json.loads(meta["class_names"])
    s = session(model_path)
    test = os.path.join(root, "test")
    files, labels = [], []
    for name in sorted(d for d in os.listdir(test) if not d.startswith(".") and os.path.isdir(os.path.join(test, d))):
        folder = os.path.join(test, name)
        found = sorted(f for f in os.listdir(folder) if f.lower().endswith((".jpg", ".jpeg", ".png")))
        files += [os.path.join(folder, f) for f in found]
        labels += [names.index(name)] * len(found)
    correct = 0
    for start in range(0, len(files), 500):
        batch = np.stack([np.asarray(Image.open(f).convert("RGB"), dtype=np.float32).transpose(2, 0, 1) / 255
                          for f in files[start:start + 500]])
        logits = s.run(None, {s.get_inputs()[0].name: batch})[0]
        correct += int(np.sum(np.argmax(logits, axis=1) == np.array(labels[start:start + 500])))
    print(json.dumps({"images": len(files), "correct": correct, "top1": 100 * correct / len(files)}))


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "parity":
        parity(*sys.argv[2:])
    elif len(sys.argv) == 3 and sys.argv[1] == "check":
        check(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "top1":
        top1(*sys.argv[2:])
    else:
        raise SystemExit(__doc__)
