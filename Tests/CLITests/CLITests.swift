import Foundation
import TestSupport
import XCTest

/// The `mmkd` executable as a user runs it: every subcommand's argument errors (a non-zero exit and
/// a message naming the flag), and tiny real runs of train, eval, distill, import-torch, run and
/// report on a CIFAR-format data set written by the test.
final class CLITests: MMKDCommandTestCase {
    override var dataSeed: UInt64 { 21 }

    func testEverySubcommandNamesItsArgumentErrors() throws {
        let data = "cifar10:\(folder!)"
        try assertFails(["train", "--arch", "resnet9", "--data", data], saying: "unknown architecture 'resnet9'")
        try assertFails(["train", "--arch", "resnet8", "--data", data, "--epochs", "0"], saying: "--epochs must be positive")
        try assertFails(["train", "--arch", "resnet8", "--data", data, "--epochs", "-1"], saying: "--epochs must be positive, got -1")
        try assertFails(["train", "--arch", "resnet8", "--data", data, "--lr", "inf"], saying: "--lr must be a positive number, got inf")
        try assertFails(["distill", "--student", "resnet8", "--method", "kd", "--teacher", "resnet8=\(folder!)/cifar-10-batches-bin/data_batch_1.bin",
                         "--data", data, "--beta", "-2"], saying: "--beta must be a number ≥ 0, got -2.0")
        try assertFails(["train", "--arch", "resnet8", "--data", "nowhere:/x"], saying: "nowhere")
        try assertFails(["train", "--arch", "resnet8", "--data", data, "--name", "../../escape"], saying: "--name: '../../escape' has a '/'")
        try assertFails(["distill", "--student", "resnet8", "--method", "mmdk", "--teacher", "resnet8=x", "--data", data], saying: "unknown method 'mmdk'")
        try assertFails(["distill", "--student", "resnet8", "--method", "mmkd", "--data", data], saying: "--teacher")
        try assertFails(["distill", "--student", "resnet8", "--method", "mmkd", "--teacher", "resnet8=\(folder!)/none.safetensors", "--data", data],
                        saying: "no file at")
        try assertFails(["eval", "--arch", "resnet9", "--checkpoint", "x.safetensors", "--data", data], saying: "unknown architecture 'resnet9'")
        try assertFails(["run", folder + "/none.yaml"], saying: "none.yaml")
        try assertFails(["report", folder + "/no-experiment"], saying: "no-experiment")
        try assertFails(["import-torch", folder + "/none.pth", "--arch", "resnet8"], saying: "none.pth")
        try assertFails(["gradcam", "--model", "bad", "--data", data], saying: "LABEL=ARCH=CHECKPOINT")
        try assertFails(["bench", "nothing"], saying: "nothing")
        try assertFails(["bench", "distill", "--config", "vgg13:resnet9"], saying: "--config must be paper, paper-vgg, small or TEACHER:STUDENT")
    }

    func testAOneEpochRunPipedToAFileReadsCleanly() throws {
        let p = try process(["train", "--arch", "resnet8", "--data", "cifar10:\(folder!)", "--epochs", "1", "--batch-size", "8",
                             "--milestones", "", "--loader-threads", "1", "--test-limit", "8", "--runs-dir", folder + "/runs", "--name", "piped"])
        let (status, text) = try runCombined(p)
        XCTAssertEqual(status, 0, text)
        let lines = text.split(separator: "\n")
        XCTAssertTrue(lines.first?.hasPrefix("training resnet8") == true && lines.first?.contains("8 test images") == true, text)
        XCTAssertTrue(lines.last?.hasPrefix("best test top-1") == true, "standard output and error in the order written:\n\(text)")
        XCTAssertEqual(lines.filter { $0.contains("done") }.count, 1, text)
        XCTAssertFalse(text.contains("\r") || text.contains("\u{1B}"), "no terminal control characters in a file")
        XCTAssertLessThanOrEqual(lines.count, 6, "a line every few seconds, not one per batch:\n\(text)")
        let summary = try String(contentsOfFile: folder + "/runs/piped/summary.md", encoding: .utf8)
        XCTAssertTrue(summary.contains("tested on 8 test images only (spread evenly over the test set)"), summary)
    }

