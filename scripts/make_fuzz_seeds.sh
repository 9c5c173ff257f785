#!/usr/bin/env bash
# Regenerates the committed seed corpus Fuzz/Corpus/HARNESS/: small valid files of each format, written
# by `mmkd-fuzz seeds` (from the project's own writers), plus the PyTorch checkpoint fixture and the
# example experiments for the formats this project does not write.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product mmkd-fuzz >/dev/null
rm -rf Fuzz/Corpus
.build/release/mmkd-fuzz seeds Fuzz/Corpus
mkdir -p Fuzz/Corpus/pth Fuzz/Corpus/yaml
cp Tests/CheckpointsTests/Fixtures/bare.pth Fuzz/Corpus/pth/bare.pth
cp examples/*.yaml Fuzz/Corpus/yaml/
