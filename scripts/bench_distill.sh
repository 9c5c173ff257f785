#!/usr/bin/env bash
# `mmkd bench distill` for the three reference configurations, one process each (so that each
# reports its own peak memory), next to the official-style PyTorch step when python3-torch is
# installed. Writes bench-distill-CONFIG.json. Extra arguments go to every run (e.g. --rounds 1).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build -c release
for config in small paper-vgg paper; do
    .build/release/mmkd bench distill --config "$config" --rounds 2 --repeats 3 --json "bench-distill-$config.json" "$@"
done
