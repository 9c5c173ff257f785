import Engine
import Foundation
import Models
import NN
import ONNXExport
import XCTest

/// Every zoo architecture exported, run back (by the engine's runner, and by onnxruntime when
/// `MMKD_ONNX_PYTHON` names a Python with onnx and onnxruntime, as `scripts/test.sh` sets it),
/// against the network's own forward on a batch other than the traced one.
final class ONNXExportTests: XCTestCase {
    /// A network with every batch norm's affine parameters and running statistics drawn at random
    /// (fresh ones are the identity, which would hide a wrong fold).
    static func network(_ arch: String, classes: Int = 10, seed: UInt64 = 7) throws -> any FeatureClassifier {
        let model = try ModelZoo.make(arch, classes: classes)
        var g = RandomGenerator(seed: seed)
        var parameters: [String: Tensor] = [:], buffers: [String: Tensor] = [:]
        for (name, t) in model.namedBuffers where name.hasSuffix("running_var") {
            let prefix = String(name.dropLast("running_var".count))
            buffers[name] = Tensor.randomUniform(t.shape, low: 0.5, high: 2, generator: &g)
            buffers[prefix + "running_mean"] = Tensor.randomNormal(t.shape, std: 0.2, generator: &g)
            parameters[prefix + "weight"] = Tensor.randomUniform(t.shape, low: 0.5, high: 1.5, generator: &g)
            parameters[prefix + "bias"] = Tensor.randomNormal(t.shape, std: 0.2, generator: &g)
        }
        model.update(parameters: parameters)
        model.update(buffers: buffers)
        model.eval()
        return model
    }

    static func imageShape(_ arch: String) -> [Int] { ModelZoo.imageNetNames.contains(arch) ? [3, 224, 224] : [3, 32, 32] }

    /// What one architecture's export measured.
    struct Parity { let arch: String, nodes: Int, engineFolded: Float, engineKept: Float, runtime: Float? }

    func parity(_ arch: String, batch: Int) throws -> Parity {
        let model = try Self.network(arch)
        let shape = Self.imageShape(arch)
        var g = RandomGenerator(seed: 11)
        let x = Tensor.randomNormal([batch] + shape, generator: &g)
        let forward: (Tensor) -> Tensor = { model($0) }
        let folded = try ONNXExporter.export(model, imageShape: shape, options: ONNXExportOptions(), forward: forward)
        var keep = ONNXExportOptions()
        keep.foldBatchNorm = false
        let kept = try ONNXExporter.export(model, imageShape: shape, options: keep, forward: forward)
        let batchNorms = model.namedBuffers.filter { $0.0.hasSuffix("running_var") }.count
        XCTAssertEqual(kept.operatorCounts["BatchNormalization"] ?? 0, batchNorms, arch)
        // Every batch norm follows a convolution and folds, except the pre-activation ones of the wide ResNets.
        if arch.hasPrefix("wrn_") && !ModelZoo.imageNetNames.contains(arch) {
            XCTAssertLessThan(folded.operatorCounts["BatchNormalization"] ?? 0, batchNorms, arch)
        } else {
            XCTAssertEqual(folded.operatorCounts["BatchNormalization"], nil, "\(arch): folded graph keeps batch norms")
        }
        let stateNames = Set(model.stateDict.map(\.0).filter { !$0.hasSuffix("num_batches_tracked") })
        XCTAssertEqual(stateNames.subtracting(kept.initializerNames), [], "\(arch): state-dict entries missing from the graph")
        let a = try ONNXExporter.relativeDifference(folded, input: x, forward: forward)
        let b = try ONNXExporter.relativeDifference(kept, input: x, forward: forward)
        XCTAssertLessThan(a, 1e-4, "\(arch) folded")
        XCTAssertLessThan(b, 1e-4, "\(arch) kept")
        let runtime = try onnxRuntimeDifference(folded, input: x, expected: withoutGrad { model(x) })
        if let runtime { XCTAssertLessThan(runtime, 1e-4, "\(arch) under onnxruntime") }
        return Parity(arch: arch, nodes: folded.nodeCount, engineFolded: a, engineKept: b, runtime: runtime)
    }

    /// onnx.checker (full check) and onnxruntime's logits for `input`, relative to `expected`.
    func onnxRuntimeDifference(_ model: ONNXModel, input: Tensor, expected: Tensor) throws -> Float? {
        guard let python = ProcessInfo.processInfo.environment["MMKD_ONNX_PYTHON"] else { return nil }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("onnx-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        func floats(_ t: Tensor, _ name: String) throws -> String {
            let url = dir.appendingPathComponent(name)
            try t.scalars.withUnsafeBufferPointer { Data(buffer: $0) }.write(to: url)
            return url.path
        }
        let modelURL = dir.appendingPathComponent("model.onnx")
        try model.serializedData().write(to: modelURL)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../scripts/check_onnx.py").standardized.path
        process.arguments = [script, "parity", modelURL.path, try floats(input, "input.f32"), try floats(expected, "expected.f32")]
        let out = Pipe(), err = Pipe()
        process.standardOutput = out; process.standardError = err
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile(), errors = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0,
              let result = try JSONSerialization.jsonObject(with: data) as? [String: Any], let rel = result["max_rel"] as? Double else {
            XCTFail("check_onnx.py failed: \(String(decoding: errors, as: UTF8.self))")
            return .infinity
        }
        return Float(rel)
    }

