// swift-tools-version:6.0
import PackageDescription


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
        .library(name: "ONNXExport", targets: ["ONNXExport"]),
        .library(name: "Distributed", targets: ["Distributed"]),
        .executable(name: "mmkd", targets: ["mmkd"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    ],
    targets: [
        .systemLibrary(name: "CDNNL", path: "Sources/CDNNL"),
        .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS", pkgConfig: "openblas"),
        .systemLibrary(name: "COpenMP", path: "Sources/COpenMP"),
        /// Open MPI (`libopenmpi-dev`), for data-parallel runs under `mpirun`.
        .systemLibrary(name: "CMPI", path: "Sources/CMPI", pkgConfig: "ompi-c"),
        /// Hot loops built for AVX2 and portably, chosen at run time (no CPU-specific build flag).
        .target(name: "CKernels"),
        .target(name: "Engine", dependencies: ["CKernels", "CDNNL", "COpenBLAS", "COpenMP"]),
        .target(name: "NN", dependencies: ["Engine"]),
        .target(name: "Models", dependencies: ["NN", "Engine"]),
        .systemLibrary(name: "CImageCodecs", path: "Sources/CImageCodecs"),
        .target(name: "Datasets", dependencies: ["Serialization", "Engine", "CImageCodecs"]),
        .target(name: "Serialization", dependencies: ["CImageCodecs"]),
        .target(name: "Checkpoints", dependencies: ["Serialization", "NN", "Engine"]),
        .target(name: "Distillation", dependencies: ["Models", "Datasets", "Checkpoints", "NN", "Engine", .product(name: "SwiftProtobuf", package: "swift-protobuf")]),
        /// Networks as ONNX graphs (messages generated from `Protos/onnx.proto` by `scripts/generate_protos.sh`).
        .target(name: "ONNXExport", dependencies: ["NN", "Engine", .product(name: "SwiftProtobuf", package: "swift-protobuf")]),
        /// The processes of a data-parallel job on MPI, as the engine's `ReplicaGroup`.
        .target(name: "Distributed", dependencies: ["CMPI", "Engine"]),
        .target(name: "Experiments", dependencies: ["Distillation", "Models", "Datasets", "Checkpoints", "Engine", .product(name: "Yams", package: "Yams")]),
        .executableTarget(
            name: "mmkd",
            dependencies: ["Engine", "NN", "Models", "Datasets", "Checkpoints", "Distillation", "Experiments", "ONNXExport", "Distributed", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        /// Parser harnesses and seed files for fuzzing (`mmkd-fuzz`, `scripts/fuzz.sh`) and the tests.
        .target(name: "Fuzzing", dependencies: ["Experiments", "Checkpoints", "Datasets", "Serialization", "Engine", "CImageCodecs"]),
        .executableTarget(name: "mmkd-fuzz", dependencies: ["Fuzzing"]),
        .testTarget(name: "EngineTests", dependencies: ["TestSupport", "Engine"], resources: [.copy("Fixtures")]),
        .testTarget(name: "NNTests", dependencies: ["TestSupport", "NN", "Engine"], resources: [.copy("Fixtures")]),
        .target(name: "TestSupport", dependencies: ["Engine"], path: "Tests/TestSupport"),
        .testTarget(name: "DistillationTests", dependencies: ["TestSupport", "Distillation", "Checkpoints", "Datasets", "Models", "NN", "Engine", .product(name: "SwiftProtobuf", package: "swift-protobuf")], resources: [.copy("Fixtures")]),
        .testTarget(name: "ExperimentsTests", dependencies: ["TestSupport", "Experiments", "Checkpoints", "Models", "NN", "Distillation", "Engine"]),
        .testTarget(name: "CheckpointsTests", dependencies: ["Checkpoints", "Models", "NN", "Engine"], resources: [.copy("Fixtures")]),
        .testTarget(name: "DatasetsTests", dependencies: ["Datasets", "Fuzzing", "Serialization", "Engine"]),
        .testTarget(name: "FuzzingTests", dependencies: ["Fuzzing", "Checkpoints", "Datasets", "Serialization", "Engine"]),
        .testTarget(name: "CLITests", dependencies: ["TestSupport", "Checkpoints", "Distillation", "Engine"]),
        .testTarget(name: "ONNXExportTests", dependencies: ["ONNXExport", "Models", "NN", "Engine"]),
        .testTarget(name: "ModelsTests", dependencies: ["Models", "NN", "Engine"], resources: [.copy("Fixtures")]),
    ],
    swiftLanguageModes: [.v6]
)
