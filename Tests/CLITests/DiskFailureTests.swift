import Checkpoints
import Engine
import Foundation
import XCTest

/// Runs whose disk fails them: a full disk and a read-only one (small tmpfs mounts, when the tests
/// may mount: as root), and a file-size limit (`ulimit -f`, always). Each ends with a plain message
/// naming the file, the last good checkpoint intact and no temporary file left.
final class DiskFailureTests: MMKDCommandTestCase {
    func train(_ runs: String, name: String = "r", epochs: Int = 3, extra: [String] = []) -> [String] {
        ["train", "--arch", "resnet8", "--seed", "1", "--name", name, "--data", "cifar10:\(folder!)", "--epochs", "\(epochs)",
         "--batch-size", "8", "--milestones", "", "--loader-threads", "1", "--runs-dir", runs] + extra
    }

    /// A tmpfs of `kilobytes` mounted in the test's folder (unmounted afterwards), or a skip.
    func mountTemporaryFileSystem(kilobytes: Int) throws -> String {
        let point = folder + "/disk"
        try FileManager.default.createDirectory(atPath: point, withIntermediateDirectories: true)
        guard shell("mount -t tmpfs -o size=\(kilobytes)k tmpfs '\(point)'") == 0 else {
            throw XCTSkip("cannot mount a tmpfs here (not root?)")
        }
        addTeardownBlock { _ = self.shell("umount '\(point)'") }
        return point
    }

    @discardableResult
    func shell(_ command: String) -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = ["-c", command + " >/dev/null 2>&1"]
        guard (try? p.run()) != nil else { return -1 }
        p.waitUntilExit()
        return p.terminationStatus
    }

    func temporaryFiles(_ root: String) -> [String] {
        (FileManager.default.enumerator(atPath: root)?.compactMap { $0 as? String } ?? [])
            .filter { AtomicFile.isTemporary(($0 as NSString).lastPathComponent) }
    }

    func testAFullDiskStopsTheRunAndKeepsTheLastGoodCheckpoint() throws {
        let disk = try mountTemporaryFileSystem(kilobytes: 1500)
        let r = try mmkd(train(disk))
        XCTAssertEqual(r.status, 1, r.err)
        XCTAssertTrue(r.err.contains("Error: cannot write \(disk)/r/") && r.err.contains(": the disk is full; the file there before, if any, is unchanged"), r.err)
        XCTAssertFalse(r.err.contains("NSCocoaErrorDomain") || r.err.contains("Code="), r.err)
        XCTAssertEqual(temporaryFiles(disk), [])
        // Epoch 1's checkpoint and resume file fitted and are whole; epoch 2's did not replace them.
        let last = try SafeTensors.read(URL(fileURLWithPath: disk + "/r/last.safetensors"))
        XCTAssertEqual(last.metadata["epoch"], "1")
        XCTAssertFalse(last.tensors.values.contains { $0.scalars.contains { !$0.isFinite } })
        XCTAssertEqual(try SafeTensors.read(URL(fileURLWithPath: disk + "/r/resume.safetensors")).metadata["next_epoch"], "1")
        XCTAssertEqual(try String(contentsOfFile: disk + "/r/metrics.jsonl", encoding: .utf8).split(separator: "\n").count, 1)
    }

    func testAReadOnlyDiskIsNamedInPlainWords() throws {
        let disk = try mountTemporaryFileSystem(kilobytes: 4000)
        XCTAssertEqual(try mmkd(train(disk, epochs: 1)).status, 0)
        XCTAssertEqual(shell("mount -o remount,ro '\(disk)'"), 0)
        var r = try mmkd(train(disk, epochs: 1, extra: ["--resume"]))
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.err.contains("\(disk)/r: cannot use the run directory: cannot open \(disk)/r/.lock: the file system is read-only"), r.err)
        r = try mmkd(train(disk, name: "other"))
        XCTAssertTrue(r.err.contains("cannot create \(disk)/other: the file system is read-only"), r.err)
        XCTAssertNoThrow(try SafeTensors.read(URL(fileURLWithPath: disk + "/r/last.safetensors")))
    }

    func testAFileSizeLimitEndsWithAPlainMessage() throws {
        // The resume file (weights and momenta, ~620 kB) exceeds a 400 kB limit; checkpoints fit.
        let command = train(folder + "/runs").map { "'\($0)'" }.joined(separator: " ")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = ["-c", "trap '' XFSZ; ulimit -f 400; exec '\(try executable.path)' \(command)"]
        p.currentDirectoryURL = URL(fileURLWithPath: folder)
        let err = Pipe()
        p.standardError = err; p.standardOutput = FileHandle.nullDevice
        try p.run()
        let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 1, message)
        XCTAssertTrue(message.contains("cannot write \(folder!)/runs/r/resume.safetensors: the file would exceed the size this process may write"), message)
        XCTAssertEqual(temporaryFiles(folder + "/runs"), [])
        XCTAssertNoThrow(try SafeTensors.read(URL(fileURLWithPath: folder + "/runs/r/last.safetensors")))
    }
}
