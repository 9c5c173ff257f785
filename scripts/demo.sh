#!/usr/bin/env bash
# The main job, end to end on a small real default: installs the build's libraries and the
# Fashion-MNIST data set (Debian's dataset-fashion-mnist), builds release, trains a resnet8 for
# a short budget with the paper's recipe, then evaluates its best checkpoint. Output: runs/demo-*/.
# (Multi-teacher distillation joins this demonstration with the distillation issue.)
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
limit=${DEMO_TRAIN_LIMIT:-20000}
.build/release/mmkd train --arch resnet8 --data fashion-mnist --epochs "$epochs" --milestones "$((epochs - 1))" \
    --train-limit "$limit" --runs-dir runs --name demo-resnet8 "$@"
.build/release/mmkd eval --arch resnet8 --checkpoint runs/demo-resnet8/best.safetensors --data fashion-mnist
echo "demo: run directory runs/demo-resnet8 (summary.md, metrics.jsonl, checkpoints)"
