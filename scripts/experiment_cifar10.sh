#!/usr/bin/env bash
# The reduced Table I grid on the CIFAR-10 JPEG copy (examples/cifar10-reduced.yaml): runs every cell
# (resumable: run it again after an interruption), writes the report, renders report.html in headless
# chromium and copies tables, HTML, screenshot and Grad-CAM figure to docs/experiment-cifar10-reduced/.
# Needs the teachers of scripts/teachers_cifar10.sh (runs/cifar10-resnet20-seed{1,2,3}/best.safetensors).
#   scripts/experiment_cifar10.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build -c release
.build/release/mmkd run examples/cifar10-reduced.yaml
run=runs/cifar10-reduced
out=docs/experiment-cifar10-reduced
mkdir -p "$out"
scripts/report_screenshot.sh "$run" "$out/report-screenshot.png" 3200
cp "$run/report.md" "$run/results.csv" "$run/report.html" "$out/"
cp "$run/figures/resnet20x3-resnet8/gradcam.png" "$out/gradcam.png"
echo "copied the report to $out"
