#!/usr/bin/env bash
# Regenerates the committed Swift of Protos/*.proto (no build runs a generator):
#   Protos/tensorboard_event.proto → Sources/Distillation/Training/TensorBoard/TensorBoardEvent.pb.swift
#   Protos/onnx.proto (ONNX 1.23's, unchanged) → Sources/ONNXExport/ONNXProto.pb.swift
# Needs protoc (apt-get install protobuf-compiler) and swift-protobuf's protoc-gen-swift at the
# version Package.swift names (built here from the package mirror's copy unless PROTOC_GEN_SWIFT
# points at one; the first build takes ~10 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v protoc >/dev/null || { echo "generate_protos.sh: protoc is missing (apt-get install protobuf-compiler)" >&2; exit 1; }
version=$(sed -n 's|.*apple/swift-protobuf", from: "\([0-9.]*\)").*|\1|p' Package.swift)
plugin=${PROTOC_GEN_SWIFT:-}
if [ -z "$plugin" ]; then
    work=.build/protoc-gen-swift-$version
    if [ ! -x "$work/.build/release/protoc-gen-swift" ]; then
        rm -rf "$work"
        git clone -q --branch "$version" https://github.com/apple/swift-protobuf "$work"
        (cd "$work" && swift build -c release --product protoc-gen-swift)
    fi
    plugin=$work/.build/release/protoc-gen-swift
fi
generate() {  # PROTO OUTPUT
    local out; out=$(dirname "$2")
    mkdir -p "$out"
    protoc --plugin=protoc-gen-swift="$plugin" --swift_opt=Visibility=Package --swift_out="$out" -I Protos "Protos/$1"
    mv "$out/${1%.proto}.pb.swift" "$2"
    echo "generate_protos.sh: wrote $2"
}
generate tensorboard_event.proto Sources/Distillation/Training/TensorBoard/TensorBoardEvent.pb.swift
generate onnx.proto Sources/ONNXExport/ONNXProto.pb.swift
