import Foundation
import TestSupport
import XCTest

/// `mmkd export` as a user runs it: its errors, the student of a distillation run exported alone,
/// and a trained student's test top-1 under onnxruntime against `mmkd eval`'s.
final class ExportCommandTests: MMKDCommandTestCase {
    override var dataSeed: UInt64 { 23 }

    var recipe: [String] {
        ["--data", "cifar10:\(folder!)", "--epochs", "1", "--batch-size", "8", "--milestones", "", "--loader-threads", "1", "--runs-dir", folder + "/runs"]
    }

    static var checkScript: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts/check_onnx.py").path
    }

    /// Runs `scripts/check_onnx.py ARGS` with `python`; returns its JSON.
    func checkONNX(_ python: String, _ arguments: [String]) throws -> [String: Any] {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = [Self.checkScript] + arguments
        let (status, text) = try runCombined(p)
        XCTAssertEqual(status, 0, text)
        return (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]) ?? [:]
    }

    func testExportNamesItsErrors() throws {
        XCTAssertEqual(try mmkd(["train", "--arch", "resnet8", "--name", "t"] + recipe).status, 0)
        let checkpoint = folder + "/runs/t/best.safetensors"
        try assertFails(["export", folder + "/none.safetensors", "--out", "x.onnx"], saying: "none.safetensors")
        try assertFails(["export", checkpoint, "--out", "x.onnx", "--format", "tflite"], saying: "--format: 'tflite' is not a format this build writes; expected onnx")
        try assertFails(["export", folder + "/runs", "--out", "x.onnx"], saying: "is a folder without best.safetensors or last.safetensors (not a run directory)")
        try assertFails(["export", checkpoint, "--arch", "resnet20", "--out", "x.onnx"], saying: "does not fit the architecture")
        try assertFails(["export", checkpoint, "--arch", "resnet9", "--out", "x.onnx"], saying: "--arch: unknown architecture 'resnet9'")
        try assertFails(["export", checkpoint, "--class-names", "a,b", "--out", "x.onnx"], saying: "--class-names gives 2 names for 10 classes")
        try assertFails(["export", checkpoint, "--normalize", "--data", "bogus", "--out", "x.onnx"], saying: "--data: 'bogus' names no data set kind")
        try assertFails(["export", checkpoint, "--image-size", "0", "--out", "x.onnx"], saying: "--image-size must be in 1…4096, got 0")
        try assertFails(["export", checkpoint, "--out", folder + "/no/such/dir/x.onnx"], saying: "its folder does not exist")
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/x.onnx"))
    }

    /// The student of a distillation run with regressors (FitNet-MKD) exports from the run
    /// directory alone: the metadata names the student's architecture and classes, and the file
    /// passes the ONNX checker with onnxruntime's logits equal to the engine's check.
    func testTheStudentOfADistillationRunExportsAlone() throws {
        XCTAssertEqual(try mmkd(["train", "--arch", "resnet8", "--name", "t"] + recipe).status, 0)
        let teacher = "resnet8=\(folder!)/runs/t/best.safetensors"
        var r = try mmkd(["distill", "--student", "resnet8", "--method", "fitnet-mkd", "--teacher", teacher, "--teacher", teacher, "--name", "d"] + recipe)
        XCTAssertEqual(r.status, 0, r.err)
        r = try mmkd(["export", folder + "/runs/d", "--out", "student.onnx", "--keep-batch-norm"])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertTrue(r.out.hasPrefix("student.onnx: resnet8, 10 classes"), r.out)
        XCTAssertTrue(r.out.contains("BatchNormalization 9") && r.out.contains("batch norm kept"), r.out)
        XCTAssertTrue(r.out.contains("checked: on a batch of 3"), r.out)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: folder + "/student.onnx"))
        XCTAssertGreaterThan(bytes.count, 4 * 78_000, "the student's weights are in the file")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".tmp") }, [])
        guard let python = ProcessInfo.processInfo.environment["MMKD_ONNX_PYTHON"] else { return }
        let result = try checkONNX(python, ["check", folder + "/student.onnx"])
        XCTAssertEqual(result["checker"] as? String, "ok", "\(result)")
        XCTAssertEqual("\(result["input"] ?? "")", "\(["input", ["batch", 3, 32, 32]] as [Any])", "\(result)")
        XCTAssertEqual((result["output"] as? [Any])?.last as? [Int], [2, 10], "\(result)")
        XCTAssertEqual(result["opset"] as? Int, 13)
        let metadata = result["metadata"] as? [String: String] ?? [:]
        XCTAssertEqual(metadata["class_names"], #"["airplane","automobile","bird","cat","deer","dog","frog","horse","ship","truck"]"#, "\(metadata)")
        XCTAssertEqual(metadata["mmkd.method"] ?? metadata["mmkd.source"], metadata["mmkd.method"] == nil ? "best.safetensors" : metadata["mmkd.method"])
    }

    /// A checkpoint PyTorch wrote (`resnet8.pth`, the checkpoint tests' fixture) exports and, under
    /// onnxruntime, gives PyTorch's own logits for the fixture's input (sin(0.013·i)).
    func testAPyTorchCheckpointExportsWithPyTorchsLogits() throws {
        let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("CheckpointsTests/Fixtures")
        let pth = fixtures.appendingPathComponent("resnet8.pth").path
        try assertFails(["export", pth, "--out", "t.onnx"], saying: "does not say its architecture; pass --arch")
        let r = try mmkd(["export", pth, "--arch", "resnet8", "--out", "t.onnx"])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertTrue(r.out.hasPrefix("t.onnx: resnet8, 10 classes"), r.out)
        guard let python = ProcessInfo.processInfo.environment["MMKD_ONNX_PYTHON"] else { return }
        let expected = try JSONSerialization.jsonObject(with: Data(contentsOf: fixtures.appendingPathComponent("resnet8_logits.json"))) as! [String: Any]
        let logits = (expected["logits"] as! [NSNumber]).map(\.floatValue)
        let input = (0..<(2 * 3 * 32 * 32)).map { Float(sin(0.013 * Double($0))) }
        try input.withUnsafeBufferPointer { Data(buffer: $0) }.write(to: URL(fileURLWithPath: folder + "/x.f32"))
        try logits.withUnsafeBufferPointer { Data(buffer: $0) }.write(to: URL(fileURLWithPath: folder + "/torch.f32"))
        let result = try checkONNX(python, ["parity", folder + "/t.onnx", folder + "/x.f32", folder + "/torch.f32"])
        XCTAssertLessThan(result["max_rel"] as? Double ?? 1, 1e-4, "\(result)")
        print("resnet8.pth under onnxruntime against PyTorch's logits: max relative difference \(result["max_rel"] ?? "?")")
    }

    /// A student trained on the CIFAR-10 JPEG copy (`MMKD_CIFAR10_JPEG`, or the shared archive,
    /// extracted here) gives the same test top-1 under onnxruntime (images decoded by Pillow, the
    /// normalisation in the graph) as under `mmkd eval`.
    func testATrainedStudentHasTheSameTop1UnderONNXRuntime() throws {
        guard let python = ProcessInfo.processInfo.environment["MMKD_ONNX_PYTHON"] else {
            throw XCTSkip("MMKD_ONNX_PYTHON (set by scripts/test.sh) names no Python with onnx and onnxruntime")
        }
        let root = try cifar10JPEG()
        let data = "folder:\(root)"
        var r = try mmkd(["train", "--arch", "resnet8", "--data", data, "--epochs", "1", "--train-limit", "4000", "--milestones", "",
                          "--loader-threads", "2", "--runs-dir", folder + "/runs", "--name", "s"])
        XCTAssertEqual(r.status, 0, r.err)
        r = try mmkd(["eval", "--arch", "resnet8", "--checkpoint", folder + "/runs/s/best.safetensors", "--data", data, "--loader-threads", "2"])
        XCTAssertEqual(r.status, 0, r.err)
        guard let range = r.out.range(of: #"top-1 [0-9.]+%"#, options: .regularExpression) else { return XCTFail(r.out) }
        let evalTop1 = Double(r.out[range].dropFirst(6).dropLast())!
        r = try mmkd(["export", folder + "/runs/s", "--normalize", "--out", "s.onnx"])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertTrue(r.out.contains("normalised by the graph (folder)"), r.out)
        let result = try checkONNX(python, ["top1", folder + "/s.onnx", root])
        XCTAssertEqual(result["images"] as? Int, 10_000, "\(result)")
        XCTAssertEqual((result["top1"] as? Double).map { String(format: "%.2f", $0) }, String(format: "%.2f", evalTop1), "\(result) vs mmkd eval \(evalTop1)")
        print("trained resnet8: test top-1 \(evalTop1)% under mmkd eval, \(result["top1"] ?? "?")% under onnxruntime")
    }

    /// The CIFAR-10 JPEG copy: `MMKD_CIFAR10_JPEG` (a folder with train/ and test/), else the shared
    /// archive (beside the repository, or in /work/shared) extracted into the test's folder.
    func cifar10JPEG() throws -> String {
        if let root = ProcessInfo.processInfo.environment["MMKD_CIFAR10_JPEG"] { return root }
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        // The project's shared folder beside the repository, or where this project's machines keep it.
        let candidates = [repo.deletingLastPathComponent().appendingPathComponent("shared/data/cifar10-jpeg.tar.gz").path,
                          "/work/shared/data/cifar10-jpeg.tar.gz"]
        guard let archive = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
            throw XCTSkip("no CIFAR-10 JPEG copy: set MMKD_CIFAR10_JPEG or put the archive at \(candidates[0])")
        }
        let tar = Process()
        tar.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        tar.arguments = ["tar", "-xzf", archive, "-C", folder]
        let (status, text) = try runCombined(tar)
        XCTAssertEqual(status, 0, text)
        return folder + "/cifar10-jpeg"
    }
}
