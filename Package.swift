// swift-tools-version:6.0
import PackageDescription

/// Vectorised Swift kernels need AVX2/FMA code generation; without it SIMD multiply-add
/// lowers to software `fmaf` calls (see DESIGN.md, Engine).
let fastMath: [SwiftSetting] = [.unsafeFlags(["-target-cpu", "haswell"])]

let package = Package(
    name: "MMKD",
    products: [
        .library(name: "Engine", targets: ["Engine"]),
        .library(name: "NN", targets: ["NN"]),
        .library(name: "Models", targets: ["Models"]),
        .library(name: "Datasets", targets: ["Datasets"]),
        .library(name: "Checkpoints", targets: ["Checkpoints"]),
        .library(name: "Distillation", targets: ["Distillation"]),
        .library(name: "Experiments", targets: ["Experiments"]),
        .executable(name: "mmkd", targets: ["mmkd"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
    ],
    targets: [
        .systemLibrary(name: "CDNNL", path: "Sources/CDNNL"),
        .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS", pkgConfig: "openblas"),
        .systemLibrary(name: "COpenMP", path: "Sources/COpenMP"),
        .target(name: "Engine", dependencies: ["CDNNL", "COpenBLAS", "COpenMP"], swiftSettings: fastMath),
        .target(name: "NN", dependencies: ["Engine"], swiftSettings: fastMath),
        .target(name: "Models", dependencies: ["NN", "Engine"], swiftSettings: fastMath),
        .systemLibrary(name: "CImageCodecs", path: "Sources/CImageCodecs"),
        .target(name: "Datasets", dependencies: ["Serialization", "Engine", "CImageCodecs"], swiftSettings: fastMath),
        .target(name: "Serialization", dependencies: ["CImageCodecs"], swiftSettings: fastMath),
        .target(name: "Checkpoints", dependencies: ["Serialization", "NN", "Engine"], swiftSettings: fastMath),
        .target(name: "Distillation", dependencies: ["Models", "Datasets", "Checkpoints", "NN", "Engine"], swiftSettings: fastMath),
        .target(name: "Experiments", dependencies: ["Distillation", "Models", "Datasets", "Checkpoints", "Engine", .product(name: "Yams", package: "Yams")], swiftSettings: fastMath),
        .executableTarget(
            name: "mmkd",
            dependencies: ["Engine", "NN", "Models", "Datasets", "Checkpoints", "Distillation", "Experiments", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: fastMath),
        .testTarget(name: "EngineTests", dependencies: ["TestSupport", "Engine"], resources: [.copy("Fixtures")], swiftSettings: fastMath),
        .testTarget(name: "NNTests", dependencies: ["TestSupport", "NN", "Engine"], resources: [.copy("Fixtures")], swiftSettings: fastMath),
        .target(name: "TestSupport", dependencies: ["Engine"], path: "Tests/TestSupport", swiftSettings: fastMath),
        .testTarget(name: "DistillationTests", dependencies: ["TestSupport", "Distillation", "Checkpoints", "Datasets", "Models", "NN", "Engine"], resources: [.copy("Fixtures")], swiftSettings: fastMath),
        .testTarget(name: "ExperimentsTests", dependencies: ["TestSupport", "Experiments", "Checkpoints", "Models", "NN", "Distillation", "Engine"], swiftSettings: fastMath),
        .testTarget(name: "CheckpointsTests", dependencies: ["Checkpoints", "Models", "NN", "Engine"], resources: [.copy("Fixtures")], swiftSettings: fastMath),
        .testTarget(name: "DatasetsTests", dependencies: ["Datasets", "Serialization", "CImageCodecs", "Engine"], swiftSettings: fastMath),
        .testTarget(name: "CLITests", dependencies: ["TestSupport"]),
        .testTarget(name: "ModelsTests", dependencies: ["Models", "NN", "Engine"], resources: [.copy("Fixtures")], swiftSettings: fastMath),
    ],
    swiftLanguageModes: [.v5]
)
