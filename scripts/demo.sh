#!/usr/bin/env bash
# The main job, end to end on a small real default: installs the build's libraries and the
# Fashion-MNIST data set (Debian's dataset-fashion-mnist), builds release, trains two small teachers
# (resnet20, seeds 1 and 2), then distils a resnet8 student from both with MMKD and with AVER, trains
# the same student alone, and prints the comparison. Every run gets a directory under runs/demo/.
# Budget (environment): DEMO_EPOCHS (2), DEMO_TRAIN_LIMIT (10000 images per epoch). About 6.5 minutes
# on 2 cores after the build.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "demo: installing dataset-fashion-mnist"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq dataset-fashion-mnist || {
        DEBIAN_FRONTEND=noninteractive $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq dataset-fashion-mnist; }
fi
swift build -c release
epochs=${DEMO_EPOCHS:-2}
limit=${DEMO_TRAIN_LIMIT:-10000}
mmkd=.build/release/mmkd
common=(--data fashion-mnist --epochs "$epochs" --milestones "$((epochs - 1))" --train-limit "$limit" --runs-dir runs/demo --resume)
for seed in 1 2; do
    echo "demo: teacher resnet20 seed $seed"
    $mmkd train --arch resnet20 --seed "$seed" --name "teacher-resnet20-seed$seed" "${common[@]}"
done
teachers=(--teacher resnet20=runs/demo/teacher-resnet20-seed1/best.safetensors --teacher resnet20=runs/demo/teacher-resnet20-seed2/best.safetensors)
echo "demo: resnet8 alone"
$mmkd train --arch resnet8 --seed 3 --name student-alone "${common[@]}"
for method in aver mmkd; do
    echo "demo: resnet8 distilled with $method"
    $mmkd distill --student resnet8 "${teachers[@]}" --method "$method" --seed 3 --name "student-$method" "${common[@]}"
done
python3 - <<'PY' 2>/dev/null || cat runs/demo/student-*/summary.md
import json
def last(name):
    rows = [json.loads(l) for l in open(f"runs/demo/{name}/metrics.jsonl")]
    return rows[-1]
t = json.load(open("runs/demo/student-mmkd/teachers.json"))
print("\n=== MMKD demo on Fashion-MNIST (test top-1 on 10,000 images) ===")
for i, r in enumerate(t["teachers"]):
    print(f"teacher resnet20 seed {i + 1}:         {r['top1']:6.2f} %")
print(f"ensemble of the two teachers:       {t['ensemble']['top1']:6.2f} %")
print(f"student resnet8 alone:              {last('student-alone')['test_top1']:6.2f} %")
for m in ["aver", "mmkd"]:
    r = last(f"student-{m}")
    w = " / ".join(f"{x:.3f}" for x in r.get("logit_weight_mean", []))
    print(f"student resnet8 distilled, {m:5s}:   {r['test_top1']:6.2f} %   (teacher logit weights {w})")
print("run directories: runs/demo/*/summary.md")
PY
# The MMKD student, ready to ship: an ONNX model that takes RGB values in [0, 1] (see the README).
$mmkd export runs/demo/student-mmkd --normalize --out runs/demo/student-mmkd.onnx
