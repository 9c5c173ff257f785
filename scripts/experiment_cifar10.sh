#!/usr/bin/env bash
# A CIFAR-10 experiment of examples/ on the JPEG copy: runs every cell (resumable: run it again after an
# interruption), writes the report, renders report.html in headless chromium and copies tables, HTML,
# screenshot and Grad-CAM figure to docs/experiment-cifar10-NAME/.
# Needs the CIFAR-10 JPEG copy at data/cifar10-jpeg (the examples' `data`; `mkdir -p data && tar -xzf cifar10-jpeg.tar.gz -C data`) and
# the teachers of scripts/teachers_cifar10.sh data/cifar10-jpeg (runs/cifar10-resnet20-seed{1,2,3}/best.safetensors).
#   scripts/experiment_cifar10.sh [reduced|beta-ablation]     (default: reduced)
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:-reduced}
[ -f "examples/cifar10-$name.yaml" ] || { echo "experiment_cifar10.sh: no examples/cifar10-$name.yaml" >&2; exit 1; }
scripts/setup.sh
swift build -c release
.build/release/mmkd run "examples/cifar10-$name.yaml"
run=runs/cifar10-$name
out=docs/experiment-cifar10-$name
mkdir -p "$out"
scripts/report_screenshot.sh "$run" "$out/report-screenshot.png" 3200
cp "$run/report.md" "$run/results.csv" "$run/report.html" "$out/"
cp "$run/figures/resnet20x3-resnet8/gradcam.png" "$out/gradcam.png"
echo "copied the report to $out"
