#!/usr/bin/env bash
# Checks that another package can depend on this one the normal way: tags a clone of the current
# commit as 1.0.0, writes a scratch package that depends on it with `from: "1.0.0"` (a versioned
# dependency: SwiftPM refuses unsafe build flags there, unlike a path or branch dependency),
# imports Distillation, Models and Engine, builds it and runs it (a forward pass and a gradient
# through the public API only).
#   scripts/check_dependent_package.sh [WORK_DIR]
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$(mktemp -d)}
rm -rf "$work/mmkd" "$work/consumer"
git clone -q "$repo" "$work/mmkd"
git -C "$work/mmkd" -c user.name=check -c user.email=check@localhost tag -a 1.0.0 -m "dependency check"
mkdir -p "$work/consumer/Sources/Consumer"
cat > "$work/consumer/Package.swift" <<SWIFT
// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Consumer",
    dependencies: [.package(url: "file://$work/mmkd", from: "1.0.0")],
    targets: [.executableTarget(name: "Consumer", dependencies: [
        .product(name: "Distillation", package: "mmkd"), .product(name: "Models", package: "mmkd"), .product(name: "Engine", package: "mmkd"),
    ])]
)
SWIFT
cat > "$work/consumer/Sources/Consumer/main.swift" <<'SWIFT'
import Distillation
import Engine
import Models

// Only the public API: the registry, a zoo model, a forward pass and a gradient.
print("methods:", DistillationMethods.names.joined(separator: " "))
var generator = RandomGenerator(seed: 1)
let model = try ModelZoo.make("resnet8", classes: 10)
let x = Tensor.randomNormal([2, 3, 32, 32], generator: &generator)
let loss = crossEntropy(model(x), labels: [3, 7])
let g = gradients(of: loss, wrt: model.parameters)
print("resnet8 loss", loss.item, "gradients", g.count)
SWIFT
cd "$work/consumer"
swift build -c release 2>&1 | tail -n 3
.build/release/Consumer
