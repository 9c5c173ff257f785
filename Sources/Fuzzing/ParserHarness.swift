import Checkpoints
import Datasets
import Engine
import Experiments
import Foundation
import Serialization

/// One parser of files the program reads, driven from raw bytes: the body a libFuzzer harness runs
/// on each input (`mmkd-fuzz`, built by `scripts/fuzz.sh` with `-sanitize=fuzzer,address`) and the
/// test suite replays on the committed corpus.
///
/// The contract every parser must keep, checked here: any input ends in a value or in one of the
/// project's own errors, which names the file. A trap, an out-of-bounds access (caught by the address
/// sanitizer) or any other error type (a raw Foundation error) is a finding.
package struct ParserHarness: Sendable {
    /// The name used by `mmkd-fuzz`, `scripts/fuzz.sh` and the corpus folder `Fuzz/Corpus/NAME`.
    package let name: String
    /// What the harness reads.
    package let summary: String
    let body: @Sendable ([UInt8]) throws -> Void

    /// Runs the parser on `bytes`; returns the parser's error message, or nil when it read a value.
    /// Traps (the fuzzer's finding) when the parser fails any other way.
    @discardableResult
    package func run(_ bytes: [UInt8]) -> String? {
        do {
            try body(bytes)
            return nil
        } catch let error as CheckpointError {
            return ParserHarness.checked(error.description)
        } catch let error as DataError {
            return ParserHarness.checked(error.description)
        } catch let error as SerializationError {
            return ParserHarness.checked(error.description)
        } catch let error as ExperimentError {
            return ParserHarness.checked(error.description)
        } catch {
            fatalError("\(name): the parser threw \(type(of: error)), not one of the project's errors: \(error)")
        }
    }

    /// Checks that an error message names the input (every message starts with or holds its path).
    static func checked(_ message: String) -> String {
        precondition(message.contains(ParserHarness.inputName), "the error '\(message)' does not name the file")
        return message
    }

    /// The path the harnesses give their input, as a user's file would have.
    static let inputName = "fuzz-input"

    /// Reads every value so that the address sanitizer sees each byte the parser claims to hold.
    static func touch(_ tensors: [Tensor]) {
        var sum: Float = 0
        for t in tensors { for v in t.scalars { sum += v } }
        withExtendedLifetime(sum) {}
    }

    package static let all: [ParserHarness] = [
        ParserHarness(name: "safetensors", summary: "safetensors checkpoints (header JSON, dtypes, shapes, offsets)") { bytes in
            let contents = try SafeTensors.read(Data(bytes), path: inputName)
            touch(Array(contents.tensors.values))
        },
        ParserHarness(name: "pth", summary: "PyTorch checkpoints: ZIP archive, pickle, storages, sizes, strides, offsets") { bytes in
            touch(try TorchCheckpoint.parse(Data(bytes), path: inputName).tensors.map(\.1))
        },
        ParserHarness(name: "idx", summary: "IDX files (MNIST, Fashion-MNIST), gzipped or not") { bytes in
            _ = try DatasetFormats.idx(bytes: bytes, path: inputName)
        },
        ParserHarness(name: "cifar-binary", summary: "CIFAR-10 and CIFAR-100 binary batches") { bytes in
            // Read as CIFAR-100 when the size fits its 3074-byte records only.
            let hundred = bytes.count % 3074 == 0 && bytes.count % 3073 != 0
            var pixels: [UInt8] = [], labels: [Int] = []
            try DatasetFormats.cifarBinaryBatch(bytes, path: inputName, hundred: hundred, pixels: &pixels, labels: &labels)
        },
        ParserHarness(name: "cifar-pickle", summary: "CIFAR-10 and CIFAR-100 python batches (pickle, NumPy arrays)") { bytes in
            // Read as CIFAR-100 when the batch names `fine_labels`.
            let hundred = bytes.indices.contains { bytes[$0...].starts(with: Array("fine_labels".utf8)) }
            var pixels: [UInt8] = [], labels: [Int] = []
            try DatasetFormats.cifarPythonBatch(bytes, path: inputName, hundred: hundred, pixels: &pixels, labels: &labels)
        },
        ParserHarness(name: "mat", summary: "MATLAB v5 files (Stanford Dogs' lists), compressed elements included") { bytes in
            _ = try DatasetFormats.stanfordDogsList(bytes, path: inputName)
        },
        ParserHarness(name: "jpeg", summary: "JPEG images (libjpeg-turbo behind the size checks)") { bytes in
            _ = try ImageCodecs.decode(bytes, path: inputName)
        },
        ParserHarness(name: "png", summary: "PNG images (libpng behind the size checks)") { bytes in
            _ = try ImageCodecs.decode(bytes, path: inputName)
        },
        ParserHarness(name: "yaml", summary: "experiment files (YAML syntax, keys, types, values)") { bytes in
            _ = try ExperimentSpec.parse(String(decoding: bytes, as: UTF8.self), path: inputName)
        },
    ]

    package static func named(harness name: String) -> ParserHarness? { all.first { $0.name == name } }
}