    /// TensorBoard's own reader (`scripts/check_tensorboard.py`) finds every metric of a training
    /// and an MMKD run in their event files.
    func testTensorBoardReadsEveryRun() throws {
        guard let python = ProcessInfo.processInfo.environment["MMKD_TENSORBOARD_PYTHON"] else {
            throw XCTSkip("MMKD_TENSORBOARD_PYTHON (set by scripts/test.sh) names no Python with tensorboard")
        }
        let recipe = ["--data", "cifar10:\(folder!)", "--epochs", "2", "--batch-size", "8", "--milestones", "1", "--loader-threads", "1",
                      "--runs-dir", folder + "/runs"]
        XCTAssertEqual(try mmkd(["train", "--arch", "resnet8", "--name", "t"] + recipe).status, 0)
        let teacher = "resnet8=\(folder!)/runs/t/last.safetensors"
        XCTAssertEqual(try mmkd(["distill", "--student", "resnet8", "--teacher", teacher, "--teacher", teacher, "--method", "mmkd",
                                 "--buffer-size", "16", "--meta-freq", "2", "--name", "m"] + recipe).status, 0)
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts/check_tensorboard.py").path
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = [script, folder + "/runs/t", folder + "/runs/m"]
        let (status, text) = try runCombined(p)
        XCTAssertEqual(status, 0, text)
        XCTAssertEqual(text.components(separatedBy: "all match").count - 1, 2, text)
        XCTAssertTrue(text.contains("runs/m: ") && !text.contains("runs/m: 0 tags"), text)
    }

    func testTinyRunsOfEverySubcommand() throws {
        let data = "cifar10:\(folder!)"
        let recipe = ["--data", data, "--epochs", "1", "--batch-size", "8", "--milestones", "", "--loader-threads", "1", "--runs-dir", folder + "/runs"]
        var r = try mmkd(["train", "--arch", "resnet8", "--seed", "1", "--name", "teacher"] + recipe)
        XCTAssertEqual(r.status, 0, r.err)
        let teacher = folder + "/runs/teacher/best.safetensors"
        for file in ["config.json", "metrics.jsonl", "summary.md", "best.safetensors", "last.safetensors", "resume.safetensors"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: folder + "/runs/teacher/" + file), file)
        }

        r = try mmkd(["eval", "--arch", "resnet8", "--checkpoint", teacher, "--data", data, "--loader-threads", "1"])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertTrue(r.out.contains("(16 images): top-1"), r.out)
        r = try mmkd(["eval", "--arch", "resnet8", "--checkpoint", teacher, "--data", data, "--loader-threads", "1", "--test-limit", "5"])
        XCTAssertTrue(r.out.contains("(5 images): top-1"), r.out)

        r = try mmkd(["distill", "--student", "resnet8", "--teacher", "resnet8=\(teacher)", "--teacher", "resnet8=\(teacher)", "--method", "mmkd",
                      "--buffer-size", "16", "--meta-freq", "2", "--name", "mmkd"] + recipe)
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertTrue(r.out.contains("with mmkd") && r.out.contains("ensemble of 2"), r.out)
        let metrics = try String(contentsOfFile: folder + "/runs/mmkd/metrics.jsonl", encoding: .utf8)
        XCTAssertTrue(metrics.contains("\"meta_steps\":3"), "5 batches, meta every 2: iterations 0, 2, 4\n\(metrics)")

        let pth = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("CheckpointsTests/Fixtures/resnet8.pth").path
        try FileManager.default.copyItem(atPath: pth, toPath: folder + "/resnet8.pth")
        r = try mmkd(["import-torch", folder + "/resnet8.pth", "--arch", "resnet8"])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertTrue(FileManager.default.fileExists(atPath: folder + "/resnet8.safetensors"))

        let yaml = """
        name: cli
        data: \(data)
        seeds: [1]
        budget: {epochs: 1, batch_size: 8, milestones: [], loader_threads: 1}
        teachers: [{name: t, arch: resnet8, checkpoint: \(teacher)}]
        pairs: [{student: resnet8, teachers: [t]}]
        methods: [alone, kd]
        """
        try yaml.write(toFile: folder + "/cli.yaml", atomically: true, encoding: .utf8)
        r = try mmkd(["run", folder + "/cli.yaml", "--output", folder + "/experiment"])
        XCTAssertEqual(r.status, 0, r.err)
        r = try mmkd(["report", folder + "/experiment", "--gradcam-images", "0"])
        XCTAssertEqual(r.status, 0, r.err)
        let report = try String(contentsOfFile: folder + "/experiment/report.md", encoding: .utf8)
        XCTAssertTrue(report.contains("kd") && report.contains("alone"), report)
    }
}
