#!/usr/bin/env bash
# The distillation issue's real run: on the CIFAR-10 JPEG copy, the three resnet20 teachers of
# scripts/teachers_cifar10.sh distilled into resnet8 by every method (kd uses the first teacher),
# plus resnet8 trained alone, each for seeds 1 and 2 with the teachers' short budget. Finished runs
# are kept (each run resumes or is skipped), so the script can be stopped and restarted.
# Writes runs/cifar10-distill/* and docs/distillation-cifar10.md.
#   scripts/distill_cifar10.sh /path/to/cifar10-jpeg [epochs] [train-limit] [seeds]
set -euo pipefail
cd "$(dirname "$0")/.."
root=${1:?usage: distill_cifar10.sh CIFAR10_JPEG_ROOT [epochs] [train-limit] [seeds]}
epochs=${2:-5}
limit=${3:-10000}
seeds=${4:-"1 2"}
milestones="$((epochs * 3 / 5)),$((epochs * 4 / 5))"
methods="mmkd aver camkd ebkd aekd-logits aekd-feature fitnet-mkd kd"
teachers=(resnet20=runs/cifar10-resnet20-seed1/best.safetensors resnet20=runs/cifar10-resnet20-seed2/best.safetensors
          resnet20=runs/cifar10-resnet20-seed3/best.safetensors)
common=(--data "folder:$root" --epochs "$epochs" --milestones "$milestones" --train-limit "$limit" --runs-dir runs/cifar10-distill --resume)
if [ "${SUMMARY_ONLY:-0}" != 1 ]; then
swift build -c release
for seed in $seeds; do
    for method in $methods; do
        t=("${teachers[@]}")
        [ "$method" = kd ] && t=("${teachers[0]}")
        args=()
        for x in "${t[@]}"; do args+=(--teacher "$x"); done
        .build/release/mmkd distill --student resnet8 "${args[@]}" --method "$method" --seed "$seed" --name "$method-seed$seed" "${common[@]}"
    done
    .build/release/mmkd train --arch resnet8 --seed "$seed" --name "student-seed$seed" "${common[@]}"
done
fi
/usr/bin/python3 - "$epochs" "$limit" "$seeds" "$methods" <<'PY'
import json, os, statistics, sys
epochs, limit, seeds, methods = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4].split()
base = "runs/cifar10-distill"
def load(name):
    p = f"{base}/{name}/metrics.jsonl"
    return [json.loads(l) for l in open(p)] if os.path.exists(p) else []
def stat(v):
    return f"{statistics.mean(v):.2f} ± {statistics.stdev(v) if len(v) > 1 else 0:.2f}" if v else "—"
rows, student_last = [], None
teachers = None
for m in ["student"] + methods:
    last, best, ips, w = [], [], [], []
    for s in seeds:
        e = load(f"{m}-seed{s}")
        if len(e) < int(epochs): continue
        last.append(e[-1]["test_top1"]); best.append(max(x["test_top1"] for x in e))
        ips.append(statistics.median(x["images_per_s"] for x in e))
        if "logit_weight_mean" in e[-1]: w.append(e[-1]["logit_weight_mean"])
        t = f"{base}/{m}-seed{s}/teachers.json"
        if m != "kd" and os.path.exists(t): teachers = json.load(open(t))
    weights = "/".join(f"{statistics.mean(x[k] for x in w):.3f}" for k in range(len(w[0]))) if w else ""
    name = "resnet8 alone" if m == "student" else m
    rows.append(f"| {name} | {len(last)} | {stat(last)} | {stat(best)} | {statistics.mean(ips) if ips else 0:.0f} | {weights} |")
tt = ""
if teachers:
    tt = "Teachers (resnet20, seeds 1–3, from docs/teachers-cifar10.md): test top-1 " + ", ".join(f"{t['top1']:.2f}" for t in teachers["teachers"]) + f" %; ensemble (mean probability) {teachers['ensemble']['top1']:.2f} %.\n\n"
text = f"""# Multi-teacher distillation on the CIFAR-10 JPEG copy (short budget)

Produced by `scripts/distill_cifar10.sh /path/to/cifar10-jpeg {epochs} {limit} "{' '.join(seeds)}"` on this project's 2-core
machine. Student resnet8; three resnet20 teachers (kd: the first one only). Every method with the same
budget: {epochs} epochs of a seeded {limit}-image subset of the training set, batch 64, SGD 0.05 (momentum 0.9,
Nesterov, weight decay 5e-4), ×0.1 after epochs {','.join(str(int(epochs) * k // 5) for k in (3, 4))}; random crop + flip; τ = 4, γ = α = 1, each
method's default β (mmkd 100, camkd 50, fitnet-mkd 100, aekd-feature 100); MMKD with the hard buffer (256), a
meta step every 5 iterations, exact hypergradient, normalised similarities. Test top-1 on all 10,000 test
images; mean ± std over seeds {', '.join(seeds)}.

{tt}| method | seeds | last top-1 (%) | best top-1 (%) | train images/s | final-epoch logit weights (mean per teacher) |
|---|---:|---:|---:|---:|---|
""" + "\n".join(rows) + "\n"
# Keep the hand-written reading of the numbers (the section from "## Reading" on).
path = "docs/distillation-cifar10.md"
if os.path.exists(path):
    old = open(path).read()
    if "\n## Reading" in old:
        text += old[old.index("\n## Reading"):]
open(path, "w").write(text)
print(text)
PY
