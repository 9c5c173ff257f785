import Checkpoints
import Engine
import Foundation
import XCTest

/// `kill -9` at random moments (a seeded loop) of `train`, `distill --method mmkd` and `run`: after
/// every kill each checkpoint present must load, and the run, continued to its end, must hold
/// tensors and metrics bit-identical to an uninterrupted one, with no temporary file left behind.
///
/// `MMKD_FAULT_KILLS` sets the kills per command (default 3, the CI's short version).
final class FaultInjectionTests: MMKDCommandTestCase {
    override var dataSeed: UInt64 { 33 }

    var kills: Int { Int(ProcessInfo.processInfo.environment["MMKD_FAULT_KILLS"] ?? "") ?? 3 }

    /// The files of every run under `root`: relative path → tensors of each checkpoint (by name),
    /// or the metrics lines without their timings.
    func snapshot(_ root: String) throws -> [String: String] {
        var result: [String: String] = [:]
        let files = FileManager.default.enumerator(atPath: root)?.compactMap { $0 as? String } ?? []
        for file in files.sorted() {
            let path = root + "/" + file
            if file.hasSuffix(".safetensors") {
                let contents = try SafeTensors.read(URL(fileURLWithPath: path))
                result[file] = contents.order.map { name in
                    "\(name) \(contents.tensors[name]!.shape) " + contents.tensors[name]!.scalars.map { String($0.bitPattern, radix: 16) }.joined(separator: ",")
                }.joined(separator: "\n")
            } else if file.hasSuffix("metrics.jsonl") {
                let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map { line -> String in
                    var row = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
                    for key in row.keys where key.contains("seconds") || key.contains("per_s") { row[key] = nil }
                    return String(decoding: try JSONSerialization.data(withJSONObject: row, options: [.sortedKeys]), as: UTF8.self)
                }
                result[file] = lines.joined(separator: "\n")
            }
        }
        return result
    }

    /// Every file under `root` that a killed write left behind.
    func temporaryFiles(_ root: String) -> [String] {
        (FileManager.default.enumerator(atPath: root)?.compactMap { $0 as? String } ?? [])
            .filter { AtomicFile.isTemporary(($0 as NSString).lastPathComponent) }
    }

    /// Runs `arguments(output)` once uninterrupted into `name-straight`, then into `name-killed`
    /// killed `kills` times at seeded random moments and continued to its end, and compares.
    func assertSurvivesKills(_ name: String, seed: UInt64, _ arguments: (String) -> [String],
                             file: StaticString = #filePath, line: UInt = #line) throws {
        let straight = folder + "/\(name)-straight", killed = folder + "/\(name)-killed"
        let start = Date()
        let reference = try mmkd(arguments(straight))
        XCTAssertEqual(reference.status, 0, reference.err, file: file, line: line)
        let duration = Date().timeIntervalSince(start)

        var generator = RandomGenerator(seed: seed)
        var moments: [Double] = []
        for _ in 0..<kills {
            let moment = duration * (0.03 + 0.94 * Double(generator.next() % 10_000) / 10_000)
            moments.append(moment)
            let p = try process(arguments(killed))
            p.standardOutput = FileHandle.nullDevice; p.standardError = FileHandle.nullDevice
            try p.run()
            Thread.sleep(forTimeInterval: moment)
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            // Every checkpoint present, whenever the kill came, is whole.
            XCTAssertNoThrow(try snapshot(killed), "\(name): a checkpoint does not load after a kill at \(moment) s", file: file, line: line)
        }
        let finished = try mmkd(arguments(killed))
        XCTAssertEqual(finished.status, 0, finished.err, file: file, line: line)
        XCTAssertEqual(temporaryFiles(killed), [], "\(name): temporary files left", file: file, line: line)
        let a = try snapshot(straight), b = try snapshot(killed)
        XCTAssertEqual(Set(a.keys), Set(b.keys), "\(name): the same files", file: file, line: line)
        for (path, content) in a where b[path] != content {
            XCTFail("\(name): \(path) differs from the uninterrupted run's after kills at \(moments.map { String(format: "%.2f s", $0) })", file: file, line: line)
        }
    }

    func recipe(_ runs: String) -> [String] {
        ["--data", "cifar10:\(folder!)", "--epochs", "3", "--batch-size", "8", "--milestones", "2", "--loader-threads", "1",
         "--runs-dir", runs, "--resume"]
    }

    func testKilledTrainingAndDistillationResumeBitIdentically() throws {
        try assertSurvivesKills("train", seed: 1) { ["train", "--arch", "resnet8", "--seed", "1", "--name", "t"] + recipe($0) }
        let teacher = "resnet8=\(folder!)/train-straight/t/best.safetensors"
        try assertSurvivesKills("mmkd", seed: 2) {
            ["distill", "--student", "resnet8", "--teacher", teacher, "--teacher", teacher, "--method", "mmkd",
             "--buffer-size", "16", "--meta-freq", "2", "--seed", "3", "--name", "s"] + recipe($0)
        }
    }

    func testKilledExperimentResumesBitIdentically() throws {
        let yaml = """
        name: faults
        data: cifar10:\(folder!)
        seeds: [1]
        budget: {epochs: 2, batch_size: 8, milestones: [1], loader_threads: 1}
        teachers: [{name: t, arch: resnet8, train: {seed: 4}}]
        pairs: [{student: resnet8, teachers: [t]}]
        methods: [alone, kd]
        """
        try yaml.write(toFile: folder + "/faults.yaml", atomically: true, encoding: .utf8)
        try assertSurvivesKills("run", seed: 3) { ["run", self.folder + "/faults.yaml", "--output", $0] }
    }
}