    func report(_ rows: [Parity]) {
        for r in rows {
            print(String(format: "onnx parity %-22@ nodes %4d  engine folded %.2e  kept %.2e  onnxruntime %@", r.arch as NSString, r.nodes,
                         r.engineFolded, r.engineKept, r.runtime.map { String(format: "%.2e", $0) } ?? "skipped"))
        }
    }

    func testEveryCIFARArchitectureExportsWithItsOwnAnswers() throws {
        report(try ModelZoo.allNames.filter { !ModelZoo.imageNetNames.contains($0) }.map { try parity($0, batch: 3) })
    }

    func testEveryImageNetArchitectureExportsWithItsOwnAnswers() throws {
        report(try ModelZoo.allNames.filter { ModelZoo.imageNetNames.contains($0) }.map { try parity($0, batch: 3) })
    }

    func testTheGraphHasAFreeBatchDimension() throws {
        let model = try Self.network("ShuffleV1")
        let export = try ONNXExporter.export(model, imageShape: [3, 32, 32], traceBatch: 2) { model($0) }
        var g = RandomGenerator(seed: 3)
        for batch in [1, 5] {
            let x = Tensor.randomNormal([batch, 3, 32, 32], generator: &g)
            XCTAssertLessThan(try ONNXExporter.relativeDifference(export, input: x) { model($0) }, 1e-4, "batch \(batch)")
        }
    }

    func testNormalisationAndClassNamesAreBakedIn() throws {
        let model = try Self.network("resnet8")
        var options = ONNXExportOptions()
        options.normalization = (mean: [0.5, 0.4, 0.3], std: [0.2, 0.25, 0.3])
        options.classNames = ["cat", "dog", "a \"quoted\" name", "3", "4", "5", "6", "7", "8", "9"]
        let export = try ONNXExporter.export(model, imageShape: [3, 32, 32], options: options) { model($0) }
        XCTAssertEqual(export.metadata["class_names"], #"["cat","dog","a \"quoted\" name","3","4","5","6","7","8","9"]"#)
        XCTAssertTrue(export.metadata["input"]!.contains("RGB values in [0, 1]"))
        var g = RandomGenerator(seed: 5)
        let pixels = Tensor.randomUniform([2, 3, 32, 32], generator: &g)
        let normalised = (pixels - Tensor([0.5, 0.4, 0.3], shape: [1, 3, 1, 1])) / Tensor([0.2, 0.25, 0.3], shape: [1, 3, 1, 1])
        let expected = withoutGrad { model(normalised) }
        let got = try export.run(pixels)
        let scale = expected.scalars.map(abs).max()!
        XCTAssertLessThan(zip(got.scalars, expected.scalars).map { abs($0 - $1) }.max()! / scale, 1e-5)
        XCTAssertEqual(export.opset, 13)
    }

    /// A forward pass with an op the exporter has no node for is refused by name, not exported
    /// with the traced batch's values baked in.
    func testAnOpWithoutAnONNXNodeIsRefused() throws {
        let model = try Self.network("resnet8")
        XCTAssertThrowsError(try ONNXExporter.export(model, imageShape: [3, 32, 32]) { model($0).exp() }) { error in
            XCTAssertEqual(error as? ONNXExportError, .unsupportedOps(["exp"]))
        }
        XCTAssertThrowsError(try ONNXExporter.export(model, imageShape: [3, 32, 32]) { model($0).sign() }) { error in
            XCTAssertEqual((error as? ONNXExportError)?.description, "the forward pass uses ops that cannot be exported to ONNX yet: sign")
        }
    }

    /// A reshape that fixes the batch size is caught by running the graph on another batch size.
    func testAGraphThatFixesTheBatchSizeFailsItsCheck() throws {
        let model = try Self.network("resnet8")
        let forward: (Tensor) -> Tensor = { x in model(x).reshaped([-1]).reshaped([2, 10]) }
        let export = try ONNXExporter.export(model, imageShape: [3, 32, 32], forward: forward)
        var g = RandomGenerator(seed: 1)
        XCTAssertThrowsError(try ONNXExporter.relativeDifference(export, input: Tensor.randomNormal([3, 3, 32, 32], generator: &g), forward: { model($0) })) { error in
            XCTAssertTrue("\(error)".contains("Reshape"), "\(error)")
        }
    }

    /// Tracing leaves the engine as it was: a module traced once computes as before, and no trace
    /// outlives `record`.
    func testTracingLeavesInferenceUnchanged() throws {
        let model = try Self.network("wrn_16_1")
        var g = RandomGenerator(seed: 9)
        let x = Tensor.randomNormal([2, 3, 32, 32], generator: &g)
        let before = withoutGrad { model(x) }.scalars
        _ = try ONNXExporter.export(model, imageShape: [3, 32, 32]) { model($0) }
        XCTAssertEqual(withoutGrad { model(x) }.scalars, before)
    }
}
