#!/usr/bin/env bash
# Builds the release binary and runs the kernel benchmark suite (next to PyTorch 1.13 when
# Debian's python3-torch is installed), writing bench-kernels.json.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build -c release
.build/release/mmkd bench kernels --json bench-kernels.json "$@"
